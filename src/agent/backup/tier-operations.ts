// The backup engine put to the fleet's use: one repository per (tier, node), opened or created
// with the fleet's password, and the backup, restore, check and forget operations on it. This
// module loads the engine (zstd, workers, zod schemas), so the agent imports it only when a
// backup runs: an idle agent stays small.

import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { BackupError } from "../../core/backup/errors.ts";
import { clusterCode } from "../../core/backup/fleet-schedule.ts";
import { objectNames } from "../../core/backup/objects.ts";
import { serverPeerReceiver } from "../../core/security/peer-request.ts";
import type { BackupRepositoryRef, BackupTargets } from "../../api/service-messages.ts";
import { backup } from "../../runtime/backup/backup.ts";
import { check } from "../../runtime/backup/check.ts";
import { DirectoryBlobStore } from "../../runtime/backup/directory-blob-store.ts";
import { ErasureBlobStore } from "../../runtime/backup/erasure-blob-store.ts";
import { HttpBlobStore } from "../../runtime/backup/http-blob-store.ts";
import { withLock } from "../../runtime/backup/lock.ts";
import { prune } from "../../runtime/backup/prune.ts";
import { Repository, initRepository } from "../../runtime/backup/repository.ts";
import type { Logger } from "../../ports/logger.ts";
import { openWithFleetPasswords } from "./fleet-password-open.ts";
import type { RepositoryOptions } from "../../runtime/backup/repository.ts";
import { restore } from "../../runtime/backup/restore.ts";
import { s3BlobStoreFromUrl } from "../../runtime/backup/s3-blob-store.ts";
import { BestEffortLockStore, PrefixedBlobStore } from "./prefixed-blob-store.ts";

/** A tier that cannot be used right now: skipped, recorded and retried later. */
export class TierUnavailableError extends Error {
  override readonly name: string = "TierUnavailableError";
}

/**
 * A tier the fleet has not configured (no --blob-dir, no cloud repository): the level is
 * skipped with one warning until the server's targets change, not retried every few seconds.
 */
export class TierNotConfiguredError extends TierUnavailableError {
  override readonly name = "TierNotConfiguredError";
}

export interface TierContext {
  nodeId: string;
  /** The agent's data dir: EDGE_LOCAL lives in `<dataDir>/backups/local`. */
  dataDir: string;
  targets: BackupTargets;
  repositoryOptions: RepositoryOptions;
  /** Blob API requests to peers and the server give up after this long without progress. */
  requestTimeoutMs: number;
  /** Where re-wrapped repository keys are reported. */
  logger?: Logger;
  /** The pinned fleet CA (PEM): the server's REGIONAL blob API speaks https with it. */
  serverCaPem?: string;
  /** Signature headers for blob API requests (ADR 0006, "Peer requests"); absent: unsigned. */
  signRequest?: (request: {
    /** The holder's node id (EDGE_CLUSTER), or `serverPeerReceiver` (REGIONAL). */
    receiver: string;
    method: string;
    pathAndQuery: string;
    bodySha256: string | undefined;
  }) => Record<string, string>;
}

/** Key material of repositories already opened: the password's scrypt runs once per repository. */
const openedRepositories = new Map<
  string,
  Pick<Repository, "keys" | "config" | "keyId"> & { password: string }
>();

/** The holders of `owner`'s EDGE_CLUSTER repository: every other peer, by node id. */
export function clusterHoldersOf(owner: string, targets: BackupTargets): string[] {
  return Object.keys(targets.peers)
    .filter((nodeId) => nodeId !== owner)
    .sort();
}

