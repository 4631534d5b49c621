// FastCDC-style content-defined chunking: a gear rolling hash with normalized chunking
// (a stricter mask before the average size, a looser one after), so boundaries depend on
// content, not offsets, and an insertion only moves the boundaries next to it.

/** Chunk size limits; every chunk except a file's last is within [min, max]. */
export interface ChunkerOptions {
  /** No cut before this many bytes: bounds the blob count (and index size) per byte. */
  chunkSizeBytesMin: number;
  /** The size the masks aim at; larger means fewer blobs but coarser deduplication. */
  chunkSizeBytesAverage: number;
  /** A forced cut: bounds the memory one chunk needs. */
  chunkSizeBytesMax: number;
}

/** restic's sizes: good deduplication of large files at a small index. */
export const chunkerDefaults: ChunkerOptions = {
  chunkSizeBytesMin: 512 * 1024,
  chunkSizeBytesAverage: 1024 * 1024,
  chunkSizeBytesMax: 8 * 1024 * 1024,
};

/** Small sizes for tests: boundaries show up in a few hundred KiB of data. */
export const chunkerTestingOptions: ChunkerOptions = {
  chunkSizeBytesMin: 2 * 1024,
  chunkSizeBytesAverage: 8 * 1024,
  chunkSizeBytesMax: 64 * 1024,
};

/** Everything the cut-point search needs, precomputed once per repository. */
export interface ChunkerParameters {
  readonly gearTable: Uint32Array;
  readonly chunkSizeBytesMin: number;
  readonly chunkSizeBytesAverage: number;
  readonly chunkSizeBytesMax: number;
  /** Mask with more bits, used before the average size: makes early cuts rarer. */
  readonly maskBefore: number;
  /** Mask with fewer bits, used after the average size: makes late cuts likelier. */
  readonly maskAfter: number;
}

/** Normalization level 2 of the FastCDC paper: ±2 mask bits around log2(average). */
const normalizationBits = 2;
const gearTableSize = 256;

/**
 * Builds the cut-point parameters. The gear table comes from a per-repository seed so chunk
 * boundaries (and thus chunk sizes) do not reveal which known files a repository holds.
 */
export function createChunkerParameters(seed: number, options: ChunkerOptions): ChunkerParameters {
  const { chunkSizeBytesMin, chunkSizeBytesAverage, chunkSizeBytesMax } = options;
  if (!(
    0 < chunkSizeBytesMin &&
    chunkSizeBytesMin < chunkSizeBytesAverage &&
    chunkSizeBytesAverage < chunkSizeBytesMax
  )) {
    throw new Error(
      `chunker sizes must satisfy 0 < min < average < max, got ${chunkSizeBytesMin}/${chunkSizeBytesAverage}/${chunkSizeBytesMax}`,
    );
  }
  const averageBits = Math.round(Math.log2(chunkSizeBytesAverage));
  if (averageBits + normalizationBits > 31)
    throw new Error(`chunkSizeBytesAverage ${chunkSizeBytesAverage} is too large`);
  return {
    gearTable: createGearTable(seed),
    chunkSizeBytesMin,
    chunkSizeBytesAverage,
    chunkSizeBytesMax,
    maskBefore: highBitsMask(averageBits + normalizationBits),
    maskAfter: highBitsMask(averageBits - normalizationBits),
  };
}

// The gear hash shifts left, so its high bits depend on the most bytes: masks use those.
function highBitsMask(bitCount: number): number {
  return ((2 ** bitCount - 1) * 2 ** (32 - bitCount)) >>> 0;
}

/** 256 pseudo-random 32-bit words from a seed (splitmix32): deterministic, no platform RNG. */
export function createGearTable(seed: number): Uint32Array {
  const table = new Uint32Array(gearTableSize);
  let state = seed >>> 0;
  for (let index = 0; index < gearTableSize; index++) {
    state = (state + 0x9e3779b9) >>> 0;
    let word = state;
    word = Math.imul(word ^ (word >>> 16), 0x85ebca6b);
    word = Math.imul(word ^ (word >>> 13), 0xc2b2ae35);
    table[index] = (word ^ (word >>> 16)) >>> 0;
  }
  return table;
}

/**
 * Length of the next chunk of `data[start, end)`. The caller guarantees that the range holds
 * at least `chunkSizeBytesMax` bytes or runs to the end of the stream, so a cut is final.
 * Kept free of closures and outer references: it is the hot loop of every backup.
 */
export function findChunkLength(
  data: Uint8Array,
  start: number,
  end: number,
  parameters: ChunkerParameters,
): number {
  const available = end - start;
  const {
    chunkSizeBytesMin,
    chunkSizeBytesAverage,
    chunkSizeBytesMax,
    maskBefore,
    maskAfter,
    gearTable,
  } = parameters;
  if (available <= chunkSizeBytesMin) return available;
  const limit = available < chunkSizeBytesMax ? available : chunkSizeBytesMax;
  const normal = chunkSizeBytesAverage < limit ? chunkSizeBytesAverage : limit;
  let hash = 0;
  let position = start + chunkSizeBytesMin;
  const normalEnd = start + normal;
  const limitEnd = start + limit;
  for (; position < normalEnd; position++) {
    hash = ((hash << 1) + (gearTable[data[position] as number] as number)) | 0;
    if ((hash & maskBefore) === 0) return position - start + 1;
  }
  for (; position < limitEnd; position++) {
    hash = ((hash << 1) + (gearTable[data[position] as number] as number)) | 0;
    if ((hash & maskAfter) === 0) return position - start + 1;
  }
  return limit;
}
