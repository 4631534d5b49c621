// Rate limits: a token bucket, refilled continuously, and one bucket per client key for the
// server's per-client limit. Clients are bounded; when the table is full, the bucket idle
// longest (a full one) is forgotten first.

export interface RateLimitOptions {
  /** Sustained requests per second per client. */
  requestsPerSecond: number;
  /** Requests a client may send at once after being idle. */
  burst: number;
  /** Clients tracked at once. */
  clientsMax: number;
}

export type RateDecision =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

/** `perSecond` tokens a second, at most `burst` saved up; starts full. Time is handed in. */
export class TokenBucket {
  readonly perSecond: number;
  readonly burst: number;
  #tokens: number;
  #updatedAtMs: number;

  constructor(perSecond: number, burst: number, nowMs: number) {
    if (!(perSecond > 0) || !(burst >= 1))
      throw new Error("a token bucket needs a positive rate and a burst of at least 1");
    this.perSecond = perSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#updatedAtMs = nowMs;
  }

  /** Takes one token at `nowMs`; false when there is none. */
  take(nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** How long until a token is there (0: now). */
  waitMs(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1_000) / this.perSecond);
  }

  #refill(nowMs: number): void {
    const elapsedMs = Math.max(0, nowMs - this.#updatedAtMs);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs * this.perSecond) / 1_000);
    this.#updatedAtMs = Math.max(this.#updatedAtMs, nowMs);
  }
}

export class RateLimiter {
  readonly #options: RateLimitOptions;
  /** Most recently used last. */
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(options: RateLimitOptions) {
    if (options.requestsPerSecond <= 0 || options.burst < 1 || options.clientsMax < 1)
      throw new Error("rate limit options must be positive");
    this.#options = options;
  }

  get clients(): number {
    return this.#buckets.size;
  }

  /** Takes one request's token from `client`'s bucket at `nowMs`. */
  take(client: string, nowMs: number): RateDecision {
    const { requestsPerSecond, burst, clientsMax } = this.#options;
    let bucket = this.#buckets.get(client);
    if (bucket === undefined) {
      if (this.#buckets.size >= clientsMax) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      bucket = new TokenBucket(requestsPerSecond, burst, nowMs);
    } else {
      this.#buckets.delete(client);
    }
    this.#buckets.set(client, bucket);
    if (bucket.take(nowMs)) return { allowed: true };
    return { allowed: false, retryAfterMs: bucket.waitMs(nowMs) };
  }
}
