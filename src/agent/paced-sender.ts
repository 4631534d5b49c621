// Paces what an agent sends on its channel besides heartbeats (reports, instances, results)
// below the server's budget for them (ADR 0010), and keeps the socket's unsent bytes small, so
// a heartbeat — which skips this queue — never waits behind a backlog. One per connection.

import {
  agentPacedMessagesPerSecond,
  agentChannelBudgetDefaults,
} from "../core/security/agent-channel-budget.ts";
import { TokenBucket } from "../core/security/rate-limit.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";

export interface PacedSenderOptions {
  /** Messages per second (and at once) at most; below the server's budget, with a margin. */
  messagesPerSecond: number;
  /** Messages waiting at most; past it `send` refuses (the channel is far behind). */
  queuedMessagesMax: number;
  /** Characters of waiting messages at most, likewise. */
  queuedCharactersMax: number;
  /** Paced messages wait while the socket holds more unsent bytes than this. */
  bufferedBytesMax: number;
  /** How often a socket over `bufferedBytesMax` is looked at again. */
  bufferedRecheckMs: number;
}

export const pacedSenderDefaults: PacedSenderOptions = {
  messagesPerSecond: agentPacedMessagesPerSecond,
  // A second of the server's budget for every message an agent may need to send in a burst
  // (an instance report per service, a result per command), twenty times over.
  queuedMessagesMax: agentChannelBudgetDefaults.otherPerSecondMax * 20,
  queuedCharactersMax: 4 * 1024 * 1024,
  bufferedBytesMax: 256 * 1024,
  bufferedRecheckMs: 10,
};

/** What the sender needs of a WebSocket. */
export interface PacedSocket {
  readonly bufferedAmount: number;
  send(text: string): void;
}

export class PacedSender {
  readonly #options: PacedSenderOptions;
  readonly #clock: Clock;
  readonly #socket: PacedSocket;
  readonly #bucket: TokenBucket;
  readonly #queue: string[] = [];
  #queuedCharacters = 0;
  #cancelDrain: CancelTimer | undefined;
  #closed = false;

  constructor(options: PacedSenderOptions, components: { clock: Clock; socket: PacedSocket }) {
    this.#options = options;
    this.#clock = components.clock;
    this.#socket = components.socket;
    this.#bucket = new TokenBucket(
      options.messagesPerSecond,
      options.messagesPerSecond,
      components.clock.nowMs(),
    );
  }

  /** Messages waiting to be sent. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Sends `text` now or once the pace allows; false when closed or the queue is full. */
  send(text: string): boolean {
    if (
      this.#closed ||
      this.#queue.length >= this.#options.queuedMessagesMax ||
      this.#queuedCharacters + text.length > this.#options.queuedCharactersMax
    )
      return false;
    this.#queue.push(text);
    this.#queuedCharacters += text.length;
    this.#drain();
    return true;
  }

  /** The connection closed: stops, and returns how many messages were never sent. */
  close(): number {
    this.#closed = true;
    this.#cancelDrain?.();
    this.#cancelDrain = undefined;
    this.#queuedCharacters = 0;
    return this.#queue.splice(0).length;
  }

  #drain(): void {
    if (this.#cancelDrain !== undefined) return;
    let waitMs = 0;
    while (this.#queue.length > 0) {
      if (this.#socket.bufferedAmount > this.#options.bufferedBytesMax) {
        waitMs = this.#options.bufferedRecheckMs;
        break;
      }
      const nowMs = this.#clock.nowMs();
      if (!this.#bucket.take(nowMs)) {
        waitMs = this.#bucket.waitMs(nowMs);
        break;
      }
      const text = this.#queue.shift() ?? "";
      this.#queuedCharacters -= text.length;
      this.#socket.send(text);
    }
    if (this.#queue.length === 0) return;
    this.#cancelDrain = this.#clock.schedule(Math.max(1, waitMs), () => {
      this.#cancelDrain = undefined;
      this.#drain();
    });
  }
}
