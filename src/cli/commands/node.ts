import type { Command } from "commander";
import { defaultFleetDir } from "../local-fleet/fleet-file.ts";
import { startNode, stopNode } from "../local-fleet/local-fleet.ts";

export function registerNodeCommands(program: Command): void {
  const node = program
    .command("node")
    .summary("stop, crash or restart one node of a local fleet")
    .description("Acts on one agent process of the local fleet started by `edgeward up`.");

  node
    .command("stop")
    .description(
      "Stops a node's agent. By default gracefully (it says goodbye; the node goes OFFLINE). " +
        "With --crash, SIGKILL to its whole process group, as a power cut would (the node goes FAILED).",
    )
    .argument("<id>", "node id")
    .option("--dir <dir>", "the fleet's directory", defaultFleetDir)
    .option("--crash", "kill -9 the node's process group instead of a graceful stop")
    .action(async (id: string, options: { dir: string; crash?: boolean }) => {
      process.stdout.write(`${id}: ${await stopNode(options.dir, id, options.crash === true)}\n`);
    });

  node
    .command("start")
    .description("Starts a stopped or crashed node's agent again (a new incarnation).")
    .argument("<id>", "node id")
    .option("--dir <dir>", "the fleet's directory", defaultFleetDir)
    .action(async (id: string, options: { dir: string }) => {
      const started = await startNode(options.dir, id);
      process.stdout.write(`${id}: started (pid ${started.pid}, ${started.url})\n`);
    });
}
