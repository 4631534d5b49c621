// Incremental backups, keys, locks, forget/prune and the worker threads, end to end.
import { mkdir, readFile, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BackupError } from "../../core/backup/errors.ts";
import { objectNames } from "../../core/backup/objects.ts";
import { pruneDefaults } from "../../core/backup/prune-plan.ts";
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { keyDerivationTesting } from "./crypto.ts";
import { DirectoryBlobStore, storageError } from "./directory-blob-store.ts";
import { changePassword, rotateMasterKey } from "./keys.ts";
import { acquireLock } from "./lock.ts";
import { MemoryBlobStore } from "./memory-blob-store.ts";
import { forget, prune } from "./prune.ts";
import { openRepository, wrongPasswordMessage } from "./repository.ts";
import { restore } from "./restore.ts";
import {
  describeTree,
  initTestingRepository,
  noise,
  testingPassword,
  withTemporaryDirectory,
} from "./testing.ts";

async function writeFiles(source: string, count: number, seed: number): Promise<void> {
  await mkdir(source, { recursive: true });
  for (let index = 0; index < count; index++)
    await writeFile(join(source, `file-${index}.bin`), noise(20_000 + index * 1000, seed + index));
}

const open = (store: MemoryBlobStore | DirectoryBlobStore, password = testingPassword) =>
  openRepository(store, password);

describe("incremental backup", () => {
  it("skips unchanged files and stores only the new chunks of a changed one", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeFiles(source, 5, 1);
      const store = new MemoryBlobStore();
      await initTestingRepository(store);
      const first = await backup(await open(store), { paths: [source] });
      const big = noise(200_000, 99);
      await writeFile(join(source, "big.bin"), big);
      const second = await backup(await open(store), { paths: [source] });
      expect(second.snapshot.parent).toBe(first.snapshotId);
      expect(second.snapshot.summary).toMatchObject({
        filesUnmodified: 5,
        filesNew: 1,
        filesChanged: 0,
      });
      // Append to the big file: the earlier chunks are deduplicated, only the tail is new.
      await writeFile(join(source, "big.bin"), Buffer.concat([big, noise(5000, 100)]));
      const third = await backup(await open(store), { paths: [source] });
      expect(third.snapshot.summary).toMatchObject({ filesUnmodified: 5, filesChanged: 1 });
      expect(third.snapshot.summary.blobsAdded).toBeLessThanOrEqual(4);
      const unchanged = await backup(await open(store), { paths: [source] });
      expect(unchanged.snapshot.summary).toMatchObject({ blobsAdded: 0, bytesProcessed: 0 });
      expect(unchanged.snapshot.tree).toBe(third.snapshot.tree);
    });
  });

  it("worker threads produce the same blobs as the calling thread", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeFiles(source, 10, 10);
      // Files below the smallest chunk, after the large ones: they go to idle workers.
      await mkdir(join(source, "small"));
      for (let index = 0; index < 40; index++)
        await writeFile(join(source, "small", `${index}.txt`), noise(50 + index * 40, 500 + index));
      const store = new DirectoryBlobStore(join(directory, "repository"));
      await initTestingRepository(store);
      const threaded = await backup(await open(store), {
        paths: [source],
        workerCount: 2,
        parentSnapshotId: null,
      });
      expect(threaded.snapshot.summary.blobsAdded).toBeGreaterThan(6);
      const inline = await backup(await open(store), {
        paths: [source],
        workerCount: 0,
        parentSnapshotId: null,
      });
      expect(inline.snapshot.summary.blobsAdded).toBe(0);
      expect(inline.snapshot.tree).toBe(threaded.snapshot.tree);
      const target = join(directory, "target");
      await restore(await open(store), {
        snapshotId: threaded.snapshotId,
        targetDirectory: target,
      });
      expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
      // A damaged blob in a directory repository: refused, and no partial file is left behind.
      const repository = await open(store);
      await repository.loadIndex();
      const location = [...repository.index.blobs.values()].find(
        (blob) => blob.type === "data" && blob.lengthBytes > 1000,
      );
      const packPath = join(
        directory,
        "repository",
        "data",
        location?.packId.slice(0, 2) ?? "",
        location?.packId ?? "",
      );
      const pack = await readFile(packPath);
      const damagedAt = (location?.offsetBytes ?? 0) + 500;
      pack[damagedAt] = (pack[damagedAt] as number) ^ 0x01;
      await writeFile(packPath, pack);
      const damagedTarget = join(directory, "damaged");
      await expect(
        restore(await open(store), {
          snapshotId: threaded.snapshotId,
          targetDirectory: damagedTarget,
        }),
      ).rejects.toThrow(/authentication failed/);
      expect(
        (await readdir(join(damagedTarget, "source"))).filter((name) =>
          name.includes("edgeward-partial"),
        ),
      ).toEqual([]);
    });
  });
});

