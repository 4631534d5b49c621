// A bounded window of heartbeat inter-arrival times with O(1) mean and deviation.

export class ArrivalWindow {
  readonly #samplesMs: Float64Array;
  #count = 0;
  #next = 0;
  #sumMs = 0;
  #sumSquaresMs2 = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`arrival window capacity must be a positive integer, got ${capacity}`);
    }
    this.#samplesMs = new Float64Array(capacity);
  }

  get count(): number {
    return this.#count;
  }

  add(intervalMs: number): void {
    if (this.#count === this.#samplesMs.length) {
      const evictedMs = this.#samplesMs[this.#next] ?? 0;
      this.#sumMs -= evictedMs;
      this.#sumSquaresMs2 -= evictedMs * evictedMs;
    } else {
      this.#count += 1;
    }
    this.#samplesMs[this.#next] = intervalMs;
    this.#next = (this.#next + 1) % this.#samplesMs.length;
    this.#sumMs += intervalMs;
    this.#sumSquaresMs2 += intervalMs * intervalMs;
  }

  clear(): void {
    this.#count = 0;
    this.#next = 0;
    this.#sumMs = 0;
    this.#sumSquaresMs2 = 0;
  }

  meanMs(): number {
    return this.#count === 0 ? 0 : this.#sumMs / this.#count;
  }

  stdDevMs(): number {
    if (this.#count < 2) return 0;
    const mean = this.meanMs();
    // Running sums can drift a hair below zero; a variance is never negative.
    return Math.sqrt(Math.max(0, this.#sumSquaresMs2 / this.#count - mean * mean));
  }
}
