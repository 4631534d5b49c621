// A min-heap of (deadline, item) for the detector's tick: only nodes whose deadline has come
// are looked at, instead of every node on every tick. Entries are never updated in place;
// the caller recognises and skips stale ones, which keeps every operation O(log n).

export class DeadlineQueue<Item> {
  readonly #deadlinesMs: number[] = [];
  readonly #items: Item[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** The earliest deadline, or +Infinity when empty. */
  peekMs(): number {
    return this.#deadlinesMs[0] ?? Number.POSITIVE_INFINITY;
  }

  push(deadlineMs: number, item: Item): void {
    const deadlines = this.#deadlinesMs;
    const items = this.#items;
    let position = items.length;
    deadlines.push(deadlineMs);
    items.push(item);
    while (position > 0) {
      const parent = (position - 1) >> 1;
      const parentMs = deadlines[parent] ?? 0;
      if (parentMs <= deadlineMs) break;
      deadlines[position] = parentMs;
      items[position] = items[parent] as Item;
      position = parent;
    }
    deadlines[position] = deadlineMs;
    items[position] = item;
  }

  /** Removes and returns the item with the earliest deadline. */
  pop(): Item | undefined {
    const deadlines = this.#deadlinesMs;
    const items = this.#items;
    const top = items[0];
    const lastMs = deadlines.pop();
    const last = items.pop();
    const size = items.length;
    if (size === 0 || lastMs === undefined || last === undefined) return top;
    let position = 0;
    for (;;) {
      let child = 2 * position + 1;
      if (child >= size) break;
      if (child + 1 < size && (deadlines[child + 1] ?? 0) < (deadlines[child] ?? 0)) child += 1;
      const childMs = deadlines[child] ?? 0;
      if (lastMs <= childMs) break;
      deadlines[position] = childMs;
      items[position] = items[child] as Item;
      position = child;
    }
    deadlines[position] = lastMs;
    items[position] = last;
    return top;
  }
}
