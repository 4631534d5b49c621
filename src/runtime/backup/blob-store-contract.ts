// The contract every BlobStore passes (directory, memory, and later S3 and erasure-coded
// peers): run it from a backend's test file with a factory for fresh, empty stores.
import { describe, expect, it } from "vitest";
import { BackupError } from "../../core/backup/errors.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";

export interface StoreUnderTest {
  store: BlobStore;
  cleanup: () => Promise<void>;
}

export function describeBlobStoreContract(
  backendName: string,
  createStore: () => Promise<StoreUnderTest>,
): void {
  describe(`BlobStore contract: ${backendName}`, () => {
    const withStore = (test: (store: BlobStore) => Promise<void>) => async () => {
      const { store, cleanup } = await createStore();
      try {
        await test(store);
      } finally {
        await cleanup();
      }
    };
    const bytes = (text: string) => new TextEncoder().encode(text);

    it(
      "stores and returns blobs byte for byte, including empty ones",
      withStore(async (store) => {
        const binary = new Uint8Array(256).map((_, index) => index);
        await store.put("data/00/blob", binary);
        await store.put("keys/empty", new Uint8Array(0));
        expect([...(await store.get("data/00/blob"))]).toEqual([...binary]);
        expect((await store.get("keys/empty")).length).toBe(0);
        expect(await store.sizeBytes("data/00/blob")).toBe(256);
      }),
    );

    it(
      "stores a list of parts as their concatenation",
      withStore(async (store) => {
        const parts = Array.from({ length: 2500 }, (_, index) => bytes(`part ${index};`));
        await store.put("data/01/parts", parts);
        expect(new TextDecoder().decode(await store.get("data/01/parts"))).toBe(
          parts.map((part) => new TextDecoder().decode(part)).join(""),
        );
        await store.put("data/01/none", []);
        expect(await store.sizeBytes("data/01/none")).toBe(0);
      }),
    );

    it(
      "writes a pending blob piece by piece, shows it only on commit, and discards it on abort",
      withStore(async (store) => {
        const pending = await store.begin();
        await pending.append(bytes("first "));
        await pending.append([bytes("second "), bytes("third")]);
        expect(await store.list("data/")).toEqual([]);
        await pending.commit("data/7f/pending");
        expect(new TextDecoder().decode(await store.get("data/7f/pending"))).toBe(
          "first second third",
        );
        const discarded = await store.begin();
        await discarded.append(bytes("never stored"));
        await discarded.abort();
        expect(await store.list("")).toEqual(["data/7f/pending"]);
      }),
    );

    it(
      "replaces a blob whole on a second put",
      withStore(async (store) => {
        await store.put("config", bytes("first version, longer"));
        await store.put("config", bytes("second"));
        expect(new TextDecoder().decode(await store.get("config"))).toBe("second");
      }),
    );

    it(
      "reads ranges and returns fewer bytes past the end",
      withStore(async (store) => {
        await store.put("data/ab/pack", bytes("0123456789"));
        expect(new TextDecoder().decode(await store.getRange("data/ab/pack", 2, 3))).toBe("234");
        expect(new TextDecoder().decode(await store.getRange("data/ab/pack", 8, 10))).toBe("89");
      }),
    );

    it(
      "reports missing blobs as BLOB_NOT_FOUND and exists() as false",
      withStore(async (store) => {
        await expect(store.get("snapshots/missing")).rejects.toSatisfy(
          (error) => error instanceof BackupError && error.code === "BLOB_NOT_FOUND",
        );
        await expect(store.getRange("snapshots/missing", 0, 1)).rejects.toSatisfy(
          (error) => error instanceof BackupError && error.code === "BLOB_NOT_FOUND",
        );
        await expect(store.sizeBytes("snapshots/missing")).rejects.toSatisfy(
          (error) => error instanceof BackupError && error.code === "BLOB_NOT_FOUND",
        );
        expect(await store.exists("snapshots/missing")).toBe(false);
      }),
    );

    it(
      "lists by prefix across nested names and forgets deleted blobs",
      withStore(async (store) => {
        await store.put("data/00/a", bytes("a"));
        await store.put("data/ff/b", bytes("b"));
        await store.put("index/c", bytes("c"));
        expect((await store.list("data/")).sort()).toEqual(["data/00/a", "data/ff/b"]);
        expect(await store.list("locks/")).toEqual([]);
        await store.delete("data/00/a");
        await store.delete("data/00/a");
        expect(await store.list("data/")).toEqual(["data/ff/b"]);
        expect(await store.exists("data/00/a")).toBe(false);
      }),
    );

    it(
      "keeps concurrent puts to different names apart",
      withStore(async (store) => {
        const names = Array.from(
          { length: 20 },
          (_, index) => `data/${String(index % 4).padStart(2, "0")}/blob${index}`,
        );
        await Promise.all(names.map((name) => store.put(name, bytes(name))));
        for (const name of names)
          expect(new TextDecoder().decode(await store.get(name))).toBe(name);
        expect((await store.list("data/")).length).toBe(names.length);
      }),
    );

    it(
      "copies the data on put: later changes to the caller's buffer do not leak in",
      withStore(async (store) => {
        const buffer = bytes("original");
        await store.put("keys/k", buffer);
        buffer.fill(0);
        expect(new TextDecoder().decode(await store.get("keys/k"))).toBe("original");
      }),
    );
  });
}
