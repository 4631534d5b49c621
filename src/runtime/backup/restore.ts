// `repo restore`: writes a snapshot (or the paths a filter selects) into a directory. Every
// blob is authenticated and its id re-computed before its bytes are written, and a file
// reaches its final name only once all of it has been verified.
import { chmod, lchown, lutimes, mkdir, symlink, unlink, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setImmediate as setImmediatePromise } from "node:timers/promises";
import { createPathFilter } from "../../core/backup/snapshot-selection.ts";
import { objectNames } from "../../core/backup/objects.ts";
import type { FileNode, TreeNode } from "../../core/backup/objects.ts";
import { withLock } from "./lock.ts";
import { secondsOf } from "./restore-file.ts";
import { RestoreLane, packRangeReaderOf } from "./restore-lane.ts";
import type { PackRangeReader, PlannedFile } from "./restore-lane.ts";
import { PackFileReader } from "./pack-file-reader.ts";
import type { Repository } from "./repository.ts";
import { DirectoryBlobStore, errorCode } from "./directory-blob-store.ts";
import { WorkerFileRestorer, restoreWorkerScript } from "./worker-file-restorer.ts";

export interface RestoreProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export interface RestoreOptions {
  snapshotId: string;
  targetDirectory: string;
  /** Snapshot paths to restore ("/docs", "/data/*.log"); empty restores everything. */
  includes?: readonly string[];
  /**
   * Threads that read, verify and write, the calling thread among them: N starts N - 1 restore
   * workers (each ~15 MiB of memory, its own V8 heap and buffers). Workers read packs
   * themselves, so they serve repositories in a local directory only; elsewhere, and with 0
   * or 1, the calling thread restores alone.
   */
  workerCount?: number;
  /** Less data than this is restored on the calling thread alone; default 64 MiB. */
  workerBytesMin?: number;
  onProgress?: (progress: RestoreProgress) => void;
}

export interface RestoreResult {
  filesRestored: number;
  directoriesRestored: number;
  symlinksRestored: number;
  bytesRestored: number;
  /** Restore workers that wrote beside the calling thread. */
  workerThreads: number;
}

/**
 * Files the calling thread writes at once when it restores alone: overlaps one file's pack
 * reads with another's decryption. Two, not four: each lane has its own buffers, and four cost
 * 10 MiB more peak RSS for no clear gain on a 2-core machine (measured under load: 104 against
 * 114 MiB). With workers, the calling thread writes one file at a time.
 */
const filesInFlightMax = 2;
/** Below this much data a restore worker's start (~40 ms) is not paid back. */
const workerBytesMinDefault = 64 * 1024 * 1024;
/**
 * A worker's batch: files handed over at once, up to this many bytes or files. Two batches per
 * worker are outstanding, so it never waits for the main thread between them.
 */
const batchBytesMax = 4 * 1024 * 1024;
const batchFilesMax = 256;
const batchesPerWorker = 2;

type PlannedEntry<Node extends TreeNode = TreeNode> = { node: Node; targetPath: string };

