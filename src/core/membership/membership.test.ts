import { describe, expect, it } from "vitest";
import {
  detectorOptionsFor,
  detectorPresets,
  detectorTickIntervalMs,
  DetectorOptionsError,
  type DetectorOptions,
} from "./detector-options.ts";
import { Membership, UnknownNodeError, type MembershipEffect } from "./membership.ts";
import { NodeStatus } from "./node-status.ts";

/** A membership driven by hand: time only moves when the test says so. */
function harness(options: DetectorOptions = detectorPresets.lan, startedAtMs = 0) {
  const effects: MembershipEffect[] = [];
  const membership = new Membership(options, startedAtMs, (effect) => effects.push(effect));
  const transitions = () =>
    effects.flatMap((effect) =>
      effect.type === "transition" ? [`${effect.to}@${effect.atMs}:${effect.reason}`] : [],
    );
  const probes = () =>
    effects.filter((effect) => effect.type === "probe").map((effect) => effect.atMs);
  /** Ticks every `stepMs` from `fromMs` up to and including `toMs`. */
  const runTicks = (fromMs: number, toMs: number, stepMs = 10) => {
    for (let atMs = fromMs; atMs <= toMs; atMs += stepMs) membership.tick(atMs);
  };
  return { membership, effects, transitions, probes, runTicks };
}

/** Heartbeats every `intervalMs` from `fromMs` while `untilMs` is not reached, ticking between. */
function heartbeatSteadily(
  h: ReturnType<typeof harness>,
  nodeId: string,
  fromMs: number,
  untilMs: number,
  intervalMs = 200,
) {
  for (let atMs = fromMs; atMs < untilMs; atMs += intervalMs) {
    h.runTicks(atMs - intervalMs + 10, atMs - 10);
    h.membership.heartbeat(nodeId, atMs);
  }
}

const afterGraceMs = detectorPresets.lan.startupGraceMs;

describe("detector presets", () => {
  it.each([
    ["lan", 200],
    ["wan", 1_000],
    ["cellular", 5_000],
    ["documents", 30_000],
  ] as const)("%s heartbeats every %i ms", (preset, intervalMs) => {
    expect(detectorOptionsFor(preset).heartbeatIntervalMs).toBe(intervalMs);
  });

  it.each([
    [{ heartbeatIntervalMs: 0 }, /heartbeatIntervalMs must be a positive number/],
    [{ suspectPhi: 9, convictPhi: 8 }, /convictPhi \(8\) must be above suspectPhi \(9\)/],
    [{ convictPhi: 40 }, /convictPhi must be at most 16/],
    [{ readmitHeartbeats: 2.5 }, /readmitHeartbeats must be an integer/],
    [{ startupGraceMs: -1 }, /must not be negative/],
  ])("rejects overrides %j", (overrides, message) => {
    expect(() => detectorOptionsFor("lan", overrides)).toThrow(DetectorOptionsError);
    expect(() => detectorOptionsFor("lan", overrides)).toThrow(message);
  });
});

describe("detectorTickIntervalMs", () => {
  it.each([
    ["lan", 25],
    ["wan", 125],
    ["cellular", 625],
    ["documents", 1_000],
  ] as const)("ticks %s every %i ms", (preset, expectedMs) => {
    expect(detectorTickIntervalMs(detectorOptionsFor(preset))).toBe(expectedMs);
  });

  it("never ticks more often than every 10 ms", () => {
    expect(detectorTickIntervalMs(detectorOptionsFor("lan", { heartbeatIntervalMs: 20 }))).toBe(10);
  });
});

