// Turns a file into deduplicated, sealed data blobs: read, chunk, id, and (for new chunks)
// compress, encrypt and append to the pack writer. Memory per saver is one read buffer of
// twice the largest chunk, whatever the file size.
import { readFileSync } from "node:fs";
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
 * Reads a source chunk by chunk into a reusable buffer and hands each chunk to `onChunk`.
 * The buffer holds twice the largest chunk, so a cut is always searched over enough bytes.
 */
export async function forEachChunk(
  source: ChunkSource,
  buffer: Buffer,
  parameters: ChunkerParameters,
  onChunk: (chunk: Buffer) => Promise<void> | void,
): Promise<number> {
  let bytesRead = 0;
  let start = 0;
  let end = 0;
  let endOfFile = false;
  for (;;) {
    if (!endOfFile && end - start < parameters.chunkSizeBytesMax) {
      buffer.copy(buffer, 0, start, end);
      end -= start;
      start = 0;
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
    if (start === end) break;
    const length = findChunkLength(buffer, start, end, parameters);
    await onChunk(buffer.subarray(start, start + length));
    start += length;
  }
  return bytesRead;
}

/** Chunks a file read through the thread pool (the main thread must not block). */
export async function forEachChunkOfFile(
  path: string,
  buffer: Buffer,
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
      buffer,
      parameters,
      onChunk,
    );
  } finally {
    await handle.close();
  }
}

/** Saves on the calling thread. Several inline savers overlap one file's reads with another's hashing. */
export class InlineContentSaver implements ContentSaver {
  private readonly buffer: Buffer;

  constructor(
    private readonly keys: Keys,
    private readonly parameters: ChunkerParameters,
    private readonly compressor: BlobCompressor,
  ) {
    this.buffer = Buffer.allocUnsafe(2 * parameters.chunkSizeBytesMax);
  }

  async saveFile(path: string, sink: ChunkSink): Promise<{ content: string[]; bytesRead: number }> {
    const content: string[] = [];
    const bytesRead = await forEachChunkOfFile(
      path,
      this.buffer,
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
 * one synchronous read: for such files a round trip to a worker costs more than the work.
 */
export class SmallFileSaver {
  constructor(
    private readonly keys: Keys,
    private readonly parameters: ChunkerParameters,
    private readonly compressor: BlobCompressor,
  ) {}

  /** Undefined when the file has grown to a chunk or more since it was listed. */
  async saveFile(
    path: string,
    sink: ChunkSink,
  ): Promise<{ content: string[]; bytesRead: number } | undefined> {
    const data = readFileSync(path);
    if (data.length >= this.parameters.chunkSizeBytesMin) return undefined;
    if (data.length === 0) return { content: [], bytesRead: 0 };
    const id = computeBlobId(this.keys, data);
    if (!sink.isKnown(id)) await sink.add(sealBlob(this.keys, this.compressor, "data", data, id));
    return { content: [id], bytesRead: data.length };
  }
}
