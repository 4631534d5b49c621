// The agent's persisted backup scheduler: one timer line per (policy, level), its state in
// `<agent data dir>/backups/schedule.json`, so a restarted agent keeps each level's cadence and
// catches up once on what it missed while down. Decisions are the pure functions of
// src/core/backup/fleet-schedule.ts; this file holds the timer, the file and the queue.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  afterFailure,
  afterSuccess,
  initialRunState,
  isDue,
  type BackupScheduleOptions,
  type LevelRunState,
} from "../../core/backup/fleet-schedule.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import type { Random } from "../../ports/random.ts";

/** One scheduled line: a policy at one level. */
export interface ScheduledJob {
  policy: string;
  level: string;
  intervalMs: number;
}

export interface BackupSchedulerOptions extends BackupScheduleOptions {
  stateFile: string;
  /** How often due jobs are looked for; a due job waits at most this long. */
  tickIntervalMs: number;
}

/**
 * A tier that missed a snapshot the node took on another tier: the snapshot is copied there
 * when the tier is back (docs/adr/0005-fleet-backups.md, "Copies between tiers").
 */
export interface PendingCopy {
  policy: string;
  /** The level waiting for the copy. */
  level: string;
  /** The level holding the snapshot, and its id there. */
  fromLevel: string;
  snapshotId: string;
  /** When the snapshot was taken; a copy older than the level's interval is dropped. */
  sinceMs: number;
}

/** What a grouped run did for one level. */
export type LevelOutcome =
  { ok: true } | { ok: false; error: string; pendingCopy?: Omit<PendingCopy, "policy" | "level"> };

export interface BackupSchedulerComponents {
  clock: Clock;
  random: Random;
  logger: Logger;
  /** Runs one job; a rejection is recorded and retried after `retryDelayMs`. */
  run: (job: ScheduledJob) => Promise<void>;
  /**
   * Several levels of one policy due at once: back up once, copy to the others. Absent: each
   * level runs on its own through `run`. A rejection fails every level of the group.
   */
  runGroup?: (policy: string, levels: string[]) => Promise<Record<string, LevelOutcome>>;
  /** Retries a pending copy; a rejection keeps it pending. Needed with `runGroup`. */
  copy?: (pending: PendingCopy) => Promise<void>;
}

/** Pending copies kept at most (one per policy and level in practice). */
const pendingCopiesMax = 1_000;

const keyOf = (job: { policy: string; level: string }) => `${job.policy}/${job.level}`;

