// Pure planning of the fleet's scheduled backups: when each (policy, level) is next due on a
// node, with jitter so a fleet does not back up in lockstep, and which catalogued snapshots
// have outlived their level's retention. Time and random draws are handed in.

/** A day in milliseconds, for retentionDays. */
export const dayMs = 86_400_000;

/** One documented options type; each field says its trade-off. */
export interface BackupScheduleOptions {
  /**
   * Jitter added to each due time, as a fraction of the interval: spreads a fleet's backups
   * (less load on the cluster and regional tiers) at the price of up to this much more RPO.
   */
  jitterFraction: number;
  /** Upper bound of the jitter in ms, so daily levels do not drift by hours. */
  jitterMsMax: number;
  /**
   * A run that failed (a tier offline, a disk error) is tried again this long after; shorter
   * catches a returning tier sooner, longer spares an unreachable one.
   */
  retryDelayMs: number;
}

export const backupScheduleDefaults: BackupScheduleOptions = {
  jitterFraction: 0.1,
  jitterMsMax: 60_000,
  retryDelayMs: 30_000,
};

/** What the agent persists per (policy, level). */
export interface LevelRunState {
  /** Last successful run (snapshot time); null: never. */
  lastSuccessMs: number | null;
  lastAttemptMs: number | null;
  lastError: string | null;
  /** When the next run is due. */
  nextDueMs: number;
}

/** The jitter for one due time, from a uniform draw in [0, 1). */
export function jitterMs(
  intervalMs: number,
  uniformDraw: number,
  options: BackupScheduleOptions,
): number {
  return Math.floor(
    Math.min(intervalMs * options.jitterFraction, options.jitterMsMax) * uniformDraw,
  );
}

/**
 * The state of a level the scheduler sees for the first time, or again after a restart.
 * A known last success keeps its cadence: due one interval after it (at once if that passed
 * while the node was down — one catch-up run, not one per missed interval). A level never run
 * is due after a jitter only.
 */
export function initialRunState(
  previous: LevelRunState | undefined,
  intervalMs: number,
  nowMs: number,
  uniformDraw: number,
  options: BackupScheduleOptions,
): LevelRunState {
  const jitter = jitterMs(intervalMs, uniformDraw, options);
  if (previous === undefined)
    return { lastSuccessMs: null, lastAttemptMs: null, lastError: null, nextDueMs: nowMs + jitter };
  const cadenceDueMs =
    previous.lastSuccessMs === null ? nowMs : previous.lastSuccessMs + intervalMs + jitter;
  // A pending retry or a due time already computed stays, unless the interval shrank.
  return { ...previous, nextDueMs: Math.min(previous.nextDueMs, Math.max(cadenceDueMs, nowMs)) };
}

export function isDue(state: LevelRunState, nowMs: number): boolean {
  return nowMs >= state.nextDueMs;
}

/** After a successful run that started at `startedAtMs`: next due one interval (plus jitter) later. */
export function afterSuccess(
  startedAtMs: number,
  intervalMs: number,
  uniformDraw: number,
  options: BackupScheduleOptions,
): LevelRunState {
  return {
    lastSuccessMs: startedAtMs,
    lastAttemptMs: startedAtMs,
    lastError: null,
    nextDueMs: startedAtMs + intervalMs + jitterMs(intervalMs, uniformDraw, options),
  };
}

/** After a failed run: the cadence keeps its last success; retried after retryDelayMs. */
export function afterFailure(
  state: LevelRunState,
  attemptedAtMs: number,
  error: string,
  intervalMs: number,
  options: BackupScheduleOptions,
): LevelRunState {
  return {
    ...state,
    lastAttemptMs: attemptedAtMs,
    lastError: error,
    nextDueMs: attemptedAtMs + Math.min(options.retryDelayMs, intervalMs),
  };
}

/** A catalogued snapshot, as far as retention cares. */
export interface CataloguedSnapshot {
  snapshotId: string;
  node: string;
  policy: string;
  level: string;
  atMs: number;
}

/**
 * Snapshots older than their level's retention. The newest snapshot of each (node, policy,
 * level) is always kept, so a node that stopped backing up still has its last copy. Levels
 * without a retention (removed from the policy) keep everything.
 */
export function expiredSnapshots<Snapshot extends CataloguedSnapshot>(
  snapshots: readonly Snapshot[],
  retentionDaysOf: (policy: string, level: string) => number | undefined,
  nowMs: number,
): Snapshot[] {
  const newest = new Map<string, Snapshot>();
  for (const snapshot of snapshots) {
    const key = `${snapshot.node}\u0000${snapshot.policy}\u0000${snapshot.level}`;
    const current = newest.get(key);
    if (current === undefined || snapshot.atMs > current.atMs) newest.set(key, snapshot);
  }
  const kept = new Set(newest.values());
  return snapshots.filter((snapshot) => {
    if (kept.has(snapshot)) return false;
    const retentionDays = retentionDaysOf(snapshot.policy, snapshot.level);
    return retentionDays !== undefined && snapshot.atMs + retentionDays * dayMs <= nowMs;
  });
}

/**
 * Erasure code for the cluster tier over `peerCount` holders: the spec's k and m when enough
 * peers exist, else undefined (the tier is skipped, with a warning).
 */
export function clusterCode(
  dataShards: number,
  parityShards: number,
  peerCount: number,
): { dataShards: number; parityShards: number } | undefined {
  return peerCount >= dataShards + parityShards ? { dataShards, parityShards } : undefined;
}
