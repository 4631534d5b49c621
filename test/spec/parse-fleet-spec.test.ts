import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FleetSpecError } from "../../src/core/spec/fleet-spec-error.ts";
import { fleetSpecBytesMax, parseFleetSpec } from "../../src/core/spec/parse-fleet-spec.ts";
import { isCronExpression } from "../../src/core/spec/schema-primitives.ts";

const exampleText = readFileSync(
  new URL("../../examples/industrial-iot.yaml", import.meta.url),
  "utf8",
);

/** The example with `from` replaced by `to`; `from` must occur exactly once. */
function exampleWith(from: string, to: string): string {
  const [before, after, ...more] = exampleText.split(from);
  if (before === undefined || after === undefined || more.length > 0)
    throw new Error(`the example must contain ${JSON.stringify(from)} exactly once`);
  return `${before}${to}${after}`;
}

function errorLines(text: string): string[] {
  try {
    parseFleetSpec(text, "fleet.yaml");
  } catch (error) {
    if (error instanceof FleetSpecError) return error.message.split("\n");
    throw error;
  }
  throw new Error("expected the fleet spec to be rejected");
}

describe("parseFleetSpec on the industrial IoT example", () => {
  const spec = parseFleetSpec(exampleText, "examples/industrial-iot.yaml");

  it("has the five nodes of SPEC §14 in their zones", () => {
    expect(spec.nodes.map((node) => [node.id, node.zone])).toEqual([
      ["factory-1-line-a-edge-1", "Line A"],
      ["factory-1-line-a-edge-2", "Line A"],
      ["factory-1-line-b-edge-1", "Line B"],
      ["factory-1-quality-control-edge", "Quality Control"],
      ["factory-1-warehouse-edge", "Warehouse"],
    ]);
  });

  it("has both failover plans as the documents define them", () => {
    const plans = Object.fromEntries(
      spec.services.map((service) => [service.name, service.failover]),
    );
    expect(plans["production_monitoring"]).toMatchObject({
      primary: "factory-1-line-a-edge-1",
      backups: ["factory-1-line-a-edge-2", "factory-1-line-b-edge-1"],
      conditions: ["node_failure", "network_partition"],
      procedures: ["restart_service", "sync_data", "update_routing"],
      testSchedule: "weekly",
    });
    expect(plans["quality_control"]).toMatchObject({
      primary: "factory-1-quality-control-edge",
      backups: ["factory-1-line-a-edge-1", "factory-1-line-b-edge-1"],
      conditions: ["node_failure", "hardware_failure"],
      procedures: [
        "restore_from_backup",
        { hook: "reconfigure_sensors" },
        { hook: "calibrate_equipment" },
      ],
      testSchedule: "monthly",
    });
  });

  it("has both backup policies with the documents' levels, intervals and retentions", () => {
    const levels = Object.fromEntries(
      spec.backup.policies.map((policy) => [
        policy.name,
        policy.levels.map((settings) => [
          settings.level,
          settings.intervalSeconds,
          settings.retentionDays,
        ]),
      ]),
    );
    expect(levels).toEqual({
      production_data: [
        ["EDGE_LOCAL", 300, 7],
        ["EDGE_CLUSTER", 1800, 30],
        ["CLOUD", 3600, 365],
      ],
      config_data: [
        ["EDGE_LOCAL", 3600, 30],
        ["EDGE_CLUSTER", 86400, 90],
        ["CLOUD", 86400, 365],
      ],
    });
    expect(spec.backup.policies.every((policy) => policy.encryptionRequired)).toBe(true);
  });

  it("has the security policies of §7 and the documents' defaults", () => {
    expect(spec.security.encryption.keyRotation).toBe("monthly");
    expect(spec.security.accessControl).toEqual([
      {
        resource: "production_data",
        roles: ["production_manager", "quality_engineer"],
        access: "read_write",
      },
      { resource: "configuration_data", roles: ["system_admin"], access: "read_write" },
    ]);
    expect(spec.security.network.intrusionDetection.suspiciousActivityThreshold).toBe(3);
    expect(spec.security.network.firewall.map((rule) => [rule.action, rule.nodes])).toEqual([
      ["deny", ["factory-1-line-a-edge-1", "factory-1-line-a-edge-2"]],
      ["allow", undefined],
      ["allow", undefined],
      ["allow", undefined],
      ["deny", undefined],
    ]);
    expect(spec.detection).toEqual({ preset: "lan", overrides: {} });
    expect(spec.resources).toEqual({ monitorIntervalSeconds: 60, overQuotaFraction: 0.9 });
    expect(spec.equipmentFailure.actions).toEqual([
      "record_failure",
      "schedule_predictive_maintenance",
      "notify",
    ]);
  });
});

