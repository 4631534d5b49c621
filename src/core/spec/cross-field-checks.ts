// Checks that span fields: names that must be unique, and references that must point at
// something defined elsewhere in the same file. Each problem is reported at the exact field,
// so the parser can name its line.

import type { z } from "zod";
import { detectorPresets } from "../membership/detector-options.ts";
import { builtinRoles } from "../security/access-policy.ts";
import type { FleetSpec } from "./fleet-spec-schema.ts";
import type { FirewallRuleSpec } from "./security-schema.ts";
import type { BuiltInProcedure, FailoverProcedure } from "./service-schema.ts";

type Context = z.core.$RefinementCtx<FleetSpec>;
type Path = (string | number)[];

/** Procedures that put data into the service's data directory, so it must have one. */
const dataProcedures: readonly BuiltInProcedure[] = ["sync_data", "restore_from_backup"];

const secondsPerDay = 86_400;
const unknownServiceExpectation = "expected the name of a service listed under services";

/**
 * Adds an issue whose message is what was expected; `found` replaces the value found at
 * `path` when that value alone would not explain the problem.
 */
function report(context: Context, path: Path, expected: string, found?: string): void {
  context.addIssue({
    code: "custom",
    path,
    message: expected,
    ...(found === undefined ? {} : { params: { found } }),
  });
}

function checkUnique(
  context: Context,
  names: readonly string[],
  pathOf: (index: number) => Path,
  what: string,
): void {
  const firstIndexByName = new Map<string, number>();
  names.forEach((name, index) => {
    const firstIndex = firstIndexByName.get(name);
    if (firstIndex === undefined) firstIndexByName.set(name, index);
    else
      report(
        context,
        pathOf(index),
        `expected a unique ${what}`,
        `${JSON.stringify(name)} again (first at index ${firstIndex})`,
      );
  });
}

function isBuiltIn(procedure: FailoverProcedure): procedure is BuiltInProcedure {
  return typeof procedure === "string";
}

function quoted(names: Iterable<string>): string {
  return [...names].map((name) => JSON.stringify(name)).join(", ");
}

/** Adds an issue to `context` for every cross-field problem in `spec`. */
export function addCrossFieldIssues(spec: FleetSpec, context: Context): void {
  const nodesById = new Map(spec.nodes.map((node) => [node.id, node]));
  const servicesByName = new Map(spec.services.map((service) => [service.name, service]));
  const roleNames = new Set(spec.security.roles.map((role) => role.name));

  checkUnique(
    context,
    spec.nodes.map((node) => node.id),
    (index) => ["nodes", index, "id"],
    "node id",
  );
  checkUnique(
    context,
    spec.services.map((service) => service.name),
    (index) => ["services", index, "name"],
    "service name",
  );
  checkUnique(
    context,
    spec.backup.policies.map((policy) => policy.name),
    (index) => ["backup", "policies", index, "name"],
    "backup policy name",
  );
  checkUnique(
    context,
    spec.security.roles.map((role) => role.name),
    (index) => ["security", "roles", index, "name"],
    "role name",
  );

  const checkNode = (path: Path, nodeId: string): void => {
    if (!nodesById.has(nodeId))
      report(context, path, "expected the id of a node listed under nodes");
  };
  const checkService = (path: Path, serviceName: string): void => {
    if (!servicesByName.has(serviceName)) report(context, path, unknownServiceExpectation);
  };
  const checkRole = (path: Path, roleName: string): void => {
    if (!roleNames.has(roleName))
      report(context, path, "expected a role listed under security.roles");
  };

  checkDetection(spec, context);
  spec.services.forEach((service, serviceIndex) => {
    const servicePath: Path = ["services", serviceIndex];
    service.requiredCapabilities.forEach((capability, index) => {
      if (!spec.nodes.some((node) => node.capabilities.includes(capability)))
        report(
          context,
          [...servicePath, "requiredCapabilities", index],
          "expected a capability that some node lists",
        );
    });
    const healthCheck = service.healthCheck;
    if (healthCheck !== undefined && healthCheck.timeoutMs > healthCheck.intervalMs)
      report(
        context,
        [...servicePath, "healthCheck", "timeoutMs"],
        `expected at most intervalMs (${healthCheck.intervalMs})`,
      );

    const plan = service.failover;
    if (plan === undefined) return;
    const planPath: Path = [...servicePath, "failover"];
    const locations: [Path, string][] = [
      [[...planPath, "primary"], plan.primary],
      ...plan.backups.map((nodeId, index): [Path, string] => [
        [...planPath, "backups", index],
        nodeId,
      ]),
    ];
    for (const [path, nodeId] of locations) {
      const node = nodesById.get(nodeId);
      if (node === undefined) {
        checkNode(path, nodeId);
        continue;
      }
      const missing = service.requiredCapabilities.filter(
        (capability) => !node.capabilities.includes(capability),
      );
      if (missing.length > 0)
        report(
          context,
          path,
          `expected a node with the service's required capabilities (${missing.join(", ")} missing)`,
        );
    }
    plan.backups.forEach((nodeId, index) => {
      if (nodeId === plan.primary)
        report(context, [...planPath, "backups", index], "expected a node other than the primary");
    });
    plan.procedures.forEach((procedure, index) => {
      if (
        isBuiltIn(procedure) &&
        dataProcedures.includes(procedure) &&
        service.dataDir === undefined
      )
        report(
          context,
          [...planPath, "procedures", index],
          "expected the service to have a dataDir for this procedure to fill",
        );
    });
    checkUnique(
      context,
      plan.procedures.map((procedure) => (isBuiltIn(procedure) ? procedure : procedure.hook)),
      (index) => [...planPath, "procedures", index],
      "procedure",
    );
  });

  checkBackup(spec, context);

  const security = spec.security;
  security.encryption.nodes?.forEach((nodeId, index) =>
    checkNode(["security", "encryption", "nodes", index], nodeId),
  );
  security.accessControl.forEach((rule, ruleIndex) =>
    rule.roles.forEach((roleName, index) =>
      checkRole(["security", "accessControl", ruleIndex, "roles", index], roleName),
    ),
  );
  security.network.firewall.forEach((rule, index) =>
    checkFirewallRule(rule, ["security", "network", "firewall", index], context, {
      checkNode,
      checkService,
    }),
  );
}

