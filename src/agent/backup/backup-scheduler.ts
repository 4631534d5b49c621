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

export interface BackupSchedulerComponents {
  clock: Clock;
  random: Random;
  logger: Logger;
  /** Runs one job; a rejection is recorded and retried after `retryDelayMs`. */
  run: (job: ScheduledJob) => Promise<void>;
}

const keyOf = (job: { policy: string; level: string }) => `${job.policy}/${job.level}`;

export class BackupScheduler {
  readonly #options: BackupSchedulerOptions;
  readonly #components: BackupSchedulerComponents;
  #jobs: ScheduledJob[] = [];
  #states = new Map<string, LevelRunState>();
  #cancelTick: CancelTimer | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: BackupSchedulerOptions, components: BackupSchedulerComponents) {
    this.#options = options;
    this.#components = components;
    this.#states = this.#load();
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

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTick?.();
    await this.#running;
  }

  async #runDue(): Promise<void> {
    const { clock, random, logger, run } = this.#components;
    for (const job of this.#jobs) {
      if (this.#closed) return;
      const state = this.#states.get(keyOf(job));
      if (state === undefined || !isDue(state, clock.nowMs())) continue;
      const startedAtMs = clock.nowMs();
      let next: LevelRunState;
      try {
        await run(job);
        next = afterSuccess(startedAtMs, job.intervalMs, random.nextFloat(), this.#options);
      } catch (error) {
        const message = (error as Error).message;
        logger.warn(
          { policy: job.policy, level: job.level, err: message },
          "scheduled backup failed; retrying later",
        );
        next = afterFailure(state, startedAtMs, message, job.intervalMs, this.#options);
      }
      // The job may have been removed while it ran.
      if (this.#states.has(keyOf(job))) this.#states.set(keyOf(job), next);
      this.#save();
    }
  }

  #load(): Map<string, LevelRunState> {
    try {
      const parsed = JSON.parse(readFileSync(this.#options.stateFile, "utf8")) as {
        version?: unknown;
        levels?: unknown;
      };
      if (parsed.version !== 1 || typeof parsed.levels !== "object" || parsed.levels === null)
        return new Map();
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
      return states;
    } catch {
      // Missing or unreadable: start afresh (each level is due after its jitter).
      return new Map();
    }
  }

  #save(): void {
    try {
      mkdirSync(dirname(this.#options.stateFile), { recursive: true });
      const partial = `${this.#options.stateFile}.partial`;
      writeFileSync(
        partial,
        `${JSON.stringify({ version: 1, levels: Object.fromEntries(this.#states) }, null, 2)}\n`,
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
