// What the server knows about each node, kept in memory and written to the Store: new
// registrations and status changes at once, heartbeat times and metrics in periodic batches
// (10,000 agents at 1 Hz must not mean 10,000 disk writes a second).

import type { NodeMetrics, NodeQuotas, NodeView, RegisterRequest } from "../api/contract.ts";
import type { NodeHealthView } from "../core/membership/membership.ts";
import type { Logger } from "../ports/logger.ts";
import type { NodeRecord, Store } from "../ports/store.ts";

/** What the fleet spec says about a node; it wins over what the agent claims. */
export interface DeclaredNode {
  zone: string;
  tier: string;
  capabilities: string[];
  labels: Record<string, string>;
  quotas: NodeQuotas;
}

/** Dirty records written per batch, so one flush cannot hold the event loop for long. */
export const nodeFlushBatchMax = 2_000;

export class NodeDirectory {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #records = new Map<string, NodeRecord>();
  readonly #dirty = new Set<string>();
  readonly #writeQueue = new Map<string, NodeRecord>();
  #writeWaiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  #lastWrite: Promise<void> = Promise.resolve();

  constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  async load(): Promise<NodeRecord[]> {
    const records = await this.#store.loadNodes();
    for (const record of records) this.#records.set(record.id, record);
    return records;
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.#records.get(nodeId);
  }

  all(): IterableIterator<NodeRecord> {
    return this.#records.values();
  }

  get size(): number {
    return this.#records.size;
  }

  /** Creates or refreshes a node's record; durable when the promise resolves. */
  async register(
    request: RegisterRequest,
    declared: DeclaredNode | undefined,
    atMs: number,
  ): Promise<NodeRecord> {
    const existing = this.#records.get(request.nodeId);
    const record: NodeRecord = {
      id: request.nodeId,
      zone: declared?.zone ?? request.zone ?? null,
      tier: declared?.tier ?? request.tier ?? null,
      capabilities: declared?.capabilities ?? request.capabilities ?? [],
      labels: { ...request.labels, ...declared?.labels },
      quotas: declared?.quotas ?? null,
      agentUrl: request.agentUrl ?? null,
      incarnation: request.incarnation,
      status: existing?.status ?? "HEALTHY",
      statusSinceMs: existing?.statusSinceMs ?? atMs,
      registeredAtMs: atMs,
      lastHeartbeatAtMs: atMs,
      metrics: existing?.metrics ?? null,
    };
    this.#records.set(record.id, record);
    this.#dirty.delete(record.id);
    await this.#writeThrough(record);
    return record;
  }

  recordHeartbeat(nodeId: string, atMs: number, metrics: NodeMetrics | undefined): void {
    const record = this.#records.get(nodeId);
    if (record === undefined) return;
    record.lastHeartbeatAtMs = atMs;
    if (metrics !== undefined) record.metrics = metrics;
    this.#dirty.add(nodeId);
  }

  /** Records a status change and writes it through without waiting for the periodic flush. */
  setStatus(nodeId: string, status: string, atMs: number): void {
    const record = this.#records.get(nodeId);
    if (record === undefined) return;
    record.status = status;
    record.statusSinceMs = atMs;
    this.#dirty.delete(nodeId);
    this.#writeThrough(record).catch((error: unknown) => {
      this.#dirty.add(nodeId);
      this.#logger.error(
        { err: error, node: nodeId },
        "could not store a status change; will retry",
      );
    });
  }

  /**
   * Group commit: records written through in the same turn of the event loop (a burst of
   * registrations, a zone going dark) share one transaction; each caller learns when its
   * record is durable.
   */
  #writeThrough(record: NodeRecord): Promise<void> {
    this.#writeQueue.set(record.id, record);
    if (this.#writeQueue.size === 1) setImmediate(() => void this.#writeQueued());
    return new Promise((resolve, reject) => this.#writeWaiters.push({ resolve, reject }));
  }

  #writeQueued(): Promise<void> {
    if (this.#writeQueue.size === 0) return this.#lastWrite;
    const batch = [...this.#writeQueue.values()];
    const waiters = this.#writeWaiters;
    this.#writeQueue.clear();
    this.#writeWaiters = [];
    this.#lastWrite = this.#store.saveNodes(batch).then(
      () => waiters.forEach((waiter) => waiter.resolve()),
      (error: unknown) => waiters.forEach((waiter) => waiter.reject(error)),
    );
    return this.#lastWrite;
  }

  async remove(nodeId: string): Promise<boolean> {
    this.#dirty.delete(nodeId);
    this.#writeQueue.delete(nodeId);
    const existed = this.#records.delete(nodeId);
    await this.#store.deleteNode(nodeId);
    return existed;
  }

  /** Writes queued status changes, then heartbeat times and metrics changed since the last flush. */
  async flush(): Promise<number> {
    await this.#writeQueued();
    const batch: NodeRecord[] = [];
    for (const nodeId of this.#dirty) {
      const record = this.#records.get(nodeId);
      if (record !== undefined) batch.push(record);
      this.#dirty.delete(nodeId);
      if (batch.length >= nodeFlushBatchMax) break;
    }
    if (batch.length === 0) return 0;
    try {
      await this.#store.saveNodes(batch);
    } catch (error) {
      for (const record of batch) this.#dirty.add(record.id);
      throw error;
    }
    return batch.length;
  }

  view(record: NodeRecord, health: NodeHealthView | undefined): NodeView {
    const phi = health?.phi;
    return {
      ...record,
      status: health?.status ?? record.status,
      statusSinceMs: health?.statusSinceMs ?? record.statusSinceMs,
      lastHeartbeatAtMs: health?.lastHeartbeatAtMs ?? record.lastHeartbeatAtMs,
      heartbeatAgeMs: health?.heartbeatAgeMs ?? null,
      // JSON has no Infinity: a node silent beyond the normal table reads as phi 99.
      phi: phi === undefined ? null : Number.isFinite(phi) ? Math.round(phi * 100) / 100 : 99,
    };
  }
}
