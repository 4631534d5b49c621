// Copying snapshots between repositories, sharing the fleet's key ring or with keys of their
// own: byte-identical restores from the copy, only new blobs on the next copy, an interrupted
// copy and its rerun.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { copySnapshot, initRepositoryLike } from "./copy-snapshot.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { initRepository, openRepository, sha256Hex } from "./repository.ts";
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

  it("copies between repositories with different keys: ids rewritten, restores, then only new blobs", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeDataset(source, 3);
      // A second copy of a file: identical content in two places is stored once.
      await writeFile(join(source, "nested", "deeper", "big-again.bin"), noise(300_000, 3));
      const from = await initTestingRepository(new DirectoryBlobStore(join(directory, "from")));
      const toStore = new DirectoryBlobStore(join(directory, "to"));
      const otherPassword = "another password, another key ring";
      const to = await initRepository(toStore, otherPassword, testingRepositoryOptions);
      expect(to.keys.blobIdKey.equals(from.keys.blobIdKey)).toBe(false);
      const first = await backup(from, { paths: [source], workerCount: 0 });

      const copied = await copySnapshot(from, to, first.snapshotId, { tags: ["level:REGIONAL"] });
      expect(copied).toMatchObject({
        alreadyPresent: false,
        idsRewritten: true,
        blobsCopiedSealed: 0,
      });
      const dataBlobsInSource = [...from.index.blobs.values()].filter(
        (blob) => blob.type === "data",
      ).length;
      expect(copied.blobsDecrypted).toBeGreaterThanOrEqual(dataBlobsInSource);
      expect(copied.blobsCopied).toBeGreaterThan(10);

      const reopened = await openRepository(toStore, otherPassword);
      await expect(openRepository(toStore, testingPassword)).rejects.toThrow("wrong password");
      expect((await check(reopened, { readData: { kind: "all" } })).errors).toEqual([]);
      const copy = await reopened.loadSnapshot(copied.snapshotId);
      expect(copy).toMatchObject({ copiedFrom: first.snapshotId, tags: ["level:REGIONAL"] });
      expect(copy.tree).not.toBe(first.snapshot.tree);
      expect(await restoredTree(reopened, copied.snapshotId, join(directory, "r1"))).toEqual(
        await describeTree(source),
      );
      expect((await copySnapshot(from, reopened, first.snapshotId)).alreadyPresent).toBe(true);

      // One file changes: the copy reads and stores only its new chunks and the trees above it.
      await writeFile(join(source, "nested", "file-3.bin"), noise(5_000, 4242));
      const second = await backup(from, { paths: [source], workerCount: 0 });
      const again = await copySnapshot(from, reopened, second.snapshotId);
      expect(again.blobsCopied).toBeGreaterThan(0);
      expect(again.blobsCopied).toBeLessThan(copied.blobsCopied / 4);
      expect(again.blobsDecrypted).toBeLessThan(copied.blobsDecrypted / 4);
      expect(again.blobsSkipped).toBeGreaterThan(0);
      const final = await openRepository(toStore, otherPassword);
      expect((await check(final, { readData: { kind: "all" } })).errors).toEqual([]);
      expect((await final.loadSnapshot(again.snapshotId)).parent).toBe(copied.snapshotId);
      expect(await restoredTree(final, again.snapshotId, join(directory, "r2"))).toEqual(
        await describeTree(source),
      );
      // The first copy still restores the first state.
      const firstState = await restoredTree(final, copied.snapshotId, join(directory, "r3"));
      expect(firstState["nested/file-3.bin"]).toContain(`sha256=${sha256Hex(noise(5_000, 303))}`);
    });
  });

  it("reruns an interrupted copy between different keys and reuses what it stored", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await writeDataset(source, 5);
      const from = await initTestingRepository(new DirectoryBlobStore(join(directory, "from")));
      const { snapshotId } = await backup(from, { paths: [source], workerCount: 0 });
      const toStore = new DirectoryBlobStore(join(directory, "to"));
      const to = await initRepository(toStore, "other", testingRepositoryOptions);
      await expect(
        copySnapshot(from, to, snapshotId, {
          onBlobCopied: (count) => {
            if (count === 20) throw new Error("crash in the middle");
          },
        }),
      ).rejects.toThrow("crash in the middle");
      const afterCrash = await openRepository(toStore, "other");
      expect((await check(afterCrash)).errors).toEqual([]);
      expect(await afterCrash.listSnapshots()).toEqual([]);
      const rerun = await copySnapshot(from, afterCrash, snapshotId);
      expect(rerun.blobsSkipped).toBeGreaterThan(0);
      const final = await openRepository(toStore, "other");
      expect((await check(final, { readData: { kind: "all" } })).errors).toEqual([]);
      expect(await restoredTree(final, rerun.snapshotId, join(directory, "r"))).toEqual(
        await describeTree(source),
      );
    });
  });
});
