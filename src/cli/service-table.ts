// Renders services, failovers and drills the way `edgeward services`, `failovers`, `failover
// --wait`, `drill` and `drills` print them. Pure: data in, text out.

import type { DrillLeg, DrillResult } from "../api/contract.ts";
import type { RouteEntry } from "../api/service-messages.ts";
import type {
  FailoverRecord,
  StepRecord,
  TriggerOutcome,
} from "../core/failover/failover-protocol.ts";
import type { ServiceView } from "../api/contract.ts";

const green = "\u001b[32m";
const yellow = "\u001b[33m";
const red = "\u001b[31m";
const reset = "\u001b[0m";

const statusColours: Record<string, string> = {
  serving: green,
  "failing-over": yellow,
  unplaced: red,
  completed: green,
  initiated: yellow,
  failed: red,
  error: red,
  PASS: green,
  FAIL: red,
};

/** Cells longer than this are cut with an ellipsis, so one long error cannot wreck a table. */
export const tableCellCharactersMax = 120;

/**
 * Lays out rows under a header in aligned columns. With `colour`, the cells of
 * `colourColumn` are coloured by their text (statuses).
 */
export function renderColumns(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  colour = false,
  colourColumn = -1,
): string {
  const clipped = rows.map((row) => row.map(clip));
  const widths = header.map((title, column) =>
    Math.max(title.length, ...clipped.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => {
        const padded = cell.padEnd(widths[column] ?? 0);
        const tint = statusColours[cell];
        return colour && column === colourColumn && tint !== undefined
          ? `${tint}${padded}${reset}`
          : padded;
      })
      .join("  ")
      .trimEnd();
  return [line(header), ...clipped.map(line)].join("\n");
}

function clip(text: string): string {
  return text.length <= tableCellCharactersMax
    ? text
    : `${text.slice(0, tableCellCharactersMax - 1)}…`;
}

/** 850ms, 2.4s, 95s, 3m05s, 2h10m; "-" for unknown. */
export function formatDurationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "-";
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1_000).toFixed(1)}s`;
  if (ms < 120_000) return `${Math.round(ms / 1_000)}s`;
  const totalSeconds = Math.round(ms / 1_000);
  if (totalSeconds < 7_200) {
    const minutes = Math.floor(totalSeconds / 60);
    return `${minutes}m${String(totalSeconds % 60).padStart(2, "0")}s`;
  }
  const totalMinutes = Math.round(ms / 60_000);
  return `${Math.floor(totalMinutes / 60)}h${String(totalMinutes % 60).padStart(2, "0")}m`;
}

/** Where clients connect: `host:port` of the first proxy, and how many more there are. */
export function formatProxies(proxies: ServiceView["proxies"]): string {
  const [first, ...others] = proxies;
  if (first === undefined) return "-";
  const address = `${first.host}:${first.port}`;
  return others.length === 0 ? address : `${address} (+${others.length} more)`;
}

const instanceStateOrder = ["running", "starting", "unhealthy", "restarting", "failed", "stopped"];

/** Instances by state, e.g. `1 running, 2 stopped`; "-" when no agent reports one. */
export function formatInstances(instances: ServiceView["instances"]): string {
  if (instances.length === 0) return "-";
  const counts = new Map<string, number>();
  for (const instance of instances)
    counts.set(instance.state, (counts.get(instance.state) ?? 0) + 1);
  const rank = (state: string) => {
    const index = instanceStateOrder.indexOf(state);
    return index === -1 ? instanceStateOrder.length : index;
  };
  return [...counts.entries()]
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([state, count]) => `${count} ${state}`)
    .join(", ");
}

export function renderServiceTable(services: readonly ServiceView[], colour: boolean): string {
  const header = ["NAME", "NODE", "GENERATION", "STATUS", "ENDPOINT", "PROXY", "INSTANCES"];
  const rows = services.map((service) => [
    service.name,
    service.node ?? "-",
    service.node === null && service.generation === 0 ? "-" : String(service.generation),
    service.status,
    service.endpoint ?? "-",
    formatProxies(service.proxies),
    formatInstances(service.instances),
  ]);
  return renderColumns(header, rows, colour, 3);
}

/** One-line summary: how many services are in each status. */
export function summariseServices(services: readonly ServiceView[]): string {
  const counts = new Map<string, number>();
  for (const service of services) counts.set(service.status, (counts.get(service.status) ?? 0) + 1);
  return (
    [...counts.entries()].map(([status, count]) => `${count} ${status}`).join(", ") ||
    "no services (the fleet spec lists none)"
  );
}

export function formatRoute(name: string, route: RouteEntry): string {
  return `${name} -> ${route.endpoint} on ${route.nodeId} (generation ${route.generation})`;
}

function formatStep(step: StepRecord): string {
  return `${step.name} ${formatDurationMs(step.ms)}${step.ok ? "" : " FAILED"}`;
}

/**
 * The steps of a failover in order, e.g. `prepare_target 3ms, sync_data 40ms, ...`. When the
 * attempts ran on more than one node, each node's run is prefixed with the node and separated by
 * ` | `, so a failed location and the next one are told apart.
 */
export function formatSteps(steps: readonly StepRecord[]): string {
  if (steps.length === 0) return "-";
  const nodes = new Set(steps.map((step) => step.node));
  if (nodes.size <= 1) return steps.map(formatStep).join(", ");
  const groups: { node: string; steps: StepRecord[] }[] = [];
  for (const step of steps) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last.node === step.node) last.steps.push(step);
    else groups.push({ node: step.node, steps: [step] });
  }
  return groups
    .map((group) => `${group.node}: ${group.steps.map(formatStep).join(", ")}`)
    .join(" | ");
}

const fromTo = (from: string | null, to: string | null) => `${from ?? "(none)"} -> ${to ?? "?"}`;

export function renderFailoverTable(records: readonly FailoverRecord[], colour: boolean): string {
  const header = [
    "ID",
    "SERVICE",
    "STATUS",
    "FROM -> TO",
    "REASON",
    "DURATION",
    "DATA AGE",
    "STEPS",
  ];
  const rows = records.map((record) => [
    `#${record.failoverId}`,
    record.service,
    record.status,
    fromTo(record.from, record.to),
    record.via === null ? record.reason : `${record.reason} (${record.via})`,
    formatDurationMs(record.durationMs),
    dataAge(record.dataAgeMs, record.status),
    formatSteps(record.steps),
  ]);
  return renderColumns(header, rows, colour, 2);
}

