// The in-memory Store: the simulator's twin of the SQLite store, and a fast fake for tests.

import type { FleetEvent, FleetEventDraft } from "../../api/contract.ts";
import {
  checkDocumentSize,
  storedEventsMax,
  StoreError,
  type NodeRecord,
  type Store,
} from "../../ports/store.ts";

export class MemoryStore implements Store {
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #documents = new Map<string, string>();
  #events: FleetEvent[] = [];
  #lastEventId = 0;
  #closed = false;

  loadNodes(): Promise<NodeRecord[]> {
    return this.#settle(() => [...this.#nodes.values()].map((record) => structuredClone(record)));
  }

  saveNodes(records: readonly NodeRecord[]): Promise<void> {
    return this.#settle(() => {
      for (const record of records) this.#nodes.set(record.id, structuredClone(record));
    });
  }

  deleteNode(nodeId: string): Promise<boolean> {
    return this.#settle(() => this.#nodes.delete(nodeId));
  }

  appendEvents(drafts: readonly FleetEventDraft[]): Promise<FleetEvent[]> {
    return this.#settle(() => {
      const appended = drafts.map((draft) => ({
        ...structuredClone(draft),
        id: ++this.#lastEventId,
      }));
      this.#events.push(...appended);
      if (this.#events.length > storedEventsMax)
        this.#events = this.#events.slice(-storedEventsMax);
      return appended;
    });
  }

  readEvents(afterId: number, limit: number): Promise<FleetEvent[]> {
    return this.#settle(() => {
      const start = this.#events.findIndex((event) => event.id > afterId);
      if (start === -1) return [];
      return this.#events.slice(start, start + limit).map((event) => structuredClone(event));
    });
  }

  loadDocument(name: string): Promise<string | undefined> {
    return this.#settle(() => this.#documents.get(name));
  }

  saveDocument(name: string, json: string): Promise<void> {
    return this.#settle(() => {
      checkDocumentSize(name, json);
      this.#documents.set(name, json);
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Behaves as the SQLite store does: after close, every call rejects. */
  #settle<Result>(work: () => Result): Promise<Result> {
    if (this.#closed) return Promise.reject(new StoreError("state store is closed"));
    return Promise.resolve(work());
  }
}
