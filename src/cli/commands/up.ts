import type { Command } from "commander";
import type { FleetEvent, NodeView } from "../../api/contract.ts";
import { loadFleetSpecFile } from "../../runtime/fleet-spec-file.ts";
import type { ApiClient } from "../api-client.ts";
import { defaultFleetDir } from "../local-fleet/fleet-file.ts";
import { downFleet, fleetClient, upFleet } from "../local-fleet/local-fleet.ts";
import { parseDurationMs } from "../options.ts";
import { renderStatusTable, summarise } from "../status-table.ts";
import { formatEvent } from "./events.ts";

interface UpCommandOptions {
  dir: string;
  detach?: boolean;
  timeout: number;
}

/** The foreground view refreshes this often. */
const refreshIntervalMs = 500;
/** Events kept on screen under the table. */
const recentEventsShown = 8;

export function registerUpCommands(program: Command): void {
  program
    .command("up")
    .summary("start a whole local fleet from a spec")
    .description(
      "Starts one server and one agent process per node of the fleet spec on loopback (free " +
        "ports), each in its own process group, waits until every node is HEALTHY and prints the " +
        "API URL. The processes are listed in <dir>/fleet.json; logs go to <dir>/logs/. " +
        "In the foreground it shows a live status table; Ctrl-C stops the whole fleet. " +
        "With --detach it returns once the fleet is healthy; stop it with `edgeward down`.",
    )
    .argument("<spec>", "fleet spec (YAML), e.g. examples/industrial-iot.yaml")
    .option("--dir <dir>", "directory for the fleet's state, logs and fleet.json", defaultFleetDir)
    .option("--detach", "return once every node is HEALTHY and leave the fleet running")
    .option(
      "--timeout <duration>",
      "how long to wait for every node to be HEALTHY",
      parseDurationMs,
      60_000,
    )
    .addHelpText(
      "after",
      "\nExamples:\n  edgeward up examples/industrial-iot.yaml\n  edgeward up examples/industrial-iot.yaml --dir /tmp/fleet --detach\n" +
        "  kill -9 -$(jq '.nodes[0].pgid' .edgeward/fleet.json)   # crash a node, watch it go FAILED",
    )
    .action(async (specPath: string, options: UpCommandOptions) => {
      const spec = await loadFleetSpecFile(specPath);
      const progress = (message: string) => process.stderr.write(`edgeward: ${message}\n`);
      const fleet = await upFleet({
        spec,
        specPath,
        dir: options.dir,
        healthyTimeoutMs: options.timeout,
        onProgress: progress,
      });
      progress(`fleet "${spec.metadata.name}" is up: ${fleet.nodes.length} nodes HEALTHY`);
      process.stdout.write(`${fleet.server.url}\n`);
      if (options.detach === true) return;
      await watchUntilInterrupted(fleetClient(options.dir, fleet.server.url));
      progress("stopping the fleet");
      for (const { id, outcome } of await downFleet(options.dir)) progress(`${id}: ${outcome}`);
    });

  program
    .command("down")
    .summary("stop a local fleet")
    .description(
      "Stops every process of the local fleet in <dir>: agents first (gracefully, so their nodes " +
        "go OFFLINE), then the server; anything still running after 10 s is killed.",
    )
    .option("--dir <dir>", "the fleet's directory", defaultFleetDir)
    .action(async (options: { dir: string }) => {
      const outcomes = await downFleet(options.dir);
      if (outcomes.length === 0) {
        process.stderr.write(
          `edgeward: no fleet in ${options.dir}/ (no fleet.json); nothing to stop\n`,
        );
        return;
      }
      for (const { id, outcome } of outcomes) process.stdout.write(`${id}: ${outcome}\n`);
    });
}

/** Shows the live table (or, without a terminal, one line per event) until Ctrl-C. */
async function watchUntilInterrupted(client: ApiClient): Promise<void> {
  const interactive = process.stdout.isTTY;
  let stop = () => {};
  const interrupted = new Promise<void>((resolve) => {
    stop = resolve;
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => stop());
  let running = true;
  void interrupted.then(() => {
    running = false;
  });
  const recent: FleetEvent[] = [];
  let lastEventId = (await client.listEvents(0, 1_000)).lastId;
  let lastSummary = "";
  while (running) {
    let nodes: NodeView[] = [];
    try {
      nodes = (await client.listNodes()).nodes;
      const page = await client.listEvents(lastEventId, 100);
      lastEventId = page.lastId;
      recent.push(...page.events);
      recent.splice(0, Math.max(0, recent.length - recentEventsShown));
      if (!interactive)
        for (const event of page.events) process.stdout.write(`${formatEvent(event)}\n`);
    } catch (error) {
      process.stderr.write(`edgeward: ${(error as Error).message}\n`);
    }
    if (interactive) {
      const lines = [
        `edgeward fleet at ${client.baseUrl} - ${summarise(nodes)} - ${new Date().toISOString()}`,
        "",
        renderStatusTable(nodes, true),
        "",
        "recent events:",
        ...recent.map((event) => `  ${formatEvent(event)}`),
        "",
        "Ctrl-C stops the fleet.",
      ];
      process.stdout.write(`\u001b[H\u001b[J${lines.join("\n")}\n`);
    } else {
      const summary = summarise(nodes);
      if (summary !== lastSummary) process.stdout.write(`nodes: ${summary}\n`);
      lastSummary = summary;
    }
    await Promise.race([
      interrupted,
      new Promise((resolve) => setTimeout(resolve, refreshIntervalMs)),
    ]);
  }
}