/** The blob store of a tier's repository for one node, or why the tier cannot be used now. */
export function storeOf(
  ref: BackupRepositoryRef,
  context: TierContext,
  opened: { close(): void }[] = [],
): BlobStore {
  const { targets } = context;
  /** A blob API client whose requests are signed for `receiver` alone. */
  const http = (baseUrl: string, receiver: string) => {
    const store = new HttpBlobStore({
      baseUrl,
      requestTimeoutMs: context.requestTimeoutMs,
      retryCountMax: 1,
      caCertificatePem: context.serverCaPem,
      ...(context.signRequest === undefined
        ? {}
        : {
            headers: (request) =>
              context.signRequest?.({
                receiver,
                method: request.method,
                pathAndQuery: request.pathAndQuery,
                bodySha256: request.contentSha256,
              }) ?? {},
          }),
    });
    opened.push(store);
    return store;
  };
  switch (ref.level) {
    case "EDGE_LOCAL":
      if (ref.owner !== context.nodeId)
        throw new TierUnavailableError(
          `EDGE_LOCAL of ${ref.owner} is on that node's disk, not reachable from ${context.nodeId}`,
        );
      return new DirectoryBlobStore(join(context.dataDir, "backups", "local"));
    case "EDGE_CLUSTER": {
      const code = clusterCode(
        targets.clusterDataShards,
        targets.clusterParityShards,
        ref.holders.length,
      );
      if (code === undefined)
        throw new TierUnavailableError(
          `EDGE_CLUSTER needs ${targets.clusterDataShards + targets.clusterParityShards} peer nodes for k=${targets.clusterDataShards}, m=${targets.clusterParityShards}; ${ref.holders.length} are known`,
        );
      const holders = ref.holders.map((nodeId) => {
        const url = targets.peers[nodeId];
        if (url === undefined)
          throw new TierUnavailableError(`no blob API address of peer ${nodeId} is known`);
        return new PrefixedBlobStore(http(url, nodeId), `cluster/${ref.owner}`);
      });
      return new ErasureBlobStore(holders, {
        dataShardCount: code.dataShards,
        parityShardCount: code.parityShards,
      });
    }
    case "REGIONAL":
      if (targets.regionalUrl === null)
        throw new TierNotConfiguredError(
          "REGIONAL is not configured: start the server with --blob-dir DIR",
        );
      return new PrefixedBlobStore(
        http(targets.regionalUrl, serverPeerReceiver),
        `nodes/${ref.owner}`,
      );
    case "CLOUD": {
      if (targets.cloud === null)
        throw new TierNotConfiguredError(
          "CLOUD is not configured: the server has no --cloud-repo, and the spec's backup.tiers.cloud is absent or its credentials are missing from the server's environment",
        );
      return s3BlobStoreFromUrl(`${targets.cloud.url.replace(/\/+$/, "")}/${ref.owner}`, {
        AWS_ACCESS_KEY_ID: targets.cloud.accessKeyId,
        AWS_SECRET_ACCESS_KEY: targets.cloud.secretAccessKey,
        AWS_REGION: targets.cloud.region,
      });
    }
  }
}

/** Connections each open repository holds, closed when its operation ends. */
const connectionsOf = new WeakMap<BlobStore, { close(): void }[]>();

function closeStore(store: BlobStore): void {
  for (const connection of connectionsOf.get(store) ?? []) connection.close();
  (store as { close?: () => void }).close?.();
}

/**
 * Opens the repository (creating this node's own on first use). Unreachable storage is a
 * TierUnavailableError: the scheduler records it and tries again later.
 */
async function openTier(
  ref: BackupRepositoryRef,
  context: TierContext,
  readOnly: boolean,
): Promise<Repository> {
  const opened: { close(): void }[] = [];
  const tierStore = storeOf(ref, context, opened);
  const store = readOnly ? new BestEffortLockStore(tierStore) : tierStore;
  connectionsOf.set(store, opened);
  const known = openedRepositories.get(store.location);
  // After a password rotation the repository is opened afresh, so its key gets re-wrapped.
  if (known !== undefined && known.password === context.targets.password)
    return new Repository(store, known.keys, known.config, known.keyId);
  let repository: Repository;
  try {
    repository = await openWithFleetPasswords(store, context.targets, {
      rewrap: !readOnly,
      ...(context.logger === undefined ? {} : { logger: context.logger }),
    });
  } catch (error) {
    if (!(error instanceof BackupError) || error.code !== "REPOSITORY_NOT_FOUND") {
      closeStore(store);
      throw unavailable(ref, error);
    }
    if (ref.owner !== context.nodeId) {
      closeStore(store);
      throw new TierUnavailableError(`${ref.level} of ${ref.owner} has no repository yet`);
    }
    repository = await initRepository(
      store,
      context.targets.password,
      context.repositoryOptions,
    ).catch((initError: unknown) => {
      closeStore(store);
      throw unavailable(ref, initError);
    });
  }
  openedRepositories.set(store.location, {
    keys: repository.keys,
    config: repository.config,
    keyId: repository.keyId,
    password: context.targets.password,
  });
  return repository;
}

function unavailable(ref: BackupRepositoryRef, error: unknown): Error {
  if (error instanceof BackupError && error.code !== "STORAGE_FAILED" && error.code !== "LOCKED")
    return error;
  return new TierUnavailableError(
    `${ref.level} (${ref.owner}) is unavailable: ${(error as Error).message}`,
  );
}

