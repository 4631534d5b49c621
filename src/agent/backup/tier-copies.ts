// Copies a node's snapshot from one tier's repository to another's (docs/adr/0005-fleet-backups.md,
// "Copies between tiers"): the source is read once by the backup, the other tiers get its blobs.
// A destination created here shares the source's key ring, so sealed blobs move undecrypted; a
// destination with its own key ring (created before copies existed, or by a direct backup)
// gets every blob re-keyed and its trees rewritten by the copy.

import type { BackupRepositoryRef } from "../../api/service-messages.ts";
import { BackupError } from "../../core/backup/errors.ts";
import { copySnapshot, initRepositoryLike } from "../../runtime/backup/copy-snapshot.ts";
import { openWithFleetPasswords } from "./fleet-password-open.ts";
import type { Repository } from "../../runtime/backup/repository.ts";
import { BestEffortLockStore } from "./prefixed-blob-store.ts";
import { TierUnavailableError, storeOf } from "./tier-operations.ts";
import type { TierContext } from "./tier-operations.ts";

export interface TierCopyResult {
  snapshotId: string;
  /** The copy's root tree id in the destination repository. */
  treeId: string;
  atMs: number;
  sizeBytes: number;
  addedBytes: number;
  filesNew: number;
  filesUnchanged: number;
  durationMs: number;
  blobsCopied: number;
  /** The destination has a key ring of its own: blob ids were computed again, trees rewritten. */
  idsRewritten: boolean;
  /** The snapshot's paths: the staged data types (`…/staging/<policy>/<data type>`). */
  paths: string[];
}

function unavailable(ref: BackupRepositoryRef, error: unknown): Error {
  if (error instanceof TierUnavailableError) return error;
  if (error instanceof BackupError && error.code !== "STORAGE_FAILED" && error.code !== "LOCKED")
    return error;
  return new TierUnavailableError(
    `${ref.level} (${ref.owner}) is unavailable: ${(error as Error).message}`,
  );
}

/** Copies `snapshotId` of `from` into `to` (this node's repositories), creating `to` if needed. */
export async function copyBetweenTiers(
  from: BackupRepositoryRef,
  to: BackupRepositoryRef,
  context: TierContext,
  snapshotId: string,
): Promise<TierCopyResult> {
  const connections: { close(): void }[] = [];
  try {
    let source: Repository;
    try {
      source = await openWithFleetPasswords(
        new BestEffortLockStore(storeOf(from, context, connections)),
        context.targets,
        { rewrap: false },
      );
    } catch (error) {
      throw unavailable(from, error);
    }
    let destination: Repository;
    try {
      const store = storeOf(to, context, connections);
      destination = await openWithFleetPasswords(store, context.targets, {
        rewrap: true,
        ...(context.logger === undefined ? {} : { logger: context.logger }),
      }).catch(async (error: unknown) => {
        if (!(error instanceof BackupError) || error.code !== "REPOSITORY_NOT_FOUND") throw error;
        return initRepositoryLike(
          store,
          context.targets.password,
          source,
          context.repositoryOptions,
        );
      });
    } catch (error) {
      throw unavailable(to, error);
    }
    try {
      const snapshot = await source.loadSnapshot(snapshotId);
      const tags = snapshot.tags.map((tag) =>
        tag.startsWith("level:") ? `level:${to.level}` : tag,
      );
      const result = await copySnapshot(source, destination, snapshotId, { tags });
      return {
        snapshotId: result.snapshotId,
        treeId: result.treeId,
        atMs: snapshot.timeMs,
        sizeBytes: snapshot.summary.bytesProcessed,
        addedBytes: result.bytesCopied,
        filesNew: snapshot.summary.filesNew + snapshot.summary.filesChanged,
        filesUnchanged: snapshot.summary.filesUnmodified,
        durationMs: result.durationMs,
        blobsCopied: result.blobsCopied,
        idsRewritten: result.idsRewritten,
        paths: snapshot.paths,
      };
    } catch (error) {
      throw unavailable(to, error);
    }
  } finally {
    for (const connection of connections) connection.close();
  }
}
