// Virtual time for the simulator: the Clock port over one event queue. Nothing happens
// between events, so an hour of a 10,000-node fleet takes as long as its events take.
//
// Events run in (time, sequence) order: events due at the same moment run in the order they
// were posted, which makes every run deterministic. The queue is a calendar of one-millisecond
// buckets, not one big heap: a fleet's heartbeats and deliveries fall at most a few seconds
// ahead, so posting one is an append to its bucket's list, and only the bucket being run is
// kept as a (small) heap. A 10,000-node fleet keeps ~25,000 events pending but only ~20 due in
// any one millisecond, so a pop sifts through two heap levels instead of eight. Events beyond
// the calendar's horizon (restarts, fault ends, deadlines) wait in a second heap until their
// bucket opens. Events live in parallel typed arrays (a slot per pending event, recycled
// through a free list), so the hot path — millions of heartbeats — posts and pops without
// allocating.

import type { CancelTimer, Clock } from "../ports/clock.ts";

/** Receives the simulator's own typed events; `kind` 0 is reserved for Clock callbacks. */
export interface EventHandler {
  handleEvent(kind: number, first: number, second: number): void;
}

/** Upper bound on pending events; a runaway feedback loop fails loudly instead of eating RAM. */
export const pendingEventsMax = 1 << 24;

const callbackKind = 0;
const initialCapacity = 1_024;
/**
 * Calendar buckets, one per millisecond: 16.4 s ahead, past the slowest preset heartbeat that
 * matters for throughput (cellular, 5 s). A power of two, so the ring index is a mask.
 */
const bucketCount = 1 << 14;
const bucketMask = bucketCount - 1;
const noSlot = -1;
const keyStride = 2;
const keySequence = 1;
const fieldStride = 4;
const fieldFirst = 1;
const fieldSecond = 2;
const fieldNext = 3;

export class EventQueueFullError extends Error {
  override readonly name = "EventQueueFullError";
}

/**
 * A 4-ary min-heap of event slots keyed by (time, sequence), keys stored beside the slot
 * numbers so comparing needs no indirection.
 */
class EventHeap {
  slots = new Int32Array(initialCapacity);
  timesMs = new Float64Array(initialCapacity);
  sequences = new Float64Array(initialCapacity);
  size = 0;

  push(slot: number, slotMs: number, slotSequence: number): void {
    if (this.size === this.slots.length) this.#grow();
    // Locals, not fields, in the two loops every event passes through.
    const slots = this.slots;
    const timesMs = this.timesMs;
    const sequences = this.sequences;
    let position = this.size;
    this.size += 1;
    while (position > 0) {
      const parent = (position - 1) >> 2;
      const parentMs = timesMs[parent] ?? 0;
      if (parentMs < slotMs || (parentMs === slotMs && (sequences[parent] ?? 0) < slotSequence))
        break;
      slots[position] = slots[parent] ?? 0;
      timesMs[position] = parentMs;
      sequences[position] = sequences[parent] ?? 0;
      position = parent;
    }
    slots[position] = slot;
    timesMs[position] = slotMs;
    sequences[position] = slotSequence;
  }

  /** Removes the earliest entry (read it first from index 0). */
  popTop(): void {
    const slots = this.slots;
    const timesMs = this.timesMs;
    const sequences = this.sequences;
    this.size -= 1;
    const size = this.size;
    if (size === 0) return;
    const slot = slots[size] ?? 0;
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
      slots[position] = slots[child] ?? 0;
      timesMs[position] = childMs;
      sequences[position] = sequences[child] ?? 0;
      position = child;
    }
    slots[position] = slot;
    timesMs[position] = slotMs;
    sequences[position] = slotSequence;
  }

  #grow(): void {
    const capacity = this.slots.length * 2;
    this.slots = grown(this.slots, new Int32Array(capacity));
    this.timesMs = grown(this.timesMs, new Float64Array(capacity));
    this.sequences = grown(this.sequences, new Float64Array(capacity));
  }
}

export class VirtualClock implements Clock {
  #nowMs: number;
  #nextSequence = 0;
  #capacity = initialCapacity;
  /**
   * Per slot, side by side so one event touches two cache lines, not six: its time and
   * sequence number (which also tells a timer whether its slot was reused), and its kind,
   * two integers and the next slot in the same calendar bucket (`noSlot` ends the list).
   */
  #slotKeys = new Float64Array(initialCapacity * keyStride);
  #slotFields = new Int32Array(initialCapacity * fieldStride);
  #freeSlots = new Int32Array(initialCapacity);
  #freeCount: number;
  readonly #callbacks: ((() => void) | undefined)[] = [];

  /** The bucket being run (absolute: milliseconds since 0, floored) and its ring index. */
  #currentBucket: number;
  #currentRing: number;
  /** Each ring bucket's first slot; its events are unordered until the bucket opens. */
  readonly #bucketHeads = new Int32Array(bucketCount).fill(noSlot);
  /** Events waiting in ring buckets other than the current one. */
  #ringCount = 0;
  /** The current bucket's events, in (time, sequence) order. */
  readonly #due = new EventHeap();
  /** Events beyond the ring's horizon. */
  readonly #later = new EventHeap();

