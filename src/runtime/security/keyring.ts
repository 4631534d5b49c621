// A data dir's keyring (<data-dir>/keyring.json): versioned 256-bit data keys, each wrapped by
// the root key. The newest seals; every version opens what it sealed, so a rotation leaves
// older secrets readable. The file format is docs/formats/secrets-at-rest.md.

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseSealedEnvelope } from "../../core/security/sealed-envelope.ts";
import type { RootKey } from "./root-key.ts";
import { writeSecretFileAtomically } from "./secret-file-write.ts";
import { openEnvelope, seal, sealingKeyBytes, SealedSecretTamperedError } from "./sealing.ts";

export const keyringFileName = "keyring.json";
/** Versions kept at most: monthly rotation for 80 years. Older data must be re-sealed first. */
export const keyringVersionsMax = 1_000;
const keyringFileBytesMax = 1024 * 1024;

/** The keyring cannot be used with this root key, or is missing or damaged: says what to do. */
export class KeyringError extends Error {
  override readonly name = "KeyringError";
}

interface KeyringFile {
  format: "edgeward-keyring";
  version: 1;
  rootKeyId: string;
  rotationPolicy: string | null;
  keys: Array<{ version: number; createdAtMs: number; wrapped: string }>;
}

/** Checked by hand: agents keep zod out of memory. */
function checkKeyringFile(value: unknown): KeyringFile {
  const file = value as Partial<KeyringFile> | null;
  const problem =
    typeof file !== "object" || file === null
      ? "not an object"
      : file.format !== "edgeward-keyring" || file.version !== 1
        ? "not an edgeward keyring of version 1"
        : typeof file.rootKeyId !== "string" || !/^[0-9a-f]{16}$/.test(file.rootKeyId)
          ? "no root key id"
          : file.rotationPolicy !== null &&
              (typeof file.rotationPolicy !== "string" || file.rotationPolicy.length > 40)
            ? "a bad rotation policy"
            : !Array.isArray(file.keys) ||
                file.keys.length === 0 ||
                file.keys.length > keyringVersionsMax
              ? `not 1…${keyringVersionsMax} keys`
              : file.keys.some(
                    (entry: Partial<KeyringFile["keys"][number]> | null) =>
                      typeof entry !== "object" ||
                      entry === null ||
                      !Number.isSafeInteger(entry.version) ||
                      (entry.version ?? 0) < 1 ||
                      (entry.version ?? 0) > 0xffff_ffff ||
                      !Number.isSafeInteger(entry.createdAtMs) ||
                      (entry.createdAtMs ?? -1) < 0 ||
                      typeof entry.wrapped !== "string" ||
                      entry.wrapped.length > 200,
                  )
                ? "a malformed key entry"
                : undefined;
  if (problem !== undefined) throw new Error(problem);
  return file as KeyringFile;
}

export interface KeyVersion {
  version: number;
  createdAtMs: number;
}

const wrapPurpose = (key: KeyVersion) => `keyring:data-key-${key.version}-${key.createdAtMs}`;

export class Keyring {
  readonly #path: string;
  readonly #rootKey: RootKey;
  #file: KeyringFile;
  #keys = new Map<number, Buffer>();

  private constructor(path: string, rootKey: RootKey, file: KeyringFile) {
    this.#path = path;
    this.#rootKey = rootKey;
    this.#file = file;
    this.#unwrapAll();
  }

  /**
   * Opens `<dataDir>/keyring.json` with `rootKey`; makes it (version 1) when there is none and
   * `create` is set. A keyring made with another root key is a KeyringError, never replaced.
   */
  static open(options: {
    dataDir: string;
    rootKey: RootKey;
    nowMs: number;
    create: boolean;
  }): Keyring {
    const path = join(options.dataDir, keyringFileName);
    if (!existsSync(path)) {
      if (!options.create)
        throw new KeyringError(
          `${options.dataDir} has no keyring (${keyringFileName}): start the server or agent on it once`,
        );
      const file: KeyringFile = {
        format: "edgeward-keyring",
        version: 1,
        rootKeyId: options.rootKey.id,
        rotationPolicy: null,
        keys: [wrapNew(options.rootKey, 1, options.nowMs).entry],
      };
      writeSecretFileAtomically(path, `${JSON.stringify(file, null, 2)}\n`);
    }
    return new Keyring(path, options.rootKey, readKeyringFile(path, options.rootKey));
  }

  get rootKey(): RootKey {
    return this.#rootKey;
  }

  /** Every version, oldest first. */
  versions(): KeyVersion[] {
    return this.#file.keys.map(({ version, createdAtMs }) => ({ version, createdAtMs }));
  }

  newest(): KeyVersion {
    const newest = this.#file.keys.at(-1);
    if (newest === undefined) throw new Error("a keyring always has a key");
    return { version: newest.version, createdAtMs: newest.createdAtMs };
  }

