// Copies one snapshot from one repository into another (restic's `copy`): walks the snapshot's
// trees and stores every blob the destination lacks, then the snapshot object. The fleet's
// tiers share one key ring (see docs/adr/0005-fleet-backups.md), so blob ids match and sealed
// blobs move without being decrypted; a tier whose encryption key differs gets the blob
// re-sealed under its own key, still under the same id, so trees are never rewritten.
import { hostname as osHostname } from "node:os";
import { BackupError } from "../../core/backup/errors.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { objectNames } from "../../core/backup/objects.ts";
import type {
  BlobType,
  IndexedPack,
  KeyRing,
  RepositoryConfig,
  Snapshot,
} from "../../core/backup/objects.ts";
import { openBlob, sealBlob } from "./blob-codec.ts";
import { keysFromRing, sealObject, wrapKeyRing } from "./crypto.ts";
import { withLock } from "./lock.ts";
import { PackWriter, Repository, safeUsername, sha256Hex } from "./repository.ts";
import type { RepositoryOptions } from "./repository.ts";

/** Packs listed per index file while copying: what a crash can leave unindexed (recovered by the rerun). */
const indexPacksMax = 64;
/** Tree levels walked at once; deeper trees are a programmer's or an attacker's error. */
const treeDepthMax = 1_000;

export interface CopySnapshotResult {
  /** The snapshot's id in the destination (its sealed bytes differ from the source's). */
  snapshotId: string;
  /** True when the destination already held this snapshot: nothing was copied. */
  alreadyPresent: boolean;
  blobsCopied: number;
  /** Blobs whose sealed bytes were copied as they were (same key), without decryption. */
  blobsCopiedSealed: number;
  bytesCopied: number;
  blobsSkipped: number;
  durationMs: number;
}

export interface CopySnapshotOptions {
  /** Called after each blob stored, e.g. to stop a copy in tests (throwing aborts it). */
  onBlobCopied?: (blobsCopied: number) => void;
  /** Tags of the copy (the fleet's `level:<LEVEL>` names the destination); default: the source's. */
  tags?: string[];
}

/** Whether two repositories can exchange blobs: the same blob-id key (the same fleet key ring). */
export function sharesBlobIds(from: Repository, to: Repository): boolean {
  return from.keys.blobIdKey.equals(to.keys.blobIdKey);
}

/**
 * Creates a repository in `store` that shares `source`'s key ring and chunker parameters
 * (restic's `init --copy-chunker-params`, plus the keys): its blob ids equal the source's, so
 * snapshots can be copied between them without rewriting trees, and a direct backup into it
 * deduplicates against copies.
 */
export async function initRepositoryLike(
  store: BlobStore,
  password: string,
  source: Pick<Repository, "keys" | "config">,
  options: Pick<RepositoryOptions, "keyDerivation">,
): Promise<Repository> {
  if ((await store.exists(objectNames.config)) || (await store.list("keys/")).length > 0)
    throw new BackupError("REPOSITORY_EXISTS", `a repository already exists at ${store.location}`);
  const ring: KeyRing = source.keys.ring;
  const keys = keysFromRing(ring);
  const config: RepositoryConfig = { ...source.config };
  const keyFile = await wrapKeyRing(ring, password, options.keyDerivation, {
    createdAt: new Date().toISOString(),
    hostname: osHostname(),
    username: safeUsername(),
  });
  const keyBytes = Buffer.from(JSON.stringify(keyFile, null, 2));
  const keyId = sha256Hex(keyBytes);
  await store.put(objectNames.key(keyId), keyBytes);
  await store.put(objectNames.config, sealObject(keys, "config", config));
  return new Repository(store, keys, config, keyId);
}

function sameSnapshot(left: Snapshot, right: Snapshot): boolean {
  return (
    left.tree === right.tree &&
    left.timeMs === right.timeMs &&
    left.hostname === right.hostname &&
    JSON.stringify(left.paths) === JSON.stringify(right.paths)
  );
}

/**
 * Copies snapshot `snapshotId` of `from` into `to`. Crash-safe like a backup: packs, then index
 * files, then the snapshot; a rerun indexes the packs an interrupted copy stored and copies only
 * what is still missing. Holds a shared lock on both repositories (prune's exclusive lock
 * excludes it). Memory: one blob in flight plus the packs' bounded write queues.
 */
