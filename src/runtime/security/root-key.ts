// The root key that wraps a data dir's keyring, from (in order) --master-key-file,
// $EDGEWARD_MASTER_KEY_FILE, systemd's $CREDENTIALS_DIRECTORY/edgeward-master-key, else
// <data-dir>/master.key (generated at first start, with a warning: it sits beside the data).

import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeSecretFileAtomically } from "./secret-file-write.ts";

export const rootKeyBytes = 32;
export const masterKeyFileName = "master.key";
export const systemdCredentialName = "edgeward-master-key";
/** A root key file larger than this is not a key file. */
const rootKeyFileBytesMax = 1_024;

export type RootKeySource = "option" | "environment" | "systemd-credential" | "data-dir";

export interface RootKey {
  readonly key: Buffer;
  /** First 16 hex digits of a SHA-256 of the key: names it in the keyring, reveals nothing. */
  readonly id: string;
  readonly source: RootKeySource;
  readonly path: string;
  /** True when this start generated it. */
  readonly created: boolean;
}

/** No usable root key: says where it was looked for and what to do. */
export class RootKeyError extends Error {
  override readonly name = "RootKeyError";
}

export interface RootKeyRequest {
  dataDir: string;
  /** --master-key-file. */
  masterKeyFile?: string | undefined;
  /** The process environment (EDGEWARD_MASTER_KEY_FILE, CREDENTIALS_DIRECTORY). */
  environment: Readonly<Record<string, string | undefined>>;
  /** Generate <data-dir>/master.key when no key is found (only when no keyring exists yet). */
  createInDataDir: boolean;
}

export function rootKeyIdOf(key: Uint8Array): string {
  return createHash("sha256")
    .update("edgeward-root-key-id\n")
    .update(key)
    .digest("hex")
    .slice(0, 16);
}

/** A root key file holds 32 bytes: raw, or as base64, base64url or hex text. */
export function parseRootKey(content: Buffer, path: string): Buffer {
  if (content.length === rootKeyBytes) return content;
  const text = content.toString("utf8").trim();
  const decoded = /^[0-9a-fA-F]{64}$/.test(text)
    ? Buffer.from(text, "hex")
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(text)
      ? Buffer.from(text, "base64")
      : undefined;
  if (decoded?.length !== rootKeyBytes)
    throw new RootKeyError(
      `${path} does not hold a root key: expected 32 bytes, raw or as base64 or hex text ` +
        "(make one with `head -c 32 /dev/urandom | base64 > FILE`)",
    );
  return decoded;
}

function readRootKey(path: string, source: RootKeySource): RootKey {
  let content: Buffer;
  try {
    if (statSync(path).size > rootKeyFileBytesMax)
      throw new RootKeyError(`${path} is too large to be a root key file`);
    content = readFileSync(path);
  } catch (error) {
    if (error instanceof RootKeyError) throw error;
    throw new RootKeyError(`cannot read the root key ${path}: ${(error as Error).message}`);
  }
  const key = parseRootKey(content, path);
  return { key, id: rootKeyIdOf(key), source, path, created: false };
}

/** Finds the root key by the order above; generates the data dir's only when asked to. */
export function resolveRootKey(request: RootKeyRequest): RootKey {
  if (request.masterKeyFile !== undefined && request.masterKeyFile !== "")
    return readRootKey(request.masterKeyFile, "option");
  const fromEnvironment = request.environment["EDGEWARD_MASTER_KEY_FILE"];
  if (fromEnvironment !== undefined && fromEnvironment !== "")
    return readRootKey(fromEnvironment, "environment");
  const credentials = request.environment["CREDENTIALS_DIRECTORY"];
  if (credentials !== undefined && credentials !== "") {
    const path = join(credentials, systemdCredentialName);
    if (existsSync(path)) return readRootKey(path, "systemd-credential");
  }
  const path = join(request.dataDir, masterKeyFileName);
  if (existsSync(path)) return readRootKey(path, "data-dir");
  if (!request.createInDataDir)
    throw new RootKeyError(
      `no root key for ${request.dataDir}: the keyring there needs the key it was made with. ` +
        "Pass it with --master-key-file FILE or $EDGEWARD_MASTER_KEY_FILE, or put it in " +
        `${path} (edgeward never makes a new one for an existing keyring: that would lose every secret)`,
    );
  const key = randomBytes(rootKeyBytes);
  writeSecretFileAtomically(path, `${key.toString("base64")}\n`);
  return { key, id: rootKeyIdOf(key), source: "data-dir", path, created: true };
}

/** The one warning a process logs when its root key sits beside the data it protects. */
export function rootKeyWarning(rootKey: RootKey): string | undefined {
  if (rootKey.source !== "data-dir") return undefined;
  return (
    `the root key that encrypts this data dir's secrets is ${rootKey.path}, beside the data: ` +
    "anyone who copies the directory can read them. Move it off the disk: systemd " +
    `LoadCredential=${systemdCredentialName}:/path/to/key, or --master-key-file FILE / ` +
    "$EDGEWARD_MASTER_KEY_FILE (then delete master.key)"
  );
}
