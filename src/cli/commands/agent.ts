import { join } from "node:path";
import type { Command } from "commander";
import { Option } from "commander";
import { nodeIdPattern, nodeIdRule } from "../../api/node-id.ts";
import { noFaults, type FaultInjection } from "../../agent/fault-injector.ts";
import { createJsonLineLogger } from "../../runtime/json-line-logger.ts";
import { logLevels, type LogLevel } from "../../runtime/json-line-logger.ts";
import {
  collect,
  collectLabel,
  parseFraction,
  parseKeyRotation,
  parseListenAddress,
  parseNonNegativeMs,
} from "../options.ts";
import { InvalidArgumentError } from "commander";

interface AgentCommandOptions {
  node: string;
  server: string;
  dataDir?: string;
  listen: { host: string; port: number };
  zone?: string;
  tier?: string;
  capability?: string[];
  label?: Record<string, string>;
  logLevel: LogLevel;
  joinToken?: string;
  masterKeyFile?: string;
  keyRotation: string;
  enableFaultInjection?: boolean;
  faultHeartbeatLoss: number;
  faultDelayMs: number;
  faultJitterMs: number;
}

function parseNodeId(value: string): string {
  if (!nodeIdPattern.test(value)) throw new InvalidArgumentError(`${nodeIdRule}, got "${value}"`);
  return value;
}

export function registerAgentCommand(program: Command): void {
  program
    .command("agent")
    .summary("run the agent of one edge node")
    .description(
      "Runs the agent of one edge node: enrols with a join token (an Ed25519 key in its data " +
        "dir, mode 0600; it pins the server CA's fingerprint the token carries and renews its " +
        "node credential at 2/3 of its life), registers with the server, keeps a persistent channel " +
        "open and heartbeats at the interval the server's detection preset asks for, carrying " +
        "measured cpu (/proc/stat), memory (/proc/meminfo), storage (statfs of the data dir) and " +
        "network (/proc/net/dev) usage. It answers the server's probes on --listen and reconnects " +
        "with jittered backoff. SIGTERM or Ctrl-C says goodbye (the node becomes OFFLINE, not FAILED).",
    )
    .requiredOption("--node <id>", "this node's id (as in the fleet spec)", parseNodeId)
    .requiredOption("--server <url>", "the server's URL, e.g. http://127.0.0.1:7070")
    .option("--data-dir <dir>", "the agent's own state (default: .edgeward/nodes/<id>)")
    .option(
      "--listen <host:port>",
      "address for the server's probes (port 0 = any free port)",
      parseListenAddress,
      {
        host: "127.0.0.1",
        port: 0,
      },
    )
    .option(
      "--join-token <token>",
      "single-use join token (edgeward token join --node ID; or $EDGEWARD_JOIN_TOKEN): enrols this node when it has no valid credential in its data dir",
    )
    .option("--zone <zone>", "zone, for servers without a fleet spec")
    .option("--tier <tier>", "tier, for servers without a fleet spec")
    .option(
      "--capability <name>",
      "a capability, repeatable, for servers without a fleet spec",
      collect,
    )
    .option(
      "--label <key=value>",
      "a label, repeatable, for servers without a fleet spec",
      collectLabel,
    )
    .option(
      "--master-key-file <file>",
      "the root key that encrypts the agent's secrets (default: $EDGEWARD_MASTER_KEY_FILE, systemd's $CREDENTIALS_DIRECTORY/edgeward-master-key, else <data-dir>/master.key)",
    )
    .option(
      "--key-rotation <policy>",
      "how often the agent rotates the key sealing its secrets: weekly, monthly, Nd or Nh",
      parseKeyRotation,
      "monthly",
    )
    .addOption(
      new Option("--log-level <level>", "log verbosity").choices(logLevels).default("info"),
    )
    .addOption(
      new Option(
        "--enable-fault-injection",
        "testing only: allow the --fault-* options",
      ).hideHelp(),
    )
    .addOption(
      new Option("--fault-heartbeat-loss <fraction>", "testing: drop this fraction of heartbeats")
        .argParser(parseFraction)
        .default(0)
        .hideHelp(),
    )
    .addOption(
      new Option("--fault-delay-ms <ms>", "testing: delay every heartbeat")
        .argParser(parseNonNegativeMs)
        .default(0)
        .hideHelp(),
    )
    .addOption(
      new Option("--fault-jitter-ms <ms>", "testing: add uniform jitter")
        .argParser(parseNonNegativeMs)
        .default(0)
        .hideHelp(),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  edgeward agent --node factory-1-line-a-edge-1 --server http://10.0.0.5:7070\n" +
        "  edgeward agent --node cam-17 --server http://127.0.0.1:7070 --zone street-4 --capability video_processing",
    )
    .action(async (options: AgentCommandOptions) => {
      const faults: FaultInjection = {
        heartbeatLossFraction: options.faultHeartbeatLoss,
        delayMs: options.faultDelayMs,
        jitterMs: options.faultJitterMs,
      };
      const faultsRequested =
        faults.heartbeatLossFraction > 0 || faults.delayMs > 0 || faults.jitterMs > 0;
      if (faultsRequested && options.enableFaultInjection !== true) {
        throw new InvalidArgumentError(
          "--fault-* options need --enable-fault-injection (they are for tests only)",
        );
      }
      const { startAgent } = await import("../../agent/main.ts");
      const joinToken = options.joinToken ?? process.env["EDGEWARD_JOIN_TOKEN"];
      const logger = createJsonLineLogger("edgeward-agent", options.logLevel);
      if (faultsRequested)
        logger.warn(
          { ...faults },
          "FAULT INJECTION ENABLED: this agent drops and delays its own heartbeats",
        );
      const agent = await startAgent({
        nodeId: options.node,
        serverUrl: options.server,
        dataDir: options.dataDir ?? join(".edgeward", "nodes", options.node),
        listenHost: options.listen.host,
        listenPort: options.listen.port,
        ...(options.zone === undefined ? {} : { zone: options.zone }),
        ...(options.tier === undefined ? {} : { tier: options.tier }),
        ...(options.capability === undefined ? {} : { capabilities: options.capability }),
        ...(options.label === undefined ? {} : { labels: options.label }),
        faults: faultsRequested ? faults : noFaults,
        logger,
        keyRotation: options.keyRotation,
        ...(options.masterKeyFile === undefined ? {} : { masterKeyFile: options.masterKeyFile }),
        ...(joinToken === undefined || joinToken === "" ? {} : { joinToken }),
      });
      const shutdown = (signal: string) => {
        logger.info({ signal }, "stopping agent (goodbye)");
        agent.stop(true).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGTERM", shutdown);
      process.once("SIGINT", shutdown);
      void agent.fenced.then(async () => {
        await agent.stop(false);
        process.exit(3);
      });
    });
}
