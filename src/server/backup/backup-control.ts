// The server's part of fleet backups (docs/adr/0005-fleet-backups.md): the fleet's repository
// key, the policies and tier targets pushed to every agent, the catalogue of snapshots agents
// report (a Store document), expiry by each level's retentionDays, and the operator's run,
// restore and verify commands carried to agents over their channel.

import type {
  BackupFailureView,
  BackupListResponse,
  BackupRestoreRequest,
  BackupRestoreResponse,
  BackupRunRequest,
  BackupRunResponse,
  BackupSnapshotView,
  BackupVerifyResponse,
  NodeRecord,
} from "../../api/contract.ts";
import type {
  AgentBackupMessage,
  BackupCommand,
  BackupCommandResult,
  BackupPolicyDefinition,
  BackupRestorePoint,
  BackupTargets,
} from "../../api/service-messages.ts";
import { restorePointsPerServiceMax } from "../../api/service-messages.ts";
import { expiredSnapshots } from "../../core/backup/fleet-schedule.ts";
import type { BackupPolicySpec, BackupSpec } from "../../core/spec/backup-schema.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import type { Store } from "../../ports/store.ts";
import type { KeyRotationReport } from "../../runtime/security/data-dir-keys.ts";
import type { SecretFiles } from "../../runtime/security/secret-files.ts";
import type { EventLog } from "../event-log.ts";
import { HttpError } from "../http-error.ts";
import type { AgentLinks } from "../services/agent-links.ts";
import {
  loadOrCreateBackupPasswords,
  rotateBackupPassword,
  type BackupPasswordVersion,
} from "./fleet-backup-passwords.ts";

/** Snapshots the catalogue keeps at most; the oldest are dropped beyond it. */
export const catalogueSnapshotsMax = 100_000;
/** Commands awaiting an agent's answer at once. */
export const backupCommandsPendingMax = 1_024;
const catalogueDocument = "backups.catalogue";

export interface CloudTarget {
  url: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface BackupControlOptions {
  /** The spec's backup section; undefined: no policies (on-demand commands fail clearly). */
  spec: BackupSpec | undefined;
  /** The server's sealed secret files: the fleet's repository passwords are backup.key. */
  secrets: SecretFiles;
  /** The server's own blob API serves REGIONAL (`--blob-dir`). */
  regionalEnabled: boolean;
  cloud: CloudTarget | null;
  /** How often expired snapshots are looked for. */
  expiryIntervalMs: number;
  /** An agent's backup, restore or check gives up after this long. */
  commandTimeoutMs: number;
}

export const backupControlDefaults = {
  expiryIntervalMs: 3_600_000,
  commandTimeoutMs: 30 * 60_000,
} as const;

export interface BackupControlComponents {
  clock: Clock;
  logger: Logger;
  store: Store;
  events: EventLog;
  links: AgentLinks;
  nodes: () => Iterable<NodeRecord>;
  /** The node serving a service now, or null. */
  nodeOfService: (service: string) => string | null;
}

interface Pending {
  nodeId: string;
  resolve: (result: BackupCommandResult) => void;
  cancel: CancelTimer;
}

function policyDefinition(policy: BackupPolicySpec): BackupPolicyDefinition {
  const sources: BackupPolicyDefinition["sources"] = {};
  for (const [dataType, source] of Object.entries(policy.sources)) {
    switch (source.type) {
      case "service_data":
        sources[dataType] = {
          type: "service_data",
          service: source.service,
          path: source.path ?? null,
        };
        break;
      case "logs":
        sources[dataType] = { type: "logs", service: source.service ?? null };
        break;
      case "configuration":
      case "metrics":
        sources[dataType] = { type: source.type };
        break;
      case "sqlite":
        sources[dataType] = { type: "sqlite", path: source.path };
        break;
    }
  }
  return {
    name: policy.name,
    dataTypes: [...policy.dataTypes],
    sources,
    levels: policy.levels.map((level) => ({ ...level })),
    encryptionRequired: policy.encryptionRequired,
  };
}

export class BackupControl {
  readonly #options: BackupControlOptions;
  readonly #components: BackupControlComponents;
  #passwords: BackupPasswordVersion[];
  readonly #policies: BackupPolicyDefinition[];
  #snapshots: BackupSnapshotView[] = [];
  #failures = new Map<string, BackupFailureView>();
  #serverUrl: string | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextCommandId = 1;
  #saving: Promise<void> = Promise.resolve();
  #cancelExpiry: CancelTimer | undefined;

