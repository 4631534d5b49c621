// Repository locks as small JSON files under locks/: shared for backups, exclusive for prune
// and key rotation. Holders refresh them; stale ones (old, or of a dead local process) are
// ignored, and removed by whoever takes an exclusive lock.
import { randomBytes } from "node:crypto";
import { hostname as osHostname } from "node:os";
import { BackupError } from "../../core/backup/errors.ts";
import { conflictingLocks, isLockStale, lockDefaults } from "../../core/backup/locks.ts";
import type { LockContext, LockOptions } from "../../core/backup/locks.ts";
import { idOfObjectName, lockSchema, objectNames } from "../../core/backup/objects.ts";
import type { Lock } from "../../core/backup/objects.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { errorCode } from "./directory-blob-store.ts";

export interface RepositoryLock {
  readonly id: string;
  release(): Promise<void>;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== "ESRCH";
  }
}

export function lockContext(nowMs: number): LockContext {
  return { nowMs, hostname: osHostname(), isProcessAlive };
}

async function readLocks(store: BlobStore): Promise<Array<{ id: string; lock: Lock }>> {
  const locks: Array<{ id: string; lock: Lock }> = [];
  for (const name of await store.list("locks/")) {
    const bytes = await store.get(name).catch(() => undefined);
    if (bytes === undefined) continue;
    const parsed = lockSchema.safeParse(safeJson(bytes));
    // An unreadable lock file blocks nothing: it was written by a crashed writer or not by us.
    if (parsed.success) locks.push({ id: idOfObjectName(name), lock: parsed.data });
  }
  return locks;
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

export async function acquireLock(
  store: BlobStore,
  exclusive: boolean,
  options: LockOptions = lockDefaults,
): Promise<RepositoryLock> {
  const id = randomBytes(32).toString("hex");
  const createdAtMs = Date.now();
  const write = (refreshedAtMs: number) =>
    store.put(
      objectNames.lock(id),
      Buffer.from(
        JSON.stringify({
          version: 1,
          exclusive,
          hostname: osHostname(),
          pid: process.pid,
          createdAtMs,
          refreshedAtMs,
        } satisfies Lock),
      ),
    );
  await write(createdAtMs);
  const others = (await readLocks(store)).filter((entry) => entry.id !== id);
  const context = lockContext(Date.now());
  const conflicts = conflictingLocks(exclusive, others, context, options);
  if (conflicts.length > 0) {
    await store.delete(objectNames.lock(id));
    const holders = conflicts.map(
      ({ lock }) =>
        `${lock.exclusive ? "exclusive" : "shared"} lock by pid ${lock.pid} on ${lock.hostname} since ${new Date(lock.createdAtMs).toISOString()}`,
    );
    throw new BackupError(
      "LOCKED",
      `the repository is locked: ${holders.join("; ")}. If that process is gone, the lock goes stale after ${options.staleAfterMs / 60_000} minutes (or at once on the same host).`,
    );
  }
  if (exclusive) {
    for (const other of others)
      if (isLockStale(other.lock, context, options)) await store.delete(objectNames.lock(other.id));
  }
  let refreshing: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    // A failed refresh surfaces as a stale lock to others; the operation itself goes on.
    refreshing = write(Date.now()).catch(() => undefined);
  }, options.refreshIntervalMs);
  timer.unref();
  return {
    id,
    release: async () => {
      clearInterval(timer);
      await refreshing;
      await store.delete(objectNames.lock(id));
    },
  };
}

/** Runs `work` under a lock and always releases it. */
export async function withLock<Result>(
  store: BlobStore,
  exclusive: boolean,
  work: () => Promise<Result>,
): Promise<Result> {
  const lock = await acquireLock(store, exclusive);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
