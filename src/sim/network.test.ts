import { describe, expect, it } from "vitest";
import { Direction, SimulatedNetwork } from "./network.ts";
import { SeededRandom } from "./random.ts";
import type { LinkProfileSpec } from "./scenario.ts";
import { VirtualClock } from "./virtual-clock.ts";

const deliverKind = 1;

function harness(profile: Partial<LinkProfileSpec> = {}) {
  const clock = new VirtualClock();
  const network = new SimulatedNetwork(
    clock,
    new SeededRandom(5),
    deliverKind,
    [
      {
        latency: { distribution: "constant", latencyMs: 10 },
        lossProbability: 0,
        duplicationProbability: 0,
        reorderProbability: 0,
        reorderDelayMs: 0,
        ...profile,
      },
    ],
    new Int32Array(2),
  );
  const delivered: string[] = [];
  const run = (untilMs: number) =>
    clock.runUntil(untilMs, {
      handleEvent: (_kind, node, message) => delivered.push(`${clock.nowMs()}:${node}:${message}`),
    });
  return { clock, network, delivered, run };
}

describe("SimulatedNetwork", () => {
  it("delivers after the link's latency", () => {
    const h = harness();
    h.network.send(0, Direction.toServer, 7);
    h.run(100);
    expect(h.delivered).toEqual(["10:0:7"]);
  });

  it("drops messages in the cut direction only (asymmetric partition) until restored", () => {
    const h = harness();
    h.network.cut(0, Direction.toServer);
    h.network.send(0, Direction.toServer, 1);
    h.network.send(0, Direction.fromServer, 2);
    h.network.send(1, Direction.toServer, 3);
    h.network.restoreCut(0, Direction.toServer);
    h.network.send(0, Direction.toServer, 4);
    h.run(100);
    expect(h.delivered).toEqual(["10:0:2", "10:1:3", "10:0:4"]);
    expect(h.network.counters.droppedByCut).toBe(1);
  });

  it("keeps a link cut while any overlapping fault still cuts it", () => {
    const h = harness();
    h.network.cut(0, Direction.toServer);
    h.network.cut(0, Direction.toServer);
    h.network.restoreCut(0, Direction.toServer);
    expect(h.network.isCut(0, Direction.toServer)).toBe(true);
    h.network.restoreCut(0, Direction.toServer);
    expect(h.network.isCut(0, Direction.toServer)).toBe(false);
  });

  it("holds messages on a clogged link and releases them in order when restored", () => {
    const h = harness();
    h.network.clog(0, Direction.toServer);
    h.network.send(0, Direction.toServer, 1);
    h.network.send(0, Direction.toServer, 2);
    h.run(500);
    expect(h.delivered).toEqual([]);
    h.network.restoreClog(0, Direction.toServer);
    h.run(1_000);
    expect(h.delivered).toEqual(["510:0:1", "510:0:2"]);
  });

  it("loses, duplicates and reorders at the profile's rates", () => {
    const h = harness({
      latency: { distribution: "uniform", latencyMsMin: 5, latencyMsMax: 15 },
      lossProbability: 0.1,
      duplicationProbability: 0.05,
    });
    for (let index = 0; index < 10_000; index += 1) h.network.send(0, Direction.toServer, 1);
    h.run(1_000);
    expect(h.network.counters.lostRandomly / 10_000).toBeCloseTo(0.1, 1);
    expect(h.network.counters.duplicated / 9_000).toBeCloseTo(0.05, 1);
    expect(h.delivered.length).toBe(
      10_000 - h.network.counters.lostRandomly + h.network.counters.duplicated,
    );
  });

  it("adds a loss burst on top of the profile and ends it", () => {
    const h = harness();
    h.network.startLossBurst(0, 1);
    h.network.send(0, Direction.toServer, 1);
    h.network.endLossBurst(0);
    h.network.send(0, Direction.toServer, 2);
    h.run(100);
    expect(h.delivered).toEqual(["10:0:2"]);
  });
});

const peerDeliverKind = 2;

/** Three nodes on profiles 0 (10 ms), 1 (100 ms) and 2 (a 3 ms link kept for peer pairs). */
function peerHarness(profiles: Partial<LinkProfileSpec>[] = []) {
  const clock = new VirtualClock();
  const base: LinkProfileSpec = {
    latency: { distribution: "constant", latencyMs: 10 },
    lossProbability: 0,
    duplicationProbability: 0,
    reorderProbability: 0,
    reorderDelayMs: 0,
  };
  const network = new SimulatedNetwork(
    clock,
    new SeededRandom(9),
    deliverKind,
    [
      { ...base, ...profiles[0] },
      { ...base, latency: { distribution: "constant", latencyMs: 100 }, ...profiles[1] },
      { ...base, latency: { distribution: "constant", latencyMs: 3 }, ...profiles[2] },
    ],
    Int32Array.from([0, 1, 0]),
    peerDeliverKind,
  );
  const delivered: string[] = [];
  const run = (untilMs: number) =>
    clock.runUntil(untilMs, {
      handleEvent: (kind, node, message) =>
        delivered.push(
          `${kind === peerDeliverKind ? "peer" : "server"}@${clock.nowMs()}:${node}:${message}`,
        ),
    });
  return { clock, network, delivered, run };
}

