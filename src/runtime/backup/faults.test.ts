// Every kind of damage is caught by `check`, named, and never turned into wrong restored bytes;
// a crash or a full disk mid-backup leaves a valid repository that the rerun completes.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import {
  DiskFullBlobStore,
  FaultInjectingBlobStore,
  SimulatedCrash,
} from "./fault-injecting-blob-store.ts";
import { MemoryBlobStore } from "./memory-blob-store.ts";
import { openRepository, wrongPasswordMessage } from "./repository.ts";
import { restore } from "./restore.ts";
import {
  describeTree,
  initTestingRepository,
  noise,
  testingPassword,
  withTemporaryDirectory,
} from "./testing.ts";

async function writeSource(directory: string): Promise<string> {
  const source = join(directory, "source");
  await mkdir(join(source, "nested"), { recursive: true });
  await writeFile(join(source, "a.bin"), noise(150_000, 1));
  await writeFile(join(source, "nested", "b.bin"), noise(120_000, 2));
  await writeFile(join(source, "notes.txt"), "hello\n".repeat(1000));
  return source;
}

async function setUp(directory: string) {
  const store = new MemoryBlobStore();
  const repository = await initTestingRepository(store);
  const source = await writeSource(directory);
  const { snapshotId } = await backup(repository, { paths: [source] });
  return { store, source, snapshotId };
}

const names = (store: MemoryBlobStore, prefix: string) =>
  [...store.blobs.keys()].filter((name) => name.startsWith(prefix)).sort();
const reopen = (store: MemoryBlobStore) => openRepository(store, testingPassword);

function flipByte(
  store: MemoryBlobStore,
  name: string,
  position: (length: number) => number,
): void {
  const bytes = store.blobs.get(name) as Uint8Array;
  const at = position(bytes.length);
  bytes[at] = (bytes[at] as number) ^ 0x40;
}

async function expectRestoreRefused(
  store: MemoryBlobStore,
  snapshotId: string,
  directory: string,
): Promise<void> {
  const target = join(directory, "target");
  await expect(
    restore(await reopen(store), { snapshotId, targetDirectory: target }),
  ).rejects.toBeInstanceOf(CorruptObjectError);
  // Whatever was restored before the failure is verified data; nothing unverified is left.
  const leftovers = await readdir(target, { recursive: true }).catch(() => []);
  expect(leftovers.filter((name) => String(name).includes("edgeward-partial"))).toEqual([]);
}

describe("damage is detected and named", () => {
  it("a flipped byte inside a data pack: check --read-data names the pack, restore refuses", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, snapshotId } = await setUp(directory);
      const pack = names(store, "data/").find(
        (name) => (store.blobs.get(name)?.length ?? 0) > 60_000,
      ) as string;
      flipByte(store, pack, () => 100);
      expect((await check(await reopen(store))).errors).toEqual([]);
      const report = await check(await reopen(store), { readData: { kind: "all" } });
      expect(
        report.errors.some(
          (error) =>
            error.object.endsWith(` in ${pack}`) && /authentication failed/.test(error.message),
        ),
      ).toBe(true);
      await expectRestoreRefused(store, snapshotId, directory);
    });
  });

  it("a flipped byte in a pack's header or trailer: check names the pack without reading data", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store } = await setUp(directory);
      const pack = names(store, "data/")[0] as string;
      flipByte(store, pack, (length) => length - 20);
      expect((await check(await reopen(store))).errors.map((error) => error.object)).toContain(
        pack,
      );
    });
  });

  it("a truncated pack: check names it", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, snapshotId } = await setUp(directory);
      const pack = names(store, "data/")[0] as string;
      const bytes = store.blobs.get(pack) as Uint8Array;
      store.blobs.set(pack, bytes.slice(0, bytes.length >> 1));
      const report = await check(await reopen(store));
      expect(report.errors.some((error) => error.object === pack)).toBe(true);
      await expectRestoreRefused(store, snapshotId, directory);
    });
  });

  it("a missing pack: check names it as missing", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, snapshotId } = await setUp(directory);
      const pack = names(store, "data/")[0] as string;
      store.blobs.delete(pack);
      const report = await check(await reopen(store));
      expect(report.errors).toContainEqual({
        object: pack,
        message: "missing (listed in the index)",
      });
      await expectRestoreRefused(store, snapshotId, directory);
    });
  });

  it("a missing index: check names the blobs no index covers and the orphaned packs", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, snapshotId } = await setUp(directory);
      for (const name of names(store, "index/")) store.blobs.delete(name);
      const report = await check(await reopen(store));
      expect(report.errors.length).toBeGreaterThan(0);
      expect(
        report.errors.some(
          (error) => /in no index/.test(error.message) || /is not in any index/.test(error.message),
        ),
      ).toBe(true);
      expect(report.warnings.length).toBe(names(store, "data/").length);
      await expectRestoreRefused(store, snapshotId, directory);
    });
  });

  it("a modified index file: check names it", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store } = await setUp(directory);
      const index = names(store, "index/")[0] as string;
      flipByte(store, index, (length) => length - 3);
      expect((await check(await reopen(store))).errors.map((error) => error.object)).toContain(
        index,
      );
    });
  });

  it("a swapped snapshot: check names the snapshot whose content was replaced", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, source } = await setUp(directory);
      await writeFile(join(source, "notes.txt"), "changed");
      await backup(await reopen(store), { paths: [source] });
      const [first, second] = names(store, "snapshots/") as [string, string];
      store.blobs.set(first, store.blobs.get(second) as Uint8Array);
      const report = await check(await reopen(store));
      expect(report.errors).toContainEqual({
        object: first,
        message: "content does not match its name (modified or swapped)",
      });
    });
  });

  it("a damaged tree blob: check names the tree, restore refuses", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, snapshotId } = await setUp(directory);
      const repository = await reopen(store);
      await repository.loadIndex();
      const snapshot = await repository.loadSnapshot(snapshotId);
      const location = repository.index.blobs.get(snapshot.tree);
      const pack = `data/${location?.packId.slice(0, 2)}/${location?.packId}`;
      flipByte(store, pack, () => (location?.offsetBytes ?? 0) + 20);
      const report = await check(await reopen(store));
      expect(report.errors.map((error) => error.object)).toContain(
        `tree blob ${snapshot.tree} in ${pack}`,
      );
      await expectRestoreRefused(store, snapshotId, directory);
    });
  });

  it("a damaged config or a wrong password: clear errors", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store } = await setUp(directory);
      await expect(openRepository(store, "not the password")).rejects.toThrow(wrongPasswordMessage);
      await expect(openRepository(store, "not the password")).rejects.toSatisfy(
        (error) => error instanceof BackupError && error.code === "WRONG_PASSWORD",
      );
      flipByte(store, "config", (length) => length - 1);
      await expect(reopen(store)).rejects.toThrow(/^config: authentication failed/);
    });
  });
});

