// One thread's way through the files of a restore: reads each blob's sealed bytes from its
// pack, authenticates, decompresses and re-identifies it, and writes it to a temporary file
// that is renamed into place once all of it has been verified. A lane owns its buffers, so
// lanes on the calling thread and on restore workers never share one.
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import type { IndexedBlob } from "../../core/backup/objects.ts";
import { openBlob } from "./blob-codec.ts";
import { sealOverheadBytes } from "./crypto.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import type { Keys } from "./crypto.ts";
import { GarbageBudget } from "./garbage-budget.ts";
import {
  discardPartialFile,
  finishFile,
  openPartialFile,
  partialPathOf,
  writeFully,
} from "./restore-file.ts";
import type { FileMetadata } from "./restore-file.ts";

/** A data blob of a file to restore, with where its pack is and how long that pack is. */
export interface PlannedBlob extends IndexedBlob {
  packName: string;
  packSizeBytes: number;
}

/** A file to restore: where it goes, its metadata and its blobs in order. */
export interface PlannedFile extends FileMetadata {
  name: string;
  targetPath: string;
  blobs: PlannedBlob[];
}

/**
 * Reads up to `target.length` bytes of a pack from `offsetBytes` into `target` and returns how
 * many it read; a missing pack is a `BLOB_NOT_FOUND` BackupError.
 */
export type PackRangeReader = (
  packName: string,
  offsetBytes: number,
  target: Buffer,
) => Promise<number> | number;

/** How a lane reads a store's packs: into the lane's buffer where the store can. */
export function packRangeReaderOf(store: BlobStore): PackRangeReader {
  if (store instanceof DirectoryBlobStore)
    return (name, offsetBytes, target) => store.getRangeInto(name, offsetBytes, target);
  return async (name, offsetBytes, target) => {
    const bytes = await store.getRange(name, offsetBytes, target.length);
    target.set(bytes.subarray(0, target.length));
    return Math.min(bytes.length, target.length);
  };
}

/**
 * Read-ahead per pack read: small blobs next to each other then cost one read. 2 MiB, not 4:
 * 16 MiB less peak RSS for a restore at the same CPU time (measured with two files in flight).
 */
const readWindowBytes = 2 * 1024 * 1024;
/**
 * Decrypted bytes between collections of the young generation: `unsealInto` leaves its 64 KiB
 * pieces as garbage, which V8 would free only after ~64 MiB of external memory.
 */
const garbageBytesMax = 4 * 1024 * 1024;
/**
 * One budget per thread, shared by its lanes: the garbage is the thread's heap's, whichever
 * lane made it. A budget per lane left up to 30 MiB more of it with two lanes on one thread.
 */
const threadGarbage = new GarbageBudget(garbageBytesMax);

export class RestoreLane {
  /** The read-ahead window and what it holds: `windowFilled` bytes of `windowPack`. */
  private readonly window = Buffer.allocUnsafe(readWindowBytes);
  private windowPack: string | undefined;
  private windowOffsetBytes = 0;
  private windowFilled = 0;
  /**
   * Two buffers of the largest sealed chunk, so that decrypting and decompressing allocate
   * nothing per blob (no fresh mapping, no garbage of whole blobs). A blob longer than the
   * window is read into `blobBuffer`, decrypted in place there and, if compressed,
   * decompressed into `spareBuffer`; a blob from the window is decrypted into `spareBuffer` and
   * decompressed into `blobBuffer`. Only the pages a blob reaches count in RSS: with
   * incompressible data stored raw, `spareBuffer` stays at the window's 2 MiB.
   */
  private readonly blobBuffer: Buffer;
  private readonly spareBuffer: Buffer;

  constructor(
    private readonly keys: Keys,
    chunkSizeBytesMax: number,
    private readonly readPackRange: PackRangeReader,
  ) {
    this.blobBuffer = Buffer.allocUnsafe(chunkSizeBytesMax + sealOverheadBytes);
    this.spareBuffer = Buffer.allocUnsafe(chunkSizeBytesMax + sealOverheadBytes);
  }

  /** Writes one file; `onBytes` hears of every blob written. Leaves nothing unverified behind. */
  async restoreFile(file: PlannedFile, onBytes: (bytes: number) => void): Promise<void> {
    const partialPath = partialPathOf(file.targetPath, file.name);
    const descriptor = openPartialFile(partialPath);
    try {
      for (const blob of file.blobs) {
        const { sealed, inBlobBuffer } = await this.sealedBytes(blob);
        // Decoded and written in one synchronous step: `sealed` and the plaintext are views of
        // this lane's buffers, valid until its next read.
        const plaintext = openBlob(this.keys, blob, sealed, blob.packName, {
          decrypted: inBlobBuffer ? this.blobBuffer : this.spareBuffer,
          decompressed: inBlobBuffer ? this.spareBuffer : this.blobBuffer,
        });
        writeFully(descriptor, plaintext);
        threadGarbage.add(sealed.length);
        onBytes(plaintext.length);
      }
      finishFile(descriptor, file, partialPath, file.targetPath);
    } catch (error) {
      discardPartialFile(descriptor, partialPath);
      throw error;
    }
  }

  /** The blob's sealed bytes, from the window or read alone into the blob buffer. */
  private async sealedBytes(
    blob: PlannedBlob,
  ): Promise<{ sealed: Uint8Array; inBlobBuffer: boolean }> {
    const endBytes = blob.offsetBytes + blob.lengthBytes;
    if (
      blob.packName === this.windowPack &&
      this.windowOffsetBytes <= blob.offsetBytes &&
      endBytes <= this.windowOffsetBytes + this.windowFilled
    )
      return {
        sealed: this.window.subarray(
          blob.offsetBytes - this.windowOffsetBytes,
          endBytes - this.windowOffsetBytes,
        ),
        inBlobBuffer: false,
      };
    if (blob.lengthBytes > this.window.length) {
      // A large blob is read alone, into the blob buffer: the window keeps what it holds.
      if (blob.lengthBytes > this.blobBuffer.length)
        throw new CorruptObjectError(
          `${blob.type} blob ${blob.id} in ${blob.packName}`,
          `is indexed as ${blob.lengthBytes} bytes long, more than the repository's largest chunk`,
        );
      const filled = await this.read(blob, this.blobBuffer.subarray(0, blob.lengthBytes));
      return { sealed: this.blobBuffer.subarray(0, filled), inBlobBuffer: true };
    }
    const lengthBytes = Math.max(
      blob.lengthBytes,
      Math.min(this.window.length, blob.packSizeBytes - blob.offsetBytes),
    );
    this.windowPack = undefined;
    this.windowFilled = await this.read(blob, this.window.subarray(0, lengthBytes));
    this.windowPack = blob.packName;
    this.windowOffsetBytes = blob.offsetBytes;
    return {
      sealed: this.window.subarray(0, Math.min(blob.lengthBytes, this.windowFilled)),
      inBlobBuffer: false,
    };
  }

  private async read(blob: PlannedBlob, target: Buffer): Promise<number> {
    try {
      return await this.readPackRange(blob.packName, blob.offsetBytes, target);
    } catch (error) {
      if (error instanceof BackupError && error.code === "BLOB_NOT_FOUND")
        throw new CorruptObjectError(
          blob.packName,
          `is missing (needed for ${blob.type} blob ${blob.id})`,
        );
      throw error;
    }
  }
}
