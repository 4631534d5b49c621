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
