// The message budgets of one agent channel (ADR 0010): liveness messages (heartbeats and the
// goodbye) have a budget of their own that no other traffic can use up, so a node that floods
// its channel with reports still proves it is alive. Messages over their budget are dropped;
// only an agent past a ceiling far above both budgets loses its channel.

import { TokenBucket } from "./rate-limit.ts";

export interface AgentChannelBudgetOptions {
  /**
   * Heartbeats and goodbyes per second (and at once). A heartbeat is at most 10 Hz; those over
   * the budget are dropped, since the ones admitted already show the node alive.
   */
  livenessPerSecondMax: number;
  /**
   * Every other message per second (and at once): reports, instances, results. Over it they
   * are dropped and the agent is told; agents pace themselves below it.
   */
  otherPerSecondMax: number;
  /**
   * All messages per second, counted before they are parsed. Past it the channel is closed
   * (4429): an agent that far over its budgets is broken or hostile, and parsing what it
   * sends would cost the server more than dropping it.
   */
  messagesPerSecondCeiling: number;
}

export const agentChannelBudgetDefaults: AgentChannelBudgetOptions = {
  livenessPerSecondMax: 20,
  otherPerSecondMax: 50,
  messagesPerSecondCeiling: 200,
};

/**
 * How fast an agent sends messages other than heartbeats: below the server's budget with a
 * margin, so that a burst delayed on the way (up to a quarter of a second at this margin)
 * still arrives within it.
 */
export const agentPacedMessagesPerSecond = (agentChannelBudgetDefaults.otherPerSecondMax * 4) / 5;

export type ChannelMessageKind = "liveness" | "other";

export class AgentChannelBudget {
  readonly options: AgentChannelBudgetOptions;
  readonly #ceiling: TokenBucket;
  readonly #liveness: TokenBucket;
  readonly #other: TokenBucket;

  constructor(options: AgentChannelBudgetOptions, nowMs: number) {
    this.options = options;
    this.#ceiling = bucket(options.messagesPerSecondCeiling, nowMs);
    this.#liveness = bucket(options.livenessPerSecondMax, nowMs);
    this.#other = bucket(options.otherPerSecondMax, nowMs);
  }

  /** A message arrived, before it is parsed; false: the agent is past the ceiling, close. */
  arrived(nowMs: number): boolean {
    return this.#ceiling.take(nowMs);
  }

  /** Whether a parsed message fits its kind's budget; false: drop it. */
  admit(kind: ChannelMessageKind, nowMs: number): boolean {
    switch (kind) {
      case "liveness":
        return this.#liveness.take(nowMs);
      case "other":
        return this.#other.take(nowMs);
    }
  }
}

function bucket(perSecond: number, nowMs: number): TokenBucket {
  return new TokenBucket(perSecond, perSecond, nowMs);
}