  get rotationPolicy(): string | null {
    return this.#file.rotationPolicy;
  }

  /** Records the policy the owning process rotates by, for `edgeward keys status`. */
  setRotationPolicy(policy: string): void {
    if (this.#file.rotationPolicy === policy) return;
    this.#reloadIfChanged();
    this.#file = { ...this.#file, rotationPolicy: policy };
    this.#save();
  }

  seal(purpose: string, plaintext: Uint8Array): Buffer {
    const newest = this.newest();
    const key = this.#keys.get(newest.version);
    if (key === undefined) throw new Error("every version is unwrapped at open");
    return seal(key, newest.version, purpose, plaintext);
  }

  /** Opens a sealed value; a version this process does not know yet is looked for on disk once. */
  open(purpose: string, sealed: Uint8Array, where: string): Buffer {
    const envelope = parseSealedEnvelope(sealed, where);
    if (!this.#keys.has(envelope.keyVersion)) this.#reloadIfChanged();
    const key = this.#keys.get(envelope.keyVersion);
    if (key === undefined)
      throw new SealedSecretTamperedError(
        `${where} was sealed with data key version ${envelope.keyVersion}, which the keyring ` +
          `${this.#path} does not hold (it has ${this.#file.keys.map((entry) => entry.version).join(", ")}): ` +
          "the file comes from another data dir, or the keyring was replaced",
      );
    return openEnvelope(key, envelope, purpose, where);
  }

  /** Adds the next version and makes it the one that seals; returns it and the one before. */
  addVersion(nowMs: number): { added: KeyVersion; previous: KeyVersion } {
    this.#reloadIfChanged();
    const previous = this.newest();
    if (this.#file.keys.length >= keyringVersionsMax)
      throw new KeyringError(
        `${this.#path} holds ${keyringVersionsMax} key versions, the most it may: rotate less often`,
      );
    const { entry, key } = wrapNew(this.#rootKey, previous.version + 1, nowMs);
    this.#file = { ...this.#file, keys: [...this.#file.keys, entry] };
    this.#save();
    this.#keys.set(entry.version, key);
    return { added: { version: entry.version, createdAtMs: entry.createdAtMs }, previous };
  }

  #save(): void {
    writeSecretFileAtomically(this.#path, `${JSON.stringify(this.#file, null, 2)}\n`);
  }

  #reloadIfChanged(): void {
    const onDisk = readKeyringFile(this.#path, this.#rootKey);
    if (onDisk.keys.length === this.#file.keys.length) return;
    this.#file = onDisk;
    this.#unwrapAll();
  }

  #unwrapAll(): void {
    const keys = new Map<number, Buffer>();
    for (const entry of this.#file.keys) {
      const where = `${this.#path} (data key version ${entry.version})`;
      try {
        keys.set(
          entry.version,
          openEnvelope(
            this.#rootKey.key,
            parseSealedEnvelope(Buffer.from(entry.wrapped, "base64"), where),
            wrapPurpose(entry),
            where,
          ),
        );
      } catch (error) {
        throw new KeyringError(
          `${(error as Error).message}. The keyring's keys cannot be unwrapped: restore ${keyringFileName} from a backup`,
        );
      }
    }
    this.#keys = keys;
  }
}

function wrapNew(rootKey: RootKey, version: number, nowMs: number) {
  const key = randomBytes(sealingKeyBytes);
  const version_ = { version, createdAtMs: Math.floor(nowMs) };
  const wrapped = seal(rootKey.key, 0, wrapPurpose(version_), key).toString("base64");
  return { entry: { ...version_, wrapped }, key };
}

function readKeyringFile(path: string, rootKey: RootKey): KeyringFile {
  let parsed: KeyringFile;
  try {
    if (statSync(path).size > keyringFileBytesMax)
      throw new KeyringError(`${path} is too large to be a keyring`);
    parsed = checkKeyringFile(JSON.parse(readFileSync(path, "utf8")));
  } catch (error) {
    if (error instanceof KeyringError) throw error;
    throw new KeyringError(
      `${path} is not a readable keyring (${(error as Error).message.slice(0, 200)}): restore it from a backup`,
    );
  }
  const versions = parsed.keys.map((entry) => entry.version);
  if (versions.some((version, at) => at > 0 && version <= (versions[at - 1] ?? 0)))
    throw new KeyringError(`${path}: key versions are not increasing; restore it from a backup`);
  if (parsed.rootKeyId !== rootKey.id)
    throw new KeyringError(
      `the keyring ${path} was made with root key ${parsed.rootKeyId}, but ${rootKey.path} ` +
        `(${rootKey.source}) holds root key ${rootKey.id}. Pass the original key with ` +
        "--master-key-file FILE or $EDGEWARD_MASTER_KEY_FILE; edgeward will not make a new keyring " +
        "over this one, since every secret sealed with it would be lost",
    );
  return parsed;
}