describe("membership on the lan preset", () => {
  it("keeps a node with on-time heartbeats HEALTHY", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, afterGraceMs + 60_000);
    expect(h.transitions()).toEqual([`HEALTHY@${afterGraceMs}:registered`]);
    expect(h.probes()).toEqual([]);
  });

  it("suspects a silent node, probes it, and convicts when the probe times out", () => {
    const h = harness();
    const lastMs = afterGraceMs + 2_000;
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, lastMs + 1);
    h.runTicks(lastMs + 10, lastMs + 2_000);
    const transitions = h.transitions().slice(1);
    expect(transitions).toHaveLength(2);
    expect(transitions[0]).toMatch(/^DEGRADED@\d+:heartbeat-overdue$/);
    expect(transitions[1]).toMatch(/^FAILED@\d+:probe-timed-out$/);
    const suspectedAtMs = Number(/@(\d+)/.exec(transitions[0] ?? "")?.[1]);
    const failedAtMs = Number(/@(\d+)/.exec(transitions[1] ?? "")?.[1]);
    // Suspicion at phi 3 (about 550 ms of silence), conviction once the 250 ms probe timed out.
    expect(suspectedAtMs - lastMs).toBeGreaterThan(400);
    expect(suspectedAtMs - lastMs).toBeLessThan(700);
    expect(failedAtMs - lastMs).toBeLessThan(1_000);
    expect(h.probes()).toEqual([suspectedAtMs]);
    expect(h.effects.find((effect) => effect.type === "probe")).toMatchObject({ attempts: 2 });
  });

  it("never convicts a suspect that answers its probes, and re-probes it", () => {
    const h = harness();
    const lastMs = afterGraceMs + 2_000;
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, lastMs + 1);
    for (let atMs = lastMs + 10; atMs <= lastMs + 10_000; atMs += 10) {
      h.membership.tick(atMs);
      if (h.probes().at(-1) === atMs) h.membership.probeAnswered("a", "alive", atMs + 5);
    }
    expect(h.transitions().slice(1)).toEqual([
      expect.stringMatching(/^DEGRADED@\d+:heartbeat-overdue$/),
    ]);
    expect(h.probes().length).toBeGreaterThanOrEqual(9);
    h.membership.heartbeat("a", lastMs + 10_005);
    expect(h.transitions().at(-1)).toBe(`HEALTHY@${lastMs + 10_005}:heartbeat-resumed`);
  });

  it("convicts at once when the connection drops and the probe is refused", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, afterGraceMs + 1_000);
    h.membership.connectionLost("a", afterGraceMs + 1_050);
    expect(h.probes()).toEqual([afterGraceMs + 1_050]);
    h.membership.probeAnswered("a", "refused", afterGraceMs + 1_052);
    expect(h.transitions().slice(1)).toEqual([
      `DEGRADED@${afterGraceMs + 1_050}:connection-lost`,
      `FAILED@${afterGraceMs + 1_052}:probe-refused`,
    ]);
  });

  it("does not suspect a node whose channel was closed for its rate, if it reconnects in time", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, afterGraceMs + 1_001);
    h.membership.channelRateLimited("a", afterGraceMs + 1_050);
    h.runTicks(afterGraceMs + 1_060, afterGraceMs + 1_150);
    h.membership.heartbeat("a", afterGraceMs + 1_160);
    heartbeatSteadily(h, "a", afterGraceMs + 1_360, afterGraceMs + 3_000);
    expect(h.transitions().slice(1)).toEqual([]);
    expect(h.probes()).toEqual([]);
  });

  it("keeps a rate-limited node out of FAILED while its probes time out, for rateLimitedGraceMs", () => {
    const h = harness();
    const lastMs = afterGraceMs + 1_000;
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, lastMs + 1);
    h.membership.channelRateLimited("a", lastMs + 50);
    // No heartbeat and no probe answer: suspected, re-probed, never convicted within the grace.
    const graceEndsAtMs = lastMs + 50 + detectorPresets.lan.rateLimitedGraceMs;
    h.runTicks(lastMs + 60, graceEndsAtMs - 10);
    expect(h.transitions().slice(1)).toEqual([
      expect.stringMatching(/^DEGRADED@\d+:heartbeat-overdue$/),
    ]);
    expect(h.probes().length).toBeGreaterThan(10);
    // Past the grace, a silent node that does not answer is convicted as any other.
    h.runTicks(graceEndsAtMs, graceEndsAtMs + 1_000);
    expect(h.transitions().at(-1)).toMatch(/^FAILED@\d+:probe-timed-out$/);
  });

  it("still convicts a rate-limited node whose probe is refused (its process is gone)", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, afterGraceMs + 1_001);
    h.membership.channelRateLimited("a", afterGraceMs + 1_050);
    h.runTicks(afterGraceMs + 1_060, afterGraceMs + 3_000);
    const probeAtMs = h.probes()[0];
    if (probeAtMs === undefined) throw new Error("the silent node was never probed");
    h.membership.probeAnswered("a", "refused", probeAtMs + 2);
    expect(h.transitions().at(-1)).toBe(`FAILED@${probeAtMs + 2}:probe-refused`);
  });

  it("treats a goodbye as OFFLINE and never convicts an OFFLINE node", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    h.membership.goodbye("a", afterGraceMs + 100);
    h.runTicks(afterGraceMs + 110, afterGraceMs + 30_000, 100);
    expect(h.transitions().slice(1)).toEqual([`OFFLINE@${afterGraceMs + 100}:graceful-shutdown`]);
    h.membership.register("a", afterGraceMs + 31_000, { probeable: true });
    expect(h.transitions().at(-1)).toBe(`HEALTHY@${afterGraceMs + 31_000}:rejoined`);
  });

  it.each([
    [2, NodeStatus.failed],
    [3, NodeStatus.healthy],
  ])(
    "re-admits a FAILED node only after 3 on-time heartbeats (%i sent -> %s)",
    (heartbeats, expected) => {
      const h = harness();
      h.membership.register("a", afterGraceMs, { probeable: false });
      h.runTicks(afterGraceMs, afterGraceMs + 5_000, 100);
      expect(h.membership.view("a", afterGraceMs + 5_000)?.status).toBe(NodeStatus.failed);
      for (let index = 0; index < heartbeats; index += 1)
        h.membership.heartbeat("a", afterGraceMs + 6_000 + index * 200);
      expect(h.membership.view("a", afterGraceMs + 7_000)?.status).toBe(expected);
    },
  );

  it("restarts the re-admission count when a heartbeat comes late", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: false });
    h.runTicks(afterGraceMs, afterGraceMs + 5_000, 100);
    for (const atMs of [6_000, 6_200, 9_000, 9_200])
      h.membership.heartbeat("a", afterGraceMs + atMs);
    expect(h.membership.view("a", afterGraceMs + 9_200)?.status).toBe(NodeStatus.failed);
    h.membership.heartbeat("a", afterGraceMs + 9_400);
    expect(h.membership.view("a", afterGraceMs + 9_400)?.status).toBe(NodeStatus.healthy);
  });

  it("convicts nobody during the startup grace period after a server restart", () => {
    const startedAtMs = 1_000_000;
    const h = harness(detectorPresets.lan, startedAtMs);
    for (const nodeId of ["a", "b", "c"])
      h.membership.restore(nodeId, NodeStatus.healthy, 0, startedAtMs, true);
    h.runTicks(startedAtMs, startedAtMs + afterGraceMs - 10, 50);
    expect(h.transitions()).toEqual([]);
    // "a" reconnects within the grace period; "b" and "c" never come back.
    h.membership.heartbeat("a", startedAtMs + 1_000);
    heartbeatSteadily(h, "a", startedAtMs + afterGraceMs, startedAtMs + afterGraceMs + 3_000);
    expect(h.membership.view("a", startedAtMs + afterGraceMs + 3_000)?.status).toBe(
      NodeStatus.healthy,
    );
    expect(h.membership.view("b", startedAtMs + afterGraceMs + 3_000)?.status).toBe(
      NodeStatus.failed,
    );
  });

  it("rejects heartbeats from nodes that never registered", () => {
    const h = harness();
    expect(() => h.membership.heartbeat("ghost", 1)).toThrow(UnknownNodeError);
  });

  it("reports phi near zero while on time and rising with silence", () => {
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    heartbeatSteadily(h, "a", afterGraceMs + 200, afterGraceMs + 5_000);
    const lastMs = h.membership.view("a", 0)?.lastHeartbeatAtMs ?? 0;
    const phiAt = (ageMs: number) => h.membership.view("a", lastMs + ageMs)?.phi ?? Number.NaN;
    expect(phiAt(100)).toBeLessThan(0.5);
    expect(phiAt(550)).toBeGreaterThan(2);
    expect(phiAt(700)).toBeGreaterThan(phiAt(550));
  });
});

