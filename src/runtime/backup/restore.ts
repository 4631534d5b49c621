// `repo restore`: writes a snapshot (or the paths a filter selects) into a directory. Every
// blob is authenticated and its id re-computed before its bytes are written, and a file
// reaches its final name only once all of it has been verified.
import { chmod, lchown, lutimes, mkdir, symlink, unlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { createPathFilter } from "../../core/backup/snapshot-selection.ts";
import type { FileNode, TreeNode } from "../../core/backup/objects.ts";
import { BlobOpenBuffers, openBlobSliced } from "./pack-blob-slices.ts";
import { withLock } from "./lock.ts";
import {
  discardPartialFile,
  finishFile,
  openPartialFile,
  partialPathOf,
  secondsOf,
  writeFully,
} from "./restore-file.ts";
import type { Repository } from "./repository.ts";
import { errorCode } from "./directory-blob-store.ts";
import { GarbageBudget } from "./garbage-budget.ts";

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
  onProgress?: (progress: RestoreProgress) => void;
}

export interface RestoreResult {
  filesRestored: number;
  directoriesRestored: number;
  symlinksRestored: number;
  bytesRestored: number;
}

/** Files written at once: overlaps one file's disk writes with another's decryption. */
const filesInFlightMax = 4;
/** Decrypted bytes (garbage once written) between collections of the young generation. */
const garbageBytesMax = 16 * 1024 * 1024;

export async function restore(
  repository: Repository,
  options: RestoreOptions,
): Promise<RestoreResult> {
  return withLock(repository.store, false, async () => {
    await repository.loadIndex();
    const snapshot = await repository.loadSnapshot(options.snapshotId);
    const filter = createPathFilter(options.includes ?? []);
    // A first walk authenticates every tree before any write and counts the totals for the
    // progress bar; it keeps nothing else. The second walk restores directory by directory,
    // so memory holds one tree per level, not every node of the snapshot (a plan of 10,000
    // files was a third of the main thread's heap). Trees are small: reading them twice costs
    // a few milliseconds per thousand files.
    const progress: RestoreProgress = { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 };
    const count = async (treeId: string, snapshotPath: string): Promise<void> => {
      for (const node of (await repository.loadTree(treeId)).nodes) {
        const childSnapshotPath = `${snapshotPath}/${node.name}`;
        if (node.type === "directory") {
          if (filter.mayIncludeBelow(childSnapshotPath))
            await count(node.subtree, childSnapshotPath);
        } else if (node.type === "file" && filter.includes(childSnapshotPath)) {
          progress.filesTotal++;
          progress.bytesTotal += node.sizeBytes;
        }
      }
    };
    await count(snapshot.tree, "");
    await mkdir(options.targetDirectory, { recursive: true });

    const result: RestoreResult = {
      filesRestored: 0,
      directoriesRestored: 0,
      symlinksRestored: 0,
      bytesRestored: 0,
    };
    // One decryption and one decompression buffer for all files: a blob is decoded and
    // written without an await in between, so no other file can use them meanwhile.
    const buffers = new BlobOpenBuffers(repository.config.chunkSizeBytesMax);
    const garbage = new GarbageBudget(garbageBytesMax);
    const onBytes = (bytes: number) => {
      progress.bytesDone += bytes;
      options.onProgress?.(progress);
    };
    const restoreFiles = async (files: ReadonlyArray<{ node: FileNode; targetPath: string }>) => {
      let next = 0;
      let failed = false;
      const restoreNextFiles = async (): Promise<void> => {
        while (next < files.length && !failed) {
          const file = files[next++] as { node: FileNode; targetPath: string };
          await restoreFile(repository, file.node, file.targetPath, buffers, garbage, onBytes);
          progress.filesDone++;
          options.onProgress?.(progress);
        }
      };
      // On the first failure the others stop and clean up before the error is reported.
      const outcomes = await Promise.allSettled(
        Array.from({ length: Math.min(filesInFlightMax, files.length) }, () =>
          restoreNextFiles().catch((error: unknown) => {
            failed = true;
            throw error;
          }),
        ),
      );
      for (const outcome of outcomes) if (outcome.status === "rejected") throw outcome.reason;
      result.filesRestored += files.length;
    };

    /** Restores what the filter selects below one directory; its own metadata is the caller's. */
    const restoreTree = async (
      treeId: string,
      snapshotPath: string,
      targetPath: string,
    ): Promise<void> => {
      const files: Array<{ node: FileNode; targetPath: string }> = [];
      const symlinks: Array<{ node: TreeNode; targetPath: string }> = [];
      const subdirectories: Array<{ node: TreeNode & { subtree: string }; included: boolean }> =
        [];
      let created = false;
      // Every directory a restored entry lives in is created (a filter may skip the parents).
      const createDirectory = async (): Promise<void> => {
        if (!created) await mkdir(targetPath, { recursive: true });
        created = true;
      };
      for (const node of (await repository.loadTree(treeId)).nodes) {
        const childSnapshotPath = `${snapshotPath}/${node.name}`;
        const childTargetPath = join(targetPath, node.name);
        switch (node.type) {
          case "directory":
            if (filter.mayIncludeBelow(childSnapshotPath))
              subdirectories.push({ node, included: filter.includes(childSnapshotPath) });
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
      if (files.length > 0 || symlinks.length > 0) await createDirectory();
      await restoreFiles(files);
      for (const { node, targetPath: linkPath } of symlinks) {
        if (node.type !== "symlink") continue;
        await unlink(linkPath).catch((error: unknown) => {
          if (errorCode(error) !== "ENOENT") throw error;
        });
        await symlink(node.linkTarget, linkPath);
        await applyMetadata(node, linkPath);
        result.symlinksRestored++;
      }
      for (const { node, included } of subdirectories) {
        const childSnapshotPath = `${snapshotPath}/${node.name}`;
        const childTargetPath = join(targetPath, node.name);
        if (included) await mkdir(childTargetPath, { recursive: true });
        await restoreTree(node.subtree, childSnapshotPath, childTargetPath);
        // After its contents: setting a directory's mtime before writing into it would be undone.
        if (included) {
          await applyMetadata(node, childTargetPath);
          result.directoriesRestored++;
        }
      }
    };
    await restoreTree(snapshot.tree, "", options.targetDirectory);
    result.bytesRestored = progress.bytesDone;
    return result;
  });
}

/**
 * Writes one file. Restore stays on one thread: restore workers were built and measured,
 * and the copies and messages to move blobs to them cost more than the parallelism gained.
 */
async function restoreFile(
  repository: Repository,
  node: FileNode,
  targetPath: string,
  buffers: BlobOpenBuffers,
  garbage: GarbageBudget,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const partialPath = partialPathOf(targetPath, node.name);
  const descriptor = openPartialFile(partialPath);
  try {
    for (const blobId of node.content) {
      // Decoded and written in one synchronous step: `scratch` and the read window's buffer
      // are shared by the files in flight.
      const bytesWritten = await repository.useSealedBlob(
        blobId,
        "data",
        (location, packName, sealed) => {
          const plaintext = openBlobSliced(repository.keys, location, sealed, packName, buffers);
          writeFully(descriptor, plaintext);
          garbage.add(sealed.length);
          return plaintext.length;
        },
      );
      onBytes(bytesWritten);
    }
    finishFile(descriptor, node, partialPath, targetPath);
  } catch (error) {
    discardPartialFile(descriptor, partialPath);
    throw error;
  }
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
