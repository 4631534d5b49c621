// Copies one snapshot from one repository into another (restic's `copy`): walks the snapshot's
// trees and stores every blob the destination lacks, then the snapshot object. Two cases
// (docs/formats/backup-repository.md, "Copies between repositories"):
// - the repositories share a key ring (the fleet's tiers created by copies): blob ids match,
//   sealed blobs move without being decrypted (re-sealed under the same id only when the
//   destination's encryption key differs), and trees are copied as they are;
// - they have different blob-id keys (created apart, other passwords): a blob's id is an HMAC
//   under its repository's key, so every blob is opened with the source's keys, its id
//   computed again under the destination's, and sealed there; trees, which name their
//   children by id, are rewritten bottom-up. The destination's copy of an earlier snapshot
//   of the same source maps unchanged subtrees and chunks, so an incremental copy reads and
//   stores only what changed.
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
  TreeNode,
} from "../../core/backup/objects.ts";
import { openBlob, sealBlob } from "./blob-codec.ts";
import { computeBlobId, keysFromRing, sealObject, wrapKeyRing } from "./crypto.ts";
import type { BlobCompressor } from "./crypto.ts";
import { withLock } from "./lock.ts";
import { PackWriter, Repository, safeUsername, sha256Hex } from "./repository.ts";
import type { RepositoryOptions } from "./repository.ts";

/** Packs listed per index file while copying: what a crash can leave unindexed (recovered by the rerun). */
const indexPacksMax = 64;
/** Tree levels walked at once; deeper trees are a programmer's or an attacker's error. */
const treeDepthMax = 1_000;
/** Earlier copies tried as the map of an incremental copy between different keys. */
const previousCopiesTriedMax = 3;

export interface CopySnapshotResult {
  /** The snapshot's id in the destination (its sealed bytes differ from the source's). */
  snapshotId: string;
  /** The root tree's id in the destination (the source's, unless ids were rewritten). */
  treeId: string;
  /** True when the destination already held this snapshot: nothing was copied. */
  alreadyPresent: boolean;
  /** True when the repositories have different blob-id keys: ids were computed again, trees rewritten. */
  idsRewritten: boolean;
  /** Blobs stored in the destination. */
  blobsCopied: number;
  /** Blobs whose sealed bytes were copied as they were (same key), without decryption. */
  blobsCopiedSealed: number;
  /** Sealed bytes stored in the destination's packs. */
  bytesCopied: number;
  /** Blobs (or, between different keys, whole unchanged trees) the destination already held. */
  blobsSkipped: number;
  /** Source blobs read and decrypted to compute their destination id (different keys only). */
  blobsDecrypted: number;
  durationMs: number;
}

export interface CopySnapshotOptions {
  /** Called after each blob stored, e.g. to stop a copy in tests (throwing aborts it). */
  onBlobCopied?: (blobsCopied: number) => void;
  /** Tags of the copy (the fleet's `level:<LEVEL>` names the destination); default: the source's. */
  tags?: string[];
}

/** Whether two repositories name blobs alike: the same blob-id key (the same fleet key ring). */
export function sharesBlobIds(from: Repository, to: Repository): boolean {
  return from.keys.blobIdKey.equals(to.keys.blobIdKey);
}

/**
 * Creates a repository in `store` that shares `source`'s key ring and chunker parameters
 * (restic's `init --copy-chunker-params`, plus the keys): its blob ids equal the source's, so
 * snapshots are copied between them without decryption or rewriting trees, and a direct
 * backup into it deduplicates against copies.
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

/** A source tree and the destination tree it was copied to: the map of an incremental copy. */
interface TreePair {
  source: string;
  destination: string;
}

/** The blobs a copy stores, into the destination's packs and index files. */
class CopyWriter {
  readonly #to: Repository;
  readonly #pendingPacks: IndexedPack[] = [];
  readonly data: PackWriter;
  readonly tree: PackWriter;
  readonly compressor: BlobCompressor;
  /** Blobs added by this copy, not yet in the destination's index. */
  readonly stored = new Set<string>();