describe("membership on the documents' rule", () => {
  it("marks one or two missed 30 s checks DEGRADED and three FAILED", () => {
    const options = detectorOptionsFor("documents");
    const h = harness(options, 0);
    const startMs = options.startupGraceMs;
    h.membership.register("a", startMs, { probeable: false });
    h.runTicks(startMs, startMs + 120_000, 1_000);
    expect(h.transitions()).toEqual([
      `HEALTHY@${startMs}:registered`,
      `DEGRADED@${startMs + 35_000}:heartbeat-overdue`,
      `FAILED@${startMs + 95_000}:heartbeat-overdue`,
    ]);
  });
});

describe("membership under heartbeat loss and jitter", () => {
  it("makes no false conviction in 10 simulated minutes with 5 % loss and 50 ms jitter", () => {
    // A small fixed-seed generator keeps the test reproducible (mulberry32).
    let seed = 42;
    const nextFloat = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let value = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
      return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
    };
    const h = harness();
    h.membership.register("a", afterGraceMs, { probeable: true });
    const arrivalsMs: number[] = [];
    for (let sentMs = afterGraceMs + 200; sentMs < afterGraceMs + 600_000; sentMs += 200) {
      if (nextFloat() >= 0.05) arrivalsMs.push(sentMs + nextFloat() * 50);
    }
    arrivalsMs.sort((left, right) => left - right);
    let next = 0;
    for (let atMs = afterGraceMs; atMs < afterGraceMs + 600_000; atMs += 10) {
      while (next < arrivalsMs.length && (arrivalsMs[next] ?? Infinity) <= atMs) {
        h.membership.heartbeat("a", arrivalsMs[next] ?? atMs);
        next += 1;
      }
      h.membership.tick(atMs);
      if (h.probes().at(-1) === atMs) h.membership.probeAnswered("a", "alive", atMs + 1);
    }
    expect(h.transitions().filter((transition) => transition.startsWith("FAILED"))).toEqual([]);
  });
});

