// Membership and failure detection for a whole fleet: a pure state machine fed with
// heartbeats, connection losses, probe answers and time, emitting status transitions and
// probe requests. The server and the simulator run this same code.

import { ArrivalWindow } from "./arrival-window.ts";
import { phiQuantiles, type DetectorOptions, type PhiQuantiles } from "./detector-options.ts";
import { NodeStatus } from "./node-status.ts";
import { upperTailProbability } from "./normal-distribution.ts";

export const TransitionReason = {
  registered: "registered",
  heartbeatOverdue: "heartbeat-overdue",
  connectionLost: "connection-lost",
  probeRefused: "probe-refused",
  probeTimedOut: "probe-timed-out",
  heartbeatResumed: "heartbeat-resumed",
  readmitted: "readmitted",
  rejoined: "rejoined",
  gracefulShutdown: "graceful-shutdown",
} as const;
export type TransitionReason = (typeof TransitionReason)[keyof typeof TransitionReason];

export type MembershipEffect =
  | {
      readonly type: "transition";
      readonly nodeId: string;
      readonly from: NodeStatus | undefined;
      readonly to: NodeStatus;
      readonly atMs: number;
      readonly reason: TransitionReason;
    }
  /**
   * Ask the runtime to probe the node `attempts` times at once; answer with `probeAnswered`
   * (the first answer counts; silence from all of them is a timeout).
   */
  | {
      readonly type: "probe";
      readonly nodeId: string;
      readonly atMs: number;
      readonly attempts: number;
    };

export type EffectSink = (effect: MembershipEffect) => void;

/** What a probe found: the agent answered, or its host refused the connection (nothing listens). */
export type ProbeAnswer = "alive" | "refused";

export interface RegistrationOptions {
  /** False for nodes the server cannot reach (no probe address): conviction on silence alone. */
  readonly probeable: boolean;
}

/** A read-only picture of one node's health at a moment. */
export interface NodeHealthView {
  readonly status: NodeStatus;
  readonly statusSinceMs: number;
  readonly lastHeartbeatAtMs: number;
  readonly heartbeatAgeMs: number;
  /** Suspicion level; 0 while heartbeats are on time, undefined for the strikes rule. */
  readonly phi: number | undefined;
}

interface NodeHealth {
  readonly nodeId: string;
  status: NodeStatus;
  statusSinceMs: number;
  lastHeartbeatAtMs: number;
  readonly window: ArrivalWindow;
  /** Heartbeat age at which the node is suspected; recomputed on each heartbeat. */
  suspectAfterMs: number;
  /** Heartbeat age after which a suspect whose probe failed is convicted. */
  convictAfterMs: number;
  probeable: boolean;
  /** The heartbeat connection closed without a goodbye and no heartbeat came since. */
  connectionDropped: boolean;
  probeStartedAtMs: number | undefined;
  lastProbeAliveAtMs: number | undefined;
  /** The failed probe that supports conviction, cleared when the node shows life. */
  probeFailure: "refused" | "timed-out" | undefined;
  /** On-time heartbeats in a row while FAILED, towards re-admission. */
  onTimeHeartbeats: number;
}

/** Upper bound on tracked nodes, so a flood of registrations cannot exhaust memory. */
export const membershipNodesMax = 100_000;

export class MembershipCapacityError extends Error {
  override readonly name = "MembershipCapacityError";
}

export class UnknownNodeError extends Error {
  override readonly name = "UnknownNodeError";
  constructor(readonly nodeId: string) {
    super(`node ${JSON.stringify(nodeId)} is not registered; register it first`);
  }
}

export class Membership {
  readonly #options: DetectorOptions;
  readonly #quantiles: PhiQuantiles;
  readonly #emit: EffectSink;
  readonly #nodes = new Map<string, NodeHealth>();
  /**
   * The same nodes in registration order, for `tick`: walking an array costs a third of
   * walking a Map, and a server ticks its whole fleet several times a second.
   */
  readonly #ordered: NodeHealth[] = [];
  readonly #graceUntilMs: number;

  constructor(options: DetectorOptions, startedAtMs: number, emit: EffectSink) {
    this.#options = options;
    this.#quantiles = phiQuantiles(options);
    this.#emit = emit;
    this.#graceUntilMs = startedAtMs + options.startupGraceMs;
  }

  get options(): DetectorOptions {
    return this.#options;
  }

  has(nodeId: string): boolean {
    return this.#nodes.has(nodeId);
  }

  get size(): number {
    return this.#nodes.size;
  }

  nodeIds(): IterableIterator<string> {
    return this.#nodes.keys();
  }