describe("interrupted backups", () => {
  it("a crash after some pack writes: the rerun indexes those packs, reuses their data and check passes", async () => {
    await withTemporaryDirectory(async (directory) => {
      const inner = new MemoryBlobStore();
      await initTestingRepository(inner);
      const source = await writeSource(directory);
      const crashing = new FaultInjectingBlobStore(inner, {
        prefix: "data/",
        putsBeforeFailure: 3,
        failure: "crash",
      });
      await expect(
        backup(await openRepository(crashing, testingPassword), { paths: [source] }),
      ).rejects.toBeInstanceOf(SimulatedCrash);
      expect(names(inner, "snapshots/")).toEqual([]);
      const packsBeforeRerun = names(inner, "data/").length;
      expect(packsBeforeRerun).toBeGreaterThanOrEqual(3);
      expect((await check(await reopen(inner))).errors).toEqual([]);

      const rerun = await backup(await reopen(inner), { paths: [source] });
      expect(rerun.packsRecovered).toBe(packsBeforeRerun);
      const fresh = new MemoryBlobStore();
      const reference = await backup(await initTestingRepository(fresh), { paths: [source] });
      expect(rerun.snapshot.summary.blobsAdded).toBeLessThan(reference.snapshot.summary.blobsAdded);
      const report = await check(await reopen(inner), { readData: { kind: "all" } });
      expect(report).toMatchObject({ errors: [], warnings: [] });
      const target = join(directory, "target");
      await restore(await reopen(inner), { snapshotId: rerun.snapshotId, targetDirectory: target });
      expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
    });
  });

  it("a full disk mid-backup: a clear STORAGE_FULL error, the repository stays valid and restorable", async () => {
    await withTemporaryDirectory(async (directory) => {
      const { store, source, snapshotId } = await setUp(directory);
      await writeFile(join(source, "new.bin"), noise(200_000, 7));
      const full = new FaultInjectingBlobStore(store, {
        prefix: "data/",
        putsBeforeFailure: 1,
        failure: "disk-full",
      });
      await expect(
        backup(await openRepository(full, testingPassword), { paths: [source] }),
      ).rejects.toSatisfy(
        (error) =>
          error instanceof BackupError &&
          error.code === "STORAGE_FULL" &&
          /no space left/.test(error.message),
      );
      expect((await check(await reopen(store), { readData: { kind: "all" } })).errors).toEqual([]);
      const target = join(directory, "target");
      await restore(await reopen(store), {
        snapshotId,
        targetDirectory: target,
        includes: ["/source/a.bin"],
      });
      expect(await readdir(join(target, "source"))).toEqual(["a.bin"]);
    });
  });
});

describe("a disk that fills up mid-backup", () => {
  it("fails with STORAGE_FULL, keeps no temporary file and a valid repository, and a rerun completes", async () => {
    await withTemporaryDirectory(async (directory) => {
      const repositoryDirectory = join(directory, "repository");
      const inner = new DirectoryBlobStore(repositoryDirectory);
      await initTestingRepository(inner);
      const source = await writeSource(directory);
      // About half of what the backup writes: some packs are stored, then writes fail.
      const full = new DiskFullBlobStore(inner, 150_000);
      await expect(
        backup(await openRepository(full, testingPassword), { paths: [source], workerCount: 0 }),
      ).rejects.toSatisfy(
        (error) =>
          error instanceof BackupError &&
          error.code === "STORAGE_FULL" &&
          error.message.includes(repositoryDirectory) &&
          /no space left/.test(error.message) &&
          !/cannot read/.test(error.message),
      );
      expect(
        (await readdir(repositoryDirectory)).filter((name) => name.startsWith(".tmp-")),
      ).toEqual([]);
      expect(await inner.list("snapshots/")).toEqual([]);
      expect(await inner.list("data/")).not.toEqual([]);
      const reopened = await openRepository(inner, testingPassword);
      expect(await check(reopened, { readData: { kind: "all" } })).toMatchObject({
        errors: [],
      });

      const rerun = await backup(await openRepository(inner, testingPassword), {
        paths: [source],
      });
      expect(rerun.packsRecovered).toBeGreaterThan(0);
      expect(
        (await check(await openRepository(inner, testingPassword), { readData: { kind: "all" } }))
          .errors,
      ).toEqual([]);
      const target = join(directory, "target");
      await restore(await openRepository(inner, testingPassword), {
        snapshotId: rerun.snapshotId,
        targetDirectory: target,
      });
      expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
    });
  });
});
