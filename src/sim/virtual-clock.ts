// Virtual time for the simulator: the Clock port over one event queue. Nothing happens
// between events, so an hour of a 10,000-node fleet takes as long as its events take.
//
// The queue is a 4-ary min-heap (shallower than a binary one, so fewer cache misses) keyed
// by (time, sequence): events due at the same moment run
// in the order they were posted, which makes every run deterministic. Events live in parallel
// typed arrays (a slot per pending event, recycled through a free list), so the hot path —
// millions of heartbeats — posts and pops without allocating.

import type { CancelTimer, Clock } from "../ports/clock.ts";

/** Receives the simulator's own typed events; `kind` 0 is reserved for Clock callbacks. */
export interface EventHandler {
  handleEvent(kind: number, first: number, second: number): void;
}

/** Upper bound on pending events; a runaway feedback loop fails loudly instead of eating RAM. */
export const pendingEventsMax = 1 << 24;

const callbackKind = 0;
const initialCapacity = 1_024;

export class EventQueueFullError extends Error {
  override readonly name = "EventQueueFullError";
}

export class VirtualClock implements Clock {
  #nowMs: number;
  #nextSequence = 0;
  #capacity = initialCapacity;
  #kinds = new Uint8Array(initialCapacity);
  #firsts = new Int32Array(initialCapacity);
  #seconds = new Int32Array(initialCapacity);
  /** Slot numbers ordered as a heap, with their keys beside them (no indirection to compare). */
  #heap = new Int32Array(initialCapacity);
  #heapTimesMs = new Float64Array(initialCapacity);
  #heapSequences = new Float64Array(initialCapacity);
  /** Each slot's sequence number, so a timer can tell whether its slot was reused. */
  #slotSequences = new Float64Array(initialCapacity);
  #size = 0;
  #freeSlots = new Int32Array(initialCapacity);
  #freeCount: number;
  readonly #callbacks: ((() => void) | undefined)[] = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
    for (let slot = 0; slot < initialCapacity; slot += 1) {
      this.#freeSlots[slot] = initialCapacity - 1 - slot;
    }
    this.#freeCount = initialCapacity;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Runs `callback` after `delayMs` of virtual time (the Clock port). */
  schedule(delayMs: number, callback: () => void): CancelTimer {
    const slot = this.#push(this.#nowMs + Math.max(0, delayMs), callbackKind, 0, 0);
    const sequence = this.#slotSequences[slot];
    this.#callbacks[slot] = callback;
    return () => {
      // The slot may have run and been reused; only cancel the event this timer made.
      if (this.#slotSequences[slot] === sequence) this.#callbacks[slot] = undefined;
    };
  }

  /** Posts a typed event for the handler given to `runUntil`; `kind` must be 1–255. */
  post(atMs: number, kind: number, first: number, second: number): void {
    if (kind <= callbackKind || kind > 255) throw new RangeError(`event kind ${kind} is not 1–255`);
    this.#push(Math.max(atMs, this.#nowMs), kind, first, second);
  }

  /**
   * Runs every event due at or before `endMs`, in (time, sequence) order, then leaves the
   * clock at `endMs`. Returns how many events ran.
   */
  runUntil(endMs: number, handler: EventHandler): number {
    let processed = 0;
    while (this.#size > 0) {
      const slot = this.#heap[0] ?? 0;
      const atMs = this.#heapTimesMs[0] ?? 0;
      if (atMs > endMs) break;
      this.#popTop();
      this.#nowMs = atMs;
      const kind = this.#kinds[slot] ?? 0;
      processed += 1;
      if (kind === callbackKind) {
        const callback = this.#callbacks[slot];
        this.#callbacks[slot] = undefined;
        this.#release(slot);
        callback?.();
      } else {
        const first = this.#firsts[slot] ?? 0;
        const second = this.#seconds[slot] ?? 0;
        this.#release(slot);
        handler.handleEvent(kind, first, second);
      }
    }
    if (endMs > this.#nowMs) this.#nowMs = endMs;
    return processed;
  }

  #push(atMs: number, kind: number, first: number, second: number): number {
    if (this.#freeCount === 0) this.#grow();
    this.#freeCount -= 1;
    const slot = this.#freeSlots[this.#freeCount] ?? 0;
    const sequence = this.#nextSequence;
    this.#nextSequence += 1;
    this.#slotSequences[slot] = sequence;
    this.#kinds[slot] = kind;
    this.#firsts[slot] = first;
    this.#seconds[slot] = second;
    this.#siftUp(this.#size, slot, atMs, sequence);
    this.#size += 1;
    return slot;
  }

  #release(slot: number): void {
    this.#freeSlots[this.#freeCount] = slot;
    this.#freeCount += 1;
  }

  #siftUp(position: number, slot: number, slotMs: number, slotSequence: number): void {
    // Locals, not fields, in the two loops every event passes through.
    const heap = this.#heap;
    const timesMs = this.#heapTimesMs;
    const sequences = this.#heapSequences;
    while (position > 0) {
      const parent = (position - 1) >> 2;
      const parentMs = timesMs[parent] ?? 0;
      if (parentMs < slotMs || (parentMs === slotMs && (sequences[parent] ?? 0) < slotSequence))
        break;
      heap[position] = heap[parent] ?? 0;
      timesMs[position] = parentMs;
      sequences[position] = sequences[parent] ?? 0;
      position = parent;
    }
    heap[position] = slot;
    timesMs[position] = slotMs;
    sequences[position] = slotSequence;
  }

