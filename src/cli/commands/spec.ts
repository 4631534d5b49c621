// `edgeward spec …`: checks fleet spec files and prints the JSON Schema editors use.

import type { Command } from "commander";
import { FleetSpecError } from "../../core/spec/fleet-spec-error.ts";
import { fleetSpecJsonSchema } from "../../core/spec/fleet-spec-json-schema.ts";
import type { FleetSpec } from "../../core/spec/fleet-spec-schema.ts";
import { FleetSpecFileError, loadFleetSpecFile } from "../../runtime/fleet-spec-file.ts";

function summaryOf(spec: FleetSpec) {
  return {
    name: spec.metadata.name,
    detectionPreset: spec.detection.preset,
    nodes: spec.nodes.map((node) => node.id),
    zones: [...new Set(spec.nodes.map((node) => node.zone))],
    services: spec.services.map((service) => ({
      name: service.name,
      primary: service.failover?.primary,
      backups: service.failover?.backups ?? [],
      testSchedule: service.failover?.testSchedule,
    })),
    backupPolicies: spec.backup.policies.map((policy) => ({
      name: policy.name,
      levels: policy.levels.map((settings) => settings.level),
    })),
  };
}

function printSummary(file: string, spec: FleetSpec): void {
  const summary = summaryOf(spec);
  const lines = [
    `${file}: valid fleet spec "${summary.name}" (detection preset ${summary.detectionPreset})`,
    `  nodes            ${summary.nodes.length} in ${summary.zones.length} zone(s): ${summary.zones.join(", ")}`,
    `  services         ${summary.services.length}`,
    ...summary.services.map((service) =>
      service.primary === undefined
        ? `    ${service.name}: no failover plan`
        : `    ${service.name}: ${[service.primary, ...service.backups].join(" -> ")}` +
          (service.testSchedule === undefined ? "" : `, drilled ${service.testSchedule}`),
    ),
    `  backup policies  ${summary.backupPolicies.length}`,
    ...summary.backupPolicies.map((policy) => `    ${policy.name}: ${policy.levels.join(", ")}`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function validate(file: string, options: { json?: boolean }): Promise<void> {
  let spec: FleetSpec;
  try {
    spec = await loadFleetSpecFile(file);
  } catch (error) {
    if (!(error instanceof FleetSpecError || error instanceof FleetSpecFileError)) throw error;
    process.exitCode = 1;
    if (options.json === true) {
      const issues = error instanceof FleetSpecError ? error.issues : [];
      process.stdout.write(
        `${JSON.stringify({ valid: false, file, error: error.message, issues }, null, 2)}\n`,
      );
    } else {
      process.stderr.write(`${error.message}\n`);
    }
    return;
  }
  if (options.json === true)
    process.stdout.write(
      `${JSON.stringify({ valid: true, file, summary: summaryOf(spec), spec }, null, 2)}\n`,
    );
  else printSummary(file, spec);
}

/** Registers `spec validate` and `spec schema`. */
export function registerSpecCommands(program: Command): void {
  const spec = program
    .command("spec")
    .summary("validate a fleet spec; print its JSON Schema")
    .description("Check fleet spec files and print the JSON Schema editors use to check them.")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  edgeward spec validate examples/industrial-iot.yaml\n" +
        "  edgeward spec schema > fleet.schema.json",
    );

  spec
    .command("validate")
    .argument("<file>", "fleet spec YAML file")
    .option("--json", "print the result, the issues or the whole spec with defaults, as JSON")
    .summary("check a fleet spec file and summarise it")
    .description(
      "Check a fleet spec file: its YAML, every field, and the references between fields " +
        "(failover plans naming nodes, access rules naming roles, ...). Prints a summary of " +
        "its nodes, services and backup policies. On a bad file, prints one line per problem " +
        "(file:line:column: field: what was expected, what was found) and exits with code 1.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  edgeward spec validate examples/industrial-iot.yaml\n" +
        "  edgeward spec validate fleet.yaml --json | jq '.spec.nodes[].id'",
    )
    .action(validate);

  spec
    .command("schema")
    .summary("print the JSON Schema of fleet spec files")
    .description(
      "Print the JSON Schema (draft-07) of fleet spec files, generated from the definitions " +
        "the parser itself uses. Editors use it to complete and check fields as you type.",
    )
    .addHelpText(
      "after",
      "\nWith the YAML language server (VS Code and others), start a spec with:\n" +
        "  # yaml-language-server: $schema=<path or URL of the schema>\n" +
        "\nExample:\n  edgeward spec schema > fleet.schema.json",
    )
    .action(() => {
      process.stdout.write(`${JSON.stringify(fleetSpecJsonSchema(), null, 2)}\n`);
    });
}
