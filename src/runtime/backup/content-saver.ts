// Turns a file into deduplicated, sealed data blobs: read, chunk, id, and (for new chunks)
// compress, encrypt and append to the pack writer. Memory per saver is one read buffer of
// twice the largest chunk, whatever the file size.
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

/** Reads `path` chunk by chunk into a reusable buffer and hands each chunk to `onChunk`. */
export async function forEachChunk(
  path: string,
  buffer: Buffer,
  parameters: ChunkerParameters,
  onChunk: (chunk: Buffer) => Promise<void> | void,
): Promise<number> {
  const handle = await open(path, "r");
  let bytesRead = 0;
  try {
    let start = 0;
    let end = 0;
    let endOfFile = false;
    for (;;) {
      if (!endOfFile && end - start < parameters.chunkSizeBytesMax) {
        buffer.copy(buffer, 0, start, end);
        end -= start;
        start = 0;
        while (end < buffer.length) {
          const { bytesRead: count } = await handle.read(buffer, end, buffer.length - end, null);
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
  } finally {
    await handle.close();
  }
  return bytesRead;
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
    const bytesRead = await forEachChunk(path, this.buffer, this.parameters, async (chunk) => {
      const id = computeBlobId(this.keys, chunk);
      content.push(id);
      if (!sink.isKnown(id))
        await sink.add(sealBlob(this.keys, this.compressor, "data", chunk, id));
    });
    return { content, bytesRead };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
