import type { Command } from "commander";
import { ApiClient, resolveServerUrl, type ServerSelection } from "../api-client.ts";
import { renderStatusTable, summarise } from "../status-table.ts";

interface StatusCommandOptions extends ServerSelection {
  json?: boolean;
}

export function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .summary("show every node's health and usage")
    .description(
      "Shows every registered node: status (HEALTHY, DEGRADED = suspected, FAILED, OFFLINE), " +
        "zone, tier, age of its last heartbeat, and measured cpu, memory and storage usage. " +
        "With --json, the server's full node list (GET /v1/nodes) as one JSON document.",
    )
    .option(
      "--dir <dir>",
      "find the server of the local fleet in this directory (default .edgeward)",
    )
    .option("--server <url>", "the server's URL (default: the local fleet, then $EDGEWARD_SERVER)")
    .option("--json", "print JSON")
    .action(async (options: StatusCommandOptions) => {
      const list = await new ApiClient(resolveServerUrl(options)).listNodes();
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `${renderStatusTable(list.nodes, process.stdout.isTTY)}\n\n${summarise(list.nodes)} (detection preset: ${list.detectionPreset})\n`,
      );
    });
}
