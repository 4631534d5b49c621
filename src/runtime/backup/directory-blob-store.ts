// The EDGE_LOCAL backend: blobs as files under a directory. Writes go to a temporary file
// that is fsynced, renamed into place and made durable by fsyncing the directory, so a crash
// leaves either the old state or the whole new blob (plus, at worst, a stray temporary file).
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rename, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { BackupError, assert } from "../../core/backup/errors.ts";
import { isValidBlobName } from "../../core/backup/blob-store.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";

const temporaryPrefix = ".tmp-";

export class DirectoryBlobStore implements BlobStore {
  private readonly directoriesMade = new Set<string>();

  constructor(readonly location: string) {}

  private pathOf(name: string): string {
    assert(isValidBlobName(name), `invalid blob name "${name}"`);
    return join(this.location, name);
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const pending = await this.begin();
    try {
      await pending.append(data);
      await pending.commit(name);
    } catch (error) {
      await pending.abort();
      throw error;
    }
  }

  /** Appends go to a temporary file in the root; commit fsyncs, renames and fsyncs the directory. */
  async begin(): Promise<PendingBlob> {
    const temporaryPath = join(this.location, temporaryPrefix + randomBytes(8).toString("hex"));
    let handle: FileHandle | undefined;
    try {
      await this.makeDirectory(this.location);
      handle = await open(temporaryPath, "wx");
    } catch (error) {
      throw storageError(error, `creating a file in ${this.location}`);
    }
    const file = handle;
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await file.close();
    };
    return {
      append: async (data) => {
        try {
          if (data instanceof Uint8Array) await file.writeFile(data);
          else await writeAll(file, data);
        } catch (error) {
          throw storageError(error, `writing to ${this.location}`);
        }
      },
      commit: async (name) => {
        const path = this.pathOf(name);
        try {
          await file.sync();
          await close();
          await this.makeDirectory(dirname(path));
          await rename(temporaryPath, path);
          const directoryHandle = await open(dirname(path), "r");
          try {
            await directoryHandle.sync();
          } finally {
            await directoryHandle.close();
          }
        } catch (error) {
          throw storageError(error, `writing ${name} to ${this.location}`);
        }
      },
      abort: async () => {
        await close().catch(() => undefined);
        await unlink(temporaryPath).catch(() => undefined);
      },
    };
  }

  private async makeDirectory(directory: string): Promise<void> {
    if (this.directoriesMade.has(directory)) return;
    await mkdir(directory, { recursive: true });
    this.directoriesMade.add(directory);
  }

  async get(name: string): Promise<Uint8Array> {
    try {
      return await readFile(this.pathOf(name));
    } catch (error) {
      throw storageError(error, `reading ${name} from ${this.location}`, name);
    }
  }

  async getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const buffer = Buffer.allocUnsafe(lengthBytes);
    return buffer.subarray(0, await this.getRangeInto(name, offsetBytes, buffer));
  }

  /** Reads up to `target.length` bytes from `offsetBytes` into `target`; returns how many. */
  async getRangeInto(name: string, offsetBytes: number, target: Buffer): Promise<number> {
    try {
      const handle = await open(this.pathOf(name), "r");
      try {
        let filled = 0;
        while (filled < target.length) {
          const { bytesRead } = await handle.read(
            target,
            filled,
            target.length - filled,
            offsetBytes + filled,
          );
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return filled;
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw storageError(error, `reading ${name} from ${this.location}`, name);
    }
  }

  async sizeBytes(name: string): Promise<number> {
    try {
      return (await stat(this.pathOf(name))).size;
    } catch (error) {
      throw storageError(error, `reading ${name} from ${this.location}`, name);
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      await stat(this.pathOf(name));
      return true;
    } catch (error) {
      if (errorCode(error) === "ENOENT") return false;
      throw storageError(error, `reading ${name} from ${this.location}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const names: string[] = [];
    const walk = async (relative: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.location, relative), { withFileTypes: true });
      } catch (error) {
        if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return;
        throw storageError(error, `listing ${relative} in ${this.location}`);
      }
      for (const entry of entries) {
        if (entry.name.startsWith(temporaryPrefix)) continue;
        const name = relative === "" ? entry.name : `${relative}/${entry.name}`;
        if (entry.isDirectory()) await walk(name);
        else if (name.startsWith(prefix)) names.push(name);
      }
    };
    // Walk only the prefix's directory part; the rest of the prefix filters names.
    const directory = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    await walk(directory);
    return names;
  }

  /**
   * Removes the temporary files of interrupted writes last modified at least `ageMsMin` ago
   * (a write in progress touches its file continuously); returns how many it removed.
   */
  async removeTemporaryFiles(ageMsMin: number, nowMs: number = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.location);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return 0;
      throw storageError(error, `listing ${this.location}`);
    }
    let removed = 0;
    for (const name of names) {
      if (!name.startsWith(temporaryPrefix)) continue;
      const path = join(this.location, name);
      try {
        if (nowMs - (await stat(path)).mtimeMs < ageMsMin) continue;
        await unlink(path);
        removed++;
      } catch (error) {
        // Committed or removed by its writer meanwhile.
        if (errorCode(error) !== "ENOENT") throw storageError(error, `removing ${path}`);
      }
    }
    return removed;
  }

  async delete(name: string): Promise<void> {
    try {
      await unlink(this.pathOf(name));
    } catch (error) {
      if (errorCode(error) !== "ENOENT")
        throw storageError(error, `deleting ${name} from ${this.location}`);
    }
  }
}

/** Bounds one writev call's vector (the kernel's IOV_MAX is 1024). */
const writevPartsMax = 1024;

async function writeAll(handle: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  for (let first = 0; first < parts.length; first += writevPartsMax) {
    let pending = parts.slice(first, first + writevPartsMax);
    while (pending.length > 0) {
      let { bytesWritten } = await handle.writev(pending);
      // A short write leaves a tail: drop what was written and retry the rest.
      while (pending.length > 0 && bytesWritten >= (pending[0] as Uint8Array).length) {
        bytesWritten -= (pending[0] as Uint8Array).length;
        pending = pending.slice(1);
      }
      if (pending.length > 0 && bytesWritten > 0)
        pending[0] = (pending[0] as Uint8Array).subarray(bytesWritten);
    }
  }
}

export function errorCode(error: unknown): string | undefined {
  return typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof error.code === "string"
    ? error.code
    : undefined;
}

/** Maps operating-system failures to the port's typed errors. */
export function storageError(error: unknown, doing: string, missingName?: string): BackupError {
  if (error instanceof BackupError) return error;
  const code = errorCode(error);
  if (code === "ENOENT" && missingName !== undefined)
    return new BackupError("BLOB_NOT_FOUND", `${missingName} does not exist`, { cause: error });
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new BackupError(
      "STORAGE_FULL",
      `no space left on the repository's disk while ${doing}; nothing half-written was kept, free some space and run the command again`,
      { cause: error },
    );
  }
  return new BackupError(
    "STORAGE_FAILED",
    `${doing} failed: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
