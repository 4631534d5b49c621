import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import {
  detectorOptionsFor,
  detectorPresetNames,
  type DetectorPresetName,
} from "../../core/membership/detector-options.ts";
import { readFleetSpecFile } from "../../runtime/fleet-spec-file.ts";
import { declaredNodesFromSpec, detectorOptionsFromSpec } from "../../server/declared-nodes.ts";
import { logLevels, type LogLevel } from "../../runtime/json-line-logger.ts";
import { createProcessLogger } from "../logging.ts";
import { parsePort } from "../options.ts";

interface ServerCommandOptions {
  host: string;
  port: number;
  dataDir: string;
  spec?: string;
  preset?: DetectorPresetName;
  alertWebhook?: URL;
  blobDir?: string;
  cloudRepo?: string;
  logLevel: LogLevel;
  insecure?: boolean;
  openAccess?: boolean;
  masterKeyFile?: string;
}

function parseWebhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError("expected an http:// or https:// URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidArgumentError("expected an http:// or https:// URL");
  }
  return url;
}

export function registerServerCommand(program: Command): void {
  program
    .command("server")
    .summary("run the control plane")
    .description(
      "Runs the edgeward control plane: membership and failure detection, the HTTP API under /v1, " +
        "the agents' WebSocket channel, /healthz and Prometheus /metrics. With --spec it also " +
        "places the spec's services on their primaries and fails them over by their plans, " +
        "runs each plan's drills on its testSchedule, and sends alerts to the log, the event " +
        "stream and --alert-webhook. State lives in " +
        "<data-dir>/state.db (SQLite); the chosen address is written to <data-dir>/endpoint.json. " +
        "Logs are JSON lines on stdout. SIGTERM or Ctrl-C stops it cleanly. " +
        "Secure by default: HTTPS with the fleet's own CA (created at first start in " +
        "<data-dir>/tls; agents pin its fingerprint, which their join tokens carry), every API " +
        "request needs a credential (the bootstrap admin's is written to <data-dir>/admin.token, " +
        "sealed) and the spec's roles and access rules apply, default deny. Secrets (keys, " +
        "tokens, the backup password) are encrypted at rest with a keyring wrapped by a root " +
        "key and rotated by the spec's security.encryption.keyRotation (see `edgeward keys`).",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0 = any free port)", parsePort, 7070)
    .option("--data-dir <dir>", "where the server keeps its state", ".edgeward/server")
    .option(
      "--spec <file>",
      "fleet spec: only its nodes may register, it sets the detection preset, and its services are placed and failed over",
    )
    .option(
      "--alert-webhook <url>",
      "POST every alert and finished failover here as JSON (the event stream's objects)",
      parseWebhookUrl,
    )
    .option(
      "--insecure",
      "speak plain HTTP instead of HTTPS (credentials cross the network in the clear)",
    )
    .option(
      "--open-access",
      "allow every API request without a credential (one-machine experiments only)",
    )
    .option(
      "--master-key-file <file>",
      "the root key that encrypts the data dir's secrets (default: $EDGEWARD_MASTER_KEY_FILE, systemd's $CREDENTIALS_DIRECTORY/edgeward-master-key, else <data-dir>/master.key)",
    )
    .option(
      "--blob-dir <dir>",
      "serve a blob store from this directory under /v1/blobs: the REGIONAL backup tier",
    )
    .option(
      "--cloud-repo <url>",
      "s3://host:port/bucket/prefix for the CLOUD backup tier (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); default: the spec's backup.tiers.cloud",
    )
    .addOption(
      new Option("--preset <name>", "failure-detection preset (overrides the spec's)").choices(
        detectorPresetNames,
      ),
    )
    .addOption(
      new Option("--log-level <level>", "log verbosity").choices(logLevels).default("info"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n  edgeward server --spec examples/industrial-iot.yaml\n  edgeward server --port 0 --preset wan --data-dir /var/lib/edgeward",
    )
    .action(async (options: ServerCommandOptions) => {
      const { startServer } = await import("../../server/main.ts");
      const logger = createProcessLogger("edgeward-server", options.logLevel);
      const specFile =
        options.spec === undefined ? undefined : await readFleetSpecFile(options.spec);
      const spec = specFile?.spec;
      const detection =
        options.preset !== undefined
          ? detectorOptionsFor(options.preset)
          : spec !== undefined
            ? detectorOptionsFromSpec(spec)
            : detectorOptionsFor("lan");
      const server = await startServer({
        host: options.host,
        port: options.port,
        dataDir: options.dataDir,
        detection,
        ...(spec === undefined
          ? {}
          : {
              fleetSpecDigest: specFile?.digest,
              declaredNodes: declaredNodesFromSpec(spec),
              services: spec.services,
              backup: spec.backup,
            }),
        ...(options.blobDir === undefined ? {} : { blobDir: options.blobDir }),
        ...(options.masterKeyFile === undefined ? {} : { masterKeyFile: options.masterKeyFile }),
        ...(options.cloudRepo === undefined ? {} : { cloudRepo: options.cloudRepo }),
        ...(options.alertWebhook === undefined ? {} : { alertWebhookUrl: options.alertWebhook }),
        security: {
          tls: options.insecure !== true,
          enforce: options.openAccess !== true,
          ...(spec === undefined ? {} : { spec: spec.security }),
        },
        logger,
      });
      const shutdown = (signal: string) => {
        logger.info({ signal }, "stopping server");
        server.close().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, "unclean shutdown");
            process.exit(1);
          },
        );
      };
      process.once("SIGTERM", shutdown);
      process.once("SIGINT", shutdown);
    });
}
