// Renders nodes as the table `edgeward status` and `edgeward up` show.

import type { NodeView } from "../api/contract.ts";

const statusColours: Record<string, string> = {
  HEALTHY: "\u001b[32m",
  DEGRADED: "\u001b[33m",
  FAILED: "\u001b[31m",
  OFFLINE: "\u001b[90m",
};
const reset = "\u001b[0m";

const percent = (fraction: number | undefined) =>
  fraction === undefined ? "-" : `${(fraction * 100).toFixed(0)}%`;

function ageText(ageMs: number | null): string {
  if (ageMs === null) return "-";
  if (ageMs < 10_000) return `${Math.round(ageMs)}ms`;
  if (ageMs < 600_000) return `${(ageMs / 1_000).toFixed(0)}s`;
  return `${(ageMs / 60_000).toFixed(0)}m`;
}

export function renderStatusTable(nodes: readonly NodeView[], colour: boolean): string {
  const header = ["NODE", "STATUS", "ZONE", "TIER", "HEARTBEAT AGE", "CPU", "MEMORY", "STORAGE"];
  const rows = nodes.map((node) => [
    node.id,
    node.status,
    node.zone ?? "-",
    node.tier ?? "-",
    ageText(node.heartbeatAgeMs),
    percent(node.metrics?.cpu.fraction),
    percent(node.metrics?.memory.fraction),
    percent(node.metrics?.storage.fraction),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => {
        const padded = cell.padEnd(widths[column] ?? 0);
        return colour && column === 1 ? `${statusColours[cell] ?? ""}${padded}${reset}` : padded;
      })
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** One-line summary: how many nodes are in each status. */
export function summarise(nodes: readonly NodeView[]): string {
  const counts = new Map<string, number>();
  for (const node of nodes) counts.set(node.status, (counts.get(node.status) ?? 0) + 1);
  return (
    [...counts.entries()].map(([status, count]) => `${count} ${status}`).join(", ") || "no nodes"
  );
}