describe("SimulatedNetwork peer links", () => {
  it("crosses the sender's and the receiver's access links unless the link has a profile of its own", () => {
    const h = peerHarness();
    h.network.sendToPeer(0, 1, 7);
    h.network.sendToPeer(1, 0, 8);
    h.network.sendToPeer(0, 2, 9);
    h.network.setPeerLinkProfile(0, 2, 2);
    h.network.sendToPeer(0, 2, 10);
    // Directed: the way back still crosses both access links.
    h.network.sendToPeer(2, 0, 11);
    h.run(1_000);
    expect(h.delivered).toEqual([
      "peer@3:2:10",
      "peer@20:2:9",
      "peer@20:0:11",
      "peer@110:1:7",
      "peer@110:0:8",
    ]);
  });

  it("cuts peer links one direction at a time and apart from the links to the server", () => {
    const h = peerHarness();
    h.network.cutPeer(0, 1);
    h.network.cut(2, Direction.toServer);
    h.network.sendToPeer(0, 1, 1);
    h.network.sendToPeer(1, 0, 2);
    // Node 2 cannot reach the server, but its neighbours still hear it.
    h.network.send(2, Direction.toServer, 3);
    h.network.sendToPeer(2, 0, 4);
    expect(h.network.isPeerCut(0, 1)).toBe(true);
    expect(h.network.isPeerCut(1, 0)).toBe(false);
    h.network.cutPeer(0, 1);
    h.network.restorePeerCut(0, 1);
    expect(h.network.isPeerCut(0, 1)).toBe(true);
    h.network.restorePeerCut(0, 1);
    h.network.sendToPeer(0, 1, 5);
    h.run(1_000);
    expect(h.delivered).toEqual(["peer@20:0:4", "peer@110:0:2", "peer@110:1:5"]);
    expect(h.network.counters.droppedByCut).toBe(2);
  });

  it("holds messages on a clogged peer link and releases them in order when restored", () => {
    const h = peerHarness();
    h.network.clogPeer(0, 2);
    h.network.clogPeer(0, 2);
    h.network.sendToPeer(0, 2, 1);
    h.network.sendToPeer(0, 2, 2);
    h.network.sendToPeer(2, 0, 3);
    h.run(500);
    h.network.restorePeerClog(0, 2);
    h.run(1_000);
    expect(h.delivered).toEqual(["peer@20:0:3"]);
    h.network.restorePeerClog(0, 2);
    h.run(2_000);
    expect(h.delivered).toEqual(["peer@20:0:3", "peer@1020:2:1", "peer@1020:2:2"]);
    expect(h.network.counters.held).toBe(2);
  });

  it("draws each hop's latency from its own distribution and loses at either hop's rate", () => {
    const h = peerHarness([
      {
        latency: { distribution: "uniform", latencyMsMin: 5, latencyMsMax: 15 },
        lossProbability: 0.1,
      },
      {
        latency: { distribution: "lognormal", latencyMsMedian: 50, sigma: 0.5 },
        lossProbability: 0.2,
      },
    ]);
    const delaysMs: number[] = [];
    const sentAtMs = new Map<number, number>();
    for (let index = 0; index < 10_000; index += 1) {
      sentAtMs.set(index, h.clock.nowMs());
      h.network.sendToPeer(0, 1, index);
    }
    h.clock.runUntil(10_000, {
      handleEvent: (_kind, _node, message) =>
        delaysMs.push(h.clock.nowMs() - (sentAtMs.get(message) ?? 0)),
    });
    // Delivered unless lost on either hop: 0.9 x 0.8.
    expect(delaysMs.length / 10_000).toBeCloseTo(0.72, 1);
    delaysMs.sort((left, right) => left - right);
    // Median: 10 ms (uniform's middle) + 50 ms (lognormal's median).
    expect(delaysMs[Math.floor(delaysMs.length / 2)] ?? 0).toBeGreaterThan(55);
    expect(delaysMs[Math.floor(delaysMs.length / 2)] ?? 0).toBeLessThan(65);
    expect(delaysMs[0] ?? 0).toBeGreaterThan(5);
  });

  it("applies a node's loss burst to its peer traffic too", () => {
    const h = peerHarness();
    h.network.startLossBurst(1, 1);
    h.network.sendToPeer(0, 1, 1);
    h.network.sendToPeer(1, 2, 2);
    h.network.sendToPeer(0, 2, 3);
    h.run(1_000);
    expect(h.delivered).toEqual(["peer@20:2:3"]);
  });

  it("rejects links to itself or to unknown nodes, unknown profiles, and networks without peers", () => {
    const h = peerHarness();
    expect(() => h.network.sendToPeer(0, 0, 1)).toThrow(RangeError);
    expect(() => h.network.cutPeer(0, 3)).toThrow(RangeError);
    expect(() => h.network.setPeerLinkProfile(0, 1, 3)).toThrow(RangeError);
    const serverOnly = harness();
    expect(() => serverOnly.network.sendToPeer(0, 1, 1)).toThrow(/peer delivery event kind/);
  });
});
