// `repo check`: the structure (index files, packs against their headers, snapshots, every
// tree, every referenced blob indexed) and, with --read-data, every byte of the chosen packs.
// Problems are collected, each naming its object, rather than stopping at the first.
import { randomInt } from "node:crypto";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import { isPackInSubset } from "../../core/backup/check-subset.ts";
import type { DataSubset } from "../../core/backup/check-subset.ts";
import { idOfObjectName, indexFileSchema, objectNames } from "../../core/backup/objects.ts";
import type { IndexFile, IndexedBlob } from "../../core/backup/objects.ts";
import { openBlob } from "./blob-codec.ts";
import { withLock } from "./lock.ts";
import type { Repository } from "./repository.ts";

export interface CheckOptions {
  /** Which packs to read in full; undefined reads none (structure only). */
  readData?: DataSubset;
  onProgress?: (progress: { stage: string; done: number; total: number }) => void;
}

export interface CheckProblem {
  object: string;
  message: string;
}

export interface CheckReport {
  errors: CheckProblem[];
  warnings: CheckProblem[];
  indexFiles: number;
  packs: number;
  snapshots: number;
  trees: number;
  packsRead: number;
  blobsRead: number;
}

const uniformDrawResolution = 1_000_000;

function describe(error: unknown): CheckProblem {
  if (error instanceof CorruptObjectError)
    return { object: error.objectName, message: error.message.slice(error.objectName.length + 2) };
  if (error instanceof BackupError) return { object: "repository", message: error.message };
  throw error;
}

export async function check(
  repository: Repository,
  options: CheckOptions = {},
): Promise<CheckReport> {
  return withLock(repository.store, false, async () => {
    const report: CheckReport = {
      errors: [],
      warnings: [],
      indexFiles: 0,
      packs: 0,
      snapshots: 0,
      trees: 0,
      packsRead: 0,
      blobsRead: 0,
    };
    const fail = (error: unknown) => report.errors.push(describe(error));

    // Index files: each must authenticate, match its name and parse.
    const indexFiles: Array<{ id: string; file: IndexFile }> = [];
    for (const name of await repository.store.list("index/")) {
      try {
        const parsed = indexFileSchema.safeParse(await repository.loadObject("index", name));
        if (!parsed.success)
          throw new CorruptObjectError(name, `not a valid index: ${parsed.error.message}`);
        indexFiles.push({ id: idOfObjectName(name), file: parsed.data });
      } catch (error) {
        fail(error);
      }
    }
    const superseded = new Set(indexFiles.flatMap(({ file }) => file.supersedes));
    for (const { id, file } of indexFiles)
      if (!superseded.has(id)) for (const pack of file.packs) repository.index.addPack(pack);
    report.indexFiles = indexFiles.length;

    // Packs: indexed ones exist, their own headers agree with the index; others are reported.
    const storedPacks = new Set((await repository.store.list("data/")).map(idOfObjectName));
    report.packs = storedPacks.size;
    let packsDone = 0;
    for (const [packId, pack] of repository.index.packs) {
      options.onProgress?.({
        stage: "packs",
        done: packsDone++,
        total: repository.index.packs.size,
      });
      if (!storedPacks.has(packId)) {
        report.errors.push({
          object: objectNames.pack(packId),
          message: "missing (listed in the index)",
        });
        continue;
      }
      try {
        const header = await repository.readPackHeader(packId);
        if (header.sizeBytes !== pack.sizeBytes)
          throw new CorruptObjectError(
            objectNames.pack(packId),
            `is ${header.sizeBytes} bytes, the index says ${pack.sizeBytes}`,
          );
        if (!sameBlobs(header.blobs, pack.blobs))
          throw new CorruptObjectError(
            objectNames.pack(packId),
            "its header does not match the index",
          );
      } catch (error) {
        fail(error);
      }
    }
    for (const packId of storedPacks) {
      if (!repository.index.packs.has(packId)) {
        report.warnings.push({
          object: objectNames.pack(packId),
          message:
            "not in any index (left by an interrupted backup, or its index is lost); the next backup or prune indexes it",
        });
      }
    }

    // Snapshots and every tree they reach; each referenced blob must be indexed.
    const treesSeen = new Set<string>();
    const snapshotNames = await repository.store.list("snapshots/");
    report.snapshots = snapshotNames.length;
    for (const [position, name] of snapshotNames.entries()) {
      options.onProgress?.({ stage: "snapshots", done: position, total: snapshotNames.length });
      try {
        const snapshot = await repository.loadSnapshot(idOfObjectName(name));
        const pendingTrees: Array<{ id: string; path: string }> = [{ id: snapshot.tree, path: "" }];
        while (pendingTrees.length > 0) {
          const { id, path } = pendingTrees.pop() as { id: string; path: string };
          if (treesSeen.has(id)) continue;
          treesSeen.add(id);
          try {
            for (const node of (await repository.loadTree(id)).nodes) {
              if (node.type === "directory")
                pendingTrees.push({ id: node.subtree, path: `${path}/${node.name}` });
              if (node.type !== "file") continue;
              for (const blobId of node.content) {
                if (!repository.index.has(blobId))
                  report.errors.push({
                    object: `data blob ${blobId}`,
                    message: `needed by ${path}/${node.name} in ${name}, but in no index (pack or index file missing)`,
                  });
              }
            }
          } catch (error) {
            fail(error);
          }
        }
      } catch (error) {
        fail(error);
      }
    }
    report.trees = treesSeen.size;

    // Data: whole packs, hash against name, every blob decrypted and its id recomputed.
    if (options.readData !== undefined) {
      const selected = [...repository.index.packs.keys()].filter(
        (packId) =>
          storedPacks.has(packId) &&
          isPackInSubset(
            packId,
            options.readData as DataSubset,
            randomInt(uniformDrawResolution) / uniformDrawResolution,
          ),
      );
      for (const [position, packId] of selected.entries()) {
        options.onProgress?.({ stage: "read data", done: position, total: selected.length });
        const packName = objectNames.pack(packId);
        try {
          const bytes = await repository.store.get(packName);
          report.packsRead++;
          for (const blob of (await repository.readPackHeader(packId)).blobs) {
            try {
              openBlob(
                repository.keys,
                blob,
                bytes.subarray(blob.offsetBytes, blob.offsetBytes + blob.lengthBytes),
                packName,
              );
              report.blobsRead++;
            } catch (error) {
              fail(error);
            }
          }
        } catch (error) {
          fail(error);
        }
      }
    }
    return report;
  });
}

function sameBlobs(left: readonly IndexedBlob[], right: readonly IndexedBlob[]): boolean {
  const key = (blob: IndexedBlob) =>
    `${blob.id}:${blob.type}:${blob.offsetBytes}:${blob.lengthBytes}:${blob.rawLengthBytes}:${blob.compressed}:${blob.keyGeneration}`;
  const rightKeys = new Set(right.map(key));
  return left.length === right.length && left.every((blob) => rightKeys.has(key(blob)));
}