async function withTier<Result>(
  ref: BackupRepositoryRef,
  context: TierContext,
  readOnly: boolean,
  work: (repository: Repository) => Promise<Result>,
): Promise<Result> {
  const repository = await openTier(ref, context, readOnly);
  try {
    return await work(repository);
  } catch (error) {
    throw unavailable(ref, error);
  } finally {
    closeStore(repository.store);
  }
}

export interface TierBackupResult {
  snapshotId: string;
  /** The snapshot's root tree id: it commits to every file's content (the ledger's digest). */
  treeId: string;
  atMs: number;
  durationMs: number;
  sizeBytes: number;
  addedBytes: number;
  filesNew: number;
  filesUnchanged: number;
}

/** Backs the staged paths up into one tier; the snapshot is tagged with policy and level. */
export function backupToTier(
  ref: BackupRepositoryRef,
  context: TierContext,
  request: {
    paths: string[];
    policy: string;
    timeMs: number;
    onWarning: (message: string) => void;
  },
): Promise<TierBackupResult> {
  return withTier(ref, context, false, async (repository) => {
    const result = await backup(repository, {
      paths: request.paths,
      tags: [`policy:${request.policy}`, `level:${ref.level}`],
      hostname: context.nodeId,
      timeMs: request.timeMs,
      // Fleet backups run beside services: no worker threads competing with them.
      workerCount: 0,
      onWarning: request.onWarning,
    });
    const summary = result.snapshot.summary;
    return {
      snapshotId: result.snapshotId,
      treeId: result.snapshot.tree,
      atMs: result.snapshot.timeMs,
      durationMs: Math.round(summary.durationMs),
      sizeBytes: summary.bytesProcessed,
      addedBytes: summary.bytesAddedStored,
      filesNew: summary.filesNew + summary.filesChanged,
      filesUnchanged: summary.filesUnmodified,
    };
  });
}

/**
 * Restores a snapshot, or the given top-level entries of it, into `targetDir`. Each entry is
 * restored beside the target first and then swapped in, so a failed restore leaves the old
 * data in place.
 */
export function restoreFromTier(
  ref: BackupRepositoryRef,
  context: TierContext,
  request: { snapshotId: string; targetDir: string; entry: string | null },
): Promise<{ filesRestored: number; bytesRestored: number; snapshotAtMs: number }> {
  return withTier(ref, context, true, async (repository) => {
    const snapshot = await repository.loadSnapshot(request.snapshotId);
    await mkdir(dirname(request.targetDir), { recursive: true });
    const scratch = `${request.targetDir}.restoring`;
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true });
    try {
      const result = await restore(repository, {
        snapshotId: request.snapshotId,
        targetDirectory: scratch,
        ...(request.entry === null ? {} : { includes: [`/${request.entry}`] }),
      });
      const restored = request.entry === null ? scratch : join(scratch, request.entry);
      await mkdir(restored, { recursive: true });
      await rm(request.targetDir, { recursive: true, force: true });
      await rename(restored, request.targetDir);
      return {
        filesRestored: result.filesRestored,
        bytesRestored: result.bytesRestored,
        snapshotAtMs: snapshot.timeMs,
      };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
}

export function verifyTier(
  ref: BackupRepositoryRef,
  context: TierContext,
  readData: boolean,
): Promise<{ ok: boolean; snapshots: number; packsRead: number; errors: string[] }> {
  return withTier(ref, context, true, async (repository) => {
    const report = await check(repository, readData ? { readData: { kind: "all" } } : {});
    return {
      ok: report.errors.length === 0,
      snapshots: report.snapshots,
      packsRead: report.packsRead,
      errors: report.errors.slice(0, 64).map((problem) => `${problem.object}: ${problem.message}`),
    };
  });
}

/** Forgets expired snapshots of this node's repository and collects their data. */
export function forgetInTier(
  ref: BackupRepositoryRef,
  context: TierContext,
  snapshotIds: readonly string[],
): Promise<{ removed: number }> {
  return withTier(ref, context, false, async (repository) => {
    const present = new Set((await repository.listSnapshots()).map((entry) => entry.id));
    const removable = snapshotIds.filter((id) => present.has(id));
    await withLock(repository.store, true, async () => {
      for (const id of removable) await repository.store.delete(objectNames.snapshot(id));
    });
    if (removable.length > 0) await prune(repository);
    return { removed: removable.length };
  });
}
