// Replay protection for signed requests: a request carries a timestamp and a nonce; it is
// accepted once, and only while its timestamp is within the skew window. The cache only has to
// remember nonces for that window, so it stays bounded. Nonces live in memory only: a
// restarted verifier refuses everything signed before it started, so a request accepted by
// its previous incarnation cannot be replayed to the new one within the window.

export interface NonceCacheOptions {
  /** Requests older or newer than this (relative to the verifier's clock) are refused. */
  windowMs: number;
  /** Nonces remembered at once; when full, a new nonce is refused rather than forgetting one. */
  noncesMax: number;
}

export const nonceCacheDefaults: NonceCacheOptions = { windowMs: 5 * 60_000, noncesMax: 100_000 };

export type NonceCheck =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly reason: "stale" | "replay" | "full" | "malformed" };

/** Longest nonce accepted. */
export const nonceCharactersMax = 128;

export class NonceCache {
  readonly #options: NonceCacheOptions;
  /** nonce -> time it may be forgotten, in insertion order (which is also expiry order, roughly). */
  readonly #seen = new Map<string, number>();
  readonly #startedAtMs: number;

  /** `startedAtMs`: when this verifier started; anything signed earlier is refused as stale. */
  constructor(options: NonceCacheOptions, startedAtMs: number) {
    this.#options = options;
    this.#startedAtMs = startedAtMs;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Accepts a (timestamp, nonce) pair once; remembers it until it could no longer be fresh. */
  check(nonce: string, timestampMs: number, nowMs: number): NonceCheck {
    if (nonce.length === 0 || nonce.length > nonceCharactersMax || !Number.isFinite(timestampMs))
      return { accepted: false, reason: "malformed" };
    if (Math.abs(nowMs - timestampMs) > this.#options.windowMs || timestampMs < this.#startedAtMs)
      return { accepted: false, reason: "stale" };
    this.#forgetExpired(nowMs);
    if (this.#seen.has(nonce)) return { accepted: false, reason: "replay" };
    // Refusing is safe (the sender retries later); forgetting a live nonce would allow a replay.
    if (this.#seen.size >= this.#options.noncesMax) return { accepted: false, reason: "full" };
    this.#seen.set(nonce, timestampMs + this.#options.windowMs);
    return { accepted: true };
  }

  #forgetExpired(nowMs: number): void {
    for (const [nonce, forgetAtMs] of this.#seen) {
      if (forgetAtMs >= nowMs) {
        // Entries are roughly in expiry order; one young entry ends the sweep.
        break;
      }
      this.#seen.delete(nonce);
    }
  }
}