describe("parseFleetSpec on bad files", () => {
  const cases: { name: string; text: string; expected: string }[] = [
    {
      name: "bad enum value",
      text: exampleWith(
        "tier: site\n    capabilities: [data_processing, real_time_analytics]\n    labels: { factory: factory-1, area: line-b }",
        "tier: stret\n    capabilities: [data_processing, real_time_analytics]\n    labels: { factory: factory-1, area: line-b }",
      ),
      expected:
        'fleet.yaml:33:11: nodes[2].tier: expected one of site|street|neighbourhood|district|regional|cloud, got "stret"',
    },
    {
      name: "wrong type",
      text: exampleWith("cpuCores: 8,", 'cpuCores: "eight",'),
      expected:
        'fleet.yaml:42:25: nodes[3].quotas.cpuCores: expected a number, got a string ("eight")',
    },
    {
      name: "unknown field, with a suggestion",
      text: exampleWith(
        "    restart: { attempts: 1 }\n    failover:\n      primary: factory-1-line-a-edge-1",
        "    restart: { atempts: 1 }\n    failover:\n      primary: factory-1-line-a-edge-1",
      ),
      expected:
        'fleet.yaml:57:16: services[0].restart.atempts: expected one of attempts, got unknown field "atempts" (did you mean attempts?)',
    },
    {
      name: "missing required field",
      text: exampleWith("  name: factory-1\n", ""),
      expected:
        "fleet.yaml:8:3: metadata.name: expected a string, got nothing (the field is missing)",
    },
    {
      name: "duplicate node id",
      text: exampleWith("id: factory-1-warehouse-edge", "id: factory-1-line-b-edge-1"),
      expected:
        'fleet.yaml:43:9: nodes[4].id: expected a unique node id, got "factory-1-line-b-edge-1" again (first at index 2)',
    },
    {
      name: "plan naming an unknown node",
      text: exampleWith("primary: factory-1-quality-control-edge", "primary: factory-1-qa-edge"),
      expected:
        'fleet.yaml:74:16: services[1].failover.primary: expected the id of a node listed under nodes, got "factory-1-qa-edge"',
    },
    {
      name: "primary also a backup",
      text: exampleWith(
        "backups: [factory-1-line-a-edge-1, factory-1-line-b-edge-1]",
        "backups: [factory-1-line-a-edge-1, factory-1-quality-control-edge]",
      ),
      expected:
        'fleet.yaml:75:42: services[1].failover.backups[1]: expected a node other than the primary, got "factory-1-quality-control-edge"',
    },
    {
      name: "access rule naming an unknown role",
      text: exampleWith("roles: [system_admin]", "roles: [sysadmin]"),
      expected:
        'fleet.yaml:144:15: security.accessControl[1].roles[0]: expected a role listed under security.roles, got "sysadmin"',
    },
    {
      name: "firewall rule for an unknown node",
      text: exampleWith(
        "nodes: [factory-1-line-a-edge-1, factory-1-line-a-edge-2]",
        "nodes: [factory-1-line-a-edge-1, factory-1-line-c-edge-2]",
      ),
      expected:
        'fleet.yaml:151:42: security.network.firewall[0].nodes[1]: expected the id of a node listed under nodes, got "factory-1-line-c-edge-2"',
    },
    {
      name: "firewall rule for an unknown service",
      text: exampleWith("to: { service: quality_control }", "to: { service: quality }"),
      expected:
        'fleet.yaml:150:24: security.network.firewall[0].to.service: expected the name of a service listed under services, got "quality"',
    },
    {
      name: "firewall rule asking a service's proxy for a node",
      text: exampleWith(
        "from: { cidr: 192.168.1.0/24 }\n        to:",
        "from: { cidr: 192.168.1.0/24, node: factory-1-warehouse-edge }\n        to:",
      ),
      expected:
        'fleet.yaml:149:15: security.network.firewall[0].from: expected no node or role on a rule for a service: its proxy carries unsigned TCP, so it can only match by cidr, got node "factory-1-warehouse-edge"',
    },
    {
      name: "firewall rule for a user role",
      text: exampleWith(
        "cidr: 192.168.1.0/24 }\n        description",
        "role: system_admin }\n        description",
      ),
      expected:
        'fleet.yaml:160:23: security.network.firewall[3].from.role: expected role node: agents\' listeners only see node credentials, got "system_admin"',
    },
    {
      name: "firewall rule with an impossible CIDR block",
      text: exampleWith('cidr: "::1/128"', 'cidr: "1::2::3/64"'),
      expected:
        'fleet.yaml:157:23: security.network.firewall[2].from.cidr: expected a CIDR block such as 10.0.0.0/8 or fd00::/8, got "1::2::3/64"',
    },
    {
      name: "duplicate backup level",
      text: exampleWith(
        "{ level: CLOUD, intervalSeconds: 3600, retentionDays: 365 }",
        "{ level: EDGE_LOCAL, intervalSeconds: 3600, retentionDays: 365 }",
      ),
      expected:
        'fleet.yaml:110:20: backup.policies[0].levels[2].level: expected a unique level, got "EDGE_LOCAL" again (first at index 0)',
    },
    {
      name: "bad discriminator",
      text: exampleWith(
        "configuration: { type: configuration }",
        "configuration: { type: config }",
      ),
      expected:
        'fleet.yaml:115:32: backup.policies[1].sources.configuration.type: expected one of service_data|configuration|logs|metrics|sqlite, got "config"',
    },
    {
      name: "typo inside a hook",
      text: exampleWith(
        "- hook: calibrate_equipment\n          command:",
        "- hook: calibrate_equipment\n          comand:",
      ),
      expected:
        "fleet.yaml:81:11: services[1].failover.procedures[2].command: expected a list, got nothing (the field is missing)",
    },
    {
      name: "bad cron schedule",
      text: exampleWith("testSchedule: monthly", 'testSchedule: "0 25 * * *"'),
      expected:
        "fleet.yaml:83:21: services[1].failover.testSchedule: expected weekly, monthly or a 5-field cron expression such as '0 3 * * 1', got \"0 25 * * *\"",
    },
    {
      name: "erasure coding wider than the fleet",
      text: exampleWith("edgeCluster: { dataShards: 2, parityShards: 2 }", "edgeCluster: {}"),
      expected:
        "fleet.yaml:90:18: backup.tiers.edgeCluster: expected dataShards + parityShards (6) to fit on distinct peer nodes (4 besides the source), got 4 + 2",
    },
    {
      name: "duplicate list item",
      text: exampleWith(
        "conditions: [node_failure, hardware_failure]",
        "conditions: [node_failure, node_failure]",
      ),
      expected:
        'fleet.yaml:76:34: services[1].failover.conditions[1]: expected each condition once, got "node_failure" again (first at index 0)',
    },
    {
      name: "procedure that needs a data directory the service lacks",
      text: exampleWith("    dataDir: production_monitoring\n", ""),
      expected:
        'fleet.yaml:61:37: services[0].failover.procedures[1]: expected the service to have a dataDir for this procedure to fill, got "sync_data"',
    },
    {
      name: "health check timeout longer than its interval",
      text: exampleWith(
        "timeoutMs: 500, threshold: 3 }\n    dataDir: quality_control",
        "timeoutMs: 5000, threshold: 3 }\n    dataDir: quality_control",
      ),
      expected:
        "fleet.yaml:68:76: services[1].healthCheck.timeoutMs: expected at most intervalMs (1000), got 5000",
    },
    {
      name: "YAML syntax error",
      text: exampleWith("kind: Fleet", "kind: [Fleet"),
      expected:
        "fleet.yaml:7:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    },
    {
      name: "duplicate YAML key",
      text: exampleWith("kind: Fleet\n", "kind: Fleet\nkind: Fleet\n"),
      expected: "fleet.yaml:7:1: invalid YAML: Map keys must be unique",
    },
    {
      name: "empty file",
      text: "# nothing here\n",
      expected:
        "fleet.yaml:1:1: expected a fleet spec (apiVersion: edgeward/v1, kind: Fleet, …), got an empty file",
    },
    {
      name: "aliases that expand past the cap",
      text: `a: &long "${"x".repeat(20_000)}"\nb: [${Array.from({ length: 1_000 }, () => "*long").join(", ")}]\n`,
      expected:
        "fleet.yaml:1:1: expected a fleet spec that expands to at most 16777216 values and characters once YAML aliases are followed, got more",
    },
    {
      name: "oversized input",
      text: `# ${"x".repeat(fleetSpecBytesMax)}\n`,
      expected: `fleet.yaml:1:1: expected a fleet spec of at most 1048576 bytes (1 MiB), got ${fleetSpecBytesMax + 3} bytes`,
    },
  ];

  it.each(cases)("$name", ({ text, expected }) => {
    expect(errorLines(text)[0]).toBe(expected);
  });

  it("lists every problem, one line each", () => {
    const text = exampleWith(
      "zone: Warehouse\n    tier: site",
      "zone: Warehouse\n    tier: sight\n    colour: blue",
    );
    expect(errorLines(text)).toEqual([
      'fleet.yaml:45:11: nodes[4].tier: expected one of site|street|neighbourhood|district|regional|cloud, got "sight"',
      'fleet.yaml:46:5: nodes[4].colour: expected one of id|zone|tier|capabilities|labels|quotas, got unknown field "colour"',
    ]);
  });

  it("carries the issues as data", () => {
    try {
      parseFleetSpec(exampleWith("networkMbps: 100 }", "networkMbps: -1 }"), "fleet.yaml");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(FleetSpecError);
      expect((error as FleetSpecError).issues).toEqual([
        {
          file: "fleet.yaml",
          line: 48,
          column: 74,
          path: "nodes[4].quotas.networkMbps",
          message: "expected more than 0, got -1",
        },
      ]);
    }
  });
});

describe("parseFleetSpec under random mutation", () => {
  const lines = exampleText.split("\n");
  const fragments = [
    "",
    " ",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a",
    "*a",
    "!!str",
    "'",
    '"',
    "#",
    "---",
    "0",
    "-1",
    "1e309",
    "null",
    "true",
    "~",
    "\t",
    "é",
    "id: x",
    "nodes: []",
    "<<: *a",
    "? a",
  ];

  it("never throws anything but FleetSpecError", () => {
    const mutation = fc.record({
      lineIndex: fc.nat({ max: lines.length - 1 }),
      column: fc.nat({ max: 80 }),
      deleteCharacters: fc.nat({ max: 12 }),
      insert: fc.oneof(fc.constantFrom(...fragments), fc.string({ maxLength: 8 })),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const mutated = [...lines];
        for (const { lineIndex, column, deleteCharacters, insert } of mutations) {
          const line = mutated[lineIndex] ?? "";
          mutated[lineIndex] =
            line.slice(0, column) + insert + line.slice(column + deleteCharacters);
        }
        try {
          parseFleetSpec(mutated.join("\n"), "fleet.yaml");
        } catch (error) {
          if (!(error instanceof FleetSpecError)) throw error;
          for (const issue of error.issues) {
            expect(issue.line).toBeGreaterThanOrEqual(1);
            expect(issue.column).toBeGreaterThanOrEqual(1);
            expect(issue.message).toMatch(/expected|invalid YAML/);
          }
        }
      }),
      { seed: 20_261_122, numRuns: 300 },
    );
  });
});

describe("isCronExpression", () => {
  it.each([
    ["0 3 * * 1", true],
    ["*/15 * * * *", true],
    ["0,30 8-18 1 1-12/2 0-7", true],
    ["0 3 * *", false],
    ["60 * * * *", false],
    ["0 0 0 * *", false],
    ["5-1 * * * *", false],
    ["*/0 * * * *", false],
    ["MON * * * *", false],
  ])("%s → %s", (expression, valid) => {
    expect(isCronExpression(expression)).toBe(valid);
  });
});