  constructor(to: Repository) {
    this.#to = to;
    const onPackStored = async (pack: IndexedPack): Promise<void> => {
      this.#pendingPacks.push(pack);
      if (this.#pendingPacks.length >= indexPacksMax) await this.flushIndex();
    };
    this.data = new PackWriter(to, onPackStored);
    this.tree = new PackWriter(to, onPackStored);
    this.compressor = to.createCompressor();
  }

  has(id: string): boolean {
    return this.stored.has(id) || this.#to.index.has(id);
  }

  writerOf(type: BlobType): PackWriter {
    return type === "tree" ? this.tree : this.data;
  }

  async flushIndex(): Promise<void> {
    if (this.#pendingPacks.length > 0) await this.#to.writeIndex(this.#pendingPacks.splice(0));
  }

  async finish(): Promise<void> {
    await this.data.flush();
    await this.tree.flush();
    await this.flushIndex();
  }

  /** After a failure: what was stored stays, indexed, so the rerun reuses it. */
  async abandon(): Promise<void> {
    await this.data.abandon();
    await this.tree.abandon();
    await this.flushIndex().catch(() => undefined);
  }
}

/**
 * Copies snapshot `snapshotId` of `from` into `to`. Crash-safe like a backup: packs, then index
 * files, then the snapshot; a rerun indexes the packs an interrupted copy stored and copies only
 * what is still missing. Holds a shared lock on both repositories (prune's exclusive lock
 * excludes it). Memory: one blob in flight plus the packs' bounded write queues, and one id
 * per blob of the snapshot.
 */
export async function copySnapshot(
  from: Repository,
  to: Repository,
  snapshotId: string,
  options: CopySnapshotOptions = {},
): Promise<CopySnapshotResult> {
  const startMs = Date.now();
  const idsRewritten = !sharesBlobIds(from, to);
  return withLock(from.store, false, () =>
    withLock(to.store, false, async () => {
      if (from.index.packs.size === 0) await from.loadIndex();
      const snapshot = await from.loadSnapshot(snapshotId);
      await to.loadIndex();
      await to.recoverUnindexedPacks();
      const copies = await to.listSnapshots();
      const existing = copies.find(
        (entry) =>
          entry.snapshot.copiedFrom === snapshotId ||
          (!idsRewritten && sameSnapshot(entry.snapshot, snapshot)),
      );
      const result: CopySnapshotResult = {
        snapshotId: existing?.id ?? "",
        treeId: existing?.snapshot.tree ?? "",
        alreadyPresent: existing !== undefined,
        idsRewritten,
        blobsCopied: 0,
        blobsCopiedSealed: 0,
        bytesCopied: 0,
        blobsSkipped: 0,
        blobsDecrypted: 0,
        durationMs: 0,
      };
      if (existing !== undefined) {
        result.durationMs = Date.now() - startMs;
        return result;
      }
      const parentCopy =
        snapshot.parent === null
          ? undefined
          : copies.find((entry) => entry.snapshot.copiedFrom === snapshot.parent);
      const writer = new CopyWriter(to);
      let tree: string;
      try {
        tree = idsRewritten
          ? await rewriteSnapshotTree(from, to, snapshot, copies, writer, result, options)
          : await copySnapshotTree(from, to, snapshot.tree, writer, result, options);
        await writer.finish();
      } catch (error) {
        await writer.abandon();
        throw error;
      }
      result.treeId = tree;
      result.snapshotId = await to.saveObject("snapshot", {
        ...snapshot,
        tree,
        // The source's parent id means nothing in the destination: its copy there, if any.
        parent: parentCopy?.id ?? null,
        ...(options.tags === undefined ? {} : { tags: options.tags }),
        copiedFrom: snapshotId,
      });
      result.durationMs = Date.now() - startMs;
      return result;
    }),
  );
}

/** Same blob-id key: every blob keeps its id, trees are copied unchanged. Returns the root tree. */
async function copySnapshotTree(
  from: Repository,
  to: Repository,
  rootTree: string,
  writer: CopyWriter,
  result: CopySnapshotResult,
  options: CopySnapshotOptions,
): Promise<string> {
  const visited = new Set<string>();

  const copyBlob = async (id: string, type: BlobType): Promise<void> => {
    if (visited.has(id)) return;
    visited.add(id);
    if (writer.has(id)) {
      result.blobsSkipped++;
      return;
    }
    const { location, packName, sealed } = await from.readSealedBlob(id, type);
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
      await writer.writerOf(type).addSealed({ entry, parts: [sealed] });
      result.blobsCopiedSealed++;
      result.bytesCopied += location.lengthBytes;
    } else {
      const plaintext = openBlob(from.keys, location, sealed, packName);
      const resealed = sealBlob(to.keys, writer.compressor, type, plaintext, id);
      await writer.writerOf(type).addSealed(resealed);
      result.bytesCopied += resealed.entry.lengthBytes;
    }
    writer.stored.add(id);
    result.blobsCopied++;
    options.onBlobCopied?.(result.blobsCopied);
  };

  const copyTree = async (treeId: string, depth: number): Promise<void> => {
    if (visited.has(treeId)) return;
    if (depth > treeDepthMax)
      throw new BackupError("INVALID_ARGUMENT", `trees nested deeper than ${treeDepthMax}`);
    const tree = await from.loadTree(treeId);
    for (const node of tree.nodes) {
      if (node.type === "file") for (const blobId of node.content) await copyBlob(blobId, "data");
      else if (node.type === "directory") await copyTree(node.subtree, depth + 1);
    }
    // A tree after its contents: the copy never stores a tree before its children.
    await copyBlob(treeId, "tree");
  };

  await copyTree(rootTree, 0);
  return rootTree;
}

/**
 * The destination's copy of an earlier snapshot of the same host and paths, with the source
 * tree it was made from: the copy of the snapshot's parent first, else the newest such copy
 * whose original the source still holds.
 */
async function previousCopy(
  from: Repository,
  snapshot: Snapshot,
  copies: readonly { id: string; snapshot: Snapshot }[],
): Promise<TreePair | undefined> {
  const samePaths = JSON.stringify(snapshot.paths);
  const candidates = copies
    .filter(
      (entry) =>
        entry.snapshot.copiedFrom !== undefined &&
        entry.snapshot.hostname === snapshot.hostname &&
        JSON.stringify(entry.snapshot.paths) === samePaths,
    )
    .sort(
      (left, right) =>
        Number(right.snapshot.copiedFrom === snapshot.parent) -
          Number(left.snapshot.copiedFrom === snapshot.parent) ||
        right.snapshot.timeMs - left.snapshot.timeMs,
    )
    .slice(0, previousCopiesTriedMax);
  for (const candidate of candidates) {
    const original = await from
      .loadSnapshot(candidate.snapshot.copiedFrom as string)
      .catch(() => undefined); // forgotten in the source since: no map from it
    if (original !== undefined)
      return { source: original.tree, destination: candidate.snapshot.tree };
  }
  return undefined;
}

/**
 * Different blob-id keys: every blob gets its destination id (HMAC under the destination's
 * key of its plaintext) and every tree is rewritten with its children's new ids. Chunk
 * boundaries stay the source's (the chunker's seed is the source's; restores are the same
 * bytes either way). Returns the destination's root tree id.
 */
async function rewriteSnapshotTree(
  from: Repository,
  to: Repository,
  snapshot: Snapshot,
  copies: readonly { id: string; snapshot: Snapshot }[],
  writer: CopyWriter,
  result: CopySnapshotResult,
  options: CopySnapshotOptions,
): Promise<string> {
  /** Source id → destination id of every blob met so far (identical files and trees recur). */
  const dataIds = new Map<string, string>();
  const treeIds = new Map<string, string>();

  const store = async (type: BlobType, plaintext: Uint8Array, id: string): Promise<void> => {
    const sealed = sealBlob(to.keys, writer.compressor, type, plaintext, id);
    await writer.writerOf(type).addSealed(sealed);
    writer.stored.add(id);
    result.blobsCopied++;
    result.bytesCopied += sealed.entry.lengthBytes;
    options.onBlobCopied?.(result.blobsCopied);
  };

  /** The destination id of a source data blob; `mapped` is the earlier copy's guess for it. */
  const rewriteData = async (sourceId: string, mapped: string | undefined): Promise<string> => {
    const known = dataIds.get(sourceId);
    if (known !== undefined) return known;
    if (
      mapped !== undefined &&
      to.index.has(mapped) &&
      to.index.blobs.get(mapped)?.rawLengthBytes === from.index.blobs.get(sourceId)?.rawLengthBytes
    ) {
      dataIds.set(sourceId, mapped);
      result.blobsSkipped++;
      return mapped;
    }
    const plaintext = await from.readBlob(sourceId, "data");
    result.blobsDecrypted++;
    const id = computeBlobId(to.keys, plaintext);
    dataIds.set(sourceId, id);
    if (writer.has(id)) result.blobsSkipped++;
    else await store("data", plaintext, id);
    return id;
  };

  /** The chunk map of a file between the earlier copy's source and destination versions. */
  const chunkMap = (
    earlier: { source: TreeNode; destination: TreeNode } | undefined,
  ): Map<string, string> | undefined => {
    if (earlier?.source.type !== "file" || earlier.destination.type !== "file") return undefined;
    const { source, destination } = earlier;
    if (source.content.length !== destination.content.length) return undefined;
    return new Map(source.content.map((id, index) => [id, destination.content[index] as string]));
  };

  const rewriteTree = async (
    sourceId: string,
    earlier: TreePair | undefined,
    depth: number,
  ): Promise<string> => {
    const known = treeIds.get(sourceId);
    if (known !== undefined) return known;
    if (depth > treeDepthMax)
      throw new BackupError("INVALID_ARGUMENT", `trees nested deeper than ${treeDepthMax}`);
    if (earlier?.source === sourceId && to.index.has(earlier.destination)) {
      // Unchanged since the earlier copy: its destination tree, and all below it, are there.
      treeIds.set(sourceId, earlier.destination);
      result.blobsSkipped++;
      return earlier.destination;
    }
    const tree = await from.loadTree(sourceId);
    result.blobsDecrypted++;
    const earlierNodes = new Map<string, { source: TreeNode; destination: TreeNode }>();
    if (earlier !== undefined && to.index.has(earlier.destination)) {
      const destinationNodes = new Map(
        (await to.loadTree(earlier.destination)).nodes.map((node) => [node.name, node]),
      );
      for (const node of (await from.loadTree(earlier.source)).nodes) {
        const destination = destinationNodes.get(node.name);
        if (destination?.type === node.type)
          earlierNodes.set(node.name, { source: node, destination });
      }
    }
    const nodes: TreeNode[] = [];
    for (const node of tree.nodes) {
      const pair = earlierNodes.get(node.name);
      if (node.type === "file") {
        const chunks = chunkMap(pair);
        const content: string[] = [];
        for (const id of node.content) content.push(await rewriteData(id, chunks?.get(id)));
        nodes.push({ ...node, content });
      } else if (node.type === "directory") {
        const subtreePair =
          pair?.source.type === "directory" && pair.destination.type === "directory"
            ? { source: pair.source.subtree, destination: pair.destination.subtree }
            : undefined;
        nodes.push({ ...node, subtree: await rewriteTree(node.subtree, subtreePair, depth + 1) });
      } else nodes.push(node);
    }
    const plaintext = Buffer.from(JSON.stringify({ nodes }));
    const id = computeBlobId(to.keys, plaintext);
    treeIds.set(sourceId, id);
    // A tree after its contents: the copy never stores a tree before its children.
    if (writer.has(id)) result.blobsSkipped++;
    else await store("tree", plaintext, id);
    return id;
  };

  return rewriteTree(snapshot.tree, await previousCopy(from, snapshot, copies), 0);
}
