// Rate limits per client: one token bucket per client key, refilled continuously. Clients are
// bounded; when the table is full, the bucket idle longest (a full one) is forgotten first.

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

interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

export class RateLimiter {
  readonly #options: RateLimitOptions;
  /** Most recently used last. */
  readonly #buckets = new Map<string, Bucket>();

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
      bucket = { tokens: burst, updatedAtMs: nowMs };
    } else {
      this.#buckets.delete(client);
      const elapsedMs = Math.max(0, nowMs - bucket.updatedAtMs);
      bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs * requestsPerSecond) / 1_000);
      bucket.updatedAtMs = nowMs;
    }
    this.#buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1_000) / requestsPerSecond),
    };
  }
}
