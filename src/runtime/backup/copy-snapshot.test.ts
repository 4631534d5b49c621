// Copying snapshots between repositories that share the fleet's key ring: byte-identical
// restores from the copy, dedup across copies, an interrupted copy and its rerun.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { copySnapshot, initRepositoryLike } from "./copy-snapshot.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { openRepository } from "./repository.ts";
import type { Repository } from "./repository.ts";
import { restore } from "./restore.ts";
import {
  describeTree,
  initTestingRepository,
  noise,
  testingPassword,
  testingRepositoryOptions,
  withTemporaryDirectory,
} from "./testing.ts";

async function writeDataset(root: string, seed: number): Promise<void> {
  await mkdir(join(root, "nested", "deeper"), { recursive: true });
  await writeFile(join(root, "big.bin"), noise(300_000, seed));
  await writeFile(join(root, "nested", "log.txt"), "line of a log\n".repeat(20_000));
  await writeFile(join(root, "nested", "deeper", "small.json"), '{"x":1}\n');
  for (let index = 0; index < 20; index++)
    await writeFile(join(root, "nested", `file-${index}.bin`), noise(5_000, seed * 100 + index));
}

async function restoredTree(repository: Repository, snapshotId: string, target: string) {
  await mkdir(target, { recursive: true });
  await restore(repository, { snapshotId, targetDirectory: target });
  return describeTree(join(target, "source"));
}

describe("copySnapshot", () => {
  it("copies a snapshot that restores byte-identical, then only new blobs", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeDataset(source, 1);
      const from = await initTestingRepository(new DirectoryBlobStore(join(directory, "from")));
      const first = await backup(from, { paths: [source], workerCount: 0 });
      const to = await initRepositoryLike(
        new DirectoryBlobStore(join(directory, "to")),
        testingPassword,
        from,
        testingRepositoryOptions,
      );
      const copied = await copySnapshot(from, to, first.snapshotId);
      expect(copied.alreadyPresent).toBe(false);
      expect(copied.blobsCopied).toBeGreaterThan(10);
      expect(copied.blobsCopiedSealed).toBe(copied.blobsCopied);

      // Opened afresh with the password: the copy is a repository of its own.
      const reopened = await openRepository(to.store, testingPassword);
      expect((await check(reopened, { readData: { kind: "all" } })).errors).toEqual([]);
      expect(await restoredTree(reopened, copied.snapshotId, join(directory, "r1"))).toEqual(
        await describeTree(source),
      );

      // Copying again is a no-op; a new snapshot copies only its new blobs.
      expect((await copySnapshot(from, reopened, first.snapshotId)).alreadyPresent).toBe(true);
      await writeFile(join(source, "nested", "file-3.bin"), noise(5_000, 999));
      const second = await backup(from, { paths: [source], workerCount: 0 });
      const again = await copySnapshot(from, reopened, second.snapshotId);
      expect(again.blobsCopied).toBeGreaterThan(0);
      expect(again.blobsCopied).toBeLessThan(copied.blobsCopied / 4);
      expect(again.blobsSkipped).toBeGreaterThan(10);
      expect(await restoredTree(reopened, again.snapshotId, join(directory, "r2"))).toEqual(
        await describeTree(source),
      );
    });
  });

  it("leaves a valid destination when interrupted, and the rerun reuses what was copied", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeDataset(source, 2);
      const from = await initTestingRepository(new DirectoryBlobStore(join(directory, "from")));
      const { snapshotId } = await backup(from, { paths: [source], workerCount: 0 });
      const full = await copySnapshot(
        from,
        await initRepositoryLike(
          new DirectoryBlobStore(join(directory, "fresh")),
          testingPassword,
          from,
          testingRepositoryOptions,
        ),
        snapshotId,
      );
      const toStore = new DirectoryBlobStore(join(directory, "to"));
      const to = await initRepositoryLike(toStore, testingPassword, from, testingRepositoryOptions);
      // Late enough that whole packs were stored, early enough that blobs are left to copy.
      const crashAt = Math.floor((full.blobsCopied * 3) / 4);
      await expect(
        copySnapshot(from, to, snapshotId, {
          onBlobCopied: (count) => {
            if (count === crashAt) throw new Error("crash in the middle");
          },
        }),
      ).rejects.toThrow("crash in the middle");
      const afterCrash = await openRepository(toStore, testingPassword);
      expect((await check(afterCrash)).errors).toEqual([]);
      expect(await afterCrash.listSnapshots()).toEqual([]);

      const rerun = await copySnapshot(from, afterCrash, snapshotId);
      expect(rerun.blobsSkipped).toBeGreaterThan(0);
      expect(rerun.blobsCopied).toBeLessThan(full.blobsCopied);
      const final = await openRepository(toStore, testingPassword);
      expect((await check(final, { readData: { kind: "all" } })).errors).toEqual([]);
      expect(await restoredTree(final, rerun.snapshotId, join(directory, "r"))).toEqual(
        await describeTree(source),
      );
    });
  });

  it("refuses repositories with different blob-id keys", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await mkdir(source);
      await writeFile(join(source, "a"), "a");
      const from = await initTestingRepository(new DirectoryBlobStore(join(directory, "from")));
      const to = await initTestingRepository(new DirectoryBlobStore(join(directory, "to")));
      const { snapshotId } = await backup(from, { paths: [source], workerCount: 0 });
      await expect(copySnapshot(from, to, snapshotId)).rejects.toThrow("different blob-id keys");
    });
  });
});
