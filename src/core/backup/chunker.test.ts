import { describe, expect, it } from "vitest";
import {
  chunkerTestingOptions,
  createChunkerParameters,
  createGearTable,
  findChunkLength,
} from "./chunker.ts";
import type { ChunkerParameters } from "./chunker.ts";

/** Deterministic pseudo-random bytes (xorshift32), so tests need no platform RNG. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

function chunkLengths(data: Uint8Array, parameters: ChunkerParameters): number[] {
  const lengths: number[] = [];
  for (let start = 0; start < data.length;) {
    const length = findChunkLength(data, start, data.length, parameters);
    lengths.push(length);
    start += length;
  }
  return lengths;
}

function boundaries(lengths: number[], shift = 0): Set<number> {
  let position = shift;
  return new Set(lengths.map((length) => (position += length)));
}

const parameters = createChunkerParameters(42, chunkerTestingOptions);

describe("FastCDC chunker", () => {
  it("builds the same gear table from the same seed and a different one from another seed", () => {
    expect(createGearTable(7)).toEqual(createGearTable(7));
    expect(createGearTable(7)).not.toEqual(createGearTable(8));
  });

  it("cuts the same data at the same places every time", () => {
    const data = pseudoRandomBytes(400_000, 1);
    expect(chunkLengths(data, parameters)).toEqual(
      chunkLengths(data, createChunkerParameters(42, chunkerTestingOptions)),
    );
  });

  it("keeps every chunk within [min, max], except a short last one, and covers all bytes", () => {
    const data = pseudoRandomBytes(500_000, 2);
    const lengths = chunkLengths(data, parameters);
    expect(lengths.reduce((sum, length) => sum + length, 0)).toBe(data.length);
    for (const length of lengths.slice(0, -1)) {
      expect(length).toBeGreaterThanOrEqual(chunkerTestingOptions.chunkSizeBytesMin);
      expect(length).toBeLessThanOrEqual(chunkerTestingOptions.chunkSizeBytesMax);
    }
    const averageBytes = data.length / lengths.length;
    // Normalized chunking keeps the mean near the target (a factor of 2 either way).
    expect(averageBytes).toBeGreaterThan(chunkerTestingOptions.chunkSizeBytesAverage / 2);
    expect(averageBytes).toBeLessThan(chunkerTestingOptions.chunkSizeBytesAverage * 2);
  });

  it("cuts at max on data without content boundaries (all zeros) and returns short input whole", () => {
    expect(findChunkLength(new Uint8Array(200_000), 0, 200_000, parameters)).toBe(
      chunkerTestingOptions.chunkSizeBytesMax,
    );
    expect(findChunkLength(new Uint8Array(100), 0, 100, parameters)).toBe(100);
    expect(findChunkLength(new Uint8Array(0), 0, 0, parameters)).toBe(0);
  });

  it("resynchronises after bytes are inserted at the front: only nearby chunks change", () => {
    const original = pseudoRandomBytes(600_000, 3);
    const inserted = new Uint8Array(original.length + 17);
    inserted.set(pseudoRandomBytes(17, 9));
    inserted.set(original, 17);
    const before = chunkLengths(original, parameters);
    const after = boundaries(chunkLengths(inserted, parameters));
    const shiftedBefore = [...boundaries(before, 17)];
    const kept = shiftedBefore.filter((boundary) => after.has(boundary)).length;
    // All but the first couple of boundaries survive the insertion.
    expect(kept).toBeGreaterThanOrEqual(shiftedBefore.length - 2);
  });

  it("depends on the seed, so boundaries do not reveal content across repositories", () => {
    const data = pseudoRandomBytes(300_000, 4);
    expect(chunkLengths(data, parameters)).not.toEqual(
      chunkLengths(data, createChunkerParameters(43, chunkerTestingOptions)),
    );
  });

  it("rejects inconsistent sizes", () => {
    expect(() =>
      createChunkerParameters(1, {
        chunkSizeBytesMin: 10,
        chunkSizeBytesAverage: 5,
        chunkSizeBytesMax: 20,
      }),
    ).toThrow(/min < average < max/);
  });
});
