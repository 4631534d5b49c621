// The simulated network between every node and the server. Each node reaches the server over
// its access link (a profile: latency distribution, loss, duplication, reordering); faults cut
// a link in one or both directions (symmetric and asymmetric partitions, flapping), clog it
// (messages held, then released when the link is restored) or add a burst of loss.
//
// A message's latency is drawn from the node's access-link profile: the server sits in a data
// centre whose own link is negligible next to a street cabinet's cellular uplink.
//
// Peer links join two nodes directly (peer probing, replication). By default a peer message
// crosses two hops, the sender's access link up and the receiver's down, each with its own
// latency, loss and reordering draw; `setPeerLinkProfile` gives one directed link a profile of
// its own (a fibre pair between two sites, a radio hop) that replaces the two hops. Peer links
// are separate paths from the links to the server: cutting a node off from the server leaves
// its neighbours able to reach it (a backhaul down, the street mesh up) unless the peer links
// are cut too, one direction at a time (asymmetric partitions), and they clog and restore one
// by one as the server links do. A loss burst is the node's own radio and hits both.

import type { LinkProfileSpec } from "./scenario.ts";
import type { SeededRandom } from "./random.ts";
import type { VirtualClock } from "./virtual-clock.ts";

export const Direction = { toServer: 0, fromServer: 1 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** Messages a clogged link holds before it drops more, like a full socket buffer. */
export const heldMessagesPerLinkMax = 1_024;

const LatencyKind = { constant: 0, uniform: 1, lognormal: 2 } as const;

export interface NetworkCounters {
  sent: number;
  lostRandomly: number;
  droppedByCut: number;
  duplicated: number;
  reordered: number;
  held: number;
  droppedWhileClogged: number;
}

/** Peer links given a profile of their own, and peer links cut or clogged at once. */
export const peerLinksTrackedMax = 1_000_000;

export class PeerLinkLimitError extends Error {
  override readonly name = "PeerLinkLimitError";
}

export class SimulatedNetwork {
  readonly counters: NetworkCounters = {
    sent: 0,
    lostRandomly: 0,
    droppedByCut: 0,
    duplicated: 0,
    reordered: 0,
    held: 0,
    droppedWhileClogged: 0,
  };
  readonly #clock: VirtualClock;
  readonly #random: SeededRandom;
  readonly #deliverEventKind: number;
  readonly #profileOfNode: Int32Array;
  readonly #latencyKinds: Uint8Array;
  readonly #latencyFirst: Float64Array;
  readonly #latencySecond: Float64Array;
  readonly #lossProbability: Float64Array;
  readonly #duplicationProbability: Float64Array;
  readonly #reorderProbability: Float64Array;
  readonly #reorderDelayMs: Float64Array;
  /** Active cuts per node and direction (index node * 2 + direction); faults overlap. */
  readonly #cuts: Uint16Array;
  readonly #clogs: Uint16Array;
  readonly #burstLossProbability: Float64Array;
  readonly #bursts: Uint16Array;
  /** Messages held on clogged links, by node * 2 + direction. */
  readonly #held = new Map<number, number[]>();
  readonly #peerDeliverEventKind: number | undefined;
  /** Directed peer links (key from * nodes + to) with a profile of their own. */
  readonly #peerProfiles = new Map<number, number>();
  /** Active cuts and clogs per directed peer link; absent means none. */
  readonly #peerCuts = new Map<number, number>();
  readonly #peerClogs = new Map<number, number>();
  readonly #peerHeld = new Map<number, number[]>();

  /**
   * `deliverEventKind` is the clock event that delivers a message: first = node index,
   * second = message kind (the network does not interpret it). `peerDeliverEventKind`, if
   * given, delivers peer messages the same way (first = the receiving node); a receiver that
   * needs the sender encodes it in the message.
   */
  constructor(
    clock: VirtualClock,
    random: SeededRandom,
    deliverEventKind: number,
    profiles: readonly LinkProfileSpec[],
    profileOfNode: Int32Array,
    peerDeliverEventKind?: number,
  ) {
    this.#clock = clock;
    this.#random = random;
    this.#deliverEventKind = deliverEventKind;
    this.#peerDeliverEventKind = peerDeliverEventKind;
    this.#profileOfNode = profileOfNode;
    const count = profiles.length;
    this.#latencyKinds = new Uint8Array(count);
    this.#latencyFirst = new Float64Array(count);
    this.#latencySecond = new Float64Array(count);
    this.#lossProbability = new Float64Array(count);
    this.#duplicationProbability = new Float64Array(count);
    this.#reorderProbability = new Float64Array(count);
    this.#reorderDelayMs = new Float64Array(count);
    profiles.forEach((profile, index) => {
      const latency = profile.latency;
      switch (latency.distribution) {
        case "constant":
          this.#latencyKinds[index] = LatencyKind.constant;
          this.#latencyFirst[index] = latency.latencyMs;
          break;
        case "uniform":
          this.#latencyKinds[index] = LatencyKind.uniform;
          this.#latencyFirst[index] = Math.min(latency.latencyMsMin, latency.latencyMsMax);
          this.#latencySecond[index] = Math.abs(latency.latencyMsMax - latency.latencyMsMin);
          break;
        case "lognormal":
          this.#latencyKinds[index] = LatencyKind.lognormal;
          this.#latencyFirst[index] = Math.log(latency.latencyMsMedian);
          this.#latencySecond[index] = latency.sigma;
          break;
      }
      this.#lossProbability[index] = profile.lossProbability;
      this.#duplicationProbability[index] = profile.duplicationProbability;
      this.#reorderProbability[index] = profile.reorderProbability;
      this.#reorderDelayMs[index] = profile.reorderDelayMs;
    });
    const nodes = profileOfNode.length;
    this.#cuts = new Uint16Array(nodes * 2);
    this.#clogs = new Uint16Array(nodes * 2);
    this.#burstLossProbability = new Float64Array(nodes);
    this.#bursts = new Uint16Array(nodes);
  }

  /** Sends one message between `node` and the server; it may be delayed, lost or doubled. */
  send(node: number, direction: Direction, messageKind: number): void {
    this.counters.sent += 1;
    const link = node * 2 + direction;
    if ((this.#cuts[link] ?? 0) > 0) {
      this.counters.droppedByCut += 1;
      return;
    }
    const profile = this.#profileOfNode[node] ?? 0;
    const random = this.#random;
    const loss = (this.#lossProbability[profile] ?? 0) + (this.#burstLossProbability[node] ?? 0);
    if (random.chance(loss)) {
      this.counters.lostRandomly += 1;
      return;
    }
    if ((this.#clogs[link] ?? 0) > 0) {
      this.#hold(link, messageKind);
      return;
    }
    this.#transmit(node, profile, messageKind);
    if (random.chance(this.#duplicationProbability[profile] ?? 0)) {
      this.counters.duplicated += 1;
      this.#transmit(node, profile, messageKind);
    }
  }

  /**
   * Sends one message from node `from` to node `to` over their peer link; it may be delayed,
   * lost, doubled or reordered, and is held while the link is clogged.
   */
  sendToPeer(from: number, to: number, message: number): void {
    const deliverKind = this.#peerDeliverEventKind;
    if (deliverKind === undefined) {
      throw new Error("this network was built without a peer delivery event kind");
    }
    this.counters.sent += 1;
    const link = this.#peerLink(from, to);
    if ((this.#peerCuts.get(link) ?? 0) > 0) {
      this.counters.droppedByCut += 1;
      return;
    }
    const own = this.#peerProfiles.get(link);
    const fromProfile = own ?? this.#profileOfNode[from] ?? 0;
    const toProfile = own ?? this.#profileOfNode[to] ?? 0;
    const random = this.#random;
    // One hop over a link of its own, else two: the sender's access link, then the receiver's.
    const firstHopLoss =
      (this.#lossProbability[fromProfile] ?? 0) + (this.#burstLossProbability[from] ?? 0);
    const secondHopLoss =
      (own === undefined ? (this.#lossProbability[toProfile] ?? 0) : 0) +
      (this.#burstLossProbability[to] ?? 0);
    if (random.chance(firstHopLoss) || random.chance(secondHopLoss)) {
      this.counters.lostRandomly += 1;
      return;
    }
    if ((this.#peerClogs.get(link) ?? 0) > 0) {
      this.#holdPeer(link, message);
      return;
    }
    this.#transmitPeer(to, fromProfile, toProfile, own !== undefined, message);
    const duplication =
      (this.#duplicationProbability[fromProfile] ?? 0) +
      (own === undefined ? (this.#duplicationProbability[toProfile] ?? 0) : 0);
    if (random.chance(duplication)) {
      this.counters.duplicated += 1;
      this.#transmitPeer(to, fromProfile, toProfile, own !== undefined, message);
    }
  }

  /** Gives the directed peer link from `from` to `to` a profile of its own (an index into the profiles). */
  setPeerLinkProfile(from: number, to: number, profile: number): void {
    if (!Number.isInteger(profile) || profile < 0 || profile >= this.#latencyKinds.length) {
      throw new RangeError(`no link profile ${profile}`);
    }
    const link = this.#peerLink(from, to);
    if (!this.#peerProfiles.has(link)) this.#checkTracked(this.#peerProfiles);
    this.#peerProfiles.set(link, profile);
  }

  isPeerCut(from: number, to: number): boolean {
    return (this.#peerCuts.get(this.#peerLink(from, to)) ?? 0) > 0;
  }

  /** Cuts the peer link in one direction; cut both for a symmetric partition. */
  cutPeer(from: number, to: number): void {
    adjust(this.#peerCuts, this.#peerLink(from, to), 1);
  }

  restorePeerCut(from: number, to: number): void {
    adjust(this.#peerCuts, this.#peerLink(from, to), -1);
  }

  clogPeer(from: number, to: number): void {
    adjust(this.#peerClogs, this.#peerLink(from, to), 1);
  }

  /** Unclogs one peer link direction; once no clog remains, held messages go out in order. */
  restorePeerClog(from: number, to: number): void {
    const link = this.#peerLink(from, to);
    if (adjust(this.#peerClogs, link, -1) > 0) return;
    const held = this.#peerHeld.get(link);
    if (held === undefined) return;
    this.#peerHeld.delete(link);
    const own = this.#peerProfiles.get(link);
    const fromProfile = own ?? this.#profileOfNode[from] ?? 0;
    const toProfile = own ?? this.#profileOfNode[to] ?? 0;
    for (const message of held)
      this.#transmitPeer(to, fromProfile, toProfile, own !== undefined, message);
  }

  isCut(node: number, direction: Direction): boolean {
    return (this.#cuts[node * 2 + direction] ?? 0) > 0;
  }

  /** Whether any fault currently touches this node's link. */
  isDisturbed(node: number): boolean {
    const link = node * 2;
    return (
      (this.#cuts[link] ?? 0) + (this.#cuts[link + 1] ?? 0) > 0 ||
      (this.#clogs[link] ?? 0) + (this.#clogs[link + 1] ?? 0) > 0 ||
      (this.#bursts[node] ?? 0) > 0
    );
  }

  cut(node: number, direction: Direction): void {
    this.#cuts[node * 2 + direction] = (this.#cuts[node * 2 + direction] ?? 0) + 1;
  }

  restoreCut(node: number, direction: Direction): void {
    const link = node * 2 + direction;
    this.#cuts[link] = Math.max(0, (this.#cuts[link] ?? 0) - 1);
  }

  clog(node: number, direction: Direction): void {
    this.#clogs[node * 2 + direction] = (this.#clogs[node * 2 + direction] ?? 0) + 1;
  }

  /** Unclogs one direction; once no clog remains, held messages go out in their order. */
  restoreClog(node: number, direction: Direction): void {
    const link = node * 2 + direction;
    const remaining = Math.max(0, (this.#clogs[link] ?? 0) - 1);
    this.#clogs[link] = remaining;
    if (remaining > 0) return;
    const held = this.#held.get(link);
    if (held === undefined) return;
    this.#held.delete(link);
    const profile = this.#profileOfNode[node] ?? 0;
    for (const messageKind of held) this.#transmit(node, profile, messageKind);
  }

  startLossBurst(node: number, lossProbability: number): void {
    this.#bursts[node] = (this.#bursts[node] ?? 0) + 1;
    this.#burstLossProbability[node] = Math.max(
      this.#burstLossProbability[node] ?? 0,
      lossProbability,
    );
  }

  endLossBurst(node: number): void {
    const remaining = Math.max(0, (this.#bursts[node] ?? 0) - 1);
    this.#bursts[node] = remaining;
    if (remaining === 0) this.#burstLossProbability[node] = 0;
  }

  #hold(link: number, messageKind: number): void {
    let held = this.#held.get(link);
    if (held === undefined) {
      held = [];
      this.#held.set(link, held);
    }
    if (held.length >= heldMessagesPerLinkMax) {
      this.counters.droppedWhileClogged += 1;
      return;
    }
    this.counters.held += 1;
    held.push(messageKind);
  }

  #peerLink(from: number, to: number): number {
    const nodes = this.#profileOfNode.length;
    if (!(from >= 0 && from < nodes && to >= 0 && to < nodes && from !== to)) {
      throw new RangeError(`no peer link from node ${from} to node ${to} (${nodes} nodes)`);
    }
    return from * nodes + to;
  }

  #checkTracked(links: Map<number, unknown>): void {
    if (links.size >= peerLinksTrackedMax) {
      throw new PeerLinkLimitError(
        `more than ${peerLinksTrackedMax} peer links configured, cut or clogged at once`,
      );
    }
  }

  #holdPeer(link: number, message: number): void {
    let held = this.#peerHeld.get(link);
    if (held === undefined) {
      held = [];
      this.#peerHeld.set(link, held);
    }
    if (held.length >= heldMessagesPerLinkMax) {
      this.counters.droppedWhileClogged += 1;
      return;
    }
    this.counters.held += 1;
    held.push(message);
  }

  #transmitPeer(
    to: number,
    fromProfile: number,
    toProfile: number,
    ownLink: boolean,
    message: number,
  ): void {
    let delayMs = this.#hopDelayMs(fromProfile);
    if (!ownLink) delayMs += this.#hopDelayMs(toProfile);
    this.#clock.post(
      this.#clock.nowMs() + delayMs,
      this.#peerDeliverEventKind ?? this.#deliverEventKind,
      to,
      message,
    );
  }

  /** One hop's latency, with its chance of being held back behind later messages. */
  #hopDelayMs(profile: number): number {
    let delayMs = this.#latencyMs(profile);
    if (this.#random.chance(this.#reorderProbability[profile] ?? 0)) {
      this.counters.reordered += 1;
      delayMs += this.#reorderDelayMs[profile] ?? 0;
    }
    return delayMs;
  }

  #transmit(node: number, profile: number, messageKind: number): void {
    const delayMs = this.#hopDelayMs(profile);
    this.#clock.post(this.#clock.nowMs() + delayMs, this.#deliverEventKind, node, messageKind);
  }

  #latencyMs(profile: number): number {
    const first = this.#latencyFirst[profile] ?? 0;
    switch (this.#latencyKinds[profile] ?? LatencyKind.constant) {
      case LatencyKind.uniform:
        return first + (this.#latencySecond[profile] ?? 0) * this.#random.nextFloat();
      case LatencyKind.lognormal:
        return Math.exp(first + (this.#latencySecond[profile] ?? 0) * this.#random.normal());
      default:
        return first;
    }
  }
}

/** Adds `delta` to a link's count of overlapping faults, never below zero; returns the count. */
function adjust(counts: Map<number, number>, link: number, delta: number): number {
  const count = Math.max(0, (counts.get(link) ?? 0) + delta);
  if (count === 0) counts.delete(link);
  else {
    if (!counts.has(link) && counts.size >= peerLinksTrackedMax) {
      throw new PeerLinkLimitError(
        `more than ${peerLinksTrackedMax} peer links cut or clogged at once`,
      );
    }
    counts.set(link, count);
  }
  return count;
}
