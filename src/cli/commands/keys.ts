// `edgeward keys`: the keyring of a server or agent data dir (docs/adr/0007-secrets-at-rest.md):
// which data key versions exist and when the next rotation is due, and rotation on demand.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import {
  keyRotationDefault,
  keyRotationIntervalMs,
  rotationDue,
} from "../../core/security/key-rotation.ts";
import { silentLogger } from "../../ports/logger.ts";
import {
  dataDirKeysHolder,
  dataKeyId,
  openDataDirKeys,
  rotateDataKey,
  type DataDirKeys,
  type KeyRotationReport,
} from "../../runtime/security/data-dir-keys.ts";
import type { KeysRotateResponse } from "../../api/security-contract.ts";
import { readEndpointFile } from "../../runtime/endpoint-file.ts";
import { readAdminTokenFile } from "../../runtime/security/admin-token-file.ts";
import { systemClock } from "../../runtime/system-clock.ts";
import { ApiClient } from "../api-client.ts";
import { processOutput, type CommandOutput } from "../command-io.ts";

interface KeysCommandOptions {
  dataDir: string;
  masterKeyFile?: string;
  json?: boolean;
}

type DataDirKind = "server" | "agent";

/** An agent data dir holds agent.json; anything else is taken for a server's. */
const kindOf = (dataDir: string): DataDirKind =>
  existsSync(join(dataDir, "agent.json")) ? "agent" : "server";

async function secretFileNamesOf(kind: DataDirKind): Promise<readonly string[]> {
  return kind === "agent"
    ? (await import("../../agent/agent-keys.ts")).agentSecretFileNames
    : (await import("../../server/server-keys.ts")).serverSecretFileNames;
}

async function openKeys(options: KeysCommandOptions, kind: DataDirKind): Promise<DataDirKeys> {
  return openDataDirKeys({
    dataDir: options.dataDir,
    masterKeyFile: options.masterKeyFile,
    environment: process.env,
    nowMs: systemClock.nowMs(),
    secretFileNames: await secretFileNamesOf(kind),
    create: false,
  });
}

export interface KeysStatus {
  dataDir: string;
  kind: DataDirKind;
  rootKey: { id: string; source: string; path: string };
  rotationPolicy: string;
  versions: { keyId: string; version: number; createdAt: string; current: boolean }[];
  nextRotationDueAt: string;
  rotationDue: boolean;
  backupPasswords: { versions: number; currentCreatedAt: string } | null;
}

export async function keysStatus(options: KeysCommandOptions, nowMs: number): Promise<KeysStatus> {
  const kind = kindOf(options.dataDir);
  const keys = await openKeys(options, kind);
  const policy = keys.keyring.rotationPolicy ?? keyRotationDefault;
  const newest = keys.keyring.newest();
  const due = rotationDue(newest.createdAtMs, keyRotationIntervalMs(policy), nowMs);
  let backupPasswords: KeysStatus["backupPasswords"] = null;
  if (kind === "server") {
    const passwords = await import("../../server/backup/fleet-backup-passwords.ts");
    if (keys.files.exists(passwords.backupPasswordsFileName)) {
      const versions = passwords.loadOrCreateBackupPasswords(keys.files, nowMs);
      backupPasswords = {
        versions: versions.length,
        currentCreatedAt: new Date(versions.at(-1)?.createdAtMs ?? 0).toISOString(),
      };
    }
  }
  return {
    dataDir: options.dataDir,
    kind,
    rootKey: { id: keys.rootKey.id, source: keys.rootKey.source, path: keys.rootKey.path },
    rotationPolicy: policy,
    versions: keys.keyring.versions().map((version) => ({
      keyId: dataKeyId(version.version),
      version: version.version,
      createdAt: new Date(version.createdAtMs).toISOString(),
      current: version.version === newest.version,
    })),
    nextRotationDueAt: new Date(due.dueAtMs).toISOString(),
    rotationDue: due.due,
    backupPasswords,
  };
}

export interface KeysRotation {
  dataDir: string;
  kind: DataDirKind;
  rotations: KeyRotationReport[];
  /** Null when a running server rotated (it does not say). */
  resealedFiles: number | null;
  durationMs: number;
}

/**
 * Rotates a data dir's keys. A running server is asked over its API (its admin credential and
 * CA are in the data dir); a running agent rotates by itself; a stopped one is rotated here,
 * and a server's rotations go into its ledger.
 */
export async function rotateKeys(
  options: KeysCommandOptions,
  nowMs: number,
): Promise<KeysRotation> {
  const holder = dataDirKeysHolder(options.dataDir);
  if (holder !== undefined) return rotateRunning(options, holder);
  const startedMs = performance.now();
  const kind = kindOf(options.dataDir);
  const keys = await openKeys(options, kind);
  if (kind === "agent") {
    const { agentSecretFileNames } = await import("../../agent/agent-keys.ts");
    const report = rotateDataKey(keys, agentSecretFileNames, nowMs);
    return {
      dataDir: options.dataDir,
      kind,
      rotations: [
        {
          purpose: report.purpose,
          keyId: report.keyId,
          previousKeyId: report.previousKeyId,
          atMs: report.atMs,
        },
      ],
      resealedFiles: report.resealedFiles,
      durationMs: performance.now() - startedMs,
    };
  }
  const { rotateServerKeys, serverSecretFileNames } = await import("../../server/server-keys.ts");
  const rotations = rotateServerKeys(keys, nowMs);
  const { ServerLedger } = await import("../../server/ledger/server-ledger.ts");
  const ledger = ServerLedger.open(options.dataDir, {
    clock: systemClock,
    logger: silentLogger,
    secrets: keys.files,
  });
  try {
    for (const report of rotations)
      ledger.record({
        kind: "key.rotation",
        atMs: report.atMs,
        data: { keyId: report.keyId, purpose: report.purpose, previousKeyId: report.previousKeyId },
      });
    ledger.publish();
  } finally {
    ledger.close();
  }
  return {
    dataDir: options.dataDir,
    kind,
    rotations,
    resealedFiles: serverSecretFileNames.filter((name) => keys.files.exists(name)).length,
    durationMs: performance.now() - startedMs,
  };
}

