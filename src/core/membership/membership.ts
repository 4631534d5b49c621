// Membership and failure detection for a whole fleet: a pure state machine fed with
// heartbeats, connection losses, probe answers and time, emitting status transitions and
// probe requests. The server and the simulator run this same code.

import { ArrivalWindows } from "./arrival-window.ts";
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

/**
 * A registered node's slot number, returned by `register` and `handleOf`: feeding heartbeats
 * by handle skips looking the node up by name. Valid until the node is removed.
 */
export type MemberHandle = number;

/** Statuses as small integers, in the per-slot status array. */
const StatusCode = { healthy: 0, degraded: 1, failed: 2, offline: 3 } as const;
const statusOfCode: readonly NodeStatus[] = [
  NodeStatus.healthy,
  NodeStatus.degraded,
  NodeStatus.failed,
  NodeStatus.offline,
];
const codeOfStatus: Readonly<Record<NodeStatus, number>> = {
  [NodeStatus.healthy]: StatusCode.healthy,
  [NodeStatus.degraded]: StatusCode.degraded,
  [NodeStatus.failed]: StatusCode.failed,
  [NodeStatus.offline]: StatusCode.offline,
};

/** The failed probe that supports conviction, cleared when the node shows life. */
const ProbeFailure = { none: 0, refused: 1, timedOut: 2 } as const;

/** Slots allocated up front; the arrays double as the fleet grows, up to `membershipNodesMax`. */
const initialSlotCapacity = 64;

export class Membership {
  readonly #options: DetectorOptions;
  readonly #quantiles: PhiQuantiles;
  readonly #emit: EffectSink;
  readonly #graceUntilMs: number;
  /** Node id to slot; its key order is registration order, as `nodeIds` promises. */
  readonly #slots = new Map<string, number>();
  /**
   * Occupied slots in registration order, for `tick`: a server ticks its whole fleet several
   * times a second, and walking typed arrays costs a fraction of walking objects.
   */
  #order = new Int32Array(initialSlotCapacity);
  #orderLength = 0;
  readonly #freeSlots: number[] = [];
  #slotCapacity = initialSlotCapacity;
  #slotsUsed = 0;

  // Per-slot state (struct of arrays); an unset time is NaN.
  readonly #nodeIdOfSlot: (string | undefined)[] = [];
  #status = new Uint8Array(initialSlotCapacity);
  #statusSinceMs = new Float64Array(initialSlotCapacity);
  #lastHeartbeatAtMs = new Float64Array(initialSlotCapacity);
  /** Heartbeat age at which the node is suspected; recomputed on each heartbeat. */
  #suspectAfterMs = new Float64Array(initialSlotCapacity);
  /** Heartbeat age after which a suspect whose probe failed is convicted. */
  #convictAfterMs = new Float64Array(initialSlotCapacity);
  /** 0 for nodes the server cannot reach (no probe address): conviction on silence alone. */
  #probeable = new Uint8Array(initialSlotCapacity);
  /** 1: the heartbeat connection closed without a goodbye and no heartbeat came since. */
  #connectionDropped = new Uint8Array(initialSlotCapacity);
  #probeStartedAtMs = new Float64Array(initialSlotCapacity);
  #lastProbeAliveAtMs = new Float64Array(initialSlotCapacity);
  #probeFailure = new Uint8Array(initialSlotCapacity);
  /** On-time heartbeats in a row while FAILED, towards re-admission. */
  #onTimeHeartbeats = new Int32Array(initialSlotCapacity);
  /** Until when probe timeouts do not convict: the server cut the channel for its rate. */
  #rateLimitedUntilMs = new Float64Array(initialSlotCapacity);
  readonly #windows: ArrivalWindows;

  constructor(options: DetectorOptions, startedAtMs: number, emit: EffectSink) {
    this.#options = options;
    this.#quantiles = phiQuantiles(options);
    this.#emit = emit;
    this.#graceUntilMs = startedAtMs + options.startupGraceMs;
    this.#windows = new ArrivalWindows(options.windowSize, initialSlotCapacity);
  }

  get options(): DetectorOptions {
    return this.#options;
  }

  has(nodeId: string): boolean {
    return this.#slots.has(nodeId);
  }

  get size(): number {
    return this.#slots.size;
  }

  nodeIds(): IterableIterator<string> {
    return this.#slots.keys();
  }

