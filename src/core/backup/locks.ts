// Lock decisions: backups share the repository, prune and key rotation need it alone, and a
// lock left by a crashed process must not block the repository forever.
import type { Lock } from "./objects.ts";

export interface LockOptions {
  /** A lock not refreshed for this long is stale: restic's 30 minutes. */
  staleAfterMs: number;
  /** Holders refresh their lock this often; well below `staleAfterMs`. */
  refreshIntervalMs: number;
}

export const lockDefaults: LockOptions = {
  staleAfterMs: 30 * 60_000,
  refreshIntervalMs: 5 * 60_000,
};

export interface LockContext {
  nowMs: number;
  hostname: string;
  /** Whether a process with this id runs on this host (only asked for locks of this host). */
  isProcessAlive: (pid: number) => boolean;
}

export function isLockStale(lock: Lock, context: LockContext, options: LockOptions): boolean {
  if (context.nowMs - lock.refreshedAtMs > options.staleAfterMs) return true;
  return lock.hostname === context.hostname && !context.isProcessAlive(lock.pid);
}

/** Locks among `others` that forbid taking a lock of the wanted kind. */
export function conflictingLocks<Entry extends { lock: Lock }>(
  wantExclusive: boolean,
  others: readonly Entry[],
  context: LockContext,
  options: LockOptions,
): Entry[] {
  return others.filter(
    (other) =>
      (wantExclusive || other.lock.exclusive) && !isLockStale(other.lock, context, options),
  );
}
