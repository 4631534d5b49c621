import type { Command } from "commander";
import type { QuarantineListResponse } from "../../api/contract.ts";
import { ApiClient, apiRequestTimeoutMs, resolveServerUrl } from "../api-client.ts";
import { withServerOptions } from "../command-io.ts";
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

  withServerOptions(node.command("quarantined"))
    .description(
      "Lists quarantined nodes: after repeated suspicious activity (failed authentications, " +
        "bad signatures, replays, impersonation) a node's credentials are revoked, its services " +
        "fail over elsewhere and it takes no new ones until released.",
    )
    .option("--json", "print JSON")
    .action(async (options: { dir?: string; server?: string; json?: boolean }) => {
      const client = new ApiClient(resolveServerUrl(options));
      const { nodes } = await client.getJson<QuarantineListResponse>("/v1/quarantine");
      if (options.json === true) process.stdout.write(`${JSON.stringify({ nodes })}\n`);
      else
        process.stdout.write(
          nodes.length === 0 ? "no node is quarantined\n" : `${nodes.join("\n")}\n`,
        );
    });

  withServerOptions(node.command("unquarantine"))
    .description(
      "Releases a quarantined node: it may take services again and its suspicious-activity " +
        "count starts over. Its revoked credentials stay revoked: enrol it again with a new " +
        "join token (edgeward token join --node ID). Recorded in the ledger. Needs an admin credential.",
    )
    .argument("<id>", "node id")
    .addHelpText("after", "\nExample:\n  edgeward node unquarantine factory-1-line-a-edge-1")
    .action(async (id: string, options: { dir?: string; server?: string }) => {
      const client = new ApiClient(resolveServerUrl(options));
      await client.postJson(
        `/v1/nodes/${encodeURIComponent(id)}/unquarantine`,
        {},
        apiRequestTimeoutMs,
      );
      process.stdout.write(`${id}: released from quarantine\n`);
    });
}