/**
 * A firewall rule names known nodes and services, and asks only what its listener can tell:
 * a service's proxy carries plain TCP, so no node or role is ever known there, and the only
 * credentials that reach an agent are nodes' (role `node`); user roles never do.
 */
function checkFirewallRule(
  rule: FirewallRuleSpec,
  rulePath: Path,
  context: Context,
  checks: {
    checkNode: (path: Path, nodeId: string) => void;
    checkService: (path: Path, serviceName: string) => void;
  },
): void {
  if (rule.from.node !== undefined) checks.checkNode([...rulePath, "from", "node"], rule.from.node);
  if (rule.from.role !== undefined && rule.from.role !== builtinRoles.node)
    report(
      context,
      [...rulePath, "from", "role"],
      `expected role ${builtinRoles.node}: agents' listeners only see node credentials`,
    );
  if (rule.to.service !== undefined) {
    checks.checkService([...rulePath, "to", "service"], rule.to.service);
    if (rule.from.node !== undefined || rule.from.role !== undefined)
      report(
        context,
        [...rulePath, "from"],
        "expected no node or role on a rule for a service: its proxy carries unsigned TCP, so it can only match by cidr",
        rule.from.node === undefined
          ? `role ${JSON.stringify(rule.from.role)}`
          : `node ${JSON.stringify(rule.from.node)}`,
      );
  }
  rule.nodes?.forEach((nodeId, index) => checks.checkNode([...rulePath, "nodes", index], nodeId));
}

function checkDetection(spec: FleetSpec, context: Context): void {
  const preset = detectorPresets[spec.detection.preset];
  const overrides = spec.detection.overrides;
  const suspectPhi = overrides.suspectPhi ?? preset.suspectPhi;
  const convictPhi = overrides.convictPhi ?? preset.convictPhi;
  if (convictPhi > suspectPhi) return;
  if (overrides.convictPhi !== undefined)
    report(
      context,
      ["detection", "overrides", "convictPhi"],
      `expected a value above suspectPhi (${suspectPhi})`,
    );
  else
    report(
      context,
      ["detection", "overrides", "suspectPhi"],
      `expected a value below the ${spec.detection.preset} preset's convictPhi (${convictPhi})`,
    );
}

function checkBackup(spec: FleetSpec, context: Context): void {
  const { tiers, policies } = spec.backup;
  const servicesByName = new Map(spec.services.map((service) => [service.name, service]));
  let usesCluster = false;

  policies.forEach((policy, policyIndex) => {
    const policyPath: Path = ["backup", "policies", policyIndex];
    checkUnique(
      context,
      policy.levels.map((settings) => settings.level),
      (index) => [...policyPath, "levels", index, "level"],
      "level",
    );
    policy.levels.forEach((settings, index) => {
      const levelPath: Path = [...policyPath, "levels", index];
      if (settings.retentionDays * secondsPerDay < settings.intervalSeconds)
        report(
          context,
          [...levelPath, "retentionDays"],
          `expected a retention at least as long as intervalSeconds (${settings.intervalSeconds} s)`,
        );
      if (settings.level === "CLOUD" && tiers.cloud === undefined)
        report(context, [...levelPath, "level"], "expected backup.tiers.cloud to be set for CLOUD");
      if (settings.level === "EDGE_CLUSTER") usesCluster = true;
    });

    const missingTypes = policy.dataTypes.filter(
      (dataType) => !Object.hasOwn(policy.sources, dataType),
    );
    if (missingTypes.length > 0)
      report(
        context,
        [...policyPath, "sources"],
        "expected a source for every data type",
        `no source for ${quoted(missingTypes)}`,
      );
    for (const [dataType, source] of Object.entries(policy.sources)) {
      const sourcePath: Path = [...policyPath, "sources", dataType];
      if (!policy.dataTypes.includes(dataType))
        report(
          context,
          sourcePath,
          "expected a source only for data types listed in dataTypes",
          JSON.stringify(dataType),
        );
      const serviceName =
        source.type === "service_data" || source.type === "logs" ? source.service : undefined;
      if (serviceName === undefined) continue;
      const service = servicesByName.get(serviceName);
      if (service === undefined)
        report(context, [...sourcePath, "service"], unknownServiceExpectation);
      else if (source.type === "service_data" && service.dataDir === undefined)
        report(context, [...sourcePath, "service"], "expected a service that has a dataDir");
    }
  });

  const shards = tiers.edgeCluster.dataShards + tiers.edgeCluster.parityShards;
  const peers = spec.nodes.length - 1;
  if (usesCluster && shards > peers)
    report(
      context,
      ["backup", "tiers", "edgeCluster"],
      `expected dataShards + parityShards (${shards}) to fit on distinct peer nodes (${peers} besides the source)`,
      `${tiers.edgeCluster.dataShards} + ${tiers.edgeCluster.parityShards}`,
    );
}