describe("keys", () => {
  it("adds, lists and removes passwords; a wrong one is refused clearly", async () => {
    const store = new MemoryBlobStore();
    const repository = await initTestingRepository(store);
    const added = await repository.addKey("second password", keyDerivationTesting);
    expect((await repository.listKeys()).map((key) => key.id).sort()).toEqual(
      [repository.keyId, added].sort(),
    );
    const second = await open(store, "second password");
    expect(second.keyId).toBe(added);
    await expect(second.removeKey(added.slice(0, 8))).rejects.toThrow(/key in use/);
    await second.removeKey(repository.keyId.slice(0, 8));
    await expect(open(store)).rejects.toThrow(wrongPasswordMessage);
  });

  it("changes a password", async () => {
    const store = new MemoryBlobStore();
    await changePassword(await initTestingRepository(store), "new password", keyDerivationTesting);
    await expect(open(store)).rejects.toThrow(wrongPasswordMessage);
    expect((await open(store, "new password")).keys.currentGeneration).toBe(0);
  });

  it("rotates the master key: old data stays readable, new data uses the new key, other passwords go", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeFiles(source, 3, 20);
      const store = new MemoryBlobStore();
      const repository = await initTestingRepository(store);
      await repository.addKey("colleague", keyDerivationTesting);
      const before = await backup(repository, { paths: [source] });
      const rotation = await rotateMasterKey(
        await open(store),
        [testingPassword],
        keyDerivationTesting,
      );
      expect(rotation).toMatchObject({ generation: 1, keyIdsWritten: [expect.any(String)] });
      expect(rotation.keyIdsRemoved).toHaveLength(2);
      await expect(open(store, "colleague")).rejects.toThrow(wrongPasswordMessage);
      const rotated = await open(store);
      expect(rotated.keys.currentGeneration).toBe(1);
      await writeFile(join(source, "after-rotation.bin"), noise(30_000, 5));
      const after = await backup(rotated, { paths: [source] });
      const reopened = await open(store);
      await reopened.loadIndex();
      const generations = new Set(
        [...reopened.index.blobs.values()].map((blob) => blob.keyGeneration),
      );
      expect(generations).toEqual(new Set([0, 1]));
      expect((await check(await open(store), { readData: { kind: "all" } })).errors).toEqual([]);
      for (const snapshotId of [before.snapshotId, after.snapshotId]) {
        const target = join(directory, `target-${snapshotId}`);
        await restore(await open(store), { snapshotId, targetDirectory: target });
      }
    });
  });
});

describe("locks", () => {
  it("an exclusive lock blocks backups; a lock of a dead process on this host does not", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeFiles(source, 1, 30);
      const store = new MemoryBlobStore();
      await initTestingRepository(store);
      const lock = await acquireLock(store, true);
      await expect(backup(await open(store), { paths: [source] })).rejects.toSatisfy(
        (error) => error instanceof BackupError && error.code === "LOCKED",
      );
      await lock.release();
      const deadPid = 2 ** 22 + 12_345;
      const hostname = (await import("node:os")).hostname();
      const stale = {
        version: 1,
        exclusive: true,
        hostname,
        pid: deadPid,
        createdAtMs: Date.now(),
        refreshedAtMs: Date.now(),
      };
      await store.put(objectNames.lock("f".repeat(64)), Buffer.from(JSON.stringify(stale)));
      await backup(await open(store), { paths: [source] });
      // A shared lock never blocks another shared lock, and exclusive work removes stale locks.
      await prune(await open(store));
      expect(await store.list("locks/")).toEqual([]);
    });
  });

  it("maps ENOSPC from the file system to STORAGE_FULL", () => {
    const error = storageError(
      Object.assign(new Error("no space"), { code: "ENOSPC" }),
      "writing data/00/x",
    );
    expect(error.code).toBe("STORAGE_FULL");
  });
});