describe("membership tick order", () => {
  it("evaluates nodes in registration order, keeping a restored node's place", () => {
    const h = harness();
    for (const nodeId of ["a", "b", "c", "d"]) {
      h.membership.register(nodeId, afterGraceMs, { probeable: false });
    }
    expect(h.membership.remove("b")).toBe(true);
    expect(h.membership.remove("b")).toBe(false);
    h.membership.restore("a", NodeStatus.healthy, 0, afterGraceMs, false);
    h.membership.register("b", afterGraceMs, { probeable: false });
    h.runTicks(afterGraceMs, afterGraceMs + 5_000, 100);
    const failed = h.effects.flatMap((effect) =>
      effect.type === "transition" && effect.to === NodeStatus.failed ? [effect.nodeId] : [],
    );
    expect(failed).toEqual(["a", "c", "d", "b"]);
  });
});

describe("membership handles", () => {
  it("heartbeatAt(handle) judges exactly as heartbeat(nodeId)", () => {
    const byId = harness();
    const byHandle = harness();
    byId.membership.register("a", afterGraceMs, { probeable: true });
    const handle = byHandle.membership.register("a", afterGraceMs, { probeable: true });
    expect(byHandle.membership.handleOf("a")).toBe(handle);
    // Jittered heartbeats, a silence long enough to convict, then re-admission.
    const arrivalsMs = [200, 390, 640, 800, 1_010, 4_000, 4_200, 4_400, 4_600];
    for (const [ordinal, arrivalMs] of arrivalsMs.entries()) {
      const fromMs = afterGraceMs + (arrivalsMs[ordinal - 1] ?? 0) + 10;
      for (const h of [byId, byHandle]) h.runTicks(fromMs, afterGraceMs + arrivalMs - 10);
      byId.membership.heartbeat("a", afterGraceMs + arrivalMs);
      byHandle.membership.heartbeatAt(handle, afterGraceMs + arrivalMs);
      expect(byHandle.membership.view("a", afterGraceMs + arrivalMs)).toEqual(
        byId.membership.view("a", afterGraceMs + arrivalMs),
      );
    }
    expect(byHandle.effects).toEqual(byId.effects);
    expect(byId.transitions().map((transition) => transition.split("@")[0])).toEqual([
      "HEALTHY",
      "DEGRADED",
      "FAILED",
      "HEALTHY",
    ]);
  });

  it("keeps a handle through re-registration and restore, and refuses it after removal", () => {
    const h = harness();
    const first = h.membership.register("a", afterGraceMs, { probeable: true });
    const second = h.membership.register("b", afterGraceMs, { probeable: true });
    expect(second).not.toBe(first);
    expect(h.membership.register("a", afterGraceMs + 200, { probeable: true })).toBe(first);
    h.membership.restore("a", NodeStatus.failed, 7, afterGraceMs + 300, true);
    expect(h.membership.handleOf("a")).toBe(first);
    expect(h.membership.view("a", afterGraceMs + 300)).toMatchObject({
      status: NodeStatus.failed,
      statusSinceMs: 7,
    });
    h.membership.remove("a");
    expect(h.membership.handleOf("a")).toBeUndefined();
    expect(() => h.membership.heartbeatAt(first, afterGraceMs + 400)).toThrow(RangeError);
    // A freed slot is reused, but the newcomer still ticks after the older nodes.
    expect(h.membership.register("c", afterGraceMs + 500, { probeable: true })).toBe(first);
    expect([...h.membership.nodeIds()]).toEqual(["b", "c"]);
  });

  it("tracks more nodes than its first allocation", () => {
    const h = harness();
    for (let index = 0; index < 1_000; index += 1) {
      h.membership.register(`n${index}`, afterGraceMs, { probeable: false });
    }
    for (let index = 0; index < 1_000; index += 2)
      h.membership.heartbeat(`n${index}`, afterGraceMs + 200);
    h.runTicks(afterGraceMs + 200, afterGraceMs + 700, 10);
    expect(h.membership.size).toBe(1_000);
    expect(h.membership.view("n998", afterGraceMs + 700)?.status).toBe(NodeStatus.healthy);
    expect(h.membership.view("n999", afterGraceMs + 700)?.status).not.toBe(NodeStatus.healthy);
  });
});
