// The behaviour every Store implementation must have, run against each of them.

import { afterEach, describe, expect, it } from "vitest";
import type { FleetEventDraft } from "../../api/contract.ts";
import type { NodeRecord, Store } from "../../ports/store.ts";

export interface StoreFactory {
  open(): Promise<Store>;
  /** Re-opens the same durable state; undefined for stores that keep nothing. */
  reopen?: () => Promise<Store>;
}

export function nodeRecord(id: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    zone: "line-a",
    tier: "site",
    capabilities: ["data_processing"],
    labels: { line: "a" },
    quotas: { cpuCores: 4, memoryMb: 8192, storageGb: 256, networkMbps: 1000 },
    agentUrl: "http://127.0.0.1:9000",
    incarnation: 1,
    status: "HEALTHY",
    statusSinceMs: 1_000,
    registeredAtMs: 1_000,
    lastHeartbeatAtMs: 1_500,
    metrics: null,
    ...overrides,
  };
}

const transition = (node: string, atMs: number): FleetEventDraft => ({
  type: "node.status",
  node,
  from: "HEALTHY",
  to: "FAILED",
  atMs,
  reason: "probe-refused",
});

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    const opened: Store[] = [];
    const open = async (reopen = false) => {
      const store = reopen && factory.reopen ? await factory.reopen() : await factory.open();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    it("saves, replaces and loads node records", async () => {
      const store = await open();
      await store.saveNodes([nodeRecord("a"), nodeRecord("b")]);
      await store.saveNodes([nodeRecord("a", { status: "FAILED", incarnation: 2 })]);
      const loaded = await store.loadNodes();
      expect(loaded.map((record) => [record.id, record.status, record.incarnation])).toEqual([
        ["a", "FAILED", 2],
        ["b", "HEALTHY", 1],
      ]);
      expect(loaded[1]).toEqual(nodeRecord("b"));
    });

    it("returns copies, not live references", async () => {
      const store = await open();
      const record = nodeRecord("a");
      await store.saveNodes([record]);
      record.labels["line"] = "changed";
      const [loaded] = await store.loadNodes();
      expect(loaded?.labels["line"]).toBe("a");
    });

    it("deletes nodes and says whether one was there", async () => {
      const store = await open();
      await store.saveNodes([nodeRecord("a")]);
      expect(await store.deleteNode("a")).toBe(true);
      expect(await store.deleteNode("a")).toBe(false);
      expect(await store.loadNodes()).toEqual([]);
    });

    it("appends events with increasing ids and pages through them", async () => {
      const store = await open();
      const appended = await store.appendEvents([
        transition("a", 1),
        transition("b", 2),
        transition("c", 3),
      ]);
      expect(appended.map((event) => event.id)).toEqual([1, 2, 3]);
      expect(await store.readEvents(0, 2)).toEqual(appended.slice(0, 2));
      expect(await store.readEvents(2, 100)).toEqual(appended.slice(2));
      expect(await store.readEvents(3, 100)).toEqual([]);
    });

    it("saves, replaces and loads named documents", async () => {
      const store = await open();
      expect(await store.loadDocument("failover")).toBeUndefined();
      await store.saveDocument("failover", '{"version":1}');
      await store.saveDocument("failover", '{"version":2}');
      expect(await store.loadDocument("failover")).toBe('{"version":2}');
      expect(await store.loadDocument("other")).toBeUndefined();
    });

    it("rejects, never throws, when used after close", async () => {
      const store = await open();
      await store.close();
      opened.splice(opened.indexOf(store), 1);
      let outcome: Promise<void> | undefined;
      expect(() => {
        outcome = store.saveNodes([nodeRecord("a")]);
      }).not.toThrow();
      await expect(outcome).rejects.toBeInstanceOf(Error);
    });

    if (factory.reopen) {
      it("keeps nodes and events across a restart", async () => {
        const store = await open();
        await store.saveNodes([nodeRecord("a")]);
        await store.appendEvents([transition("a", 1)]);
        await store.saveDocument("failover", "{}");
        await store.close();
        opened.splice(opened.indexOf(store), 1);
        const reopened = await open(true);
        expect(await reopened.loadNodes()).toEqual([nodeRecord("a")]);
        expect(await reopened.loadDocument("failover")).toBe("{}");
        const [event] = await reopened.readEvents(0, 10);
        expect(event).toMatchObject({ id: 1, type: "node.status", node: "a" });
        const [next] = await reopened.appendEvents([transition("b", 2)]);
        expect(next?.id).toBe(2);
      });
    }
  });
}
