import { describe, expect, it } from "vitest";
import {
  afterFailure,
  afterSuccess,
  backupScheduleDefaults,
  clusterCode,
  dayMs,
  expiredSnapshots,
  initialRunState,
  isDue,
  jitterMs,
  type CataloguedSnapshot,
} from "./fleet-schedule.ts";

const options = backupScheduleDefaults;
const minuteMs = 60_000;

describe("expiredSnapshots", () => {
  const retentionDays: Record<string, number> = { "p/EDGE_LOCAL": 7, "p/CLOUD": 365 };
  const retention = (policy: string, level: string) => retentionDays[`${policy}/${level}`];
  const snapshot = (
    id: string,
    level: string,
    ageDays: number,
    node = "n1",
  ): CataloguedSnapshot => ({
    snapshotId: id,
    node,
    policy: "p",
    level,
    atMs: 1_000 * dayMs - ageDays * dayMs,
  });
  const nowMs = 1_000 * dayMs;

  it.each([
    { name: "younger than retention is kept", ages: [1, 0], expired: [] },
    { name: "exactly at retention expires", ages: [7, 0], expired: ["s0"] },
    { name: "older ones expire, newest stays", ages: [30, 8, 2], expired: ["s0", "s1"] },
    { name: "the newest is kept even when old", ages: [30, 20], expired: ["s0"] },
  ])("$name", ({ ages, expired }) => {
    const snapshots = ages.map((age, index) => snapshot(`s${index}`, "EDGE_LOCAL", age));
    expect(expiredSnapshots(snapshots, retention, nowMs).map((entry) => entry.snapshotId)).toEqual(
      expired,
    );
  });

  it("applies each level's retention and keeps levels without one", () => {
    const snapshots = [
      snapshot("local-old", "EDGE_LOCAL", 10),
      snapshot("local-new", "EDGE_LOCAL", 1),
      snapshot("cloud-old", "CLOUD", 10),
      snapshot("cloud-new", "CLOUD", 1),
      snapshot("gone-level-old", "REGIONAL", 1_000),
      snapshot("gone-level-new", "REGIONAL", 1),
    ];
    expect(expiredSnapshots(snapshots, retention, nowMs).map((entry) => entry.snapshotId)).toEqual([
      "local-old",
    ]);
  });

  it("keeps the newest per node", () => {
    const snapshots = [
      snapshot("a", "EDGE_LOCAL", 30, "n1"),
      snapshot("b", "EDGE_LOCAL", 20, "n2"),
    ];
    expect(expiredSnapshots(snapshots, retention, nowMs)).toEqual([]);
  });
});

describe("schedule decisions", () => {
  const intervalMs = 300_000;

  it("bounds the jitter by the fraction and the maximum", () => {
    expect(jitterMs(intervalMs, 0.5, options)).toBe(15_000);
    expect(jitterMs(86_400_000, 0.999, options)).toBeLessThan(options.jitterMsMax);
  });

  it("a never-run level is due after its jitter", () => {
    const state = initialRunState(undefined, intervalMs, 1_000_000, 0.5, options);
    expect(state.nextDueMs).toBe(1_015_000);
    expect(isDue(state, 1_014_999)).toBe(false);
    expect(isDue(state, 1_015_000)).toBe(true);
  });

  it("after downtime a level catches up at once, one run, then keeps its cadence", () => {
    const success = afterSuccess(0, intervalMs, 0, options);
    const restarted = initialRunState(success, intervalMs, 10 * intervalMs, 0, options);
    expect(isDue(restarted, 10 * intervalMs)).toBe(true);
    const next = afterSuccess(10 * intervalMs, intervalMs, 0, options);
    expect(next.nextDueMs).toBe(11 * intervalMs);
  });

  it("a restart before the interval keeps the cadence", () => {
    const success = afterSuccess(0, intervalMs, 0, options);
    const restarted = initialRunState(success, intervalMs, minuteMs, 0, options);
    expect(restarted.nextDueMs).toBe(intervalMs);
  });

  it("a failed run is retried after the retry delay and keeps its last success", () => {
    const success = afterSuccess(0, intervalMs, 0, options);
    const failed = afterFailure(
      success,
      intervalMs,
      "EDGE_CLUSTER unavailable",
      intervalMs,
      options,
    );
    expect(failed).toEqual({
      lastSuccessMs: 0,
      lastAttemptMs: intervalMs,
      lastError: "EDGE_CLUSTER unavailable",
      nextDueMs: intervalMs + options.retryDelayMs,
    });
  });
});

describe("clusterCode", () => {
  it("needs k + m peers", () => {
    expect(clusterCode(2, 2, 4)).toEqual({ dataShards: 2, parityShards: 2 });
    expect(clusterCode(2, 2, 3)).toBeUndefined();
  });
});
