// A request body assembled piece by piece for the network blob stores (S3, HTTP): hashed as
// it grows, kept in memory while small and spilled to a temporary file once large, so a
// pending pack never has to sit whole in memory and can be re-sent on a retry.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import type { PendingBlob } from "../../core/backup/blob-store.ts";
import { BackupError, assert } from "../../core/backup/errors.ts";

/** A complete body: its length, SHA-256, and a way to read it (again, on every retry). */
export type Body =
  | { kind: "bytes"; parts: readonly Uint8Array[]; lengthBytes: number; sha256Hex: string }
  | { kind: "file"; path: string; lengthBytes: number; sha256Hex: string };

export function bytesBody(data: Uint8Array | readonly Uint8Array[]): Body {
  const parts = data instanceof Uint8Array ? [data] : data;
  const hash = createHash("sha256");
  let lengthBytes = 0;
  for (const part of parts) {
    hash.update(part);
    lengthBytes += part.length;
  }
  return { kind: "bytes", parts, lengthBytes, sha256Hex: hash.digest("hex") };
}

/** Writes `body` to `destination`; the caller ends nothing else on it. */
export function sendBody(body: Body, destination: NodeJS.WritableStream): Readable | undefined {
  if (body.kind === "bytes") {
    for (const part of body.parts) destination.write(part);
    destination.end();
    return undefined;
  }
  const source = createReadStream(body.path);
  source.pipe(destination);
  return source;
}

export interface SpoolLimits {
  /** Bytes kept in memory before spilling to a file. */
  memoryBytesMax: number;
  /** Bytes accepted at all. */
  lengthBytesMax: number;
  temporaryDirectory: string;
}

export class Spool {
  private readonly hash = createHash("sha256");
  private buffered: Buffer[] = [];
  private lengthBytes = 0;
  private file: { handle: FileHandle; path: string } | undefined;
  private finished = false;

  constructor(private readonly limits: SpoolLimits) {}

  async append(data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    assert(!this.finished, "append after the body was finished or discarded");
    const parts = data instanceof Uint8Array ? [data] : data;
    for (const part of parts) {
      this.hash.update(part);
      this.lengthBytes += part.length;
    }
    if (this.lengthBytes > this.limits.lengthBytesMax)
      throw new BackupError(
        "STORAGE_FAILED",
        `a blob grew past the store's limit of ${this.limits.lengthBytesMax} bytes`,
      );
    if (this.file === undefined && this.lengthBytes <= this.limits.memoryBytesMax) {
      for (const part of parts) this.buffered.push(Buffer.from(part));
      return;
    }
    if (this.file === undefined) {
      const path = join(
        this.limits.temporaryDirectory,
        `edgeward-upload-${randomBytes(8).toString("hex")}`,
      );
      this.file = { handle: await open(path, "wx", 0o600), path };
      for (const part of this.buffered) await this.file.handle.write(part);
      this.buffered = [];
    }
    for (const part of parts) await this.file.handle.write(part);
  }

  /** The complete body; call `discard` once it has been sent. */
  async finish(): Promise<Body> {
    assert(!this.finished, "finish twice");
    this.finished = true;
    const sha256Hex = this.hash.digest("hex");
    if (this.file === undefined)
      return { kind: "bytes", parts: this.buffered, lengthBytes: this.lengthBytes, sha256Hex };
    await this.file.handle.close();
    return { kind: "file", path: this.file.path, lengthBytes: this.lengthBytes, sha256Hex };
  }

  async discard(): Promise<void> {
    this.finished = true;
    this.buffered = [];
    if (this.file === undefined) return;
    const { handle, path } = this.file;
    this.file = undefined;
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
  }
}

/**
 * A pending blob for a remote store: appends are hashed and spooled (in memory, then a
 * temporary file), and `commit` hands the whole body to `upload` once, then frees the spool.
 */
export function spooledPendingBlob(
  limits: SpoolLimits,
  upload: (name: string, body: Body) => Promise<void>,
): PendingBlob {
  const spool = new Spool(limits);
  return {
    append: (data) => spool.append(data),
    commit: async (name) => {
      try {
        await upload(name, await spool.finish());
      } finally {
        await spool.discard();
      }
    },
    abort: () => spool.discard(),
  };
}
