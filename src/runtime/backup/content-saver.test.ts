// The growing read buffer cuts exactly where a scan of the whole file does, whatever the read
// sizes and however long the chunks (runs of zeros give chunks of the maximum size).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  chunkerTestingOptions,
  createChunkerParameters,
  findChunkLength,
} from "../../core/backup/chunker.ts";
import { ChunkReadBuffer, forEachChunk } from "./content-saver.ts";
import { noise } from "./testing.ts";

const parameters = createChunkerParameters(42, chunkerTestingOptions);

function referenceCuts(data: Buffer): number[] {
  const lengths: number[] = [];
  for (let start = 0; start < data.length;) {
    const length = findChunkLength(data, start, data.length, parameters);
    lengths.push(length);
    start += length;
  }
  return lengths;
}

async function bufferedCuts(
  data: Buffer,
  bufferBytesInitial: number,
  readBytesMax: number,
): Promise<number[]> {
  let position = 0;
  const lengths: number[] = [];
  const readBuffer = new ChunkReadBuffer(parameters, bufferBytesInitial);
  const bytesRead = await forEachChunk(
    {
      read: (target, offset, length) => {
        const count = Math.min(length, readBytesMax, data.length - position);
        data.copy(target, offset, position, position + count);
        position += count;
        return count;
      },
    },
    readBuffer,
    parameters,
    (chunk) => void lengths.push(chunk.length),
  );
  expect(bytesRead).toBe(data.length);
  expect(readBuffer.bytes.length).toBe(bufferBytesInitial);
  return lengths;
}

describe("forEachChunk with a growing read buffer", () => {
  it("cuts where a whole-file scan cuts", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ zeros: fc.boolean(), length: fc.integer({ min: 1, max: 150_000 }) }), {
          maxLength: 6,
        }),
        fc.integer({ min: 1, max: 1000 }),
        fc.constantFrom(4096, 10_000, 32_768),
        fc.integer({ min: 1, max: 70_000 }),
        async (pieces, seed, bufferBytesInitial, readBytesMax) => {
          const data = Buffer.concat(
            pieces.map((piece, index) =>
              piece.zeros ? Buffer.alloc(piece.length) : noise(piece.length, seed + index),
            ),
          );
          expect(await bufferedCuts(data, bufferBytesInitial, readBytesMax)).toEqual(
            referenceCuts(data),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