  /** The handle of a registered node, for `heartbeatAt`. */
  handleOf(nodeId: string): MemberHandle | undefined {
    return this.#slots.get(nodeId);
  }

  /** A node announces itself (first start or restart). Returns its handle. */
  register(nodeId: string, atMs: number, registration: RegistrationOptions): MemberHandle {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined) {
      const created = this.#create(nodeId, NodeStatus.healthy, atMs, registration.probeable);
      this.#emit({
        type: "transition",
        nodeId,
        from: undefined,
        to: NodeStatus.healthy,
        atMs,
        reason: TransitionReason.registered,
      });
      return created;
    }
    this.#probeable[slot] = registration.probeable ? 1 : 0;
    this.heartbeatAt(slot, atMs);
    return slot;
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
    const slot = this.#create(nodeId, status, atMs, probeable);
    this.#statusSinceMs[slot] = statusSinceMs;
  }

  remove(nodeId: string): boolean {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined) return false;
    // Rare (a node gone for good), so an O(n) shift that keeps the order is fine.
    const position = this.#order.subarray(0, this.#orderLength).indexOf(slot);
    this.#order.copyWithin(position, position + 1, this.#orderLength);
    this.#orderLength -= 1;
    this.#nodeIdOfSlot[slot] = undefined;
    this.#freeSlots.push(slot);
    return this.#slots.delete(nodeId);
  }

  heartbeat(nodeId: string, atMs: number): void {
    this.heartbeatAt(this.#require(nodeId), atMs);
  }

  /** `heartbeat` by handle (from `register` or `handleOf`): the simulator's hot path. */
  heartbeatAt(handle: MemberHandle, atMs: number): void {
    const nodeId = this.#nodeIdOfSlot[handle];
    if (nodeId === undefined) throw new RangeError(`member handle ${handle} is not registered`);
    const gapMs = atMs - (this.#lastHeartbeatAtMs[handle] ?? 0);
    const wasOnTime = gapMs < (this.#suspectAfterMs[handle] ?? 0);
    this.#lastHeartbeatAtMs[handle] = atMs;
    this.#connectionDropped[handle] = 0;
    this.#rateLimitedUntilMs[handle] = Number.NaN;
    const code: number = this.#status[handle] ?? -1;
    switch (code) {
      case StatusCode.healthy:
        this.#windows.add(handle, gapMs);
        break;
      case StatusCode.degraded:
        this.#windows.add(handle, gapMs);
        this.#clearSuspicion(handle);
        this.#transition(
          nodeId,
          handle,
          NodeStatus.healthy,
          atMs,
          TransitionReason.heartbeatResumed,
        );
        break;
      case StatusCode.failed: {
        const onTime = wasOnTime ? (this.#onTimeHeartbeats[handle] ?? 0) + 1 : 1;
        this.#onTimeHeartbeats[handle] = onTime;
        if (onTime >= this.#options.readmitHeartbeats) {
          this.#resetHistory(handle);
          this.#transition(nodeId, handle, NodeStatus.healthy, atMs, TransitionReason.readmitted);
        }
        break;
      }
      case StatusCode.offline:
        this.#resetHistory(handle);
        this.#transition(nodeId, handle, NodeStatus.healthy, atMs, TransitionReason.rejoined);
        break;
      default:
        throw new Error(`member ${nodeId} has no valid status code`);
    }
    this.#updateThresholds(handle);
  }

  /** The node said goodbye: a planned shutdown, not a failure. */
  goodbye(nodeId: string, atMs: number): void {
    const slot = this.#require(nodeId);
    this.#connectionDropped[slot] = 0;
    this.#rateLimitedUntilMs[slot] = Number.NaN;
    this.#clearSuspicion(slot);
    if (this.#status[slot] !== StatusCode.offline) {
      this.#transition(nodeId, slot, NodeStatus.offline, atMs, TransitionReason.gracefulShutdown);
    }
  }

  /** The node's heartbeat connection closed without a goodbye: suspect it and probe now. */
  connectionLost(nodeId: string, atMs: number): void {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined) return;
    this.#connectionDropped[slot] = 1;
    this.#rateLimitedUntilMs[slot] = Number.NaN;
    this.#evaluate(nodeId, slot, atMs);
  }

  /**
   * The server closed the node's channel because it sent too much. That is not a lost
   * connection: the node was sending a moment ago, so it counts as a probe that answered now,
   * and for `rateLimitedGraceMs` probe timeouts do not convict it (a flood that slows its
   * listener must not get it failed over); it may become DEGRADED, never FAILED, unless a
   * probe is refused. Its next heartbeat ends the grace.
   */
  channelRateLimited(nodeId: string, atMs: number): void {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined) return;
    this.#connectionDropped[slot] = 0;
    this.#rateLimitedUntilMs[slot] = atMs + this.#options.rateLimitedGraceMs;
    this.#lastProbeAliveAtMs[slot] = atMs;
    if (this.#probeFailure[slot] === ProbeFailure.timedOut)
      this.#probeFailure[slot] = ProbeFailure.none;
  }

  /** An answer to a probe this machine asked for. A probe never answered times out by itself. */
  probeAnswered(nodeId: string, answer: ProbeAnswer, atMs: number): void {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined || Number.isNaN(this.#probeStartedAtMs[slot] ?? Number.NaN)) return;
    this.#probeStartedAtMs[slot] = Number.NaN;
    if (answer === "alive") {
      this.#lastProbeAliveAtMs[slot] = atMs;
      this.#probeFailure[slot] = ProbeFailure.none;
    } else {
      this.#probeFailure[slot] = ProbeFailure.refused;
    }
    this.#evaluate(nodeId, slot, atMs);
  }

  /** Advances time: suspects, convicts and re-probes whatever is due. */
  tick(atMs: number): void {
    const order = this.#order;
    const status = this.#status;
    const lastHeartbeatAtMs = this.#lastHeartbeatAtMs;
    const suspectAfterMs = this.#suspectAfterMs;
    const connectionDropped = this.#connectionDropped;
    const inGrace = atMs < this.#graceUntilMs;
    for (let position = 0; position < this.#orderLength; position += 1) {
      const slot = order[position] ?? 0;
      const code = status[slot];
      // The common case, settled without a call: a healthy node whose heartbeat is not overdue.
      if (
        code === StatusCode.healthy &&
        connectionDropped[slot] === 0 &&
        (inGrace || atMs - (lastHeartbeatAtMs[slot] ?? 0) < (suspectAfterMs[slot] ?? 0))
      ) {
        continue;
      }
      if (code !== StatusCode.healthy && code !== StatusCode.degraded) continue;
      this.#evaluate(this.#nodeIdOfSlot[slot] ?? "", slot, atMs);
    }
  }

  view(nodeId: string, atMs: number): NodeHealthView | undefined {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined) return undefined;
    const lastHeartbeatAtMs = this.#lastHeartbeatAtMs[slot] ?? 0;
    const heartbeatAgeMs = Math.max(0, atMs - lastHeartbeatAtMs);
    return {
      status: this.#statusOf(slot),
      statusSinceMs: this.#statusSinceMs[slot] ?? 0,
      lastHeartbeatAtMs,
      heartbeatAgeMs,
      phi: this.#options.kind === "accrual" ? this.#phi(slot, heartbeatAgeMs) : undefined,
    };
  }

  #statusOf(slot: number): NodeStatus {
    return statusOfCode[this.#status[slot] ?? StatusCode.healthy] ?? NodeStatus.healthy;
  }

  /** Creates the node, or resets it in its slot if it exists (a restored node keeps its place). */
  #create(nodeId: string, status: NodeStatus, atMs: number, probeable: boolean): number {
    let slot = this.#slots.get(nodeId);
    if (slot === undefined) {
      if (this.#slots.size >= membershipNodesMax) {
        throw new MembershipCapacityError(
          `membership is full (${membershipNodesMax} nodes); remove nodes that are gone for good`,
        );
      }
      slot = this.#allocateSlot();
      this.#order[this.#orderLength] = slot;
      this.#orderLength += 1;
      this.#slots.set(nodeId, slot);
      this.#nodeIdOfSlot[slot] = nodeId;
    }
    this.#status[slot] = codeOfStatus[status];
    this.#statusSinceMs[slot] = atMs;
    this.#lastHeartbeatAtMs[slot] = atMs;
    this.#suspectAfterMs[slot] = 0;
    this.#convictAfterMs[slot] = 0;
    this.#probeable[slot] = probeable ? 1 : 0;
    this.#connectionDropped[slot] = 0;
    this.#probeStartedAtMs[slot] = Number.NaN;
    this.#lastProbeAliveAtMs[slot] = Number.NaN;
    this.#probeFailure[slot] = ProbeFailure.none;
    this.#onTimeHeartbeats[slot] = 0;
    this.#rateLimitedUntilMs[slot] = Number.NaN;
    this.#resetHistory(slot);
    this.#updateThresholds(slot);
    return slot;
  }

  #allocateSlot(): number {
    const reused = this.#freeSlots.pop();
    if (reused !== undefined) return reused;
    if (this.#slotsUsed === this.#slotCapacity) this.#growSlots();
    const slot = this.#slotsUsed;
    this.#slotsUsed += 1;
    return slot;
  }

  #growSlots(): void {
    const capacity = Math.min(membershipNodesMax, this.#slotCapacity * 2);
    this.#order = grown(this.#order, new Int32Array(capacity));
    this.#status = grown(this.#status, new Uint8Array(capacity));
    this.#statusSinceMs = grown(this.#statusSinceMs, new Float64Array(capacity));
    this.#lastHeartbeatAtMs = grown(this.#lastHeartbeatAtMs, new Float64Array(capacity));
    this.#suspectAfterMs = grown(this.#suspectAfterMs, new Float64Array(capacity));
    this.#convictAfterMs = grown(this.#convictAfterMs, new Float64Array(capacity));
    this.#probeable = grown(this.#probeable, new Uint8Array(capacity));
    this.#connectionDropped = grown(this.#connectionDropped, new Uint8Array(capacity));
    this.#probeStartedAtMs = grown(this.#probeStartedAtMs, new Float64Array(capacity));
    this.#lastProbeAliveAtMs = grown(this.#lastProbeAliveAtMs, new Float64Array(capacity));
    this.#probeFailure = grown(this.#probeFailure, new Uint8Array(capacity));
    this.#onTimeHeartbeats = grown(this.#onTimeHeartbeats, new Int32Array(capacity));
    this.#rateLimitedUntilMs = grown(this.#rateLimitedUntilMs, new Float64Array(capacity));
    this.#windows.grow(capacity);
    this.#slotCapacity = capacity;
  }

  #require(nodeId: string): number {
    const slot = this.#slots.get(nodeId);
    if (slot === undefined) throw new UnknownNodeError(nodeId);
    return slot;
  }

  #evaluate(nodeId: string, slot: number, atMs: number): void {
    const code = this.#status[slot];
    if (code !== StatusCode.healthy && code !== StatusCode.degraded) return;
    const ageMs = atMs - (this.#lastHeartbeatAtMs[slot] ?? 0);
    const inGrace = atMs < this.#graceUntilMs;
    const overdue = !inGrace && ageMs >= (this.#suspectAfterMs[slot] ?? 0);
    const connectionDropped = this.#connectionDropped[slot] === 1;

    if (code === StatusCode.healthy) {
      if (!overdue && !connectionDropped) return;
      const reason = connectionDropped
        ? TransitionReason.connectionLost
        : TransitionReason.heartbeatOverdue;
      this.#transition(nodeId, slot, NodeStatus.degraded, atMs, reason);
      this.#startProbe(nodeId, slot, atMs);
      if (this.#probeable[slot] === 0) this.#convictIfDue(nodeId, slot, atMs, ageMs, inGrace);
      return;
    }

    const probeStartedAtMs = this.#probeStartedAtMs[slot] ?? Number.NaN;
    if (
      !Number.isNaN(probeStartedAtMs) &&
      atMs - probeStartedAtMs >= this.#options.probeTimeoutMs
    ) {
      this.#probeStartedAtMs[slot] = Number.NaN;
      this.#probeFailure[slot] = ProbeFailure.timedOut;
    }
    if (this.#convictIfDue(nodeId, slot, atMs, ageMs, inGrace)) return;
    const lastProbeAliveAtMs = this.#lastProbeAliveAtMs[slot] ?? Number.NaN;
    const aliveRecently =
      !Number.isNaN(lastProbeAliveAtMs) &&
      atMs - lastProbeAliveAtMs < this.#options.reprobeIntervalMs;
    if (
      Number.isNaN(this.#probeStartedAtMs[slot] ?? Number.NaN) &&
      this.#probeFailure[slot] === ProbeFailure.none &&
      !aliveRecently
    ) {
      this.#startProbe(nodeId, slot, atMs);
    }
  }

  /** Convicts a suspect when the evidence suffices; true if it did. */
  #convictIfDue(
    nodeId: string,
    slot: number,
    atMs: number,
    ageMs: number,
    inGrace: boolean,
  ): boolean {
    const probeFailure = this.#probeFailure[slot];
    // A refused connection means nothing listens where the agent listened: its process is gone.
    if (probeFailure === ProbeFailure.refused) {
      this.#transition(nodeId, slot, NodeStatus.failed, atMs, TransitionReason.probeRefused);
      return true;
    }
    if (inGrace || ageMs < (this.#convictAfterMs[slot] ?? 0)) return false;
    if (atMs < (this.#rateLimitedUntilMs[slot] ?? Number.NaN)) {
      // Probed again at once: an answer ends the doubt, a refusal still convicts.
      if (probeFailure === ProbeFailure.timedOut) this.#probeFailure[slot] = ProbeFailure.none;
      return false;
    }
    const probeable = this.#probeable[slot] === 1;
    if (probeable && probeFailure !== ProbeFailure.timedOut) return false;
    this.#transition(
      nodeId,
      slot,
      NodeStatus.failed,
      atMs,
      probeable ? TransitionReason.probeTimedOut : TransitionReason.heartbeatOverdue,
    );
    return true;
  }

  #startProbe(nodeId: string, slot: number, atMs: number): void {
    if (this.#probeable[slot] === 0 || !Number.isNaN(this.#probeStartedAtMs[slot] ?? Number.NaN))
      return;
    this.#probeStartedAtMs[slot] = atMs;
    this.#emit({ type: "probe", nodeId, atMs, attempts: this.#options.probeAttempts });
  }

  #clearSuspicion(slot: number): void {
    this.#probeStartedAtMs[slot] = Number.NaN;
    this.#lastProbeAliveAtMs[slot] = Number.NaN;
    this.#probeFailure[slot] = ProbeFailure.none;
  }

  #transition(
    nodeId: string,
    slot: number,
    to: NodeStatus,
    atMs: number,
    reason: TransitionReason,
  ): void {
    const from = this.#statusOf(slot);
    this.#status[slot] = codeOfStatus[to];
    this.#statusSinceMs[slot] = atMs;
    if (to === NodeStatus.failed) {
      this.#onTimeHeartbeats[slot] = 0;
      this.#clearSuspicion(slot);
    }
    this.#emit({ type: "transition", nodeId, from, to, atMs, reason });
  }

  /** Forgets the inter-arrival history and seeds it with the expected interval. */
  #resetHistory(slot: number): void {
    const windows = this.#windows;
    windows.clear(slot);
    // Two seed samples a quarter-interval apart, as Akka does, so the first heartbeats
    // are judged against the configured interval instead of nothing.
    const intervalMs = this.#options.heartbeatIntervalMs;
    windows.add(slot, intervalMs - intervalMs / 4);
    windows.add(slot, intervalMs + intervalMs / 4);
    this.#onTimeHeartbeats[slot] = 0;
  }

  #updateThresholds(slot: number): void {
    const options = this.#options;
    if (options.kind === "strikes") {
      this.#suspectAfterMs[slot] =
        options.heartbeatIntervalMs * options.suspectMisses + options.acceptablePauseMs;
      this.#convictAfterMs[slot] =
        options.heartbeatIntervalMs * options.convictMisses + options.acceptablePauseMs;
      return;
    }
    const expectedMs = this.#windows.meanMs(slot) + options.acceptablePauseMs;
    const stdDevMs = Math.max(options.minStdDevMs, this.#windows.stdDevMs(slot));
    this.#suspectAfterMs[slot] = expectedMs + this.#quantiles.suspect * stdDevMs;
    this.#convictAfterMs[slot] = expectedMs + this.#quantiles.convict * stdDevMs;
  }

  #phi(slot: number, heartbeatAgeMs: number): number {
    const expectedMs = this.#windows.meanMs(slot) + this.#options.acceptablePauseMs;
    const stdDevMs = Math.max(this.#options.minStdDevMs, this.#windows.stdDevMs(slot));
    const probabilityLater = upperTailProbability((heartbeatAgeMs - expectedMs) / stdDevMs);
    return probabilityLater <= 0
      ? Number.POSITIVE_INFINITY
      : Math.max(0, -Math.log10(probabilityLater));
  }
}

function grown<T extends Float64Array | Int32Array | Uint8Array>(old: T, larger: T): T {
  larger.set(old);
  return larger;
}
