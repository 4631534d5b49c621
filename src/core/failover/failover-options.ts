// One documented options type for the failover orchestrator. Timeouts trade a quick move to
// the next location against giving a slow but working target time to come up.

export interface FailoverOptions {
  /** prepare_target: the agent checks the node can take the service and holds a reservation. */
  readonly prepareTimeoutMs: number;
  /** sync_data: copying the data directory (or restoring a backup) can be the slow step. */
  readonly syncDataTimeoutMs: number;
  /** start_service: from the start command to the process listening on its endpoint. */
  readonly startTimeoutMs: number;
  /** update_routing: the registry change reaching the proxies. */
  readonly routeTimeoutMs: number;
  /** verify: long enough for `verifyPassesRequired` checks at `verifyCheckIntervalMs`. */
  readonly verifyTimeoutMs: number;
  /** Consecutive passing health checks that complete a failover; a failing check restarts the count. */
  readonly verifyPassesRequired: number;
  /** How often the runtime checks health during verify; clients are already routed by then. */
  readonly verifyCheckIntervalMs: number;
  /** Attempts on nodes picked by the placement rule once the plan's locations are exhausted. */
  readonly reallocationAttemptsMax: number;
  /** Failovers running at once; more wait in the queue (a failed node may carry many services). */
  readonly concurrentFailoversMax: number;
  /** Failovers waiting for a slot; a trigger beyond this is refused with a critical alert. */
  readonly queuedFailoversMax: number;
  /** Finished failovers kept in the history; the oldest are dropped first. */
  readonly historyRecordsMax: number;
}

/** LAN-sized defaults: a crashed service serves again from its backup in a few seconds. */
export const failoverDefaults: FailoverOptions = {
  prepareTimeoutMs: 5_000,
  syncDataTimeoutMs: 60_000,
  startTimeoutMs: 15_000,
  routeTimeoutMs: 5_000,
  verifyTimeoutMs: 10_000,
  verifyPassesRequired: 3,
  verifyCheckIntervalMs: 200,
  reallocationAttemptsMax: 3,
  concurrentFailoversMax: 32,
  queuedFailoversMax: 10_000,
  historyRecordsMax: 1_000,
};

export class FailoverOptionsError extends Error {
  override readonly name = "FailoverOptionsError";
}

/** The defaults with `overrides` applied; every field must be a positive integer. */
export function failoverOptionsFor(overrides: Partial<FailoverOptions> = {}): FailoverOptions {
  const options: FailoverOptions = { ...failoverDefaults, ...overrides };
  for (const [key, value] of Object.entries(options)) {
    if (!Number.isInteger(value) || (value as number) <= 0) {
      throw new FailoverOptionsError(
        `failover.${key} must be a positive integer, got ${String(value)}`,
      );
    }
  }
  return options;
}
