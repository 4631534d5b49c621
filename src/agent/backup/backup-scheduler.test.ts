import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { backupScheduleDefaults } from "../../core/backup/fleet-schedule.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import { silentLogger } from "../../ports/logger.ts";
import { BackupScheduler, type LevelOutcome, type ScheduledJob } from "./backup-scheduler.ts";

/** A clock that moves only when told; due timers run in time order. */
class FakeClock implements Clock {
  #nowMs: number;
  #timers: { atMs: number; callback: () => void; cancelled: boolean }[] = [];
  constructor(startMs: number) {
    this.#nowMs = startMs;
  }
  nowMs(): number {
    return this.#nowMs;
  }
  schedule(delayMs: number, callback: () => void): CancelTimer {
    const timer = { atMs: this.#nowMs + delayMs, callback, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }
  /** Moves time forward, firing due timers and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const endMs = this.#nowMs + ms;
    for (;;) {
      this.#timers.sort((left, right) => left.atMs - right.atMs);
      const next = this.#timers.find((timer) => !timer.cancelled && timer.atMs <= endMs);
      if (next === undefined) break;
      this.#timers = this.#timers.filter((timer) => timer !== next);
      this.#nowMs = next.atMs;
      next.callback();
      for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    }
    this.#nowMs = endMs;
  }
}

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true });
});

const minuteMs = 60_000;
const jobs: ScheduledJob[] = [
  { policy: "production_data", level: "EDGE_LOCAL", intervalMs: 5 * minuteMs },
  { policy: "production_data", level: "EDGE_CLUSTER", intervalMs: 30 * minuteMs },
];

function scheduler(
  stateFile: string,
  clock: FakeClock,
  runs: string[],
  failing = new Set<string>(),
) {
  return new BackupScheduler(
    { ...backupScheduleDefaults, stateFile, tickIntervalMs: 1_000 },
    {
      clock,
      random: { nextFloat: () => 0 },
      logger: silentLogger,
      run: (job) => {
        runs.push(`${job.level}@${clock.nowMs()}`);
        return failing.has(job.level)
          ? Promise.reject(new Error(`${job.level} is offline`))
          : Promise.resolve();
      },
    },
  );
}

describe("BackupScheduler", () => {
  it("runs each level on its interval, catches up once after downtime, and retries a failed tier", async () => {
    const directory = mkdtempSync(join(tmpdir(), "edgeward-scheduler-"));
    directories.push(directory);
    const stateFile = join(directory, "schedule.json");
    const clock = new FakeClock(1_000_000);
    const runs: string[] = [];
    const failing = new Set(["EDGE_CLUSTER"]);
    const first = scheduler(stateFile, clock, runs, failing);
    first.setJobs(jobs);
    first.start();
    await clock.advance(11 * minuteMs);
    // Both ran at the first tick; the local level twice more; the cluster level was retried.
    expect(runs.filter((run) => run.startsWith("EDGE_LOCAL"))).toEqual([
      "EDGE_LOCAL@1001000",
      "EDGE_LOCAL@1301000",
      "EDGE_LOCAL@1601000",
    ]);
    expect(runs.filter((run) => run.startsWith("EDGE_CLUSTER")).length).toBeGreaterThan(10);
    expect(first.state()["production_data/EDGE_CLUSTER"]?.lastError).toBe(
      "EDGE_CLUSTER is offline",
    );
    failing.clear();
    await clock.advance(minuteMs);
    expect(first.state()["production_data/EDGE_CLUSTER"]?.lastError).toBeNull();
    await first.close();

    // Down for three hours: each level runs once when the agent is back, not once per interval.
    await clock.advance(180 * minuteMs);
    runs.length = 0;
    const saved = JSON.parse(readFileSync(stateFile, "utf8")) as { levels: object };
    expect(Object.keys(saved.levels).sort()).toEqual([
      "production_data/EDGE_CLUSTER",
      "production_data/EDGE_LOCAL",
    ]);
    const second = scheduler(stateFile, clock, runs);
    second.setJobs(jobs);
    second.start();
    await clock.advance(2 * minuteMs);
    expect(runs.map((run) => run.split("@")[0])).toEqual(["EDGE_LOCAL", "EDGE_CLUSTER"]);
    await second.close();
  });

  it("backs up once when levels are due together, copies to the others, and retries an offline tier's copy after a restart", async () => {
    const directory = mkdtempSync(join(tmpdir(), "edgeward-scheduler-"));
    directories.push(directory);
    const stateFile = join(directory, "schedule.json");
    const clock = new FakeClock(1_000_000);
    const events: string[] = [];
    const offline = new Set(["REGIONAL"]);
    const threeLevels: ScheduledJob[] = [
      { policy: "p", level: "EDGE_LOCAL", intervalMs: 60 * minuteMs },
      { policy: "p", level: "EDGE_CLUSTER", intervalMs: 60 * minuteMs },
      { policy: "p", level: "REGIONAL", intervalMs: 60 * minuteMs },
    ];
    const make = () =>
      new BackupScheduler(
        { ...backupScheduleDefaults, stateFile, tickIntervalMs: 1_000 },
        {
          clock,
          random: { nextFloat: () => 0 },
          logger: silentLogger,
          run: (job) => {
            events.push(`backup ${job.level}`);
            return Promise.resolve();
          },
          runGroup: (policy, levels) => {
            const [first, ...others] = levels;
            events.push(`backup ${first ?? ""}`);
            const outcomes: Record<string, LevelOutcome> = { [first ?? ""]: { ok: true } };
            for (const level of others) {
              if (offline.has(level)) {
                outcomes[level] = {
                  ok: false,
                  error: `${level} is offline`,
                  pendingCopy: { fromLevel: first ?? "", snapshotId: "s1", sinceMs: clock.nowMs() },
                };
              } else {
                events.push(`copy s1 ${first ?? ""}->${level}`);
                outcomes[level] = { ok: true };
              }
            }
            expect(policy).toBe("p");
            return Promise.resolve(outcomes);
          },
          copy: (pending) => {
            if (offline.has(pending.level))
              return Promise.reject(new Error(`${pending.level} is offline`));
            events.push(`copy ${pending.snapshotId} ${pending.fromLevel}->${pending.level}`);
            return Promise.resolve();
          },
        },
      );
    const first = make();
    first.setJobs(threeLevels);
    first.start();
    await clock.advance(2 * minuteMs);
    expect(events).toEqual(["backup EDGE_LOCAL", "copy s1 EDGE_LOCAL->EDGE_CLUSTER"]);
    expect(first.pendingCopies()["p/REGIONAL"]).toMatchObject({
      fromLevel: "EDGE_LOCAL",
      snapshotId: "s1",
    });
    expect(first.state()["p/REGIONAL"]?.lastError).toBe("REGIONAL is offline");
    await first.close();

    // The pending copy survives a restart and is retried, not replaced by a new backup.
    const second = make();
    second.setJobs(threeLevels);
    offline.clear();
    events.length = 0;
    second.start();
    await clock.advance(minuteMs);
    expect(events).toEqual(["copy s1 EDGE_LOCAL->REGIONAL"]);
    expect(second.pendingCopies()).toEqual({});
    expect(second.state()["p/REGIONAL"]?.lastError).toBeNull();
    await second.close();
  });
});
