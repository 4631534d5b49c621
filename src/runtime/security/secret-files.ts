// The secret files of one data dir, sealed with its keyring. A file written by an earlier
// edgeward in plaintext is sealed in place the first time it is read (the plaintext is
// replaced by the rename), so an upgraded data dir keeps working.

import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { isSealed, sealedPlaintextBytesMax } from "../../core/security/sealed-envelope.ts";
import type { Keyring } from "./keyring.ts";
import { writeSecretFileAtomically } from "./secret-file-write.ts";

/** Names are relative paths inside the data dir: `signing.key`, `tls/ca.key`. */
const secretNamePattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

export class SecretFileError extends Error {
  override readonly name = "SecretFileError";
}

export class SecretFiles {
  readonly directory: string;
  readonly keyring: Keyring;

  constructor(directory: string, keyring: Keyring) {
    this.directory = directory;
    this.keyring = keyring;
  }

  pathOf(name: string): string {
    if (!secretNamePattern.test(name) || name.split("/").includes(".."))
      throw new Error(`"${name}" is not a secret file name`);
    return join(this.directory, name);
  }

  exists(name: string): boolean {
    return existsSync(this.pathOf(name));
  }

  /** The secret's bytes, or undefined when there is no such file. Plaintext ones are sealed. */
  read(name: string): Buffer | undefined {
    const path = this.pathOf(name);
    if (!existsSync(path)) return undefined;
    if (statSync(path).size > sealedPlaintextBytesMax + 64)
      throw new SecretFileError(`${path} is too large to be a secret file`);
    const bytes = readFileSync(path);
    if (!isSealed(bytes)) {
      this.write(name, bytes);
      return bytes;
    }
    return this.keyring.open(`file:${name}`, bytes, path);
  }

  readText(name: string): string | undefined {
    return this.read(name)?.toString("utf8");
  }

  /** Seals `content` with the newest key and replaces the file atomically (0600). */
  write(name: string, content: string | Uint8Array): void {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    const path = this.pathOf(name);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeSecretFileAtomically(path, this.keyring.seal(`file:${name}`, bytes));
  }

  /** Seals every plaintext file among `names`; returns the ones it sealed. */
  migrate(names: readonly string[]): string[] {
    const sealed: string[] = [];
    for (const name of names) {
      const path = this.pathOf(name);
      if (!existsSync(path) || isSealed(readFileSync(path))) continue;
      this.read(name);
      sealed.push(name);
    }
    return sealed;
  }

  /** Re-seals every existing file among `names` with the newest key; returns how many. */
  resealAll(names: readonly string[]): number {
    let count = 0;
    for (const name of names) {
      const content = this.read(name);
      if (content === undefined) continue;
      this.write(name, content);
      count += 1;
    }
    return count;
  }
}
