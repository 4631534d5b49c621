// The server's open channels to agents, as far as services are concerned: push a message to a
// node, or send it a command and wait for its result. A command for an agent that is not
// connected waits for it (a restarted server resumes failovers before the agents are back); a
// command sent to an agent that then disconnects fails at once rather than waiting out its
// timeout, since the agent may never have seen it.

import type {
  AgentCommand,
  CommandResult,
  ServerServiceMessage,
} from "../../api/service-messages.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";

/** Commands awaiting a result per agent; a stuck agent cannot grow the map without bound. */
export const pendingCommandsPerAgentMax = 1_024;

export class AgentUnreachableError extends Error {
  override readonly name = "AgentUnreachableError";
}

type Sender = (message: ServerServiceMessage) => void;

interface PendingCommand {
  readonly nodeId: string;
  readonly command: AgentCommand;
  /** Sent on the node's current channel; unsent ones go out when it connects. */
  sent: boolean;
  readonly resolve: (result: CommandResult) => void;
  readonly cancelTimeout: CancelTimer;
}

export class AgentLinks {
  readonly #clock: Clock;
  readonly #senders = new Map<string, Sender>();
  readonly #pending = new Map<number, PendingCommand>();
  readonly #pendingByNode = new Map<string, number>();
  #nextCommandId = 1;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** A channel opened; commands waiting for the node go out with `flushWaiting`. */
  attach(nodeId: string, sender: Sender): void {
    this.#senders.set(nodeId, sender);
  }

  /**
   * Sends the commands that waited for this node to connect. Called after the node has been
   * told its service definitions, so it knows every service a command names.
   */
  flushWaiting(nodeId: string): void {
    const sender = this.#senders.get(nodeId);
    if (sender === undefined) return;
    for (const [id, pending] of this.#pending) {
      if (pending.nodeId !== nodeId || pending.sent) continue;
      pending.sent = true;
      sender({ type: "command", id, command: pending.command });
    }
  }

  /** The channel closed: its commands fail now. A sender replaced by a newer one is ignored. */
  detach(nodeId: string, sender: Sender): void {
    if (this.#senders.get(nodeId) !== sender) return;
    this.#senders.delete(nodeId);
    for (const [id, pending] of this.#pending) {
      if (pending.nodeId !== nodeId || !pending.sent) continue;
      this.#settle(id, { id, ok: false, message: `agent ${nodeId} disconnected` });
    }
  }

  connected(nodeId: string): boolean {
    return this.#senders.has(nodeId);
  }

  nodes(): IterableIterator<string> {
    return this.#senders.keys();
  }

  /** Sends if the node is connected; says whether it was. */
  send(nodeId: string, message: ServerServiceMessage): boolean {
    const sender = this.#senders.get(nodeId);
    if (sender === undefined) return false;
    sender(message);
    return true;
  }

  /**
   * Resolves with the agent's result, or a failed one if it cannot answer within `timeoutMs`
   * (waiting for the agent to connect counts against it).
   */
  command(nodeId: string, command: AgentCommand, timeoutMs: number): Promise<CommandResult> {
    const sender = this.#senders.get(nodeId);
    const id = this.#nextCommandId++;
    const pendingCount = this.#pendingByNode.get(nodeId) ?? 0;
    if (pendingCount >= pendingCommandsPerAgentMax) {
      return Promise.resolve({
        id,
        ok: false,
        message: `agent ${nodeId} has ${pendingCount} unanswered commands`,
      });
    }
    return new Promise((resolve) => {
      const cancelTimeout = this.#clock.schedule(timeoutMs, () =>
        this.#settle(id, {
          id,
          ok: false,
          message:
            sender === undefined && this.#pending.get(id)?.sent !== true
              ? `agent ${nodeId} did not connect within ${timeoutMs} ms`
              : `no answer from ${nodeId} in ${timeoutMs} ms`,
        }),
      );
      this.#pending.set(id, {
        nodeId,
        command,
        sent: sender !== undefined,
        resolve,
        cancelTimeout,
      });
      this.#pendingByNode.set(nodeId, pendingCount + 1);
      sender?.({ type: "command", id, command });
    });
  }

  /** An agent answered; answers to unknown ids (late, or for another node) are dropped. */
  result(nodeId: string, result: CommandResult): void {
    if (this.#pending.get(result.id)?.nodeId !== nodeId) return;
    this.#settle(result.id, result);
  }

  #settle(id: number, result: CommandResult): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    const count = (this.#pendingByNode.get(pending.nodeId) ?? 1) - 1;
    if (count === 0) this.#pendingByNode.delete(pending.nodeId);
    else this.#pendingByNode.set(pending.nodeId, count);
    pending.cancelTimeout();
    pending.resolve(result);
  }
}
