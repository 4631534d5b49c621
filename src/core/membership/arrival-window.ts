// Bounded windows of heartbeat inter-arrival times with O(1) mean and deviation, one per
// membership slot, stored as one set of typed arrays for the whole fleet: a heartbeat touches
// one slot's running sums and one sample, not an object graph per node.

export class ArrivalWindows {
  readonly #windowSize: number;
  #samplesMs: Float64Array;
  #counts: Int32Array;
  #nexts: Int32Array;
  #sumsMs: Float64Array;
  #sumSquaresMs2: Float64Array;

  constructor(windowSize: number, slotCapacity: number) {
    if (!Number.isInteger(windowSize) || windowSize < 1) {
      throw new RangeError(`arrival window capacity must be a positive integer, got ${windowSize}`);
    }
    this.#windowSize = windowSize;
    this.#samplesMs = new Float64Array(slotCapacity * windowSize);
    this.#counts = new Int32Array(slotCapacity);
    this.#nexts = new Int32Array(slotCapacity);
    this.#sumsMs = new Float64Array(slotCapacity);
    this.#sumSquaresMs2 = new Float64Array(slotCapacity);
  }

  /** Makes room for slots below `slotCapacity`, keeping every window's contents. */
  grow(slotCapacity: number): void {
    if (slotCapacity <= this.#counts.length) return;
    this.#samplesMs = grown(this.#samplesMs, new Float64Array(slotCapacity * this.#windowSize));
    this.#counts = grown(this.#counts, new Int32Array(slotCapacity));
    this.#nexts = grown(this.#nexts, new Int32Array(slotCapacity));
    this.#sumsMs = grown(this.#sumsMs, new Float64Array(slotCapacity));
    this.#sumSquaresMs2 = grown(this.#sumSquaresMs2, new Float64Array(slotCapacity));
  }

  count(slot: number): number {
    return this.#counts[slot] ?? 0;
  }

  add(slot: number, intervalMs: number): void {
    const windowSize = this.#windowSize;
    const samplesMs = this.#samplesMs;
    const next = this.#nexts[slot] ?? 0;
    const sample = slot * windowSize + next;
    let sumMs = this.#sumsMs[slot] ?? 0;
    let sumSquaresMs2 = this.#sumSquaresMs2[slot] ?? 0;
    const count = this.#counts[slot] ?? 0;
    if (count === windowSize) {
      const evictedMs = samplesMs[sample] ?? 0;
      sumMs -= evictedMs;
      sumSquaresMs2 -= evictedMs * evictedMs;
    } else {
      this.#counts[slot] = count + 1;
    }
    samplesMs[sample] = intervalMs;
    this.#nexts[slot] = next + 1 === windowSize ? 0 : next + 1;
    this.#sumsMs[slot] = sumMs + intervalMs;
    this.#sumSquaresMs2[slot] = sumSquaresMs2 + intervalMs * intervalMs;
  }

  clear(slot: number): void {
    this.#counts[slot] = 0;
    this.#nexts[slot] = 0;
    this.#sumsMs[slot] = 0;
    this.#sumSquaresMs2[slot] = 0;
  }

  meanMs(slot: number): number {
    const count = this.#counts[slot] ?? 0;
    return count === 0 ? 0 : (this.#sumsMs[slot] ?? 0) / count;
  }

  stdDevMs(slot: number): number {
    const count = this.#counts[slot] ?? 0;
    if (count < 2) return 0;
    const mean = (this.#sumsMs[slot] ?? 0) / count;
    // Running sums can drift a hair below zero; a variance is never negative.
    return Math.sqrt(Math.max(0, (this.#sumSquaresMs2[slot] ?? 0) / count - mean * mean));
  }
}

function grown<T extends Float64Array | Int32Array>(old: T, larger: T): T {
  larger.set(old);
  return larger;
}
