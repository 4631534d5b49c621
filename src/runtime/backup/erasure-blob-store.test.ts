// The erasure-coded store over directory shard holders: the contract, loss of any m holders,
// loss of m + 1, corrupt shards, unreachable holders, and a whole backup restored after loss.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BackupError } from "../../core/backup/errors.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { backup } from "./backup.ts";
import { describeBlobStoreContract } from "./blob-store-contract.ts";
import { check } from "./check.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import {
  ErasureBlobStore,
  NotEnoughShardsError,
  decodeShardHeader,
  encodeShardHeader,
} from "./erasure-blob-store.ts";
import { MemoryBlobStore } from "./memory-blob-store.ts";
import { openRepository } from "./repository.ts";
import { restore } from "./restore.ts";
import {
  describeTree,
  initTestingRepository,
  noise,
  testingPassword,
  withTemporaryDirectory,
} from "./testing.ts";

const holderCount = 6;

function holderDirectories(root: string, count = holderCount): string[] {
  return Array.from({ length: count }, (_, index) => join(root, `holder-${index}`));
}

function storeOver(directories: readonly string[]): ErasureBlobStore {
  return new ErasureBlobStore(directories.map((directory) => new DirectoryBlobStore(directory)));
}

/** Sizes around the shard alignment and the k-way split, plus a few large ones. */
const blobSizes = [0, 1, 7, 8, 31, 32, 33, 1000, 4096, 65_537, 1_000_003];

async function writeBlobs(store: BlobStore): Promise<Map<string, Buffer>> {
  const blobs = new Map<string, Buffer>();
  for (const [index, size] of blobSizes.entries()) {
    const name = `data/${String(index).padStart(2, "0")}/blob-${size}`;
    const data = noise(size, index + 1);
    await store.put(name, data);
    blobs.set(name, data);
  }
  return blobs;
}

/** A holder that is switched off: every call fails as an unreachable peer would. */
class UnreachableHolder implements BlobStore {
  readonly location = "unreachable-peer";
  private fail(): Promise<never> {
    return Promise.reject(new BackupError("STORAGE_FAILED", "connection refused"));
  }
  put = () => this.fail();
  begin = () => this.fail();
  get = () => this.fail();
  getRange = () => this.fail();
  sizeBytes = () => this.fail();
  exists = () => this.fail();
  list = () => this.fail();
  delete = () => this.fail();
}

describeBlobStoreContract("erasure k=4 m=2 over 6 directories", () =>
  withTemporaryDirectoryHeld((root) => storeOver(holderDirectories(root))),
);

describeBlobStoreContract("erasure k=4 m=2 over 9 memory holders", () =>
  Promise.resolve({
    store: new ErasureBlobStore(Array.from({ length: 9 }, () => new MemoryBlobStore())),
    cleanup: () => Promise.resolve(),
  }),
);

/** Like withTemporaryDirectory, but the directory lives until the contract's cleanup. */
async function withTemporaryDirectoryHeld(
  create: (root: string) => BlobStore,
): Promise<{ store: BlobStore; cleanup: () => Promise<void> }> {
  let release: () => void = () => undefined;
  let ready: (root: string) => void = () => undefined;
  const rootReady = new Promise<string>((resolve) => (ready = resolve));
  const finished = withTemporaryDirectory(
    (root) =>
      new Promise<void>((resolve) => {
        release = resolve;
        ready(root);
      }),
  );
  const root = await rootReady;
  return {
    store: create(root),
    cleanup: async () => {
      release();
      await finished;
    },
  };
}