/** A completed failover with no data age started empty; say so rather than print "-". */
function dataAge(dataAgeMs: number | null, status: string): string {
  if (dataAgeMs !== null) return formatDurationMs(dataAgeMs);
  return status === "completed" ? "empty" : "-";
}

/** One failover in full, every step on its own line with its error: what `failover --wait` prints. */
export function formatFailoverRecord(record: FailoverRecord): string {
  const lines = [
    `failover #${record.failoverId} of ${record.service}: ${record.status}`,
    `  ${fromTo(record.from, record.to)}, reason ${record.reason}${record.via === null ? "" : `, location from ${record.via}`}${record.generation === null ? "" : `, generation ${record.generation}`}`,
    `  took ${formatDurationMs(record.durationMs)}, data age ${dataAge(record.dataAgeMs, record.status)}`,
  ];
  for (const step of record.steps) {
    lines.push(
      `  ${step.ok ? "ok    " : "FAILED"} ${step.name} on ${step.node} ${formatDurationMs(step.ms)}${step.error === null ? "" : `: ${step.error}`}`,
    );
  }
  return lines.join("\n");
}

/** What the server did with a failover request, and what to run next. */
export function formatTriggerOutcome(
  service: string,
  outcome: TriggerOutcome,
  to: string | undefined,
): string {
  const target = to === undefined ? "to the plan's next location" : `to ${to}`;
  switch (outcome.kind) {
    case "started":
      return `failover #${outcome.failoverId} of ${service} started (${target})`;
    case "queued":
      return `failover #${outcome.failoverId} of ${service} queued (${target}); it starts when a running failover ends`;
    case "in-progress":
      return `${service} is already failing over (failover #${outcome.failoverId})`;
    case "ignored":
      return outcome.why === "not-on-node"
        ? `the server ignored the failover: ${service} does not run where the server expected; check \`edgeward services\``
        : `the server ignored the failover: the plan of ${service} does not fail over on this condition`;
    case "refused":
      return `failover #${outcome.failoverId} of ${service} refused: too many failovers are queued; retry when some have ended (\`edgeward failovers\`)`;
  }
}

