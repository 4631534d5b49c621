// What prune does with each pack once the blobs still referenced by snapshots are known:
// keep it, delete it, or repack its used blobs into new packs and delete it.
import type { IndexedPack } from "./objects.ts";

export interface PruneOptions {
  /** Repack a partly used pack when more than this fraction of its bytes is unused. */
  unusedFractionMax: number;
  /** Repack packs smaller than this even when full: merges the tails of small backups. */
  packSizeBytesSmall: number;
}

export const pruneDefaults: PruneOptions = { unusedFractionMax: 0.05, packSizeBytesSmall: 0 };

export interface PrunePlan {
  keep: string[];
  remove: string[];
  repack: string[];
  /** Blobs that occur in more than one kept pack: the index keeps one, the others are unused. */
  bytesUnusedAfter: number;
  bytesFreed: number;
}

export function planPrune(
  packs: readonly IndexedPack[],
  usedBlobIds: ReadonlySet<string>,
  options: PruneOptions,
): PrunePlan {
  const plan: PrunePlan = { keep: [], remove: [], repack: [], bytesUnusedAfter: 0, bytesFreed: 0 };
  const claimed = new Set<string>();
  // Fully used packs first, so duplicates are dropped from the packs that get repacked.
  const byUsefulness = [...packs].sort(
    (left, right) =>
      unusedBytes(left, usedBlobIds) - unusedBytes(right, usedBlobIds) ||
      (left.id < right.id ? -1 : 1),
  );
  for (const pack of byUsefulness) {
    let usedBytes = 0;
    for (const blob of pack.blobs) {
      if (usedBlobIds.has(blob.id) && !claimed.has(blob.id)) usedBytes += blob.lengthBytes;
    }
    const blobBytes = pack.blobs.reduce((sum, blob) => sum + blob.lengthBytes, 0);
    if (usedBytes === 0) {
      plan.remove.push(pack.id);
      plan.bytesFreed += pack.sizeBytes;
      continue;
    }
    for (const blob of pack.blobs) if (usedBlobIds.has(blob.id)) claimed.add(blob.id);
    const unusedFraction = 1 - usedBytes / blobBytes;
    if (unusedFraction > options.unusedFractionMax || pack.sizeBytes < options.packSizeBytesSmall) {
      plan.repack.push(pack.id);
      plan.bytesFreed += pack.sizeBytes - usedBytes;
    } else {
      plan.keep.push(pack.id);
      plan.bytesUnusedAfter += blobBytes - usedBytes;
    }
  }
  return plan;
}

function unusedBytes(pack: IndexedPack, usedBlobIds: ReadonlySet<string>): number {
  return pack.blobs.reduce(
    (sum, blob) => sum + (usedBlobIds.has(blob.id) ? 0 : blob.lengthBytes),
    0,
  );
}
