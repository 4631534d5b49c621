// The in-memory Store: the simulator's twin of the SQLite store, and a fast fake for tests.

import type { FleetEvent, FleetEventDraft } from "../../api/contract.ts";
import { storedEventsMax, type NodeRecord, type Store } from "../../ports/store.ts";

export class MemoryStore implements Store {
  readonly #nodes = new Map<string, NodeRecord>();
  #events: FleetEvent[] = [];
  #lastEventId = 0;

  loadNodes(): Promise<NodeRecord[]> {
    return Promise.resolve([...this.#nodes.values()].map((record) => structuredClone(record)));
  }

  saveNodes(records: readonly NodeRecord[]): Promise<void> {
    for (const record of records) this.#nodes.set(record.id, structuredClone(record));
    return Promise.resolve();
  }

  deleteNode(nodeId: string): Promise<boolean> {
    return Promise.resolve(this.#nodes.delete(nodeId));
  }

  appendEvents(drafts: readonly FleetEventDraft[]): Promise<FleetEvent[]> {
    const appended = drafts.map((draft) => ({
      ...structuredClone(draft),
      id: ++this.#lastEventId,
    }));
    this.#events.push(...appended);
    if (this.#events.length > storedEventsMax) this.#events = this.#events.slice(-storedEventsMax);
    return Promise.resolve(appended);
  }

  readEvents(afterId: number, limit: number): Promise<FleetEvent[]> {
    const start = this.#events.findIndex((event) => event.id > afterId);
    if (start === -1) return Promise.resolve([]);
    return Promise.resolve(
      this.#events.slice(start, start + limit).map((event) => structuredClone(event)),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