function formatLeg(leg: DrillLeg, index: number): string {
  const writesLost = leg.writesLost === null ? "unknown" : String(leg.writesLost);
  const failover = leg.failoverId === null ? "" : ` (failover #${leg.failoverId})`;
  return (
    `  leg ${index + 1}: ${fromTo(leg.from, leg.to)}  ${leg.status}${failover}  ` +
    `unavailable ${formatDurationMs(leg.unavailableMs)}, writes lost ${writesLost}, data age ${formatDurationMs(leg.dataAgeMs)}`
  );
}

function oldestDataAgeMs(legs: readonly DrillLeg[]): number | null {
  const ages = legs.flatMap((leg) => (leg.dataAgeMs === null ? [] : [leg.dataAgeMs]));
  return ages.length === 0 ? null : Math.max(...ages);
}

/** A drill's legs and its verdict against the objectives: what `edgeward drill` prints. */
export function formatDrillReport(drill: DrillResult, colour: boolean): string {
  const verdict = drill.passed ? "PASS" : "FAIL";
  const tinted = colour ? `${statusColours[verdict] ?? ""}${verdict}${reset}` : verdict;
  const lines = [
    `drill #${drill.drillId} of ${drill.service} (${drill.trigger}), ${new Date(drill.startedAtMs).toISOString()}, took ${formatDurationMs(drill.endedAtMs - drill.startedAtMs)}`,
    ...drill.legs.map(formatLeg),
    `  RTO ${formatDurationMs(drill.rtoMs)} (objective ${drill.objectives.rtoSeconds}s), ` +
      `writes lost ${drill.rpoWritesLost ?? "unknown"}, data age ${formatDurationMs(oldestDataAgeMs(drill.legs))} (RPO objective ${drill.objectives.rpoSeconds}s)`,
    `${tinted}${drill.problem === null ? "" : `: ${drill.problem}`}`,
  ];
  return lines.join("\n");
}

export function renderDrillTable(drills: readonly DrillResult[], colour: boolean): string {
  const header = [
    "ID",
    "SERVICE",
    "STARTED",
    "TRIGGER",
    "RESULT",
    "RTO",
    "WRITES LOST",
    "OBJECTIVES",
    "LEGS",
    "PROBLEM",
  ];
  const rows = drills.map((drill) => [
    `#${drill.drillId}`,
    drill.service,
    new Date(drill.startedAtMs).toISOString().replace(/\.\d{3}Z$/, "Z"),
    drill.trigger,
    drill.passed ? "PASS" : "FAIL",
    formatDurationMs(drill.rtoMs),
    drill.rpoWritesLost === null ? "-" : String(drill.rpoWritesLost),
    `RTO ${drill.objectives.rtoSeconds}s, RPO ${drill.objectives.rpoSeconds}s`,
    drill.legs.map((leg) => `${fromTo(leg.from, leg.to)} ${leg.status}`).join(", ") || "-",
    drill.problem ?? "-",
  ]);
  return renderColumns(header, rows, colour, 4);
}