  #popTop(): void {
    const heap = this.#heap;
    const timesMs = this.#heapTimesMs;
    const sequences = this.#heapSequences;
    this.#size -= 1;
    const size = this.#size;
    if (size === 0) return;
    const slot = heap[size] ?? 0;
    const slotMs = timesMs[size] ?? 0;
    const slotSequence = sequences[size] ?? 0;
    let position = 0;
    for (;;) {
      const firstChild = 4 * position + 1;
      if (firstChild >= size) break;
      // The earliest of up to four children.
      let child = firstChild;
      let childMs = timesMs[child] ?? 0;
      const lastChild = Math.min(firstChild + 3, size - 1);
      for (let other = firstChild + 1; other <= lastChild; other += 1) {
        const otherMs = timesMs[other] ?? 0;
        if (
          otherMs < childMs ||
          (otherMs === childMs && (sequences[other] ?? 0) < (sequences[child] ?? 0))
        ) {
          child = other;
          childMs = otherMs;
        }
      }
      if (slotMs < childMs || (slotMs === childMs && slotSequence < (sequences[child] ?? 0))) break;
      heap[position] = heap[child] ?? 0;
      timesMs[position] = childMs;
      sequences[position] = sequences[child] ?? 0;
      position = child;
    }
    heap[position] = slot;
    timesMs[position] = slotMs;
    sequences[position] = slotSequence;
  }

  #grow(): void {
    const oldCapacity = this.#capacity;
    const capacity = oldCapacity * 2;
    if (capacity > pendingEventsMax) {
      throw new EventQueueFullError(
        `more than ${pendingEventsMax} pending simulator events; something posts without end`,
      );
    }
    this.#heapTimesMs = grown(this.#heapTimesMs, new Float64Array(capacity));
    this.#heapSequences = grown(this.#heapSequences, new Float64Array(capacity));
    this.#slotSequences = grown(this.#slotSequences, new Float64Array(capacity));
    this.#kinds = grown(this.#kinds, new Uint8Array(capacity));
    this.#firsts = grown(this.#firsts, new Int32Array(capacity));
    this.#seconds = grown(this.#seconds, new Int32Array(capacity));
    this.#heap = grown(this.#heap, new Int32Array(capacity));
    this.#freeSlots = new Int32Array(capacity);
    for (let slot = oldCapacity; slot < capacity; slot += 1) {
      this.#freeSlots[this.#freeCount] = capacity - 1 - (slot - oldCapacity);
      this.#freeCount += 1;
    }
    this.#capacity = capacity;
  }
}

function grown<T extends Float64Array | Int32Array | Uint8Array>(old: T, larger: T): T {
  larger.set(old);
  return larger;
}