describe("ErasureBlobStore", () => {
  it("round-trips shard headers and rejects a changed one", () => {
    const header = {
      dataShardCount: 4,
      parityShardCount: 2,
      shardIndex: 5,
      blobLengthBytes: 2 ** 40 + 3,
      payloadLengthBytes: 4096,
      shardSha256s: Array.from({ length: 6 }, (_, index) => Buffer.alloc(32, index + 1)),
      name: "data/ab/pack",
    };
    const encoded = encodeShardHeader(header);
    expect(encoded.length).toBe(22 + 6 * 32 + 2 + 12 + 8);
    expect(decodeShardHeader(encoded)).toMatchObject({ ...header, headerBytes: encoded.length });
    encoded[12] = (encoded[12] as number) ^ 1;
    expect(decodeShardHeader(encoded)).toBe("header checksum mismatch");
  });

  it("places a blob's k + m shards on distinct holders and stores (k + m) / k of its size", async () => {
    await withTemporaryDirectory(async (root) => {
      const directories = holderDirectories(root, 9);
      const store = storeOver(directories);
      const placement = store.placementOf("data/00/x");
      expect(new Set(placement).size).toBe(6);
      await store.put("data/00/x", noise(400_000, 3));
      let storedBytes = 0;
      for (const holder of placement)
        storedBytes += (await readFile(join(directories[holder] as string, "data/00/x"))).length;
      expect(storedBytes).toBeLessThan(400_000 * 1.5 + 6 * (300 + 8));
    });
  });

  it("reads every blob byte-identical after losing any m = 2 holders", async () => {
    await withTemporaryDirectory(async (root) => {
      const directories = holderDirectories(root);
      const blobs = await writeBlobs(storeOver(directories));
      for (let first = 0; first < holderCount; first++)
        for (let second = first + 1; second < holderCount; second++) {
          // A lost holder: its directory is gone (here: a path that never existed).
          const surviving = directories.map((directory, index) =>
            index === first || index === second ? join(root, `lost-${index}`) : directory,
          );
          const store = storeOver(surviving);
          for (const [name, data] of blobs) {
            expect(
              Buffer.from(await store.get(name)).equals(data),
              `${name} without ${first}, ${second}`,
            ).toBe(true);
            expect(await store.sizeBytes(name)).toBe(data.length);
          }
          expect((await store.list("data/")).sort()).toEqual([...blobs.keys()].sort());
        }
    });
  });

  it("survives deleting two holders' directories, and fails clearly after a third", async () => {
    await withTemporaryDirectory(async (root) => {
      const directories = holderDirectories(root);
      const blobs = await writeBlobs(storeOver(directories));
      await rm(directories[1] as string, { recursive: true });
      await rm(directories[4] as string, { recursive: true });
      for (const [name, data] of blobs)
        expect(Buffer.from(await storeOver(directories).get(name)).equals(data)).toBe(true);
      await rm(directories[2] as string, { recursive: true });
      const [name] = [...blobs.keys()];
      await expect(storeOver(directories).get(name as string)).rejects.toSatisfy(
        (error) =>
          error instanceof NotEnoughShardsError &&
          error.code === "STORAGE_FAILED" &&
          error.shardsHealthy === 3 &&
          error.shardsNeeded === 4 &&
          error.problems.filter((problem) => problem.problem === "missing").length === 3 &&
          error.message.includes("only 3 of the 4 shards needed are healthy"),
      );
    });
  });

  it("detects corrupt shards and reconstructs around up to m of them", async () => {
    await withTemporaryDirectory(async (root) => {
      const directories = holderDirectories(root);
      const store = storeOver(directories);
      const data = noise(100_000, 9);
      await store.put("data/cc/pack", data);
      const corrupt = async (holder: number, offset: number) => {
        const path = join(directories[holder] as string, "data/cc/pack");
        const bytes = await readFile(path);
        bytes[offset] = (bytes[offset] as number) ^ 0xff;
        await writeFile(path, bytes);
      };
      const placement = store.placementOf("data/cc/pack");
      await corrupt(placement[0] as number, 5_000); // payload of data shard 0
      await corrupt(placement[2] as number, 20); // header of data shard 2
      expect(Buffer.from(await storeOver(directories).get("data/cc/pack")).equals(data)).toBe(true);
      await corrupt(placement[5] as number, 9_000); // payload of parity shard 1
      await expect(storeOver(directories).get("data/cc/pack")).rejects.toSatisfy(
        (error) =>
          error instanceof NotEnoughShardsError &&
          error.problems.filter((problem) => problem.problem === "corrupt").length === 3 &&
          error.message.includes("payload checksum mismatch"),
      );
    });
  });

  it("reads around unreachable holders, writes only with enough of them, and says why not", async () => {
    await withTemporaryDirectory(async (root) => {
      const directories = holderDirectories(root);
      const blobs = await writeBlobs(storeOver(directories));
      const holders: BlobStore[] = directories.map(
        (directory) => new DirectoryBlobStore(directory),
      );
      holders[3] = new UnreachableHolder();
      const degraded = new ErasureBlobStore(holders);
      for (const [name, data] of blobs)
        expect(Buffer.from(await degraded.get(name)).equals(data)).toBe(true);
      expect((await degraded.list("data/")).length).toBe(blobs.size);
      expect(await degraded.exists("data/00/blob-0")).toBe(true);
      await expect(degraded.put("index/new", noise(1000, 1))).rejects.toSatisfy(
        (error) =>
          error instanceof BackupError &&
          error.code === "STORAGE_FAILED" &&
          error.message.includes("only 5 of 6 shards stored, 6 required"),
      );
      // The failed write left no shard behind.
      expect(await storeOver(directories).exists("index/new")).toBe(false);
      const lenient = new ErasureBlobStore(holders, { shardsRequiredForWrite: 5 });
      await lenient.put("index/new", noise(1000, 1));
      expect(Buffer.from(await lenient.get("index/new")).equals(noise(1000, 1))).toBe(true);
      await expect(degraded.delete("index/new")).rejects.toThrow(/run the command again/);
    });
  });

  it("refuses fewer holders than k + m", () => {
    expect(() => new ErasureBlobStore([new MemoryBlobStore()])).toThrow(/at least 6 shard holders/);
  });

  it("restores a whole backup byte-identical after losing m holders", async () => {
    await withTemporaryDirectory(async (root) => {
      const source = join(root, "source");
      await mkdir(join(source, "logs"), { recursive: true });
      await writeFile(join(source, "logs", "app.log"), "line of log\n".repeat(20_000));
      await writeFile(join(source, "blob.bin"), noise(300_000, 11));
      await writeFile(join(source, "empty"), "");
      const directories = holderDirectories(root, 7);
      const repository = await initTestingRepository(storeOver(directories));
      const { snapshotId } = await backup(repository, { paths: [source] });
      await rm(directories[0] as string, { recursive: true });
      await rm(directories[5] as string, { recursive: true });
      const reopened = await openRepository(storeOver(directories), testingPassword);
      const target = join(root, "target");
      await restore(reopened, { snapshotId, targetDirectory: target });
      expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
      expect((await check(reopened, { readData: { kind: "all" } })).errors).toEqual([]);
    });
  });
});