async function rotateRunning(options: KeysCommandOptions, holder: number): Promise<KeysRotation> {
  const endpoint = readEndpointFile(options.dataDir);
  if (kindOf(options.dataDir) === "agent" || endpoint?.pid !== holder)
    throw new Error(
      `process ${holder} is running on ${options.dataDir} and holds its keys: an agent rotates ` +
        "them itself when its --key-rotation policy says so. Stop it to rotate now, then start it again",
    );
  const startedMs = performance.now();
  const token = readAdminTokenFile(options.dataDir, {
    ...process.env,
    ...(options.masterKeyFile === undefined
      ? {}
      : { EDGEWARD_MASTER_KEY_FILE: options.masterKeyFile }),
  });
  const caPath = join(options.dataDir, "tls", "ca.crt");
  const client = new ApiClient(endpoint.url, {
    ...(token === undefined ? {} : { token }),
    ...(existsSync(caPath) ? { caPem: readFileSync(caPath, "utf8") } : {}),
  });
  const answer = await client.postJson<KeysRotateResponse>("/v1/keys/rotate", {}, 60_000);
  return {
    dataDir: options.dataDir,
    kind: "server",
    rotations: answer.rotations,
    resealedFiles: null,
    durationMs: performance.now() - startedMs,
  };
}

function printStatus(status: KeysStatus, output: CommandOutput): void {
  const lines = [
    `${status.kind} data dir ${status.dataDir}`,
    `root key ${status.rootKey.id} from ${status.rootKey.source} (${status.rootKey.path})`,
    `rotation policy ${status.rotationPolicy}; next rotation due ${status.nextRotationDueAt}${status.rotationDue ? " (due now)" : ""}`,
    ...status.versions.map(
      (version) =>
        `  ${version.keyId.padEnd(14)} created ${version.createdAt}${version.current ? "  (seals new secrets)" : ""}`,
    ),
  ];
  if (status.backupPasswords !== null)
    lines.push(
      `backup repository passwords: ${status.backupPasswords.versions}, current since ${status.backupPasswords.currentCreatedAt}`,
    );
  output.stdout.write(`${lines.join("\n")}\n`);
}

function addKeyOptions(command: Command): Command {
  return command
    .option("--data-dir <dir>", "the server's or an agent's data dir", ".edgeward/server")
    .option(
      "--master-key-file <file>",
      "the root key (default: $EDGEWARD_MASTER_KEY_FILE, systemd's credential, else <data-dir>/master.key)",
    )
    .option("--json", "print JSON");
}

export function registerKeysCommands(
  program: Command,
  output: CommandOutput = processOutput,
): void {
  const keys = program
    .command("keys")
    .summary("show and rotate the keys that encrypt secrets at rest")
    .description(
      "Every secret a server or agent keeps (signing keys, the CA key, tokens, the backup " +
        "password, the node key and credential) is sealed with AES-256-GCM by a versioned data " +
        "key of the data dir's keyring, which a root key wraps. Rotation adds a key version and " +
        "re-seals every secret file with it; older versions stay, so nothing sealed before " +
        "becomes unreadable. Servers and agents rotate by themselves when their policy says so.",
    );
  addKeyOptions(
    keys.command("status").description("key versions, the root key's source and the next rotation"),
  ).action(async (options: KeysCommandOptions) => {
    const status = await keysStatus(options, systemClock.nowMs());
    if (options.json === true) output.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    else printStatus(status, output);
  });
  addKeyOptions(
    keys
      .command("rotate")
      .description(
        "rotate now: a new data key re-seals every secret file; on a server also a new fleet " +
          "backup password (agents re-wrap each repository's key under it when they next open " +
          "it) and key.rotation ledger entries. A running server is asked over its API; an " +
          "agent must be stopped (it rotates by itself on its schedule).",
      ),
  ).action(async (options: KeysCommandOptions) => {
    const rotation = await rotateKeys(options, systemClock.nowMs());
    if (options.json === true) {
      output.stdout.write(`${JSON.stringify(rotation, null, 2)}\n`);
      return;
    }
    for (const report of rotation.rotations)
      output.stdout.write(
        `rotated ${report.purpose}: ${report.previousKeyId ?? "-"} -> ${report.keyId}\n`,
      );
    output.stdout.write(
      rotation.resealedFiles === null
        ? `the running server rotated in ${rotation.durationMs.toFixed(1)} ms\n`
        : `${rotation.resealedFiles} secret files re-sealed in ${rotation.durationMs.toFixed(1)} ms\n`,
    );
  });
}