describe("forget and prune", () => {
  it("forgets by policy, frees unreferenced data, repacks, and keeps the rest intact", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      const store = new MemoryBlobStore();
      await initTestingRepository(store);
      const hourMs = 3_600_000;
      const startMs = Date.UTC(2026, 0, 1);
      const snapshotIds: string[] = [];
      for (let generation = 0; generation < 3; generation++) {
        await rm(source, { recursive: true, force: true });
        await writeFiles(source, 3, 100 * generation);
        snapshotIds.push(
          (
            await backup(await open(store), {
              paths: [source],
              timeMs: startMs + generation * hourMs,
            })
          ).snapshotId,
        );
      }
      const bytesBefore = [...store.blobs.values()].reduce((sum, blob) => sum + blob.length, 0);
      const dryRun = await forget(await open(store), { keepLast: 1 }, { dryRun: true });
      expect(dryRun.removed).toHaveLength(2);
      expect(await store.list("snapshots/")).toHaveLength(3);
      const forgotten = await forget(await open(store), { keepLast: 1 });
      expect(forgotten.removed.sort()).toEqual(snapshotIds.slice(0, 2).sort());
      const pruned = await prune(await open(store));
      expect(pruned.plan.remove.length + pruned.plan.repack.length).toBeGreaterThan(0);
      const bytesAfter = [...store.blobs.values()].reduce((sum, blob) => sum + blob.length, 0);
      expect(bytesAfter).toBeLessThan(bytesBefore * 0.6);
      expect(await check(await open(store), { readData: { kind: "all" } })).toMatchObject({
        errors: [],
        warnings: [],
      });
      const target = join(directory, "target");
      await restore(await open(store), {
        snapshotId: snapshotIds[2] as string,
        targetDirectory: target,
      });
      expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
      // A second prune finds nothing more to do.
      expect((await prune(await open(store))).plan).toMatchObject({ remove: [], repack: [] });
    });
  });
});

describe("prune and temporary files", () => {
  it("removes the temporary files of interrupted writes older than the safe age, and counts them", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      const repositoryDirectory = join(directory, "repository");
      const store = new DirectoryBlobStore(repositoryDirectory);
      await initTestingRepository(store);
      await writeFiles(source, 3, 0);
      await backup(await open(store), { paths: [source] });
      const temporaryNames = async () =>
        (await readdir(repositoryDirectory)).filter((name) => name.startsWith(".tmp-")).sort();
      // An interrupted pack write (begun, never committed) and a leftover of a crash, both
      // two hours old, and one written a moment ago.
      const interrupted = await store.begin();
      await interrupted.append(Buffer.alloc(1000, 1));
      await writeFile(join(repositoryDirectory, ".tmp-crashed"), "x");
      const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
      for (const name of await temporaryNames())
        await utimes(join(repositoryDirectory, name), twoHoursAgo, twoHoursAgo);
      await writeFile(join(repositoryDirectory, ".tmp-recent"), "y");
      expect(await temporaryNames()).toHaveLength(3);

      const dryRun = await prune(await open(store), { ...pruneDefaults, dryRun: true });
      expect(dryRun.temporaryFilesRemoved).toBe(0);
      const pruned = await prune(await open(store));
      expect(pruned.temporaryFilesRemoved).toBe(2);
      expect(await temporaryNames()).toEqual([".tmp-recent"]);
      const withoutMargin = await prune(await open(store), {
        ...pruneDefaults,
        temporaryFileAgeMsMin: 0,
      });
      expect(withoutMargin.temporaryFilesRemoved).toBe(1);
      expect(await temporaryNames()).toEqual([]);
      await interrupted.abort();
      expect(await check(await open(store), { readData: { kind: "all" } })).toMatchObject({
        errors: [],
        warnings: [],
      });
    });
  });
});
