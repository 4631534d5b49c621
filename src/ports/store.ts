// The control plane's durable state behind one port: SQLite by default, an in-memory twin for
// the simulator and tests, etcd later. One contract suite (store-contract.ts) runs against all.

import type { FleetEvent, FleetEventDraft, NodeRecord } from "../api/contract.ts";

export type { NodeRecord };

export interface Store {
  loadNodes(): Promise<NodeRecord[]>;
  /** Inserts or replaces the records; durable when the promise resolves. */
  saveNodes(records: readonly NodeRecord[]): Promise<void>;
  deleteNode(nodeId: string): Promise<boolean>;
  /** Appends events, assigning increasing ids; durable when the promise resolves. */
  appendEvents(drafts: readonly FleetEventDraft[]): Promise<FleetEvent[]>;
  /** Events with id > afterId, oldest first, at most `limit`. */
  readEvents(afterId: number, limit: number): Promise<FleetEvent[]>;
  /** A named JSON document (e.g. the failover orchestrator's state), or undefined if never saved. */
  loadDocument(name: string): Promise<string | undefined>;
  /** Replaces the named document; durable when the promise resolves. */
  saveDocument(name: string, json: string): Promise<void>;
  close(): Promise<void>;
}

/** Events kept before the oldest are dropped; the event log is a window, not an archive. */
export const storedEventsMax = 100_000;

/** Largest document saveDocument accepts, so a runaway state cannot fill the disk. */
export const storedDocumentCharactersMax = 64 * 1024 * 1024;

export class StoreError extends Error {
  override readonly name = "StoreError";
}

/** Throws a StoreError for a document over storedDocumentCharactersMax. */
export function checkDocumentSize(name: string, json: string): void {
  if (json.length > storedDocumentCharactersMax) {
    throw new StoreError(
      `document ${name} has ${json.length} characters, more than ${storedDocumentCharactersMax}`,
    );
  }
}
