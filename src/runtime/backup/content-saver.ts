// Turns a file into deduplicated, sealed data blobs: read, chunk, id, and (for new chunks)
// compress, encrypt and append to the pack writer. Memory per saver is one read buffer of a
// few MiB that grows to the largest chunk only while a chunk that large is being cut.
import { closeSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { findChunkLength } from "../../core/backup/chunker.ts";
import type { ChunkerParameters } from "../../core/backup/chunker.ts";
import type { SealedBlob } from "./blob-codec.ts";
import { sealBlob } from "./blob-codec.ts";
import { computeBlobId } from "./crypto.ts";
import type { BlobCompressor, Keys } from "./crypto.ts";

/** Receives each chunk of a file in order; `sealed` is absent when the blob is known. */
export interface ChunkSink {
  isKnown(blobId: string): boolean;
  add(blob: SealedBlob): Promise<void>;
}

export interface ContentSaver {
  /** The ids of the file's chunks in order; new chunks have gone to the sink. */
  saveFile(path: string, sink: ChunkSink): Promise<{ content: string[]; bytesRead: number }>;
  close(): Promise<void>;
}

/** Where chunk bytes come from: `read` returns how many bytes it put at `offset` (0 at the end). */
export interface ChunkSource {
  read(buffer: Buffer, offset: number, length: number): Promise<number> | number;
}

/**
 * Bytes a read buffer starts with: a few average chunks, so most cuts are found without
 * growing it, and a chunk that straddles the end (rescanned after the refill) is rare.
 */
const readBufferBytesInitial = 4 * 1024 * 1024;

/**
 * The reusable read buffer of one saver. It grows, up to the largest chunk, only while a
 * chunk longer than it is being cut, and shrinks back after that file: a whole-file buffer
 * of twice the largest chunk (16 MiB per thread) was most of a backup's memory.
 */
export class ChunkReadBuffer {
  bytes: Buffer;

  constructor(
    private readonly parameters: ChunkerParameters,
    private readonly bytesInitial = readBufferBytesInitial,
  ) {
    this.bytes = Buffer.allocUnsafe(this.initialBytes());
  }

  private initialBytes(): number {
    return Math.min(this.bytesInitial, this.parameters.chunkSizeBytesMax);
  }

  /** Room for at least one more byte after `usedBytes`, never beyond the largest chunk. */
  grow(usedBytes: number): void {
    const grownBytes = Math.min(2 * this.bytes.length, this.parameters.chunkSizeBytesMax);
    const grown = Buffer.allocUnsafe(grownBytes);
    this.bytes.copy(grown, 0, 0, usedBytes);
    this.bytes = grown;
  }

  /** Gives back the memory a long chunk needed. */
  shrink(): void {
    if (this.bytes.length > this.initialBytes())
      this.bytes = Buffer.allocUnsafe(this.initialBytes());
  }
}

/**
 * Reads a source into `readBuffer` and hands each chunk to `onChunk` (a view, valid until
 * `onChunk` returns). A cut found before the end of the bytes read is final, because a cut
 * depends only on the bytes before it; otherwise more is read and the chunk is scanned again.
 */
export async function forEachChunk(
  source: ChunkSource,
  readBuffer: ChunkReadBuffer,
  parameters: ChunkerParameters,
  onChunk: (chunk: Buffer) => Promise<void> | void,
): Promise<number> {
  let bytesRead = 0;
  let start = 0;
  let end = 0;
  let endOfFile = false;
  try {
    for (;;) {
      const available = end - start;
      const length =
        available === 0 ? 0 : findChunkLength(readBuffer.bytes, start, end, parameters);
      const final =
        endOfFile ||
        (length > 0 && (length < available || available >= parameters.chunkSizeBytesMax));
      if (final) {
        if (length === 0) break;
        await onChunk(readBuffer.bytes.subarray(start, start + length));
        start += length;
        continue;
      }
      // The chunk may go on past the bytes read: keep them at the front and read more.
      readBuffer.bytes.copy(readBuffer.bytes, 0, start, end);
      end = available;
      start = 0;
      if (end === readBuffer.bytes.length) readBuffer.grow(end);
      const buffer = readBuffer.bytes;
      while (end < buffer.length) {
        const count = await source.read(buffer, end, buffer.length - end);
        if (count === 0) {
          endOfFile = true;
          break;
        }
        end += count;
        bytesRead += count;
      }
    }
  } finally {
    readBuffer.shrink();
  }
  return bytesRead;
}

/** Chunks a file read through the thread pool (the main thread must not block). */
export async function forEachChunkOfFile(
  path: string,
  readBuffer: ChunkReadBuffer,
  parameters: ChunkerParameters,
  onChunk: (chunk: Buffer) => Promise<void> | void,
): Promise<number> {
  const handle = await open(path, "r");
  try {
    return await forEachChunk(
      {
        read: async (target, offset, length) =>
          (await handle.read(target, offset, length, null)).bytesRead,
      },
      readBuffer,
      parameters,
      onChunk,
    );
  } finally {
    await handle.close();
  }
}

/** Saves on the calling thread. Several inline savers overlap one file's reads with another's hashing. */
export class InlineContentSaver implements ContentSaver {
  private readonly readBuffer: ChunkReadBuffer;

  constructor(
    private readonly keys: Keys,
    private readonly parameters: ChunkerParameters,
    private readonly compressor: BlobCompressor,
  ) {
    this.readBuffer = new ChunkReadBuffer(parameters);
  }

  async saveFile(path: string, sink: ChunkSink): Promise<{ content: string[]; bytesRead: number }> {
    const content: string[] = [];
    const bytesRead = await forEachChunkOfFile(
      path,
      this.readBuffer,
      this.parameters,
      async (chunk) => {
        const id = computeBlobId(this.keys, chunk);
        content.push(id);
        if (!sink.isKnown(id))
          await sink.add(sealBlob(this.keys, this.compressor, "data", chunk, id));
      },
    );
    return { content, bytesRead };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Saves files smaller than the minimum chunk size (one blob each) on the calling thread with
 * synchronous reads: for such files a round trip to a worker costs more than the work. Every
 * file is read into the same buffer: a buffer per file (`readFileSync`) was garbage that
 * outlived 10,000 small files' worth of collections and raised the backup's peak RSS.
 */
export class SmallFileSaver {
  private readonly readBuffer: Buffer;

  constructor(
    private readonly keys: Keys,
    parameters: ChunkerParameters,
    private readonly compressor: BlobCompressor,
  ) {
    this.readBuffer = Buffer.allocUnsafe(parameters.chunkSizeBytesMin);
  }

  /** Undefined when the file has grown to a chunk or more since it was listed. */
  async saveFile(
    path: string,
    sink: ChunkSink,
  ): Promise<{ content: string[]; bytesRead: number } | undefined> {
    const data = this.readWhole(path);
    if (data === undefined) return undefined;
    if (data.length === 0) return { content: [], bytesRead: 0 };
    const id = computeBlobId(this.keys, data);
    // Sealing copies the bytes (compressed or encrypted), so the buffer is free once it returns.
    if (!sink.isKnown(id)) await sink.add(sealBlob(this.keys, this.compressor, "data", data, id));
    return { content: [id], bytesRead: data.length };
  }

  /** The file's bytes, a view of the shared buffer; undefined if it fills the buffer. */
  private readWhole(path: string): Buffer | undefined {
    const descriptor = openSync(path, "r");
    try {
      let filled = 0;
      for (;;) {
        const count = readSync(
          descriptor,
          this.readBuffer,
          filled,
          this.readBuffer.length - filled,
          null,
        );
        if (count === 0) return this.readBuffer.subarray(0, filled);
        filled += count;
        if (filled === this.readBuffer.length) return undefined;
      }
    } finally {
      closeSync(descriptor);
    }
  }
}
