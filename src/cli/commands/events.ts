import type { Command } from "commander";
import type { FleetEvent } from "../../api/contract.ts";
import { ApiClient, resolveServerUrl, type ServerSelection } from "../api-client.ts";
import { parseNonNegativeInteger, parsePositiveInteger } from "../options.ts";

interface EventsCommandOptions extends ServerSelection {
  follow?: boolean;
  json?: boolean;
  after: number;
  limit: number;
}

/** One human-readable line per event. */
export function formatEvent(event: FleetEvent): string {
  const at = new Date(event.atMs).toISOString();
  switch (event.type) {
    case "node.status":
      return `${at}  #${event.id}  ${event.node}  ${event.from ?? "(new)"} -> ${event.to}  (${event.reason})`;
    case "node.removed":
      return `${at}  #${event.id}  ${event.node}  removed`;
    case "service.failover": {
      const took = event.durationMs === null ? "" : ` in ${event.durationMs} ms`;
      return `${at}  #${event.id}  ${event.service}  failover #${event.failoverId} ${event.status}  ${event.from ?? "(none)"} -> ${event.to ?? "?"}${took}  (${event.reason})`;
    }
    case "service.alert":
      return `${at}  #${event.id}  ${event.service}  ${event.severity.toUpperCase()}  ${event.message}`;
    case "service.instance":
      return `${at}  #${event.id}  ${event.service}  generation ${event.generation} on ${event.node} ${event.state}${event.error === null ? "" : `  (${event.error})`}`;
    case "service.drill":
      return `${at}  #${event.id}  ${event.service}  drill #${event.drillId} ${event.passed ? "passed" : "FAILED"}  RTO ${event.rtoMs ?? "?"} ms, writes lost ${event.rpoWritesLost ?? "?"}${event.problem === null ? "" : `  (${event.problem})`}`;
    case "security.event":
      return `${at}  #${event.id}  SECURITY ${event.severity.toUpperCase()}  ${event.activity} from ${event.source}  (${event.details})`;
    case "firewall.denied":
      return `${at}  #${event.id}  FIREWALL ${event.severity.toUpperCase()}  ${event.node} denied ${event.source}${event.count > 1 ? ` ${event.count} times` : ""}  (${event.details})`;
    case "backup.completed":
      return `${at}  #${event.id}  backup ${event.policy} ${event.level} on ${event.node}  snapshot ${event.snapshotId.slice(0, 8)}, ${event.sizeBytes} bytes, ${event.addedBytes} new`;
    case "backup.failed":
      return `${at}  #${event.id}  backup ${event.policy} ${event.level} on ${event.node} FAILED  (${event.reason})`;
    case "backup.expired":
      return `${at}  #${event.id}  backup ${event.level} on ${event.node}  ${event.snapshotIds.length} snapshots expired`;
  }
}

export function registerEventsCommand(program: Command): void {
  program
    .command("events")
    .summary("print fleet events")
    .description(
      "Prints the fleet's events, oldest first: node status transitions (with the reason the " +
        "detector gave), removals, service failovers (initiated and ended, with their steps), " +
        "alerts, instance state changes and drills. With --json, one JSON object per line. " +
        "With --follow it keeps printing new events as they happen until Ctrl-C.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  edgeward events --follow\n  edgeward events --json --after 120\n\nA --json line:\n" +
        '  {"type":"node.status","node":"edge-1","from":"DEGRADED","to":"FAILED","atMs":1795376624686,"reason":"probe-refused","id":7}',
    )
    .option(
      "--dir <dir>",
      "find the server of the local fleet in this directory (default .edgeward)",
    )
    .option("--server <url>", "the server's URL (default: the local fleet, then $EDGEWARD_SERVER)")
    .option("--follow", "keep printing new events")
    .option("--json", "one JSON object per line")
    .option("--after <id>", "only events after this id", parseNonNegativeInteger, 0)
    .option(
      "--limit <n>",
      "at most this many past events (without --follow)",
      parsePositiveInteger,
      1_000,
    )
    .action(async (options: EventsCommandOptions) => {
      const client = new ApiClient(resolveServerUrl(options));
      const print = (event: FleetEvent) =>
        process.stdout.write(
          `${options.json === true ? JSON.stringify(event) : formatEvent(event)}\n`,
        );
      if (options.follow !== true) {
        let afterId = options.after;
        let remaining = options.limit;
        while (remaining > 0) {
          const page = await client.listEvents(afterId, Math.min(remaining, 1_000));
          page.events.forEach(print);
          if (page.events.length === 0) break;
          remaining -= page.events.length;
          afterId = page.lastId;
        }
        return;
      }
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      process.once("SIGTERM", () => controller.abort());
      try {
        await client.followEvents(options.after, print, controller.signal);
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      }
    });
}
