// A service's stdout and stderr, appended to `<logDir>/<service>.log` and rotated by size:
// when the file would pass `fileBytesMax` it becomes `.1`, `.1` becomes `.2`, and so on, and
// only `filesKept` old files stay. Disk use per service is bounded by (filesKept + 1) files.

import type { Buffer } from "node:buffer";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { Writable } from "node:stream";

export interface LogRotationOptions {
  /** Larger files mean fewer rotations, but more disk per service. */
  fileBytesMax: number;
  /** Old files kept beside the current one; 0 drops old output at each rotation. */
  filesKept: number;
}

export const logRotationDefaults: LogRotationOptions = {
  fileBytesMax: 1024 * 1024,
  filesKept: 3,
};

/**
 * A writable that never fails its writer: a write error (full disk, removed directory) drops
 * the output and is reported to `onError`, because a failed stream would stop draining the
 * child's pipe and the child would block on its next write.
 */
export class RotatingLogWriter extends Writable {
  readonly #path: string;
  readonly #options: LogRotationOptions;
  readonly #onError: (error: Error) => void;
  #handle: FileHandle | undefined;
  #sizeBytes = 0;

  constructor(path: string, options: LogRotationOptions, onError: (error: Error) => void) {
    super();
    if (!(options.fileBytesMax > 0) || !(options.filesKept >= 0)) {
      throw new Error(`invalid log rotation options ${JSON.stringify(options)}`);
    }
    this.#path = path;
    this.#options = options;
    this.#onError = onError;
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    this.#append(chunk).then(
      () => callback(),
      (error: unknown) => {
        this.#onError(error as Error);
        callback();
      },
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle === undefined) {
      callback();
      return;
    }
    handle.close().then(
      () => callback(),
      (error: unknown) => {
        this.#onError(error as Error);
        callback();
      },
    );
  }

  async #append(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      const handle = await this.#open();
      const spaceBytes = this.#options.fileBytesMax - this.#sizeBytes;
      if (rest.length <= spaceBytes) {
        await this.#write(handle, rest);
        return;
      }
      // Cut after the last whole line that fits, so a line is split only when it alone is
      // larger than a file.
      const newlineIndex = spaceBytes > 0 ? rest.lastIndexOf(0x0a, spaceBytes - 1) : -1;
      const cutBytes = newlineIndex >= 0 ? newlineIndex + 1 : this.#sizeBytes > 0 ? 0 : spaceBytes;
      if (cutBytes > 0) await this.#write(handle, rest.subarray(0, cutBytes));
      rest = rest.subarray(cutBytes);
      await this.#rotate();
    }
  }

  async #write(handle: FileHandle, bytes: Buffer): Promise<void> {
    await handle.write(bytes);
    this.#sizeBytes += bytes.length;
  }

  async #open(): Promise<FileHandle> {
    if (this.#handle !== undefined) return this.#handle;
    await mkdir(dirname(this.#path), { recursive: true });
    const handle = await open(this.#path, "a");
    this.#sizeBytes = (await handle.stat()).size;
    this.#handle = handle;
    return handle;
  }

  async #rotate(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
    const { filesKept } = this.#options;
    if (filesKept === 0) {
      await rm(this.#path, { force: true });
      return;
    }
    for (let index = filesKept - 1; index >= 1; index -= 1) {
      await renameIfPresent(`${this.#path}.${index}`, `${this.#path}.${index + 1}`);
    }
    await renameIfPresent(this.#path, `${this.#path}.1`);
  }
}

async function renameIfPresent(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}
