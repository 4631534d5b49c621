// Sums an agent's security reports (firewall denials, refused peer requests) before they go to
// the server: each distinct key (a source and what it was refused for) is counted, and at most
// `reportsPerWindowMax` messages leave per window, each carrying the newest refusal of its key
// and how many it stands for. A flood of any size costs the channel that many messages, and
// the agent memory for `keysMax` keys (ADR 0010).

import type { CancelTimer, Clock } from "../ports/clock.ts";

export interface SecurityReportOptions {
  /** Messages per window at most; a flood costs the server this many events per window. */
  reportsPerWindowMax: number;
  windowMs: number;
  /**
   * Distinct keys counted at once. Past it, refusals of new keys are summed into one more
   * report that carries the newest of them, so a flood from many addresses stays bounded.
   */
  keysMax: number;
}

export const securityReportDefaults: SecurityReportOptions = {
  reportsPerWindowMax: 10,
  windowMs: 10_000,
  keysMax: 64,
};

export interface SecurityReportComponents<Report> {
  clock: Clock;
  /** Reports with the same key are summed into one message. */
  keyOf: (report: Report) => string;
  /**
   * Sends one message standing for `count` reports (`report` the newest); false when the
   * channel is down: the reports stay counted and go with the next message.
   */
  send: (report: Report, count: number) => boolean;
}

/** The key the refusals of keys beyond `keysMax` are summed under. */
const overflowKey = "\u0000overflow";

export class SecurityReportAggregator<Report> {
  readonly #options: SecurityReportOptions;
  readonly #components: SecurityReportComponents<Report>;
  /** Reports not sent yet, by key, oldest key first. */
  readonly #pending = new Map<string, { count: number; latest: Report }>();
  #windowStartedAtMs = -Infinity;
  #sentInWindow = 0;
  #cancelFlush: CancelTimer | undefined;

  constructor(options: SecurityReportOptions, components: SecurityReportComponents<Report>) {
    if (options.reportsPerWindowMax < 1 || options.windowMs <= 0 || options.keysMax < 1)
      throw new Error("security report options must be positive");
    this.#options = options;
    this.#components = components;
  }

  /** Reports counted and not sent yet. */
  get pendingCount(): number {
    let count = 0;
    for (const entry of this.#pending.values()) count += entry.count;
    return count;
  }

  add(report: Report): void {
    const ownKey = this.#components.keyOf(report);
    const key =
      this.#pending.has(ownKey) || this.#pending.size < this.#options.keysMax
        ? ownKey
        : overflowKey;
    const entry = this.#pending.get(key);
    if (entry === undefined) this.#pending.set(key, { count: 1, latest: report });
    else {
      entry.count += 1;
      entry.latest = report;
    }
    this.#flush();
  }

  /** Stops the flush timer; what is pending stays counted, unsent. */
  close(): void {
    this.#cancelFlush?.();
    this.#cancelFlush = undefined;
  }

  /** Sends what the window has room for, oldest key first; the rest waits for the next window. */
  #flush(): void {
    const nowMs = this.#components.clock.nowMs();
    if (nowMs - this.#windowStartedAtMs >= this.#options.windowMs) {
      this.#windowStartedAtMs = nowMs;
      this.#sentInWindow = 0;
    }
    for (const [key, entry] of this.#pending) {
      if (this.#sentInWindow >= this.#options.reportsPerWindowMax) break;
      if (!this.#components.send(entry.latest, entry.count)) break;
      this.#sentInWindow += 1;
      this.#pending.delete(key);
    }
    if (this.#pending.size === 0 || this.#cancelFlush !== undefined) return;
    const waitMs = Math.max(1, this.#windowStartedAtMs + this.#options.windowMs - nowMs);
    this.#cancelFlush = this.#components.clock.schedule(waitMs, () => {
      this.#cancelFlush = undefined;
      this.#flush();
    });
  }
}