  constructor(options: BackupControlOptions, components: BackupControlComponents) {
    this.#options = options;
    this.#components = components;
    this.#passwords = loadOrCreateBackupPasswords(options.secrets, components.clock.nowMs());
    this.#policies = (options.spec?.policies ?? []).map(policyDefinition);
  }

  async start(): Promise<void> {
    const json = await this.#components.store.loadDocument(catalogueDocument);
    if (json !== undefined) {
      const saved = JSON.parse(json) as {
        snapshots?: BackupSnapshotView[];
        failures?: BackupFailureView[];
      };
      this.#snapshots = saved.snapshots ?? [];
      for (const failure of saved.failures ?? []) this.#failures.set(failureKey(failure), failure);
    }
    const loop = () => {
      this.#cancelExpiry = this.#components.clock.schedule(this.#options.expiryIntervalMs, () => {
        this.expire()
          .catch((error: unknown) =>
            this.#components.logger.error({ err: error }, "backup expiry failed"),
          )
          .finally(loop);
      });
    };
    loop();
  }

  async close(): Promise<void> {
    this.#cancelExpiry?.();
    for (const [id, pending] of this.#pending)
      this.#settle(id, { id, ok: false, message: "the server is stopping" }, pending.nodeId);
    await this.#saving;
  }

  /** The server's URL, once it listens: agents reach the REGIONAL blob API there. */
  setServerUrl(url: string): void {
    this.#serverUrl = url;
  }

  #targets(): BackupTargets {
    const peers: Record<string, string> = {};
    for (const record of this.#components.nodes())
      if (record.agentUrl !== null) peers[record.id] = record.agentUrl;
    const cluster = this.#options.spec?.tiers.edgeCluster;
    const newestFirst = this.#passwords.map((version) => version.password).reverse();
    return {
      password: newestFirst[0] ?? "",
      previousPasswords: newestFirst.slice(1),
      peers,
      clusterDataShards: cluster?.dataShards ?? 4,
      clusterParityShards: cluster?.parityShards ?? 2,
      regionalUrl: this.#options.regionalEnabled ? this.#serverUrl : null,
      cloud: this.#options.cloud,
    };
  }

  /**
   * A new fleet backup password, pushed to every agent with the earlier ones: each agent
   * re-wraps a repository's key under it the next time it opens the repository.
   */
  rotatePassword(nowMs: number): KeyRotationReport {
    const report = rotateBackupPassword(this.#options.secrets, nowMs);
    this.#passwords = loadOrCreateBackupPasswords(this.#options.secrets, nowMs);
    this.#pushPolicies();
    return report;
  }

  /** An agent connected: every agent gets the policies again, since the peers changed. */
  agentConnected(_nodeId: string): void {
    this.#pushPolicies();
  }

  /** Per service, its newest snapshots on tiers that outlive their node, newest first. */
  #restorePoints(): Record<string, BackupRestorePoint[]> {
    const points: Record<string, BackupRestorePoint[]> = {};
    const newestFirst = [...this.#snapshots].sort((left, right) => right.atMs - left.atMs);
    for (const snapshot of newestFirst) {
      if (snapshot.level === "EDGE_LOCAL") continue;
      for (const [dataType, service] of Object.entries(snapshot.services)) {
        const list = (points[service] ??= []);
        if (list.length >= restorePointsPerServiceMax) continue;
        if (list.some((point) => point.snapshotId === snapshot.snapshotId)) continue;
        list.push({
          repository: { level: snapshot.level, owner: snapshot.node, holders: snapshot.holders },
          snapshotId: snapshot.snapshotId,
          policy: snapshot.policy,
          dataType,
          atMs: snapshot.atMs,
        });
      }
    }
    return points;
  }

  #pushPolicies(): void {
    const message = {
      type: "backup-policies" as const,
      policies: this.#policies,
      targets: this.#targets(),
      restorePoints: this.#restorePoints(),
    };
    for (const nodeId of [...this.#components.links.nodes()])
      this.#components.links.send(nodeId, message);
  }

  agentMessage(nodeId: string, message: AgentBackupMessage): void {
    switch (message.type) {
      case "backup-completed": {
        const snapshot = { ...message.snapshot, node: nodeId };
        this.#snapshots = this.#snapshots.filter(
          (known) => known.snapshotId !== snapshot.snapshotId,
        );
        this.#snapshots.push(snapshot);
        if (this.#snapshots.length > catalogueSnapshotsMax)
          this.#snapshots.splice(0, this.#snapshots.length - catalogueSnapshotsMax);
        this.#failures.delete(failureKey(snapshot));
        this.#save();
        if (snapshot.level !== "EDGE_LOCAL" && Object.keys(snapshot.services).length > 0)
          this.#pushPolicies();
        this.#components.events.publish({ type: "backup.completed", ...snapshot });
        return;
      }
      case "backup-failed": {
        const failure: BackupFailureView = {
          node: nodeId,
          policy: message.policy,
          level: message.level,
          reason: message.reason,
          atMs: message.atMs,
        };
        this.#failures.set(failureKey(failure), failure);
        this.#save();
        this.#components.events.publish({ type: "backup.failed", ...failure });
        return;
      }
      case "backup-command-result": {
        this.#settle(message.id, message, nodeId);
        return;
      }
    }
  }

  list(filter: { service?: string; policy?: string; node?: string } = {}): BackupListResponse {
    const snapshots = this.#snapshots
      .filter(
        (snapshot) =>
          (filter.service === undefined ||
            Object.values(snapshot.services).includes(filter.service)) &&
          (filter.policy === undefined || snapshot.policy === filter.policy) &&
          (filter.node === undefined || snapshot.node === filter.node),
      )
      .sort((left, right) => right.atMs - left.atMs);
    return {
      snapshots,
      failures: [...this.#failures.values()],
      serverTimeMs: this.#components.clock.nowMs(),
    };
  }

  /** Runs a policy now on one node, or on every connected node. */
  async run(request: BackupRunRequest): Promise<BackupRunResponse> {
    if (!this.#policies.some((policy) => policy.name === request.policy))
      throw new HttpError(
        404,
        "unknown_policy",
        `no backup policy ${request.policy}; the fleet spec has ${this.#policies.map((policy) => policy.name).join(", ") || "none"}`,
      );
    const nodes =
      request.node !== undefined ? [request.node] : [...this.#components.links.nodes()].sort();
    if (nodes.length === 0) throw new HttpError(503, "no_agents", "no agent is connected");
    const results = await Promise.all(
      nodes.map(async (node) => {
        const result = await this.#command(node, {
          type: "run",
          policy: request.policy,
          level: request.level ?? null,
        });
        return {
          node,
          ok: result.ok,
          message: result.message ?? null,
          snapshots: (result.snapshots ?? []).map((snapshot) => ({ ...snapshot, node })),
          levels: result.levels ?? [],
        };
      }),
    );
    return { results };
  }

  /** The catalogued snapshot with this id or unique id prefix (at least 8 characters). */
  find(idOrPrefix: string): BackupSnapshotView {
    if (!/^[0-9a-f]{8,64}$/.test(idOrPrefix))
      throw new HttpError(
        400,
        "invalid_snapshot_id",
        "expected a snapshot id: 8 to 64 hex characters",
      );
    const matches = this.#snapshots.filter((snapshot) =>
      snapshot.snapshotId.startsWith(idOrPrefix),
    );
    if (matches.length === 0)
      throw new HttpError(
        404,
        "unknown_snapshot",
        `no catalogued snapshot ${idOrPrefix}; see edgeward backup list`,
      );
    if (matches.length > 1)
      throw new HttpError(
        409,
        "ambiguous_snapshot",
        `${idOrPrefix} matches ${matches.length} snapshots; give more of the id`,
      );
    return matches[0] as BackupSnapshotView;
  }

  async restore(idOrPrefix: string, request: BackupRestoreRequest): Promise<BackupRestoreResponse> {
    const snapshot = this.find(idOrPrefix);
    let node = request.node;
    let entry: string | null = null;
    if (request.service !== undefined) {
      const service = request.service;
      const dataType = Object.entries(snapshot.services).find(
        ([, owner]) => owner === service,
      )?.[0];
      if (dataType === undefined)
        throw new HttpError(
          400,
          "service_not_in_snapshot",
          `snapshot ${snapshot.snapshotId.slice(0, 8)} holds no data of ${service} (it holds ${snapshot.dataTypes.join(", ")})`,
        );
      entry = dataType;
      node ??= this.#components.nodeOfService(service) ?? undefined;
      if (node === undefined)
        throw new HttpError(409, "service_unplaced", `${service} runs nowhere now; give node`);
    }
    node ??= snapshot.node;
    if (snapshot.level === "EDGE_LOCAL" && node !== snapshot.node)
      throw new HttpError(
        409,
        "local_snapshot",
        `an EDGE_LOCAL snapshot can only be restored on ${snapshot.node}; pick a snapshot of another level`,
      );
    const result = await this.#command(node, {
      type: "restore",
      repository: { level: snapshot.level, owner: snapshot.node, holders: snapshot.holders },
      snapshotId: snapshot.snapshotId,
      entry,
      targetDir: request.target ?? null,
      service: request.service ?? null,
    });
    return {
      node,
      ok: result.ok,
      message: result.message ?? null,
      snapshotId: snapshot.snapshotId,
      filesRestored: result.filesRestored ?? 0,
      bytesRestored: result.bytesRestored ?? 0,
    };
  }

  async verify(readData: boolean): Promise<BackupVerifyResponse> {
    const nodes = [...this.#components.links.nodes()].sort();
    const answers = await Promise.all(
      nodes.map(async (node) => ({
        node,
        result: await this.#command(node, { type: "verify", readData }),
      })),
    );
    const reports = answers.flatMap(({ result }) => result.verified ?? []);
    const unreachable = answers
      .filter(({ result }) => result.verified === undefined)
      .map(({ node, result }) => ({ node, ok: false, message: result.message ?? null }));
    return {
      ok: unreachable.length === 0 && reports.every((report) => report.ok),
      reports,
      unreachable,
    };
  }

  /** Forgets snapshots past their level's retention on their nodes; returns how many went. */
  async expire(): Promise<number> {
    const retentionDaysOf = (policyName: string, level: string) =>
      this.#policies
        .find((policy) => policy.name === policyName)
        ?.levels.find((settings) => settings.level === level)?.retentionDays;
    const expired = expiredSnapshots(
      this.#snapshots,
      retentionDaysOf,
      this.#components.clock.nowMs(),
    );
    const groups = new Map<string, BackupSnapshotView[]>();
    for (const snapshot of expired) {
      const key = `${snapshot.node}\u0000${snapshot.level}`;
      groups.set(key, [...(groups.get(key) ?? []), snapshot]);
    }
    let removed = 0;
    for (const snapshots of groups.values()) {
      const { node, level } = snapshots[0] as BackupSnapshotView;
      // An offline node is asked again at the next expiry pass.
      if (!this.#components.links.connected(node)) continue;
      const snapshotIds = snapshots.map((snapshot) => snapshot.snapshotId);
      const result = await this.#command(node, { type: "forget", level, snapshotIds });
      if (!result.ok) {
        this.#components.logger.warn(
          { node, level, err: result.message },
          "could not expire snapshots",
        );
        continue;
      }
      const gone = new Set(snapshotIds);
      this.#snapshots = this.#snapshots.filter((snapshot) => !gone.has(snapshot.snapshotId));
      removed += snapshotIds.length;
      this.#components.events.publish({
        type: "backup.expired",
        node,
        level,
        snapshotIds,
        atMs: this.#components.clock.nowMs(),
      });
    }
    if (removed > 0) {
      this.#save();
      this.#pushPolicies();
    }
    return removed;
  }

  #command(nodeId: string, command: BackupCommand): Promise<BackupCommandResult> {
    const id = this.#nextCommandId++;
    if (this.#pending.size >= backupCommandsPendingMax)
      return Promise.resolve({
        id,
        ok: false,
        message: "too many backup commands are running; retry later",
      });
    return new Promise((resolve) => {
      const cancel = this.#components.clock.schedule(this.#options.commandTimeoutMs, () =>
        this.#settle(
          id,
          {
            id,
            ok: false,
            message: `no answer from ${nodeId} in ${this.#options.commandTimeoutMs} ms`,
          },
          nodeId,
        ),
      );
      this.#pending.set(id, { nodeId, resolve, cancel });
      if (!this.#components.links.send(nodeId, { type: "backup-command", id, command }))
        this.#settle(id, { id, ok: false, message: `agent ${nodeId} is not connected` }, nodeId);
    });
  }

  #settle(id: number, result: BackupCommandResult, nodeId: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.nodeId !== nodeId) return;
    this.#pending.delete(id);
    pending.cancel();
    pending.resolve(result);
  }

  #save(): void {
    const json = JSON.stringify({
      snapshots: this.#snapshots,
      failures: [...this.#failures.values()],
    });
    this.#saving = this.#saving
      .then(() => this.#components.store.saveDocument(catalogueDocument, json))
      .catch((error: unknown) =>
        this.#components.logger.error({ err: error }, "could not save the backup catalogue"),
      );
  }
}

function failureKey(entry: { node: string; policy: string; level: string }): string {
  return `${entry.node}\u0000${entry.policy}\u0000${entry.level}`;
}
