// `repo forget` removes snapshots by retention policy; `repo prune` then deletes the data no
// snapshot references and repacks packs that are mostly garbage. Order keeps every step
// crash-safe: new packs, then the new index, then deleting old indexes, then old packs.
import { BackupError } from "../../core/backup/errors.ts";
import { idOfObjectName, objectNames } from "../../core/backup/objects.ts";
import type { IndexedPack } from "../../core/backup/objects.ts";
import { planPrune, pruneDefaults } from "../../core/backup/prune-plan.ts";
import type { PruneOptions, PrunePlan } from "../../core/backup/prune-plan.ts";
import { applyRetention } from "../../core/backup/retention.ts";
import type { RetentionDecision, RetentionPolicy } from "../../core/backup/retention.ts";
import { openBlob } from "./blob-codec.ts";
import { withLock } from "./lock.ts";
import { PackWriter } from "./repository.ts";
import type { Repository } from "./repository.ts";

export interface ForgetResult {
  decisions: Array<RetentionDecision & { time: string }>;
  removed: string[];
}

export async function forget(
  repository: Repository,
  policy: RetentionPolicy,
  options: { dryRun?: boolean } = {},
): Promise<ForgetResult> {
  return withLock(repository.store, true, async () => {
    const snapshots = await repository.listSnapshots();
    const decisions = applyRetention(
      snapshots.map(({ id, snapshot }) => ({
        id,
        timeMs: snapshot.timeMs,
        hostname: snapshot.hostname,
        paths: snapshot.paths,
      })),
      policy,
    );
    const removed = decisions.filter((decision) => !decision.keep).map((decision) => decision.id);
    if (options.dryRun !== true)
      for (const id of removed) await repository.store.delete(objectNames.snapshot(id));
    const timeOf = new Map(snapshots.map(({ id, snapshot }) => [id, snapshot.time]));
    return {
      decisions: decisions.map((decision) => ({
        ...decision,
        time: timeOf.get(decision.id) ?? "",
      })),
      removed,
    };
  });
}

export interface PruneResult {
  plan: PrunePlan;
  blobsUsed: number;
  packsWritten: number;
  packsRecovered: number;
  /** Temporary files of interrupted writes removed (0 for stores that keep none). */
  temporaryFilesRemoved: number;
}

/**
 * Temporary files younger than this are left alone. Prune holds the exclusive lock, so no
 * backup should be writing; the margin covers a writer whose lock another host took for stale.
 */
export const temporaryFileAgeMsMinDefault = 60 * 60 * 1000;

/** Stores that keep temporary files of interrupted writes (a directory). */
interface TemporaryFileCleaner {
  removeTemporaryFiles(ageMsMin: number, nowMs?: number): Promise<number>;
}

function hasTemporaryFiles(store: object): store is TemporaryFileCleaner {
  return typeof (store as Partial<TemporaryFileCleaner>).removeTemporaryFiles === "function";
}

export async function prune(
  repository: Repository,
  options: PruneOptions & { dryRun?: boolean; temporaryFileAgeMsMin?: number } = pruneDefaults,
): Promise<PruneResult> {
  return withLock(repository.store, true, async () => {
    const store = repository.store;
    // Garbage whatever else prune decides: a crash or a full disk mid-write left them.
    const temporaryFilesRemoved =
      options.dryRun !== true && hasTemporaryFiles(store)
        ? await store.removeTemporaryFiles(
            options.temporaryFileAgeMsMin ?? temporaryFileAgeMsMinDefault,
          )
        : 0;
    await repository.loadIndex();
    // Packs no index lists may hold blobs snapshots need (a lost index): index, never delete.
    const packsRecovered = options.dryRun === true ? 0 : await repository.recoverUnindexedPacks();
    const storedPacks = new Set((await repository.store.list("data/")).map(idOfObjectName));
    for (const packId of repository.index.packs.keys()) {
      if (!storedPacks.has(packId))
        throw new BackupError(
          "CORRUPT_OBJECT",
          `${objectNames.pack(packId)} is in the index but missing; run \`edgeward repo check\` before pruning`,
        );
    }

    const used = new Set<string>();
    const pendingTrees = (await repository.listSnapshots()).map(({ snapshot }) => snapshot.tree);
    while (pendingTrees.length > 0) {
      const treeId = pendingTrees.pop() as string;
      if (used.has(treeId)) continue;
      used.add(treeId);
      for (const node of (await repository.loadTree(treeId)).nodes) {
        if (node.type === "directory") pendingTrees.push(node.subtree);
        if (node.type === "file") for (const blobId of node.content) used.add(blobId);
      }
    }
    for (const blobId of used) {
      if (!repository.index.has(blobId))
        throw new BackupError(
          "CORRUPT_OBJECT",
          `blob ${blobId} is referenced but in no index; run \`edgeward repo check\` before pruning`,
        );
    }

    const packs = [...repository.index.packs.values()];
    const plan = planPrune(packs, used, options);
    const result: PruneResult = {
      plan,
      blobsUsed: used.size,
      packsWritten: 0,
      packsRecovered,
      temporaryFilesRemoved,
    };
    if (options.dryRun === true || (plan.remove.length === 0 && plan.repack.length === 0))
      return result;

    const keptPacks = new Set(plan.keep);
    const newPacks: IndexedPack[] = [];
    const writer = new PackWriter(repository, (pack) => {
      newPacks.push(pack);
      return Promise.resolve();
    });
    const copied = new Set<string>();
    for (const pack of packs)
      for (const blob of pack.blobs) if (keptPacks.has(pack.id)) copied.add(blob.id);
    for (const packId of plan.repack) {
      const packName = objectNames.pack(packId);
      const bytes = await repository.store.get(packName);
      for (const blob of (await repository.readPackHeader(packId)).blobs) {
        if (!used.has(blob.id) || copied.has(blob.id)) continue;
        const sealed = bytes.subarray(blob.offsetBytes, blob.offsetBytes + blob.lengthBytes);
        // Verified before copying: prune must not spread a corrupt blob into a fresh pack.
        openBlob(repository.keys, blob, sealed, packName);
        const entry = {
          id: blob.id,
          type: blob.type,
          lengthBytes: blob.lengthBytes,
          rawLengthBytes: blob.rawLengthBytes,
          compressed: blob.compressed,
          keyGeneration: blob.keyGeneration,
        };
        await writer.addSealed({ entry, parts: [sealed] });
        copied.add(blob.id);
      }
    }
    await writer.flush();
    result.packsWritten = newPacks.length;

    const oldIndexIds = [...repository.index.indexFileIds];
    const remaining = [...packs.filter((pack) => keptPacks.has(pack.id)), ...newPacks];
    await repository.writeIndex(remaining, oldIndexIds);
    for (const indexId of oldIndexIds) await repository.store.delete(objectNames.index(indexId));
    for (const packId of [...plan.remove, ...plan.repack])
      await repository.store.delete(objectNames.pack(packId));
    return result;
  });
}