  /** A node announces itself (first start or restart). */
  register(nodeId: string, atMs: number, registration: RegistrationOptions): void {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) {
      const created = this.#create(nodeId, NodeStatus.healthy, atMs, registration.probeable);
      this.#emit({
        type: "transition",
        nodeId,
        from: undefined,
        to: created.status,
        atMs,
        reason: TransitionReason.registered,
      });
      return;
    }
    node.probeable = registration.probeable;
    this.heartbeat(nodeId, atMs);
  }

  /**
   * Re-creates a node known from before a server restart. Its heartbeat clock starts now and
   * nobody is convicted for silence until the startup grace period has passed.
   */
  restore(
    nodeId: string,
    status: NodeStatus,
    statusSinceMs: number,
    atMs: number,
    probeable: boolean,
  ): void {
    const node = this.#create(nodeId, status, atMs, probeable);
    node.statusSinceMs = statusSinceMs;
  }

  remove(nodeId: string): boolean {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return false;
    // Rare (a node gone for good), so an O(n) splice that keeps the order is fine.
    this.#ordered.splice(this.#ordered.indexOf(node), 1);
    return this.#nodes.delete(nodeId);
  }

  heartbeat(nodeId: string, atMs: number): void {
    const node = this.#require(nodeId);
    const gapMs = atMs - node.lastHeartbeatAtMs;
    const wasOnTime = gapMs < node.suspectAfterMs;
    node.lastHeartbeatAtMs = atMs;
    node.connectionDropped = false;
    switch (node.status) {
      case NodeStatus.healthy:
        node.window.add(gapMs);
        break;
      case NodeStatus.degraded:
        node.window.add(gapMs);
        this.#clearSuspicion(node);
        this.#transition(nodeId, node, NodeStatus.healthy, atMs, TransitionReason.heartbeatResumed);
        break;
      case NodeStatus.failed:
        node.onTimeHeartbeats = wasOnTime ? node.onTimeHeartbeats + 1 : 1;
        if (node.onTimeHeartbeats >= this.#options.readmitHeartbeats) {
          this.#resetHistory(node);
          this.#transition(nodeId, node, NodeStatus.healthy, atMs, TransitionReason.readmitted);
        }
        break;
      case NodeStatus.offline:
        this.#resetHistory(node);
        this.#transition(nodeId, node, NodeStatus.healthy, atMs, TransitionReason.rejoined);
        break;
    }
    this.#updateThresholds(node);
  }

  /** The node said goodbye: a planned shutdown, not a failure. */
  goodbye(nodeId: string, atMs: number): void {
    const node = this.#require(nodeId);
    node.connectionDropped = false;
    this.#clearSuspicion(node);
    if (node.status !== NodeStatus.offline) {
      this.#transition(nodeId, node, NodeStatus.offline, atMs, TransitionReason.gracefulShutdown);
    }
  }

  /** The node's heartbeat connection closed without a goodbye: suspect it and probe now. */
  connectionLost(nodeId: string, atMs: number): void {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return;
    node.connectionDropped = true;
    this.#evaluate(nodeId, node, atMs);
  }

  /** An answer to a probe this machine asked for. A probe never answered times out by itself. */
  probeAnswered(nodeId: string, answer: ProbeAnswer, atMs: number): void {
    const node = this.#nodes.get(nodeId);
    if (node === undefined || node.probeStartedAtMs === undefined) return;
    node.probeStartedAtMs = undefined;
    if (answer === "alive") {
      node.lastProbeAliveAtMs = atMs;
      node.probeFailure = undefined;
    } else {
      node.probeFailure = "refused";
    }
    this.#evaluate(nodeId, node, atMs);
  }

  /** Advances time: suspects, convicts and re-probes whatever is due. */
  tick(atMs: number): void {
    for (const node of this.#ordered) this.#evaluate(node.nodeId, node, atMs);
  }

  view(nodeId: string, atMs: number): NodeHealthView | undefined {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) return undefined;
    const heartbeatAgeMs = Math.max(0, atMs - node.lastHeartbeatAtMs);
    return {
      status: node.status,
      statusSinceMs: node.statusSinceMs,
      lastHeartbeatAtMs: node.lastHeartbeatAtMs,
      heartbeatAgeMs,
      phi: this.#options.kind === "accrual" ? this.#phi(node, heartbeatAgeMs) : undefined,
    };
  }

  #create(nodeId: string, status: NodeStatus, atMs: number, probeable: boolean): NodeHealth {
    if (this.#nodes.size >= membershipNodesMax) {
      throw new MembershipCapacityError(
        `membership is full (${membershipNodesMax} nodes); remove nodes that are gone for good`,
      );
    }
    const node: NodeHealth = {
      nodeId,
      status,
      statusSinceMs: atMs,
      lastHeartbeatAtMs: atMs,
      window: new ArrivalWindow(this.#options.windowSize),
      suspectAfterMs: 0,
      convictAfterMs: 0,
      probeable,
      connectionDropped: false,
      probeStartedAtMs: undefined,
      lastProbeAliveAtMs: undefined,
      probeFailure: undefined,
      onTimeHeartbeats: 0,
    };
    this.#resetHistory(node);
    this.#updateThresholds(node);
    const replaced = this.#nodes.get(nodeId);
    // A restored node keeps its place, as Map.set keeps the key's.
    if (replaced === undefined) this.#ordered.push(node);
    else this.#ordered[this.#ordered.indexOf(replaced)] = node;
    this.#nodes.set(nodeId, node);
    return node;
  }

  #require(nodeId: string): NodeHealth {
    const node = this.#nodes.get(nodeId);
    if (node === undefined) throw new UnknownNodeError(nodeId);
    return node;
  }

  #evaluate(nodeId: string, node: NodeHealth, atMs: number): void {
    if (node.status !== NodeStatus.healthy && node.status !== NodeStatus.degraded) return;
    const ageMs = atMs - node.lastHeartbeatAtMs;
    const inGrace = atMs < this.#graceUntilMs;
    const overdue = !inGrace && ageMs >= node.suspectAfterMs;

    if (node.status === NodeStatus.healthy) {
      if (!overdue && !node.connectionDropped) return;
      const reason = node.connectionDropped
        ? TransitionReason.connectionLost
        : TransitionReason.heartbeatOverdue;
      this.#transition(nodeId, node, NodeStatus.degraded, atMs, reason);
      this.#startProbe(nodeId, node, atMs);
      if (!node.probeable) this.#convictIfDue(nodeId, node, atMs, ageMs, inGrace);
      return;
    }

    if (
      node.probeStartedAtMs !== undefined &&
      atMs - node.probeStartedAtMs >= this.#options.probeTimeoutMs
    ) {
      node.probeStartedAtMs = undefined;
      node.probeFailure = "timed-out";
    }
    if (this.#convictIfDue(nodeId, node, atMs, ageMs, inGrace)) return;
    const aliveRecently =
      node.lastProbeAliveAtMs !== undefined &&
      atMs - node.lastProbeAliveAtMs < this.#options.reprobeIntervalMs;
    if (node.probeStartedAtMs === undefined && node.probeFailure === undefined && !aliveRecently) {
      this.#startProbe(nodeId, node, atMs);
    }
  }

  /** Convicts a suspect when the evidence suffices; true if it did. */
  #convictIfDue(
    nodeId: string,
    node: NodeHealth,
    atMs: number,
    ageMs: number,
    inGrace: boolean,
  ): boolean {
    // A refused connection means nothing listens where the agent listened: its process is gone.
    if (node.probeFailure === "refused") {
      this.#transition(nodeId, node, NodeStatus.failed, atMs, TransitionReason.probeRefused);
      return true;
    }
    if (inGrace || ageMs < node.convictAfterMs) return false;
    if (node.probeable && node.probeFailure !== "timed-out") return false;
    this.#transition(
      nodeId,
      node,
      NodeStatus.failed,
      atMs,
      node.probeable ? TransitionReason.probeTimedOut : TransitionReason.heartbeatOverdue,
    );
    return true;
  }

  #startProbe(nodeId: string, node: NodeHealth, atMs: number): void {
    if (!node.probeable || node.probeStartedAtMs !== undefined) return;
    node.probeStartedAtMs = atMs;
    this.#emit({ type: "probe", nodeId, atMs, attempts: this.#options.probeAttempts });
  }

  #clearSuspicion(node: NodeHealth): void {
    node.probeStartedAtMs = undefined;
    node.lastProbeAliveAtMs = undefined;
    node.probeFailure = undefined;
  }

  #transition(
    nodeId: string,
    node: NodeHealth,
    to: NodeStatus,
    atMs: number,
    reason: TransitionReason,
  ): void {
    const from = node.status;
    node.status = to;
    node.statusSinceMs = atMs;
    if (to === NodeStatus.failed) {
      node.onTimeHeartbeats = 0;
      this.#clearSuspicion(node);
    }
    this.#emit({ type: "transition", nodeId, from, to, atMs, reason });
  }

  /** Forgets the inter-arrival history and seeds it with the expected interval. */
  #resetHistory(node: NodeHealth): void {
    node.window.clear();
    // Two seed samples a quarter-interval apart, as Akka does, so the first heartbeats
    // are judged against the configured interval instead of nothing.
    const intervalMs = this.#options.heartbeatIntervalMs;
    node.window.add(intervalMs - intervalMs / 4);
    node.window.add(intervalMs + intervalMs / 4);
    node.onTimeHeartbeats = 0;
  }

  #updateThresholds(node: NodeHealth): void {
    const options = this.#options;
    if (options.kind === "strikes") {
      node.suspectAfterMs =
        options.heartbeatIntervalMs * options.suspectMisses + options.acceptablePauseMs;
      node.convictAfterMs =
        options.heartbeatIntervalMs * options.convictMisses + options.acceptablePauseMs;
      return;
    }
    const expectedMs = node.window.meanMs() + options.acceptablePauseMs;
    const stdDevMs = Math.max(options.minStdDevMs, node.window.stdDevMs());
    node.suspectAfterMs = expectedMs + this.#quantiles.suspect * stdDevMs;
    node.convictAfterMs = expectedMs + this.#quantiles.convict * stdDevMs;
  }

  #phi(node: NodeHealth, heartbeatAgeMs: number): number {
    const expectedMs = node.window.meanMs() + this.#options.acceptablePauseMs;
    const stdDevMs = Math.max(this.#options.minStdDevMs, node.window.stdDevMs());
    const probabilityLater = upperTailProbability((heartbeatAgeMs - expectedMs) / stdDevMs);
    return probabilityLater <= 0
      ? Number.POSITIVE_INFINITY
      : Math.max(0, -Math.log10(probabilityLater));
  }
}
