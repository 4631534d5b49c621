// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
// Jitter"): spreading reconnects over the whole window keeps a fleet that lost its server
// from coming back as one thundering herd.

export interface BackoffOptions {
  /** Upper bound of the first attempt's window. */
  readonly baseDelayMs: number;
  /** No window grows beyond this. */
  readonly maxDelayMs: number;
}

export const reconnectBackoffDefaults: BackoffOptions = { baseDelayMs: 100, maxDelayMs: 10_000 };

/** The delay before retry number `attempt` (0-based), given a uniform draw in [0, 1). */
export function fullJitterDelayMs(
  options: BackoffOptions,
  attempt: number,
  uniformDraw: number,
): number {
  const windowMs = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(uniformDraw * windowMs);
}