export async function copySnapshot(
  from: Repository,
  to: Repository,
  snapshotId: string,
  options: CopySnapshotOptions = {},
): Promise<CopySnapshotResult> {
  if (!sharesBlobIds(from, to))
    throw new BackupError(
      "INVALID_ARGUMENT",
      `cannot copy from ${from.store.location} to ${to.store.location}: the repositories have different blob-id keys (create the destination with initRepositoryLike)`,
    );
  const startMs = Date.now();
  return withLock(from.store, false, () =>
    withLock(to.store, false, async () => {
      if (from.index.packs.size === 0) await from.loadIndex();
      const snapshot = await from.loadSnapshot(snapshotId);
      await to.loadIndex();
      await to.recoverUnindexedPacks();
      const existing = (await to.listSnapshots()).find((entry) =>
        sameSnapshot(entry.snapshot, snapshot),
      );
      const result: CopySnapshotResult = {
        snapshotId: existing?.id ?? "",
        alreadyPresent: existing !== undefined,
        blobsCopied: 0,
        blobsCopiedSealed: 0,
        bytesCopied: 0,
        blobsSkipped: 0,
        durationMs: 0,
      };
      if (existing !== undefined) {
        result.durationMs = Date.now() - startMs;
        return result;
      }

      const pendingPacks: IndexedPack[] = [];
      const flushIndex = async (): Promise<void> => {
        if (pendingPacks.length > 0) await to.writeIndex(pendingPacks.splice(0));
      };
      const onPackStored = async (pack: IndexedPack): Promise<void> => {
        pendingPacks.push(pack);
        if (pendingPacks.length >= indexPacksMax) await flushIndex();
      };
      const dataWriter = new PackWriter(to, onPackStored);
      const treeWriter = new PackWriter(to, onPackStored);
      const compressor = to.createCompressor();
      const visited = new Set<string>();

      const copyBlob = async (id: string, type: BlobType): Promise<void> => {
        if (visited.has(id)) return;
        visited.add(id);
        if (to.index.has(id)) {
          result.blobsSkipped++;
          return;
        }
        const { location, packName, sealed } = await from.readSealedBlob(id, type);
        const writer = type === "tree" ? treeWriter : dataWriter;
        const sourceKey = from.keys.encryptionKeys.get(location.keyGeneration);
        const destinationKey = to.keys.encryptionKeys.get(location.keyGeneration);
        if (
          sourceKey !== undefined &&
          destinationKey !== undefined &&
          sourceKey.equals(destinationKey)
        ) {
          // Same key: the sealed bytes are valid in the destination as they are (their
          // associated data binds type and id, not the pack), so no decryption is needed.
          const entry = {
            id,
            type,
            lengthBytes: location.lengthBytes,
            rawLengthBytes: location.rawLengthBytes,
            compressed: location.compressed,
            keyGeneration: location.keyGeneration,
          };
          await writer.addSealed({ entry, parts: [sealed] });
          result.blobsCopiedSealed++;
          result.bytesCopied += location.lengthBytes;
        } else {
          const plaintext = openBlob(from.keys, location, sealed, packName);
          const resealed = sealBlob(to.keys, compressor, type, plaintext, id);
          await writer.addSealed(resealed);
          result.bytesCopied += resealed.entry.lengthBytes;
        }
        result.blobsCopied++;
        options.onBlobCopied?.(result.blobsCopied);
      };

      const copyTree = async (treeId: string, depth: number): Promise<void> => {
        if (visited.has(treeId)) return;
        if (depth > treeDepthMax)
          throw new BackupError("INVALID_ARGUMENT", `trees nested deeper than ${treeDepthMax}`);
        const tree = await from.loadTree(treeId);
        for (const node of tree.nodes) {
          if (node.type === "file")
            for (const blobId of node.content) await copyBlob(blobId, "data");
          else if (node.type === "directory") await copyTree(node.subtree, depth + 1);
        }
        // A tree after its contents: an index never lists a tree whose children are missing.
        await copyBlob(treeId, "tree");
      };

      try {
        await copyTree(snapshot.tree, 0);
        await dataWriter.flush();
        await treeWriter.flush();
      } catch (error) {
        await dataWriter.abandon();
        await treeWriter.abandon();
        // What was stored stays: index it so the rerun reuses it.
        await flushIndex().catch(() => undefined);
        throw error;
      }
      await flushIndex();
      result.snapshotId = await to.saveObject("snapshot", {
        ...snapshot,
        ...(options.tags === undefined ? {} : { tags: options.tags }),
      });
      result.durationMs = Date.now() - startMs;
      return result;
    }),
  );
}
