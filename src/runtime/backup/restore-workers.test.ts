// Restores through lanes on the calling thread and on restore workers: the same bytes either
// way, blobs larger than a read window, and damage refused with the calling thread's errors.
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import { objectNames } from "../../core/backup/objects.ts";
import { backup } from "./backup.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { initRepository, openRepository } from "./repository.ts";
import { restore } from "./restore.ts";
import {
  describeTree,
  noise,
  testingPassword,
  testingRepositoryOptions,
  withTemporaryDirectory,
} from "./testing.ts";
import { describeFailure, rebuildFailure } from "./worker-file-restorer.ts";

/**
 * Chunks of 2.5 to 8 MiB: every chunk of incompressible data is longer than a lane's 2 MiB read
 * window, so it is read into the lane's blob buffer and decrypted in place there.
 */
const largeChunks = {
  ...testingRepositoryOptions,
  chunker: {
    chunkSizeBytesMin: 2.5 * 1024 * 1024,
    chunkSizeBytesAverage: 4 * 1024 * 1024,
    chunkSizeBytesMax: 8 * 1024 * 1024,
  },
};

async function writeSource(source: string): Promise<void> {
  await mkdir(join(source, "small"), { recursive: true });
  // The calling thread takes the first file; with workers, the large one goes to a worker.
  await writeFile(join(source, "a-first.txt"), "first\n");
  await writeFile(join(source, "b-large.bin"), noise(11 * 1024 * 1024, 1));
  // Compressible: small sealed blobs that decompress to several MiB, read through the window.
  await writeFile(join(source, "c-log.txt"), "GET /api/v1/status 200 3ms\n".repeat(250_000));
  await writeFile(join(source, "d-empty"), "");
  // Half compressible: chunks whose sealed bytes are still longer than the window.
  const half = noise(12 * 1024 * 1024, 2);
  for (let offset = 0; offset < half.length; offset += 2048) half.fill(0, offset, offset + 1024);
  await writeFile(join(source, "e-half.bin"), half);
  for (let index = 0; index < 60; index++)
    await writeFile(join(source, "small", `${index}.json`), noise(100 + index * 700, 100 + index));
}

async function setUp(directory: string) {
  const source = join(directory, "source");
  await writeSource(source);
  const repositoryDirectory = join(directory, "repository");
  const store = new DirectoryBlobStore(repositoryDirectory);
  await initRepository(store, testingPassword, largeChunks);
  const { snapshotId } = await backup(await openRepository(store, testingPassword), {
    paths: [source],
  });
  return { source, store, repositoryDirectory, snapshotId };
}

/** The data blobs longer than a lane's read window. */
async function largeBlobs(store: DirectoryBlobStore) {
  const repository = await openRepository(store, testingPassword);
  await repository.loadIndex();
  return [...repository.index.blobs.values()].filter(
    (blob) => blob.type === "data" && blob.lengthBytes > 2 * 1024 * 1024,
  );
}

const partialFiles = async (target: string) =>
  (await readdir(target, { recursive: true }).catch(() => [])).filter((name) =>
    String(name).includes("edgeward-partial"),
  );

describe("restore lanes and workers", () => {
  it("restore workers and the calling thread alone write the same tree", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { source, store, snapshotId } = await setUp(directory);
      // Blobs longer than the window, stored raw and compressed.
      const large = await largeBlobs(store);
      expect(large.some((blob) => !blob.compressed)).toBe(true);
      expect(large.some((blob) => blob.compressed)).toBe(true);
      for (const workerCount of [0, 2, 3]) {
        const target = join(directory, `target-${workerCount}`);
        const progress: number[] = [];
        const result = await restore(await openRepository(store, testingPassword), {
          snapshotId,
          targetDirectory: target,
          workerCount,
          workerBytesMin: 0,
          onProgress: ({ filesDone }) => progress.push(filesDone),
        });
        expect(result).toMatchObject({
          filesRestored: 65,
          workerThreads: Math.max(workerCount - 1, 0),
        });
        expect(progress.at(-1)).toBe(65);
        expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
      }
    });
  });

  it("a damaged or missing pack is refused by a worker with the calling thread's error", async () => {
    // The damage is in b-large.bin, which the worker restores (see writeSource).
    await withTemporaryDirectory(async (directory) => {
      const { store, repositoryDirectory, snapshotId } = await setUp(directory);
      // Stored raw: only b-large.bin has such blobs.
      const large = (await largeBlobs(store)).find((blob) => !blob.compressed);
      if (large === undefined) throw new Error("the source has no large blob");
      const packPath = join(repositoryDirectory, objectNames.pack(large.packId));
      const pack = await readFile(packPath);
      const restoreWithWorkers = async (target: string) =>
        restore(await openRepository(store, testingPassword), {
          snapshotId,
          targetDirectory: target,
          workerCount: 2,
          workerBytesMin: 0,
        });

      const damagedAt = large.offsetBytes + 1000;
      pack[damagedAt] = (pack[damagedAt] as number) ^ 0x01;
      await writeFile(packPath, pack);
      const damaged = join(directory, "damaged");
      const error = await restoreWithWorkers(damaged).then(
        () => new Error("restored a damaged pack"),
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(CorruptObjectError);
      expect((error as CorruptObjectError).objectName).toBe(
        `data blob ${large.id} in ${objectNames.pack(large.packId)}`,
      );
      expect((error as Error).message).toMatch(/authentication failed/);
      expect(await partialFiles(damaged)).toEqual([]);

      await rm(packPath);
      const missing = join(directory, "missing");
      const missingError = await restoreWithWorkers(missing).catch((caught: unknown) => caught);
      expect(missingError).toBeInstanceOf(CorruptObjectError);
      expect((missingError as CorruptObjectError).objectName).toBe(objectNames.pack(large.packId));
      expect(await partialFiles(missing)).toEqual([]);
    });
  });

  it("errors cross threads with their type, code and object name", () => {
    const corrupt = rebuildFailure(describeFailure(new CorruptObjectError("pack 1", "is short")));
    expect(corrupt).toBeInstanceOf(CorruptObjectError);
    expect(corrupt.message).toBe("pack 1: is short");
    const full = rebuildFailure(describeFailure(new BackupError("STORAGE_FULL", "disk full")));
    expect(full).toBeInstanceOf(BackupError);
    expect((full as BackupError).code).toBe("STORAGE_FULL");
    const system = rebuildFailure(
      describeFailure(Object.assign(new Error("no space"), { code: "ENOSPC" })),
    );
    expect(system.message).toBe("no space");
    expect((system as Error & { code: string }).code).toBe("ENOSPC");
  });
});
