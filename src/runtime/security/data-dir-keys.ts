// Opens a data dir's keys: the root key, the keyring it wraps and the sealed secret files, and
// rotates the data key (a new version, every secret file re-sealed with it, old versions kept).

import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { keyRotationDefault, keyRotationIntervalMs } from "../../core/security/key-rotation.ts";
import type { Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import { Keyring, KeyringError, keyringFileName } from "./keyring.ts";
import { resolveRootKey, rootKeyWarning, type RootKey } from "./root-key.ts";
import { SecretFiles } from "./secret-files.ts";
import { writeSecretFileAtomically } from "./secret-file-write.ts";

/** Purpose of the keyring's data keys in `key.rotation` ledger entries. */
export const secretsAtRestPurpose = "secrets-at-rest";
/** The process that holds a data dir's keys writes its pid here while it runs. */
export const keysHolderFileName = "keys.pid";

/** One rotation, as the ledger records it (`key.rotation`). */
export interface KeyRotationReport {
  purpose: string;
  keyId: string;
  previousKeyId: string | null;
  atMs: number;
}

export const dataKeyId = (version: number) => `data-key-${version}`;

export interface DataDirKeys {
  readonly rootKey: RootKey;
  readonly keyring: Keyring;
  readonly files: SecretFiles;
  /** Logged once at start: the root key sits beside the data. */
  readonly warning: string | undefined;
  /** Plaintext files of an earlier version sealed by this open. */
  readonly migrated: readonly string[];
}

export interface DataDirKeysOptions {
  dataDir: string;
  masterKeyFile?: string | undefined;
  environment: Readonly<Record<string, string | undefined>>;
  nowMs: number;
  /** The data dir's secret files, to migrate at open and re-seal at rotation. */
  secretFileNames: readonly string[];
  /** false (the CLI): never create a root key or a keyring. */
  create: boolean;
}

export function openDataDirKeys(options: DataDirKeysOptions): DataDirKeys {
  if (options.create) mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const keyringExists = existsSync(join(options.dataDir, keyringFileName));
  if (!keyringExists && !options.create)
    throw new KeyringError(
      `${options.dataDir} has no keyring (${keyringFileName}): is it a server's or agent's data dir? Start the server or agent on it once`,
    );
  const rootKey = resolveRootKey({
    dataDir: options.dataDir,
    masterKeyFile: options.masterKeyFile,
    environment: options.environment,
    createInDataDir: options.create && !keyringExists,
  });
  const keyring = Keyring.open({
    dataDir: options.dataDir,
    rootKey,
    nowMs: options.nowMs,
    create: options.create,
  });
  const files = new SecretFiles(options.dataDir, keyring);
  const migrated = options.create ? files.migrate(options.secretFileNames) : [];
  return { rootKey, keyring, files, warning: rootKeyWarning(rootKey), migrated };
}

/**
 * Opens (or makes) the keyring of a server or agent that is starting: seals the plaintext files
 * an earlier version left, holds the data dir, sets the rotation policy and logs where the
 * root key is.
 */
export function openRunningDataDirKeys(
  options: {
    dataDir: string;
    masterKeyFile: string | undefined;
    keyRotation: string | undefined;
    secretFileNames: readonly string[];
  },
  components: { clock: Clock; logger: Logger },
): DataDirKeys {
  const keys = openDataDirKeys({
    dataDir: options.dataDir,
    masterKeyFile: options.masterKeyFile,
    environment: process.env,
    nowMs: components.clock.nowMs(),
    secretFileNames: options.secretFileNames,
    create: true,
  });
  holdDataDirKeys(options.dataDir);
  const policy = options.keyRotation ?? keyRotationDefault;
  keyRotationIntervalMs(policy);
  keys.keyring.setRotationPolicy(policy);
  if (keys.warning !== undefined) components.logger.warn({}, keys.warning);
  if (keys.migrated.length > 0)
    components.logger.info(
      { files: keys.migrated },
      "sealed secret files an earlier edgeward left in plaintext",
    );
  return keys;
}

/** A new data key version; every secret file among `names` is re-sealed with it. */
export function rotateDataKey(
  keys: DataDirKeys,
  names: readonly string[],
  nowMs: number,
): KeyRotationReport & { resealedFiles: number } {
  const { added, previous } = keys.keyring.addVersion(nowMs);
  const resealedFiles = keys.files.resealAll(names);
  return {
    purpose: secretsAtRestPurpose,
    keyId: dataKeyId(added.version),
    previousKeyId: dataKeyId(previous.version),
    atMs: added.createdAtMs,
    resealedFiles,
  };
}

/** Marks the data dir as held by this process (a stale mark of a dead process is replaced). */
export function holdDataDirKeys(dataDir: string): void {
  writeSecretFileAtomically(join(dataDir, keysHolderFileName), `${process.pid}\n`);
}

/** Removes this process's mark when it stops. */
export function releaseDataDirKeys(dataDir: string): void {
  const path = join(dataDir, keysHolderFileName);
  try {
    if (Number(readFileSync(path, "utf8").trim()) === process.pid) rmSync(path, { force: true });
  } catch {
    // No mark: nothing to release.
  }
}

/** The pid of another live process holding the data dir's keys, or undefined. */
export function dataDirKeysHolder(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, keysHolderFileName), "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined;
  }
}
