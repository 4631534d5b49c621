// Reads ranges of the packs of a repository in a local directory with synchronous calls,
// keeping the last pack open: a pack is read in several windows, one after another.
// For threads that have nothing else to do while a read runs (restore lanes beside restore
// workers): a thread-pool round trip per read waits for a pool thread, and with both cores
// busy decrypting and writing, that wait cost more than the read of a page-cached window.
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { storageError } from "./directory-blob-store.ts";

export class PackFileReader {
  private openPack: { name: string; descriptor: number } | undefined;

  constructor(private readonly directory: string) {}

  /** Reads up to `target.length` bytes from `offsetBytes`; returns how many it read. */
  read(packName: string, offsetBytes: number, target: Buffer): number {
    try {
      if (this.openPack?.name !== packName) {
        this.close();
        this.openPack = {
          name: packName,
          descriptor: openSync(join(this.directory, packName), "r"),
        };
      }
      let filled = 0;
      while (filled < target.length) {
        const bytesRead = readSync(
          this.openPack.descriptor,
          target,
          filled,
          target.length - filled,
          offsetBytes + filled,
        );
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled;
    } catch (error) {
      throw storageError(error, `reading ${packName} from ${this.directory}`, packName);
    }
  }

  /** Closes the open pack, if any; the next read opens its pack again. */
  close(): void {
    const descriptor = this.openPack?.descriptor;
    this.openPack = undefined;
    if (descriptor !== undefined) closeSync(descriptor);
  }
}