  constructor(startMs = 0) {
    this.#nowMs = startMs;
    this.#currentBucket = Math.floor(startMs);
    this.#currentRing = ringIndexOf(this.#currentBucket);
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
    const sequenceAt = slot * keyStride + keySequence;
    const sequence = this.#slotKeys[sequenceAt];
    this.#callbacks[slot] = callback;
    return () => {
      // The slot may have run and been reused; only cancel the event this timer made.
      if (this.#slotKeys[sequenceAt] === sequence) this.#callbacks[slot] = undefined;
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
    const due = this.#due;
    const endBucket = Math.floor(endMs);
    let processed = 0;
    for (;;) {
      if (due.size === 0 && !this.#openNextBucket(endBucket)) break;
      const atMs = due.timesMs[0] ?? 0;
      if (atMs > endMs) break;
      const slot = due.slots[0] ?? 0;
      due.popTop();
      this.#nowMs = atMs;
      const fields = this.#slotFields;
      const at = slot * fieldStride;
      const kind = fields[at] ?? 0;
      processed += 1;
      if (kind === callbackKind) {
        const callback = this.#callbacks[slot];
        this.#callbacks[slot] = undefined;
        this.#release(slot);
        callback?.();
      } else {
        const first = fields[at + fieldFirst] ?? 0;
        const second = fields[at + fieldSecond] ?? 0;
        this.#release(slot);
        handler.handleEvent(kind, first, second);
      }
    }
    if (endMs > this.#nowMs) this.#nowMs = endMs;
    return processed;
  }

  /**
   * Moves on to the next bucket holding events, up to `endBucket`, and loads its events into
   * the due heap. False if no event is due by then. Never moves past `endBucket`, so an event
   * posted after `runUntil` returns still lands at or after the current bucket.
   */
  #openNextBucket(endBucket: number): boolean {
    const later = this.#later;
    while (this.#currentBucket < endBucket) {
      if (this.#ringCount === 0) {
        // Nothing in the ring: jump straight to the next far event's bucket.
        if (later.size === 0) return false;
        const nextBucket = Math.floor(later.timesMs[0] ?? 0);
        if (nextBucket > endBucket) return false;
        this.#currentBucket = Math.max(nextBucket, this.#currentBucket + 1);
        this.#currentRing = ringIndexOf(this.#currentBucket);
      } else {
        this.#currentBucket += 1;
        this.#currentRing = (this.#currentRing + 1) & bucketMask;
        this.#loadRingBucket(this.#currentRing);
      }
      while (later.size > 0 && (later.timesMs[0] ?? 0) < this.#currentBucket + 1) {
        const slot = later.slots[0] ?? 0;
        this.#due.push(slot, later.timesMs[0] ?? 0, later.sequences[0] ?? 0);
        later.popTop();
      }
      if (this.#due.size > 0) return true;
    }
    return false;
  }

  #loadRingBucket(ring: number): void {
    let slot = this.#bucketHeads[ring] ?? noSlot;
    if (slot === noSlot) return;
    this.#bucketHeads[ring] = noSlot;
    const due = this.#due;
    const keys = this.#slotKeys;
    const fields = this.#slotFields;
    let loaded = 0;
    while (slot !== noSlot) {
      const keyAt = slot * keyStride;
      due.push(slot, keys[keyAt] ?? 0, keys[keyAt + keySequence] ?? 0);
      slot = fields[slot * fieldStride + fieldNext] ?? noSlot;
      loaded += 1;
    }
    this.#ringCount -= loaded;
  }

  #push(atMs: number, kind: number, first: number, second: number): number {
    if (this.#freeCount === 0) this.#grow();
    this.#freeCount -= 1;
    const slot = this.#freeSlots[this.#freeCount] ?? 0;
    const sequence = this.#nextSequence;
    this.#nextSequence += 1;
    const keys = this.#slotKeys;
    const keyAt = slot * keyStride;
    keys[keyAt] = atMs;
    keys[keyAt + keySequence] = sequence;
    const fields = this.#slotFields;
    const fieldAt = slot * fieldStride;
    fields[fieldAt] = kind;
    fields[fieldAt + fieldFirst] = first;
    fields[fieldAt + fieldSecond] = second;
    const ahead = Math.floor(atMs) - this.#currentBucket;
    if (ahead <= 0) {
      this.#due.push(slot, atMs, sequence);
    } else if (ahead < bucketCount) {
      const ring = (this.#currentRing + ahead) & bucketMask;
      fields[fieldAt + fieldNext] = this.#bucketHeads[ring] ?? noSlot;
      this.#bucketHeads[ring] = slot;
      this.#ringCount += 1;
    } else {
      this.#later.push(slot, atMs, sequence);
    }
    return slot;
  }

  #release(slot: number): void {
    this.#freeSlots[this.#freeCount] = slot;
    this.#freeCount += 1;
  }

  #grow(): void {
    const oldCapacity = this.#capacity;
    const capacity = oldCapacity * 2;
    if (capacity > pendingEventsMax) {
      throw new EventQueueFullError(
        `more than ${pendingEventsMax} pending simulator events; something posts without end`,
      );
    }
    this.#slotKeys = grown(this.#slotKeys, new Float64Array(capacity * keyStride));
    this.#slotFields = grown(this.#slotFields, new Int32Array(capacity * fieldStride));
    this.#freeSlots = new Int32Array(capacity);
    for (let slot = oldCapacity; slot < capacity; slot += 1) {
      this.#freeSlots[this.#freeCount] = capacity - 1 - (slot - oldCapacity);
      this.#freeCount += 1;
    }
    this.#capacity = capacity;
  }
}

/** The ring index of an absolute bucket number (which may pass 2^31 in a long run). */
function ringIndexOf(bucket: number): number {
  return ((bucket % bucketCount) + bucketCount) % bucketCount;
}

function grown<T extends Float64Array | Int32Array>(old: T, larger: T): T {
  larger.set(old);
  return larger;
}
