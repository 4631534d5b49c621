// The fleet's event log: events are made durable in order, then handed to live subscribers
// (the SSE stream behind `edgeward events --follow`).

import type { FleetEvent, FleetEventDraft } from "../api/contract.ts";
import type { Logger } from "../ports/logger.ts";
import type { Store } from "../ports/store.ts";

export type EventListener = (event: FleetEvent) => void;

/** Live subscribers at once; each is an open HTTP stream. */
export const eventSubscribersMax = 256;

export class TooManySubscribersError extends Error {
  override readonly name = "TooManySubscribersError";
}

export class EventLog {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #listeners = new Set<EventListener>();
  #pending: FleetEventDraft[] = [];
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Queues an event; it is stored and delivered in order, batched with its neighbours. */
  publish(draft: FleetEventDraft): void {
    this.#pending.push(draft);
    if (this.#pending.length === 1) this.#flushing = this.#flushing.then(() => this.#flush());
  }

  /** Resolves when everything published so far is durable. */
  async settled(): Promise<void> {
    await this.#flushing;
  }

  subscribe(listener: EventListener): () => void {
    if (this.#listeners.size >= eventSubscribersMax) {
      throw new TooManySubscribersError(
        `too many event streams open (${eventSubscribersMax}); close one and retry`,
      );
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  read(afterId: number, limit: number): Promise<FleetEvent[]> {
    return this.#store.readEvents(afterId, limit);
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    try {
      const stored = await this.#store.appendEvents(batch);
      for (const event of stored) for (const listener of this.#listeners) listener(event);
    } catch (error) {
      this.#logger.error({ err: error, events: batch.length }, "could not store events");
    }
  }
}
