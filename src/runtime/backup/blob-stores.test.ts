import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeBlobStoreContract } from "./blob-store-contract.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { MemoryBlobStore } from "./memory-blob-store.ts";

describeBlobStoreContract("memory", () =>
  Promise.resolve({ store: new MemoryBlobStore(), cleanup: () => Promise.resolve() }),
);

describeBlobStoreContract("directory", async () => {
  const directory = await mkdtemp(join(tmpdir(), "edgeward-blob-store-"));
  return {
    store: new DirectoryBlobStore(directory),
    cleanup: () => rm(directory, { recursive: true, force: true }),
  };
});

describe("DirectoryBlobStore", () => {
  it("leaves no temporary files behind after puts", async () => {
    const directory = await mkdtemp(join(tmpdir(), "edgeward-blob-store-"));
    try {
      const store = new DirectoryBlobStore(directory);
      await store.put("data/aa/one", new Uint8Array([1, 2, 3]));
      expect(await readdir(join(directory, "data/aa"))).toEqual(["one"]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