export class BackupScheduler {
  readonly #options: BackupSchedulerOptions;
  readonly #components: BackupSchedulerComponents;
  #jobs: ScheduledJob[] = [];
  #states = new Map<string, LevelRunState>();
  #pendingCopies = new Map<string, PendingCopy>();
  #cancelTick: CancelTimer | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: BackupSchedulerOptions, components: BackupSchedulerComponents) {
    this.#options = options;
    this.#components = components;
    const loaded = this.#load();
    this.#states = loaded.states;
    this.#pendingCopies = loaded.pendingCopies;
  }

  /** Replaces the jobs (new policies from the server); known jobs keep their state. */
  setJobs(jobs: readonly ScheduledJob[]): void {
    const nowMs = this.#components.clock.nowMs();
    this.#jobs = [...jobs];
    const states = new Map<string, LevelRunState>();
    for (const job of jobs) {
      states.set(
        keyOf(job),
        initialRunState(
          this.#states.get(keyOf(job)),
          job.intervalMs,
          nowMs,
          this.#components.random.nextFloat(),
          this.#options,
        ),
      );
    }
    this.#states = states;
    for (const key of [...this.#pendingCopies.keys()])
      if (!states.has(key)) this.#pendingCopies.delete(key);
    this.#save();
  }

  start(): void {
    if (this.#cancelTick !== undefined || this.#closed) return;
    const loop = () => {
      this.#cancelTick = this.#components.clock.schedule(this.#options.tickIntervalMs, () => {
        this.tick()
          .catch(() => {}) // run failures are recorded per job; nothing else rejects
          .finally(loop);
      });
    };
    loop();
  }

  /** Runs every due job, one after the other; resolves when they are done. */
  async tick(): Promise<void> {
    if (this.#running !== undefined) return this.#running;
    this.#running = this.#runDue().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  state(): Record<string, LevelRunState> {
    return Object.fromEntries(this.#states);
  }

  /** Copies waiting for their tier, per `policy/level`. */
  pendingCopies(): Record<string, PendingCopy> {
    return Object.fromEntries(this.#pendingCopies);
  }

  /**
   * A copy an operator's run could not make (its tier is offline): kept like a scheduled
   * run's, and the level is retried as that copy after `retryDelayMs`.
   */
  deferCopy(pending: PendingCopy, error: string): void {
    const job = this.#jobs.find(
      (candidate) => candidate.policy === pending.policy && candidate.level === pending.level,
    );
    if (job === undefined) return;
    if (this.#pendingCopies.size >= pendingCopiesMax && !this.#pendingCopies.has(keyOf(job)))
      return;
    this.#pendingCopies.set(keyOf(job), { ...pending });
    this.#settle(job, this.#components.clock.nowMs(), error);
    this.#save();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTick?.();
    await this.#running;
  }

  async #runDue(): Promise<void> {
    const { clock, runGroup, copy } = this.#components;
    const due = this.#jobs.filter((job) => {
      const state = this.#states.get(keyOf(job));
      return state !== undefined && isDue(state, clock.nowMs());
    });
    const fresh: ScheduledJob[] = [];
    for (const job of due) {
      if (this.#closed) return;
      const pending = this.#pendingCopies.get(keyOf(job));
      if (pending !== undefined && clock.nowMs() - pending.sinceMs > job.intervalMs) {
        // Too old to be worth copying: the level takes a new snapshot instead.
        this.#pendingCopies.delete(keyOf(job));
      } else if (pending !== undefined && copy !== undefined) {
        await this.#record(job, () => copy(pending));
        continue;
      }
      fresh.push(job);
    }
    const policies = [...new Set(fresh.map((job) => job.policy))];
    for (const policy of policies) {
      if (this.#closed) return;
      const group = fresh.filter((job) => job.policy === policy);
      if (group.length < 2 || runGroup === undefined || copy === undefined) {
        for (const job of group) {
          if (this.#closed) return;
          await this.#record(job, () => this.#components.run(job));
        }
        continue;
      }
      const startedAtMs = clock.nowMs();
      let outcomes: Record<string, LevelOutcome>;
      try {
        outcomes = await runGroup(
          policy,
          group.map((job) => job.level),
        );
      } catch (error) {
        outcomes = Object.fromEntries(
          group.map((job) => [job.level, { ok: false, error: (error as Error).message }]),
        );
      }
      for (const job of group) {
        const outcome = outcomes[job.level] ?? { ok: false, error: "not run" };
        if (!outcome.ok && outcome.pendingCopy !== undefined) {
          if (this.#pendingCopies.size < pendingCopiesMax || this.#pendingCopies.has(keyOf(job)))
            this.#pendingCopies.set(keyOf(job), {
              policy: job.policy,
              level: job.level,
              ...outcome.pendingCopy,
            });
        }
        this.#settle(job, startedAtMs, outcome.ok ? undefined : outcome.error);
      }
      this.#save();
    }
  }

  /** Runs one job's work and records its outcome. */
  async #record(job: ScheduledJob, work: () => Promise<void>): Promise<void> {
    const startedAtMs = this.#components.clock.nowMs();
    let error: string | undefined;
    try {
      await work();
    } catch (failure) {
      error = (failure as Error).message;
    }
    this.#settle(job, startedAtMs, error);
    this.#save();
  }

  #settle(job: ScheduledJob, startedAtMs: number, error: string | undefined): void {
    const { random, logger } = this.#components;
    const state = this.#states.get(keyOf(job));
    // The job may have been removed while it ran.
    if (state === undefined) return;
    if (error === undefined) {
      this.#pendingCopies.delete(keyOf(job));
      this.#states.set(
        keyOf(job),
        afterSuccess(startedAtMs, job.intervalMs, random.nextFloat(), this.#options),
      );
      return;
    }
    logger.warn(
      { policy: job.policy, level: job.level, err: error },
      "scheduled backup failed; retrying later",
    );
    this.#states.set(
      keyOf(job),
      afterFailure(state, startedAtMs, error, job.intervalMs, this.#options),
    );
  }

  #load(): { states: Map<string, LevelRunState>; pendingCopies: Map<string, PendingCopy> } {
    const none = { states: new Map(), pendingCopies: new Map() };
    try {
      const parsed = JSON.parse(readFileSync(this.#options.stateFile, "utf8")) as {
        version?: unknown;
        levels?: unknown;
        pendingCopies?: unknown;
      };
      if (parsed.version !== 1 || typeof parsed.levels !== "object" || parsed.levels === null)
        return none;
      const states = new Map<string, LevelRunState>();
      for (const [key, value] of Object.entries(parsed.levels as Record<string, unknown>)) {
        const state = value as Partial<LevelRunState>;
        if (typeof state.nextDueMs !== "number") continue;
        states.set(key, {
          lastSuccessMs: typeof state.lastSuccessMs === "number" ? state.lastSuccessMs : null,
          lastAttemptMs: typeof state.lastAttemptMs === "number" ? state.lastAttemptMs : null,
          lastError: typeof state.lastError === "string" ? state.lastError : null,
          nextDueMs: state.nextDueMs,
        });
      }
      const pendingCopies = new Map<string, PendingCopy>();
      if (typeof parsed.pendingCopies === "object" && parsed.pendingCopies !== null)
        for (const value of Object.values(parsed.pendingCopies as Record<string, unknown>)) {
          const copy = value as Partial<PendingCopy>;
          if (
            typeof copy.policy === "string" &&
            typeof copy.level === "string" &&
            typeof copy.fromLevel === "string" &&
            typeof copy.snapshotId === "string" &&
            typeof copy.sinceMs === "number" &&
            pendingCopies.size < pendingCopiesMax
          )
            pendingCopies.set(keyOf(copy as PendingCopy), copy as PendingCopy);
        }
      return { states, pendingCopies };
    } catch {
      // Missing or unreadable: start afresh (each level is due after its jitter).
      return none;
    }
  }

  #save(): void {
    try {
      mkdirSync(dirname(this.#options.stateFile), { recursive: true });
      const partial = `${this.#options.stateFile}.partial`;
      writeFileSync(
        partial,
        `${JSON.stringify(
          {
            version: 1,
            levels: Object.fromEntries(this.#states),
            pendingCopies: Object.fromEntries(this.#pendingCopies),
          },
          null,
          2,
        )}\n`,
      );
      renameSync(partial, this.#options.stateFile);
    } catch (error) {
      this.#components.logger.warn(
        { err: (error as Error).message, file: this.#options.stateFile },
        "could not save the backup schedule",
      );
    }
  }
}
