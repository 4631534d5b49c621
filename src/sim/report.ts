// The report of one run. Same seed, same code, same arguments: byte-identical JSON, so it
// holds no wall-clock time, no host name, nothing the run did not compute.

import type { InvariantChecker, Violation } from "./checkers.ts";
import type { Fleet } from "./fleet.ts";
import { distribution, round, type Distribution } from "./statistics.ts";
import { faultKinds, type InjectedBug, type SimulationResult } from "./simulation.ts";

export interface ReplayArguments {
  readonly scenarioPath: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly nodesTarget?: number | undefined;
  readonly injectedBug?: InjectedBug | undefined;
}

export type ObjectiveStatus = "pass" | "fail" | "not-exercised" | "not-simulated";

export interface ObjectiveResult {
  readonly name: string;
  readonly target: string;
  readonly measured: string | null;
  readonly status: ObjectiveStatus;
  readonly note?: string;
}

export interface InvariantResult {
  readonly name: string;
  readonly statement: string;
  readonly checks: number;
  readonly violations: number;
  readonly examples: readonly Violation[];
}

export interface ServiceResult {
  readonly name: string;
  readonly instances: number;
  readonly availability: number;
  readonly downtimeSeconds: number;
  readonly failovers: number;
  readonly failoverSeconds: Distribution;
  readonly longestOutageSeconds: number | null;
}

export interface SimulationReport {
  readonly scenario: string;
  readonly seed: number;
  readonly durationSeconds: number;
  readonly nodes: number;
  readonly serviceInstances: number;
  readonly injectedBug: InjectedBug | null;
  readonly replay: string;
  readonly passed: boolean;
  readonly eventsProcessed: number;
  readonly faultsInjected: Readonly<Record<string, number>>;
  readonly detection: {
    readonly convictions: number;
    readonly latencyMs: Distribution;
    readonly latencyMsByFaultKind: Readonly<Record<string, Distribution>>;
    readonly latencyMsByNodeGroup: Readonly<Record<string, Distribution & { preset: string }>>;
    readonly recoveredBeforeConviction: Readonly<Record<string, number>>;
    readonly convictionsWhilePaused: number;
    readonly falseConvictions: {
      readonly total: number;
      readonly network: number;
      readonly recovering: number;
      readonly unexplained: number;
    };
  };
  readonly failover: {
    readonly timeSeconds: Distribution;
    readonly placements: Readonly<Record<string, number>>;
    readonly staleCopiesFenced: number;
    readonly staleCopySeconds: number;
    /** Failovers the orchestrator ended, by status. */
    readonly records: Readonly<Record<string, number>>;
    /** Each step of the orchestrator that succeeded, in ms, and how often it failed or timed out. */
    readonly stepsMs: Readonly<Record<string, Distribution & { failed: number }>>;
    /** Plan locations the orchestrator skipped as ineligible (down, full, missing a capability). */
    readonly ineligibleLocations: number;
  };
  readonly services: readonly ServiceResult[];
  readonly objectives: readonly ObjectiveResult[];
  readonly invariants: readonly InvariantResult[];
  readonly network: Readonly<Record<string, number>>;
}

/** The exact command that replays a run. */
export function replayCommand(replay: ReplayArguments): string {
  const parts = [
    "edgeward sim",
    `--scenario ${shellQuote(replay.scenarioPath)}`,
    `--seed ${replay.seed}`,
    `--duration ${formatDuration(replay.durationMs)}`,
  ];
  if (replay.nodesTarget !== undefined) parts.push(`--nodes ${replay.nodesTarget}`);
  if (replay.injectedBug !== undefined) parts.push(`--inject-bug ${replay.injectedBug}`);
  parts.push("--json");
  return parts.join(" ");
}

export function formatDuration(durationMs: number): string {
  if (durationMs % 3_600_000 === 0) return `${durationMs / 3_600_000}h`;
  if (durationMs % 60_000 === 0) return `${durationMs / 60_000}m`;
  if (durationMs % 1_000 === 0) return `${durationMs / 1_000}s`;
  return `${durationMs}ms`;
}

