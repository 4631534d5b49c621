// The agent's part of fleet backups (docs/adr/0005-fleet-backups.md): it keeps the policies the
// server pushes, schedules each (policy, level), stages the sources this node holds, backs
// them up into the node's repository on each tier, reports every snapshot, runs the server's
// backup commands, restores a service's newest backup for failover, and serves its share of
// the EDGE_CLUSTER tier (a directory blob store under /v1/blobs).

import { copyFile, mkdir, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { isAbsolute, join } from "node:path";
import {
  backupScheduleDefaults,
  type BackupScheduleOptions,
} from "../../core/backup/fleet-schedule.ts";
import type {
  AgentServiceMessage,
  BackupCommand,
  BackupCommandResult,
  BackupLevelName,
  BackupLevelRunReport,
  BackupPolicyDefinition,
  BackupRepositoryRef,
  BackupRestorePoint,
  BackupSnapshotReport,
  BackupTargets,
  BackupVerifyReport,
  ServerBackupMessage,
} from "../../api/service-messages.ts";
import type { Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import type { Random } from "../../ports/random.ts";
import {
  allowEveryRequest,
  contentSha256Header,
  createBlobStoreHttpHandler,
} from "../../runtime/backup/blob-store-http-handler.ts";
import { DirectoryBlobStore } from "../../runtime/backup/directory-blob-store.ts";
import type { RepositoryOptions } from "../../runtime/backup/repository.ts";
import type { AgentRequestHandler } from "../agent-http.ts";
import {
  BackupScheduler,
  type LevelOutcome,
  type PendingCopy,
  type ScheduledJob,
} from "./backup-scheduler.ts";
import { stageSources, type StagedSource } from "./staging.ts";
import type * as TierCopiesModule from "./tier-copies.ts";
import type * as TierOperationsModule from "./tier-operations.ts";
import type { TierContext } from "./tier-operations.ts";

/** Characters of an error sent to the server. */
const reasonCharactersMax = 2_000;

/** The levels in the order a grouped run tries them as the one that reads the sources. */
const levelOrder: readonly BackupLevelName[] = ["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL", "CLOUD"];

/** A level of a run that made no snapshot, and why (the tier is not configured, nothing is here). */
interface Skipped {
  skipped: string;
}

/** What one level of a run did, with its snapshot and, for a failed copy, the copy to retry. */
type LevelRun = BackupLevelRunReport & {
  snapshot?: BackupSnapshotReport;
  pendingCopy?: Omit<PendingCopy, "policy" | "level">;
};

function backupRun(snapshot: BackupSnapshotReport): LevelRun {
  return {
    level: snapshot.level,
    outcome: "backup",
    fromLevel: null,
    snapshotId: snapshot.snapshotId,
    durationMs: snapshot.durationMs,
    sizeBytes: snapshot.sizeBytes,
    addedBytes: snapshot.addedBytes,
    blobsCopied: 0,
    message: null,
    snapshot,
  };
}

function otherRun(
  level: BackupLevelName,
  outcome: "skipped" | "failed",
  message: string,
  pendingCopy?: LevelRun["pendingCopy"],
): LevelRun {
  return {
    level,
    outcome,
    fromLevel: null,
    snapshotId: null,
    durationMs: 0,
    sizeBytes: 0,
    addedBytes: 0,
    blobsCopied: 0,
    message: message.slice(0, reasonCharactersMax),
    ...(pendingCopy === undefined ? {} : { pendingCopy }),
  };
}

/** The run's report of one level, as sent to the server (without the snapshot and retry). */
function levelReport(run: LevelRun): BackupLevelRunReport {
  return {
    level: run.level,
    outcome: run.outcome,
    fromLevel: run.fromLevel,
    snapshotId: run.snapshotId,
    durationMs: run.durationMs,
    sizeBytes: run.sizeBytes,
    addedBytes: run.addedBytes,
    blobsCopied: run.blobsCopied,
    message: run.message,
  };
}

export interface FleetBackupsOptions {
  nodeId: string;
  dataDir: string;
  schedule: BackupScheduleOptions & { tickIntervalMs: number };
  /** Options of repositories this node creates; undefined: the engine's defaults. */
  repositoryOptions?: RepositoryOptions;
  /** Blob API requests to peers and the server give up after this long without progress. */
  requestTimeoutMs: number;
}

export const fleetBackupDefaults = {
  schedule: { ...backupScheduleDefaults, tickIntervalMs: 5_000 },
  requestTimeoutMs: 15_000,
} as const;

/** What the agent's supervisor tells the backups. */
export interface BackedUpServices {
  /** The service's data dir on this node (throws for an unknown service). */
  dataDirOf(service: string): string;
  /** Services with a live instance here: their data is this node's to back up. */
  runningServices(): string[];
  /** Where `<service>.log` files are. */
  logDir: string;
}

export interface FleetBackupsComponents {
  clock: Clock;
  random: Random;
  logger: Logger;
  services: BackedUpServices;
  send: (message: AgentServiceMessage) => boolean;
  /** The pinned fleet CA (PEM) once known: the REGIONAL tier is the server's https blob API. */
  serverCa?: () => string | undefined;
  /**
   * Signed peer requests (ADR 0006): signs this node's blob API requests and checks its peers'.
   * Absent: unsigned requests, and every client may use this node's shard API (tests only).
   */
  peers?: {
    sign: NonNullable<TierContext["signRequest"]>;
    authorize: (request: IncomingMessage, bodySha256Header: string) => { ok: boolean };
  };
}

type TierOperations = typeof TierOperationsModule;

export class FleetBackups {
  readonly #options: FleetBackupsOptions;
  readonly #components: FleetBackupsComponents;
  readonly #scheduler: BackupScheduler;
  #policies: BackupPolicyDefinition[] = [];
  #targets: BackupTargets | undefined;
  #restorePoints: Record<string, BackupRestorePoint[]> = {};
  /** (policy/level) already reported as having no configured tier. */
  readonly #notConfigured = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  #operations: Promise<TierOperations> | undefined;
  /** The EDGE_CLUSTER shards this node holds for its peers, served under /v1/blobs. */
  readonly blobApi: AgentRequestHandler;

  constructor(options: FleetBackupsOptions, components: FleetBackupsComponents) {
    this.#options = options;
    this.#components = components;
    this.#scheduler = new BackupScheduler(
      { ...options.schedule, stateFile: join(options.dataDir, "backups", "schedule.json") },
      {
        clock: components.clock,
        random: components.random,
        logger: components.logger,
        run: async (job) => {
          const report = await this.#exclusive(() =>
            this.#backupLevel(job.policy, job.level as BackupLevelName),
          );
          if (report instanceof Error) throw report;
        },
        runGroup: async (policy, levels) => {
          const runs = await this.#exclusive(() =>
            this.#backupGroup(policy, levels as BackupLevelName[]),
          );
          if (runs instanceof Error) throw runs;
          return Object.fromEntries(
            runs.map((run): [string, LevelOutcome] => [
              run.level,
              run.outcome === "failed"
                ? {
                    ok: false,
                    error: run.message ?? "failed",
                    ...(run.pendingCopy === undefined ? {} : { pendingCopy: run.pendingCopy }),
                  }
                : { ok: true },
            ]),
          );
        },
        copy: async (pending) => {
          const outcome = await this.#exclusive(() => this.#copyPending(pending));
          if (outcome instanceof Error) throw outcome;
        },
      },
    );
    const shards = new DirectoryBlobStore(join(options.dataDir, "backups", "shards"));
    // Peers prove who they are with signed requests; a refused one is logged and reported by
    // `peers` and answered 403 here.
    const peers = components.peers;
    const handler = createBlobStoreHttpHandler(shards, {
      authorize:
        peers === undefined
          ? allowEveryRequest
          : (request) => peers.authorize(request, contentSha256Header).ok,
    });
    this.blobApi = (request, response) => {
      if (!handler.handles(request.url ?? "")) return false;
      handler(request, response);
      return true;
    };
  }

  start(): void {
    this.#scheduler.start();
  }

  async close(): Promise<void> {
    await this.#scheduler.close();
    await this.#queue.catch(() => {});
  }

  /** The scheduler's state per `policy/level`, for tests and diagnostics. */
  scheduleState() {
    return this.#scheduler.state();
  }

  async handle(message: ServerBackupMessage): Promise<void> {
    switch (message.type) {
      case "backup-policies": {
        this.#policies = message.policies;
        if (JSON.stringify(this.#targets) !== JSON.stringify(message.targets))
          this.#notConfigured.clear();
        this.#targets = message.targets;
        this.#restorePoints = message.restorePoints;
        const jobs: ScheduledJob[] = message.policies.flatMap((policy) =>
          policy.levels.map((level) => ({
            policy: policy.name,
            level: level.level,
            intervalMs: level.intervalSeconds * 1_000,
          })),
        );
        this.#scheduler.setJobs(jobs);
        await this.#writeConfigurationView().catch((error: unknown) =>
          this.#components.logger.warn(
            { err: (error as Error).message },
            "could not save backup policies",
          ),
        );
        return;
      }
      case "backup-command": {
        const result = await this.#command(message.id, message.command);
        this.#components.send({ type: "backup-command-result", ...result });
        return;
      }
    }
  }

  /**
   * Failover's `sync-data` from source "backup": the newest snapshot of the service's data on
   * a tier another node can read (EDGE_CLUSTER, REGIONAL, CLOUD; the old primary's EDGE_LOCAL
   * went down with it) is restored into its data dir here. The server keeps the restore points
   * of every service up to date on every agent, so this needs no request to the server.
   */
  async restoreServiceData(
    service: string,
  ): Promise<{ ok: true; dataAgeMs: number; from: string } | { ok: false; problem: string }> {
    const points = [...(this.#restorePoints[service] ?? [])].sort(
      (left, right) => right.atMs - left.atMs,
    );
    if (points.length === 0)
      return { ok: false, problem: `no fleet backup of ${service} exists yet` };
    const problems: string[] = [];
    for (const point of points) {
      const targetDir = this.#targetDirFor(point.policy, point.dataType, service);
      const outcome = await this.#exclusive(() =>
        this.#restore(point.repository, point.snapshotId, point.dataType, targetDir),
      );
      if (!(outcome instanceof Error))
        return {
          ok: true,
          dataAgeMs: Math.max(0, this.#components.clock.nowMs() - point.atMs),
          from: `${point.repository.level} snapshot ${point.snapshotId.slice(0, 8)} of ${point.repository.owner}`,
        };
      problems.push(
        `${point.repository.level} ${point.snapshotId.slice(0, 8)}: ${outcome.message}`,
      );
      if (problems.length >= 3) break;
    }
    return {
      ok: false,
      problem: `no backup of ${service} could be restored (${problems.join("; ")})`,
    };
  }

  /** Where a data type of `service` goes on this node: its data dir, or the source's subdirectory. */
  #targetDirFor(policyName: string, dataType: string, service: string): string {
    const source = this.#policies.find((policy) => policy.name === policyName)?.sources[dataType];
    const dataDir = this.#components.services.dataDirOf(service);
    return source?.type === "service_data" && source.path !== null
      ? join(dataDir, source.path)
      : dataDir;
  }

  /** Runs `work` after everything queued before it; its failure comes back as a value. */
  #exclusive<Result>(work: () => Promise<Result>): Promise<Result | Error> {
    const next = this.#queue
      .then(work, work)
      .catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    this.#queue = next;
    return next;
  }

  #tierOperations(): Promise<TierOperations> {
    this.#operations ??= import("./tier-operations.ts");
    return this.#operations;
  }

  #context(): TierContext {
    if (this.#targets === undefined)
      throw new Error("the server has not sent the backup targets yet");
    const serverCaPem = this.#components.serverCa?.();
    return {
      nodeId: this.#options.nodeId,
      dataDir: this.#options.dataDir,
      targets: this.#targets,
      repositoryOptions: this.#options.repositoryOptions ?? this.#defaultRepositoryOptions(),
      requestTimeoutMs: this.#options.requestTimeoutMs,
      logger: this.#components.logger,
      ...(this.#components.peers === undefined ? {} : { signRequest: this.#components.peers.sign }),
      ...(serverCaPem === undefined ? {} : { serverCaPem }),
    };
  }

  #defaultRepositoryOptions(): RepositoryOptions {
    // Set by #tierOperations' module; read lazily so the engine is not loaded at startup.
    return this.#loadedDefaults as RepositoryOptions;
  }

  #loadedDefaults: RepositoryOptions | undefined;

  async #ensureEngine(): Promise<TierOperations> {
    const operations = await this.#tierOperations();
    if (this.#loadedDefaults === undefined)
      this.#loadedDefaults = (
        await import("../../runtime/backup/repository.ts")
      ).repositoryDefaults;
    return operations;
  }

  #refOf(level: BackupLevelName, operations: TierOperations): BackupRepositoryRef {
    const targets = this.#targets;
    return {
      level,
      owner: this.#options.nodeId,
      holders:
        level === "EDGE_CLUSTER" && targets !== undefined
          ? operations.clusterHoldersOf(this.#options.nodeId, targets)
          : [],
    };
  }

  /** The sources of `policy` this node holds now. */
  #sourcesOf(policy: BackupPolicyDefinition): {
    staged: StagedSource[];
    services: Record<string, string>;
    warnings: string[];
  } {
    const { services } = this.#components;
    const running = new Set(services.runningServices());
    const staged: StagedSource[] = [];
    const owners: Record<string, string> = {};
    const warnings: string[] = [];
    for (const dataType of policy.dataTypes) {
      const source = policy.sources[dataType];
      if (source === undefined) continue;
      switch (source.type) {
        case "service_data": {
          if (!running.has(source.service)) break;
          const dataDir = services.dataDirOf(source.service);
          staged.push({
            dataType,
            path: source.path === null ? dataDir : join(dataDir, source.path),
          });
          owners[dataType] = source.service;
          break;
        }
        case "configuration":
          staged.push({ dataType, path: join(this.#options.dataDir, "backups", "configuration") });
          break;
        case "logs":
          staged.push({
            dataType,
            path:
              source.service === null
                ? services.logDir
                : join(services.logDir, `${source.service}.log`),
          });
          break;
        case "sqlite":
          staged.push({
            dataType,
            path: isAbsolute(source.path) ? source.path : join(this.#options.dataDir, source.path),
          });
          break;
        case "metrics":
          warnings.push(`${dataType}: metrics history export is not implemented; skipped`);
          break;
      }
    }
    return { staged, services: owners, warnings };
  }

  /** The agent's own configuration files and the policies it runs, as the `configuration` source. */
  async #writeConfigurationView(): Promise<void> {
    const directory = join(this.#options.dataDir, "backups", "configuration");
    await mkdir(directory, { recursive: true });
    for (const name of ["agent.json", "generations.json"]) {
      await copyFile(join(this.#options.dataDir, name), join(directory, name)).catch(() => {});
    }
    await writeFile(
      join(directory, "backup-policies.json"),
      `${JSON.stringify(this.#policies, null, 2)}\n`,
    );
  }

  /** One backup of `policy` at `level`, read from the sources; reports it either way. */
  async #backupLevel(
    policyName: string,
    level: BackupLevelName,
  ): Promise<BackupSnapshotReport | Skipped> {
    const { clock, logger, send } = this.#components;
    const atMs = clock.nowMs();
    try {
      const policy = this.#policies.find((candidate) => candidate.name === policyName);
      if (policy === undefined) throw new Error(`unknown backup policy ${policyName}`);
      const nothingHere = {
        skipped: `nothing of policy ${policy.name} lives on ${this.#options.nodeId}`,
      };
      const { staged, services, warnings } = this.#sourcesOf(policy);
      if (staged.length === 0) return nothingHere;
      const operations = await this.#ensureEngine();
      const context = this.#context();
      const staging = await stageSources(
        staged,
        join(this.#options.dataDir, "backups", "staging", policy.name),
      );
      for (const warning of [...warnings, ...staging.warnings])
        logger.warn({ policy: policy.name, level }, warning);
      if (staging.paths.length === 0) return nothingHere;
      const ref = this.#refOf(level, operations);
      const result = await operations.backupToTier(ref, context, {
        paths: staging.paths,
        policy: policy.name,
        timeMs: atMs,
        onWarning: (message) => logger.warn({ policy: policy.name, level }, message),
      });
      const report: BackupSnapshotReport = {
        snapshotId: result.snapshotId,
        treeId: result.treeId,
        policy: policy.name,
        level,
        node: this.#options.nodeId,
        holders: ref.holders,
        atMs: result.atMs,
        durationMs: result.durationMs,
        sizeBytes: result.sizeBytes,
        addedBytes: result.addedBytes,
        filesNew: result.filesNew,
        filesUnchanged: result.filesUnchanged,
        dataTypes: staging.dataTypes,
        services: Object.fromEntries(
          Object.entries(services).filter(([dataType]) => staging.dataTypes.includes(dataType)),
        ),
        // The engine always encrypts (AES-256-GCM): encryption_required is always met.
        encrypted: true,
      };
      send({ type: "backup-completed", snapshot: report });
      logger.info(
        {
          policy: policy.name,
          level,
          snapshot: report.snapshotId.slice(0, 8),
          addedBytes: report.addedBytes,
        },
        "backup completed",
      );
      return report;
    } catch (error) {
      const reason = (error as Error).message.slice(0, reasonCharactersMax);
      const key = `${policyName}/${level}`;
      if ((error as Error).name === "TierNotConfiguredError") {
        // Reported once; the level waits for its next interval (or new targets) quietly.
        if (!this.#notConfigured.has(key)) {
          this.#notConfigured.add(key);
          logger.warn({ policy: policyName, level }, reason);
          send({ type: "backup-failed", policy: policyName, level, atMs, reason });
        }
        return { skipped: reason };
      }
      send({ type: "backup-failed", policy: policyName, level, atMs, reason });
      throw error;
    }
  }

  /** One level backed up on its own, as a run's report. */
  async #directRun(policyName: string, level: BackupLevelName): Promise<LevelRun> {
    try {
      const outcome = await this.#backupLevel(policyName, level);
      return "skipped" in outcome
        ? otherRun(level, "skipped", outcome.skipped)
        : backupRun(outcome);
    } catch (error) {
      return otherRun(level, "failed", (error as Error).message);
    }
  }

  /**
   * Several levels of `policy` at once: back up to the first tier that takes it (EDGE_LOCAL
   * normally), then copy that snapshot to the others, so the sources are read once. A tier
   * that cannot be reached gets a pending copy (the scheduler retries it), and so does a level
   * whose own backup failed before another tier took the snapshot. Returns the levels in order.
   */
  async #backupGroup(policyName: string, levels: BackupLevelName[]): Promise<LevelRun[]> {
    const ordered = [...levels].sort(
      (left, right) => levelOrder.indexOf(left) - levelOrder.indexOf(right),
    );
    const runs: LevelRun[] = [];
    let source: BackupSnapshotReport | undefined;
    for (const level of ordered) {
      if (source !== undefined) {
        runs.push(await this.#copyRun(policyName, level, source));
        continue;
      }
      const run = await this.#directRun(policyName, level);
      runs.push(run);
      if (run.snapshot === undefined) continue;
      source = run.snapshot;
      const pendingCopy = {
        fromLevel: source.level,
        snapshotId: source.snapshotId,
        sinceMs: source.atMs,
      };
      for (const failed of runs) if (failed.outcome === "failed") failed.pendingCopy = pendingCopy;
    }
    return runs;
  }

  /** Copies the run's `source` snapshot to `level`, as a run's report. */
  async #copyRun(
    policyName: string,
    level: BackupLevelName,
    source: BackupSnapshotReport,
  ): Promise<LevelRun> {
    const pendingCopy = {
      fromLevel: source.level,
      snapshotId: source.snapshotId,
      sinceMs: source.atMs,
    };
    try {
      const copied = await this.#copyPending({ policy: policyName, level, ...pendingCopy });
      return {
        level,
        outcome: "copy",
        fromLevel: source.level,
        snapshotId: copied.snapshot.snapshotId,
        durationMs: copied.snapshot.durationMs,
        sizeBytes: copied.snapshot.sizeBytes,
        addedBytes: copied.snapshot.addedBytes,
        blobsCopied: copied.blobsCopied,
        message: null,
        snapshot: copied.snapshot,
      };
    } catch (error) {
      const message = (error as Error).message;
      return (error as Error).name === "TierNotConfiguredError"
        ? otherRun(level, "skipped", message)
        : otherRun(level, "failed", message, pendingCopy);
    }
  }

  /** Copies a snapshot of this node from one tier to another and reports it like a backup. */
  async #copyPending(
    pending: PendingCopy,
  ): Promise<{ snapshot: BackupSnapshotReport; blobsCopied: number }> {
    const { logger, send } = this.#components;
    const level = pending.level as BackupLevelName;
    const atMs = this.#components.clock.nowMs();
    try {
      const operations = await this.#ensureEngine();
      const copies: typeof TierCopiesModule = await import("./tier-copies.ts");
      const policy = this.#policies.find((candidate) => candidate.name === pending.policy);
      if (policy === undefined) throw new Error(`unknown backup policy ${pending.policy}`);
      const context = this.#context();
      const to = this.#refOf(level, operations);
      const result = await copies.copyBetweenTiers(
        this.#refOf(pending.fromLevel as BackupLevelName, operations),
        to,
        context,
        pending.snapshotId,
      );
      const dataTypes = result.paths.map((path) => path.split("/").pop() ?? path);
      const services: Record<string, string> = {};
      for (const dataType of dataTypes) {
        const source = policy.sources[dataType];
        if (source?.type === "service_data") services[dataType] = source.service;
      }
      const report: BackupSnapshotReport = {
        snapshotId: result.snapshotId,
        treeId: result.treeId,
        policy: policy.name,
        level,
        node: this.#options.nodeId,
        holders: to.holders,
        atMs: result.atMs,
        durationMs: Math.round(result.durationMs),
        sizeBytes: result.sizeBytes,
        addedBytes: result.addedBytes,
        filesNew: result.filesNew,
        filesUnchanged: result.filesUnchanged,
        dataTypes,
        services,
        encrypted: true,
      };
      send({ type: "backup-completed", snapshot: report });
      logger.info(
        {
          policy: policy.name,
          level,
          from: pending.fromLevel,
          snapshot: report.snapshotId.slice(0, 8),
          blobsCopied: result.blobsCopied,
          idsRewritten: result.idsRewritten,
        },
        "snapshot copied",
      );
      return { snapshot: report, blobsCopied: result.blobsCopied };
    } catch (error) {
      const name = (error as Error).name;
      const reason = (error as Error).message.slice(0, reasonCharactersMax);
      if (name === "TierNotConfiguredError") {
        const key = `${pending.policy}/${level}`;
        if (!this.#notConfigured.has(key)) {
          this.#notConfigured.add(key);
          logger.warn({ policy: pending.policy, level }, reason);
          send({ type: "backup-failed", policy: pending.policy, level, atMs, reason });
        }
      } else {
        send({
          type: "backup-failed",
          policy: pending.policy,
          level,
          atMs,
          reason: `copy of ${pending.fromLevel} snapshot ${pending.snapshotId.slice(0, 8)}: ${reason}`,
        });
      }
      throw error;
    }
  }

  async #restore(
    ref: BackupRepositoryRef,
    snapshotId: string,
    entry: string | null,
    targetDir: string,
  ): Promise<{ filesRestored: number; bytesRestored: number }> {
    const operations = await this.#ensureEngine();
    return operations.restoreFromTier(ref, this.#context(), { snapshotId, targetDir, entry });
  }

  #levelsInUse(): BackupLevelName[] {
    return [
      ...new Set(this.#policies.flatMap((policy) => policy.levels.map((level) => level.level))),
    ];
  }

  async #command(id: number, command: BackupCommand): Promise<BackupCommandResult> {
    const fail = (error: unknown): BackupCommandResult => ({
      id,
      ok: false,
      message: (error as Error).message.slice(0, reasonCharactersMax),
    });
    switch (command.type) {
      case "run": {
        const policy = this.#policies.find((candidate) => candidate.name === command.policy);
        if (policy === undefined) return fail(new Error(`unknown backup policy ${command.policy}`));
        const levels = policy.levels
          .map((level) => level.level)
          .filter((level) => command.level === null || level === command.level);
        if (levels.length === 0)
          return fail(new Error(`policy ${policy.name} has no level ${command.level ?? ""}`));
        // One level: backed up directly; several: backed up once, copied to the others.
        const runs = await this.#exclusive(async () =>
          levels.length === 1
            ? [await this.#directRun(policy.name, levels[0] as BackupLevelName)]
            : this.#backupGroup(policy.name, levels),
        );
        if (runs instanceof Error) return fail(runs);
        for (const run of runs)
          if (run.pendingCopy !== undefined)
            this.#scheduler.deferCopy(
              { policy: policy.name, level: run.level, ...run.pendingCopy },
              run.message ?? "copy failed",
            );
        const skipped = new Map<string, BackupLevelName[]>();
        for (const run of runs)
          if (run.outcome === "skipped")
            skipped.set(run.message ?? "", [...(skipped.get(run.message ?? "") ?? []), run.level]);
        const notes = [
          ...runs.flatMap((run) =>
            run.outcome === "failed" ? [`${run.level}: ${run.message ?? "failed"}`] : [],
          ),
          ...[...skipped].map(([reason, skippedLevels]) =>
            skippedLevels.length === runs.length
              ? reason
              : `skipped ${skippedLevels.join(", ")}: ${reason}`,
          ),
        ];
        return {
          id,
          ok: runs.every((run) => run.outcome !== "failed"),
          snapshots: runs.flatMap((run) => (run.snapshot === undefined ? [] : [run.snapshot])),
          levels: runs.map(levelReport),
          ...(notes.length > 0 ? { message: notes.join("; ").slice(0, reasonCharactersMax) } : {}),
        };
      }
      case "restore": {
        const targetDir =
          command.service !== null
            ? this.#components.services.dataDirOf(command.service)
            : command.targetDir;
        if (targetDir === null) return fail(new Error("give a target directory or a service"));
        const outcome = await this.#exclusive(() =>
          this.#restore(command.repository, command.snapshotId, command.entry, targetDir),
        );
        if (outcome instanceof Error) return fail(outcome);
        return {
          id,
          ok: true,
          message: `restored into ${targetDir}`,
          filesRestored: outcome.filesRestored,
          bytesRestored: outcome.bytesRestored,
        };
      }
      case "verify": {
        const verified: BackupVerifyReport[] = [];
        for (const level of this.#levelsInUse()) {
          const outcome = await this.#exclusive(async () => {
            const operations = await this.#ensureEngine();
            return operations.verifyTier(
              this.#refOf(level, operations),
              this.#context(),
              command.readData,
            );
          });
          // A tier the fleet has not configured has nothing to check.
          if (outcome instanceof Error && outcome.name === "TierNotConfiguredError") continue;
          verified.push(
            outcome instanceof Error
              ? {
                  node: this.#options.nodeId,
                  level,
                  ok: false,
                  snapshots: 0,
                  packsRead: 0,
                  errors: [outcome.message.slice(0, 2_000)],
                }
              : { node: this.#options.nodeId, level, ...outcome },
          );
        }
        return { id, ok: verified.every((report) => report.ok), verified };
      }
      case "forget": {
        const outcome = await this.#exclusive(async () => {
          const operations = await this.#ensureEngine();
          return operations.forgetInTier(
            this.#refOf(command.level, operations),
            this.#context(),
            command.snapshotIds,
          );
        });
        if (outcome instanceof Error) return fail(outcome);
        return { id, ok: true, message: `forgot ${outcome.removed} snapshots` };
      }
    }
  }
}