export async function restore(
  repository: Repository,
  options: RestoreOptions,
): Promise<RestoreResult> {
  return withLock(repository.store, false, async () => {
    await repository.loadIndex();
    const snapshot = await repository.loadSnapshot(options.snapshotId);
    const filter = createPathFilter(options.includes ?? []);
    // Plan first: totals for the progress bar, and every tree authenticated before any write.
    const directories: PlannedEntry[] = [];
    const files: Array<PlannedEntry<FileNode>> = [];
    const symlinks: PlannedEntry[] = [];
    const plan = async (
      treeId: string,
      snapshotPath: string,
      targetPath: string,
    ): Promise<void> => {
      for (const node of (await repository.loadTree(treeId)).nodes) {
        const childSnapshotPath = `${snapshotPath}/${node.name}`;
        const childTargetPath = join(targetPath, node.name);
        switch (node.type) {
          case "directory":
            if (!filter.mayIncludeBelow(childSnapshotPath)) break;
            if (filter.includes(childSnapshotPath))
              directories.push({ node, targetPath: childTargetPath });
            await plan(node.subtree, childSnapshotPath, childTargetPath);
            break;
          case "file":
            if (filter.includes(childSnapshotPath))
              files.push({ node, targetPath: childTargetPath });
            break;
          case "symlink":
            if (filter.includes(childSnapshotPath))
              symlinks.push({ node, targetPath: childTargetPath });
            break;
        }
      }
    };
    await plan(snapshot.tree, "", options.targetDirectory);

    const progress: RestoreProgress = {
      filesDone: 0,
      filesTotal: files.length,
      bytesDone: 0,
      bytesTotal: files.reduce((sum, file) => sum + file.node.sizeBytes, 0),
    };
    await mkdir(options.targetDirectory, { recursive: true });
    // Every directory a restored entry lives in, created once (a filter may skip the parents).
    const parents = new Set([
      ...directories.map((directory) => directory.targetPath),
      ...[...files, ...symlinks].map((entry) => dirname(entry.targetPath)),
    ]);
    for (const parent of [...parents].sort()) await mkdir(parent, { recursive: true });

    let next = 0;
    let failed = false;
    const onBytes = (bytes: number) => {
      progress.bytesDone += bytes;
      options.onProgress?.(progress);
    };
    const onFileDone = () => {
      progress.filesDone++;
      options.onProgress?.(progress);
    };
    const restoreOnThisThread = async (lane: RestoreLane): Promise<void> => {
      while (next < files.length && !failed) {
        const file = files[next++] as PlannedEntry<FileNode>;
        await lane.restoreFile(plannedFile(repository, file), onBytes);
        onFileDone();
      }
    };
    const restoreOnWorker = async (worker: WorkerFileRestorer): Promise<void> => {
      while (next < files.length && !failed) {
        const batch: PlannedFile[] = [];
        let batchBytes = 0;
        while (next < files.length && batchBytes < batchBytesMax && batch.length < batchFilesMax) {
          const file = files[next++] as PlannedEntry<FileNode>;
          batchBytes += file.node.sizeBytes;
          batch.push(plannedFile(repository, file));
        }
        await worker.restoreFiles(batch, (bytesWritten) => {
          progress.bytesDone += bytesWritten;
          onFileDone();
        });
      }
    };
    const workers =
      progress.bytesTotal >= (options.workerBytesMin ?? workerBytesMinDefault)
        ? startWorkers(repository, options.workerCount ?? 0)
        : [];
    const store = repository.store;
    const packFiles =
      workers.length > 0 && store instanceof DirectoryBlobStore
        ? new PackFileReader(store.location)
        : undefined;
    const readPackRange =
      packFiles !== undefined ? yieldingPackReader(packFiles) : packRangeReaderOf(store);
    const lanes = [
      ...Array.from({ length: workers.length > 0 ? 1 : filesInFlightMax }, () =>
        restoreOnThisThread(
          new RestoreLane(repository.keys, repository.config.chunkSizeBytesMax, readPackRange),
        ),
      ),
      ...workers.flatMap((worker) =>
        Array.from({ length: batchesPerWorker }, () => restoreOnWorker(worker)),
      ),
    ];
    try {
      // On the first failure the others stop and clean up before the error is reported.
      const outcomes = await Promise.allSettled(
        lanes.map((lane) =>
          lane.catch((error: unknown) => {
            failed = true;
            throw error;
          }),
        ),
      );
      for (const outcome of outcomes) if (outcome.status === "rejected") throw outcome.reason;
    } finally {
      packFiles?.close();
      await Promise.all(workers.map((worker) => worker.close()));
    }

    for (const { node, targetPath } of symlinks) {
      if (node.type !== "symlink") continue;
      await unlink(targetPath).catch((error: unknown) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      await symlink(node.linkTarget, targetPath);
      await applyMetadata(node, targetPath);
    }
    // Deepest first: setting a directory's mtime before writing into it would be undone.
    for (const directory of [...directories].reverse())
      await applyMetadata(directory.node, directory.targetPath);
    return {
      filesRestored: files.length,
      directoriesRestored: directories.length,
      symlinksRestored: symlinks.length,
      bytesRestored: progress.bytesDone,
      workerThreads: workers.length,
    };
  });
}

/** A file's plan: its blobs located, so a blob missing from the index fails before a write. */
function plannedFile(
  repository: Repository,
  { node, targetPath }: PlannedEntry<FileNode>,
): PlannedFile {
  return {
    name: node.name,
    targetPath,
    uid: node.uid,
    gid: node.gid,
    mode: node.mode,
    mtimeNs: node.mtimeNs,
    blobs: node.content.map((id) => {
      const location = repository.locateBlob(id, "data");
      return {
        ...location,
        packName: objectNames.pack(location.packId),
        packSizeBytes:
          repository.index.packs.get(location.packId)?.sizeBytes ??
          location.offsetBytes + location.lengthBytes,
      };
    }),
  };
}

/**
 * Synchronous reads for the calling thread's lane beside workers, as on the workers: a read
 * through the thread pool waits for a pool thread while both cores are busy (the main
 * thread's profile: 18 % idle). Each read first yields to the event loop, which hands the
 * workers their batches; with no yield the worker waited for them (5.0-9.7 s against
 * 3.5-5.2 s in alternating restores).
 */
function yieldingPackReader(packFiles: PackFileReader): PackRangeReader {
  return async (packName, offsetBytes, target) => {
    await setImmediatePromise();
    return packFiles.read(packName, offsetBytes, target);
  };
}

/** Restore workers for a repository in a local directory, when they pay; none otherwise. */
function startWorkers(repository: Repository, workerCount: number): WorkerFileRestorer[] {
  const store = repository.store;
  const script = workerCount > 1 ? restoreWorkerScript() : undefined;
  if (script === undefined || !(store instanceof DirectoryBlobStore)) return [];
  return Array.from(
    { length: workerCount - 1 },
    () =>
      new WorkerFileRestorer(script, {
        keyRing: repository.keys.ring,
        chunkSizeBytesMax: repository.config.chunkSizeBytesMax,
        directory: store.location,
      }),
  );
}

async function applyMetadata(node: TreeNode, path: string): Promise<void> {
  const mtimeSeconds = secondsOf(node.mtimeNs);
  if (process.getuid?.() === 0) await lchown(path, node.uid, node.gid);
  if (node.type === "symlink") {
    await lutimes(path, mtimeSeconds, mtimeSeconds);
    return;
  }
  await chmod(path, node.mode);
  await utimes(path, mtimeSeconds, mtimeSeconds);
}