function shellQuote(text: string): string {
  return /^[\w./:@-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

export function buildReport(
  fleet: Fleet,
  result: SimulationResult,
  replay: ReplayArguments,
): SimulationReport {
  const measured = result.measurements;
  const durationSeconds = replay.durationMs / 1_000;
  const allDetections = faultKinds.flatMap((kind) => measured.detectionLatencyMsByKind[kind]);
  const allFailoversMs = fleet.services.flatMap(
    (service) => measured.failoverMsByService[service.name] ?? [],
  );
  const failoverSeconds = distribution(
    allFailoversMs.map((ms) => ms / 1_000),
    3,
  );
  const longestOutageMs = Math.max(
    0,
    ...fleet.services.flatMap((service) => measured.outageMsByService[service.name] ?? []),
  );

  const services: ServiceResult[] = fleet.services.map((service) => {
    const instances = measured.instancesByService[service.name] ?? 0;
    const downMs = measured.downMsByService[service.name] ?? 0;
    const failovers = measured.failoverMsByService[service.name] ?? [];
    const outages = measured.outageMsByService[service.name] ?? [];
    return {
      name: service.name,
      instances,
      availability: instances === 0 ? 1 : round(1 - downMs / (instances * replay.durationMs), 6),
      downtimeSeconds: round(downMs / 1_000, 3),
      failovers: failovers.length,
      failoverSeconds: distribution(
        failovers.map((ms) => ms / 1_000),
        3,
      ),
      longestOutageSeconds: outages.length === 0 ? null : round(Math.max(...outages) / 1_000, 3),
    };
  });

  const objectives = fleet.scenario.objectives;
  const objectiveResults: ObjectiveResult[] = [];
  if (objectives.failoverSecondsMax !== undefined) {
    objectiveResults.push({
      name: "failover",
      target: `p99 < ${objectives.failoverSecondsMax} s from fault to serving elsewhere`,
      measured:
        failoverSeconds.p99 === null
          ? null
          : `p99 ${failoverSeconds.p99} s over ${failoverSeconds.count}`,
      status:
        failoverSeconds.p99 === null
          ? "not-exercised"
          : failoverSeconds.p99 < objectives.failoverSecondsMax
            ? "pass"
            : "fail",
    });
  }
  if (objectives.rtoSeconds !== undefined) {
    const longestSeconds = round(longestOutageMs / 1_000, 3);
    objectiveResults.push({
      name: "rto",
      target: `every outage <= ${objectives.rtoSeconds} s`,
      measured: `longest outage ${longestSeconds} s`,
      status: longestSeconds <= objectives.rtoSeconds ? "pass" : "fail",
    });
  }
  const notYet = (name: string, target: string, note: string) =>
    objectiveResults.push({ name, target, measured: null, status: "not-simulated", note });
  if (objectives.rpoSeconds !== undefined) {
    notYet(
      "rpo",
      `<= ${objectives.rpoSeconds} s of data lost`,
      "backups join the simulator with the backup planner",
    );
  }
  if (objectives.dataCopies !== undefined) {
    notYet(
      "copies",
      `${objectives.dataCopies} copies of data`,
      "replication joins the simulator with the replication core",
    );
  }
  if (objectives.backupIntervalSeconds !== undefined) {
    notYet(
      "backup-interval",
      `a backup every ${objectives.backupIntervalSeconds} s`,
      "backups join the simulator with the backup planner",
    );
  }

  const invariants = result.checkers.map(invariantResult);
  const falseConvictions = measured.falseConvictionsByCause;
  return {
    scenario: fleet.scenario.name,
    seed: replay.seed,
    durationSeconds,
    nodes: measured.nodeCount,
    serviceInstances: measured.instanceCount,
    injectedBug: replay.injectedBug ?? null,
    replay: replayCommand(replay),
    passed: invariants.every((invariant) => invariant.violations === 0),
    eventsProcessed: measured.eventsProcessed,
    faultsInjected: sortedRecord(measured.faultsInjected),
    detection: {
      convictions: measured.convictions,
      latencyMs: distribution(allDetections, 0),
      latencyMsByFaultKind: Object.fromEntries(
        faultKinds.map((kind) => [kind, distribution(measured.detectionLatencyMsByKind[kind], 0)]),
      ),
      latencyMsByNodeGroup: Object.fromEntries(
        fleet.groups.map((group) => [
          group.name,
          {
            preset: group.detector.presetName,
            ...distribution(measured.detectionLatencyMsByGroup[group.name] ?? [], 0),
          },
        ]),
      ),
      recoveredBeforeConviction: { ...measured.recoveredBeforeConvictionByKind },
      convictionsWhilePaused: measured.pausedConvictions,
      falseConvictions: {
        total:
          falseConvictions.network + falseConvictions.recovering + falseConvictions.unexplained,
        network: falseConvictions.network,
        recovering: falseConvictions.recovering,
        unexplained: falseConvictions.unexplained,
      },
    },
    failover: {
      timeSeconds: failoverSeconds,
      placements: { ...measured.placements },
      staleCopiesFenced: measured.staleCopies.fenced,
      staleCopySeconds: round(measured.staleCopies.runningMs / 1_000, 3),
      records: { ...measured.failoverRecordsByStatus },
      stepsMs: stepDistributions(measured.stepMsByName, measured.stepFailuresByName),
      ineligibleLocations: measured.ineligibleLocations,
    },
    services,
    objectives: objectiveResults,
    invariants,
    network: { ...measured.network },
  };
}

/** In the order the orchestrator runs them, then hooks by name. */
const stepOrder = [
  "prepare_target",
  "sync_data",
  "start_service",
  "update_routing",
  "verify",
] as const;

function stepDistributions(
  msByName: Readonly<Record<string, readonly number[]>>,
  failuresByName: Readonly<Record<string, number>>,
): Record<string, Distribution & { failed: number }> {
  const names = new Set([...Object.keys(msByName), ...Object.keys(failuresByName)]);
  const ordered = [
    ...stepOrder.filter((name) => names.has(name)),
    ...[...names].filter((name) => !(stepOrder as readonly string[]).includes(name)).sort(),
  ];
  return Object.fromEntries(
    ordered.map((name) => [
      name,
      { ...distribution(msByName[name] ?? [], 1), failed: failuresByName[name] ?? 0 },
    ]),
  );
}

function invariantResult(checker: InvariantChecker): InvariantResult {
  return {
    name: checker.name,
    statement: checker.statement,
    checks: checker.checks,
    violations: checker.violationCount,
    examples: checker.violations.map((violation) => ({
      atMs: round(violation.atMs, 3),
      message: violation.message,
    })),
  };
}

function sortedRecord(record: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(record).sort(([left], [right]) => (left < right ? -1 : 1)),
  );
}

/** The report for people: the same facts, shorter. */
export function renderReport(report: SimulationReport): string {
  const lines: string[] = [];
  const show = (value: Distribution, unit: string) =>
    value.count === 0
      ? "none"
      : `p50 ${value.p50} ${unit}, p99 ${value.p99} ${unit}, max ${value.max} ${unit} (n=${value.count})`;
  lines.push(
    `scenario ${report.scenario}: ${report.nodes} nodes, ${report.serviceInstances} service instances, ${report.durationSeconds} s simulated, seed ${report.seed}`,
  );
  if (report.injectedBug !== null) lines.push(`injected bug: ${report.injectedBug}`);
  const faults = Object.entries(report.faultsInjected).map(([kind, count]) => `${kind} ${count}`);
  lines.push(`faults: ${faults.length === 0 ? "none" : faults.join(", ")}`);
  lines.push("", "detection (fault to FAILED)");
  lines.push(`  all         ${show(report.detection.latencyMs, "ms")}`);
  for (const [group, latency] of Object.entries(report.detection.latencyMsByNodeGroup)) {
    lines.push(`  ${group} (${latency.preset}): ${show(latency, "ms")}`);
  }
  const falseConvictions = report.detection.falseConvictions;
  lines.push(
    `  live nodes convicted: ${falseConvictions.total} (${falseConvictions.network} during network faults, ${falseConvictions.recovering} just back from a fault, ${falseConvictions.unexplained} unexplained)`,
  );
  lines.push(
    "",
    `failover (fault to serving elsewhere): ${show(report.failover.timeSeconds, "s")}`,
  );
  const placements = report.failover.placements;
  lines.push(
    `  placements: ${placements.viaPlan} by plan, ${placements.viaRule} by rule, ${placements.noCandidate} found no location, ${placements.attemptsFailed} attempts failed`,
  );
  const records = Object.entries(report.failover.records).map(
    ([status, count]) => `${count} ${status}`,
  );
  lines.push(`  orchestrator records: ${records.join(", ")}`);
  for (const [name, step] of Object.entries(report.failover.stepsMs)) {
    lines.push(`  ${name.padEnd(15)} ${show(step, "ms")}, ${step.failed} failed`);
  }
  lines.push("", "services");
  for (const service of report.services) {
    lines.push(
      `  ${service.name}: ${service.instances} instances, availability ${(service.availability * 100).toFixed(4)} %, ${service.failovers} failovers`,
    );
  }
  lines.push("", "objectives");
  for (const objective of report.objectives) {
    lines.push(
      `  ${objective.status.padEnd(13)} ${objective.name}: ${objective.target}${objective.measured === null ? "" : ` — ${objective.measured}`}${objective.note === undefined ? "" : ` (${objective.note})`}`,
    );
  }
  lines.push("", "invariants");
  for (const invariant of report.invariants) {
    lines.push(
      `  ${invariant.violations === 0 ? "ok  " : "FAIL"} ${invariant.name}: ${invariant.statement} (${invariant.checks} checks, ${invariant.violations} violations)`,
    );
    for (const example of invariant.examples.slice(0, 3))
      lines.push(`       at ${example.atMs} ms: ${example.message}`);
  }
  return lines.join("\n");
}
