// The simulator's seeded random source. Every draw in a run comes from one of these, so a
// run replays exactly from its seed.
//
// Algorithm: xoshiro128** 1.0 (Blackman and Vigna, "Scrambled linear pseudorandom number
// generators", 2018): 128 bits of state, period 2^128 - 1, passes BigCrush, and needs only
// 32-bit integer operations, which JavaScript does fast with Math.imul and >>> 0. The state is
// filled from the 32-bit seed by SplitMix32 (the 32-bit variant of Steele, Lea and Flood's
// SplitMix), as the xoshiro authors recommend, so nearby seeds give unrelated streams and the
// state is never all zero.

import type { Random } from "../ports/random.ts";

/** Seeds are unsigned 32-bit integers, so a seed typed on a command line replays exactly. */
export const seedMax = 0xffff_ffff;

export class InvalidSeedError extends Error {
  override readonly name = "InvalidSeedError";
}

export function assertSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > seedMax) {
    throw new InvalidSeedError(`seed must be an integer from 0 to ${seedMax}, got ${seed}`);
  }
}

const twoTo26 = 67_108_864;
const twoTo32 = 4_294_967_296;
const twoTo53 = 9_007_199_254_740_992;

export class SeededRandom implements Random {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  /** Box–Muller yields normals in pairs; the second waits here. */
  #spareNormal: number | undefined;

  constructor(seed: number) {
    assertSeed(seed);
    let splitMixState = seed >>> 0;
    const splitMix32 = (): number => {
      splitMixState = (splitMixState + 0x9e37_79b9) >>> 0;
      let z = splitMixState;
      z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = splitMix32();
    this.#s1 = splitMix32();
    this.#s2 = splitMix32();
    this.#s3 = splitMix32();
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotateLeft(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits, from two draws. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * twoTo26 + low) / twoTo53;
  }

  /**
   * True with probability `probability`; draws nothing when the answer is certain. One 32-bit
   * draw (resolution 2^-32) is plenty for a probability and halves the cost on the hot path.
   */
  chance(probability: number): boolean {
    if (probability <= 0) return false;
    if (probability >= 1) return true;
    return this.nextUint32() < probability * twoTo32;
  }

  /** An integer uniformly in [0, bound). */
  nextIndex(bound: number): number {
    return Math.floor(this.nextFloat() * bound);
  }

  /** An exponentially distributed duration with the given mean (a Poisson process's gaps). */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.nextFloat());
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const spare = this.#spareNormal;
    if (spare !== undefined) {
      this.#spareNormal = undefined;
      return spare;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - this.nextFloat()));
    const angle = 2 * Math.PI * this.nextFloat();
    this.#spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /** A new generator whose stream is independent of this one's future draws. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}
