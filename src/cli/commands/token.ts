import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { nodeIdPattern, nodeIdRule } from "../../api/node-id.ts";
import {
  ApiClient,
  resolveServerAccess,
  resolveServerUrl,
  type ServerSelection,
} from "../api-client.ts";
import { parseDurationMs } from "../options.ts";

interface TokenCommandOptions extends ServerSelection {
  token?: string;
  json?: boolean;
}

/** A TTL in whole seconds from 90s, 15m, 12h or 30d. */
function parseTtlSeconds(value: string): number {
  const days = /^(\d+)d$/.exec(value.trim());
  const ms = days === null ? parseDurationMs(value) : Number(days[1]) * 86_400_000;
  if (ms < 60_000) throw new InvalidArgumentError("a token lives at least 1m");
  return Math.round(ms / 1_000);
}

function parseNodeId(value: string): string {
  if (!nodeIdPattern.test(value)) throw new InvalidArgumentError(`${nodeIdRule}, got "${value}"`);
  return value;
}

function client(options: TokenCommandOptions): ApiClient {
  const url = resolveServerUrl(options);
  return new ApiClient(url, resolveServerAccess(options.dir, options.token));
}

function addServerOptions(command: Command): Command {
  return command
    .option(
      "--dir <dir>",
      "the local fleet whose server, admin.token and CA to use (default .edgeward)",
    )
    .option("--server <url>", "the server's URL (default: the local fleet, then $EDGEWARD_SERVER)")
    .option(
      "--token <token>",
      "an admin credential (default: $EDGEWARD_TOKEN, then <dir>/server/admin.token)",
    )
    .option("--json", "print the whole answer as JSON");
}

const expiry = (expiresAtMs: number) => new Date(expiresAtMs).toISOString();

export function registerTokenCommands(program: Command): void {
  const token = program
    .command("token")
    .summary("issue and revoke credentials")
    .description(
      "Issues and revokes credentials (admin only). Join tokens enrol one agent once; user " +
        "tokens carry one role of the fleet (admin, operator, viewer, or a role of the spec's " +
        "security section). The token is printed alone on stdout, details on stderr. HTTPS " +
        "servers are trusted through the fleet's CA: <dir>/server/tls/ca.crt or $EDGEWARD_CA_FILE.",
    );

  addServerOptions(
    token
      .command("join")
      .summary("issue a single-use join token for one node")
      .requiredOption("--node <id>", "the node the token enrols", parseNodeId)
      .option("--ttl <duration>", "how long the token is valid (e.g. 15m, 1h)", parseTtlSeconds),
  )
    .addHelpText(
      "after",
      "\nExample:\n  edgeward agent --node factory-1-line-a-edge-1 --server https://10.0.0.5:7070 \\\n    --join-token $(edgeward token join --node factory-1-line-a-edge-1)",
    )
    .action(async (options: TokenCommandOptions & { node: string; ttl?: number }) => {
      const answer = await client(options).createJoinToken({
        nodeId: options.node,
        ...(options.ttl === undefined ? {} : { ttlSeconds: options.ttl }),
      });
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        return;
      }
      process.stderr.write(
        `join token for ${answer.nodeId}, single use, valid until ${expiry(answer.expiresAtMs)}` +
          `${answer.caFingerprint === null ? " (plain HTTP server: no CA to pin)" : `; pins CA ${answer.caFingerprint}`}\n`,
      );
      process.stdout.write(`${answer.token}\n`);
    });

  addServerOptions(
    token
      .command("create")
      .summary("issue a user token with one role")
      .requiredOption("--role <role>", "admin, operator, viewer or a role of the fleet spec")
      .option(
        "--ttl <duration>",
        "how long the token is valid (default 24h; e.g. 12h, 30d)",
        parseTtlSeconds,
      )
      .option("--subject <name>", "who the token is for (default <role>-user)"),
  ).action(
    async (options: TokenCommandOptions & { role: string; ttl?: number; subject?: string }) => {
      const answer = await client(options).createToken({
        role: options.role,
        ...(options.ttl === undefined ? {} : { ttlSeconds: options.ttl }),
        ...(options.subject === undefined ? {} : { subject: options.subject }),
      });
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        return;
      }
      process.stderr.write(
        `token ${answer.id} for ${answer.subject} (role ${answer.role}), valid until ${expiry(answer.expiresAtMs)}; revoke with: edgeward token revoke ${answer.id}\n`,
      );
      process.stdout.write(`${answer.token}\n`);
    },
  );

  addServerOptions(
    token
      .command("revoke")
      .summary("revoke a token by id, or every token of a subject")
      .argument("[id]", "the token's id (printed by token create)")
      .option("--subject <name>", "revoke every token issued so far to this user or node"),
  ).action(async (id: string | undefined, options: TokenCommandOptions & { subject?: string }) => {
    if ((id === undefined) === (options.subject === undefined))
      throw new InvalidArgumentError("give either a token id or --subject NAME");
    const answer = await client(options).revokeToken(
      id === undefined ? { subject: options.subject ?? "" } : { id },
    );
    if (options.json === true) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    else process.stderr.write(`revoked ${id ?? `every token of ${options.subject ?? ""}`}\n`);
  });
}
