// What the server and an agent say to each other about services, over the agent's persistent
// channel: the definitions and assignments the server pushes, the step commands of a failover,
// their results, the routing table the agents' proxies follow, and the instances' status.
// Plain types only: the server validates what agents send with the zod schemas in
// service-message-schemas.ts; the agent checks what the server sends by hand (it keeps zod out
// of memory).

import type { FirewallRule } from "../core/security/firewall.ts";
import type { PeerRejection } from "../core/security/peer-request.ts";

/** How the agent checks a service (the spec's healthCheck, with its defaults applied). */
export type HealthCheckDefinition =
  | { type: "http"; path: string; intervalMs: number; timeoutMs: number; threshold: number }
  | { type: "tcp"; intervalMs: number; timeoutMs: number; threshold: number }
  | {
      type: "exec";
      command: string[];
      intervalMs: number;
      timeoutMs: number;
      threshold: number;
    };

/** A service as an agent needs it to run it; the server derives it from the fleet spec. */
export interface ServiceDefinition {
  name: string;
  /** Program and arguments, run without a shell; relative paths resolve against the agent's cwd. */
  command: string[];
  env: Record<string, string>;
  /** Fixed port, or null: the agent picks a free one and passes it as PORT. */
  port: number | null;
  healthCheck: HealthCheckDefinition | null;
  /** Relative to `<agent data dir>/services/`; null for a stateless service. */
  dataDir: string | null;
  /** Local restarts before the agent reports the instance failed (0: report at once). */
  restartAttempts: number;
  /** Disk the service needs, checked by prepare. */
  storageBytes: number;
}

/** Where clients of a service are sent; null: nothing serves it now (proxies hold connections). */
export interface RouteEntry {
  nodeId: string;
  /** host:port of the instance. */
  endpoint: string;
  generation: number;
}

/** One failover step for one agent. Each is idempotent per (service, generation). */
export type AgentCommand =
  /** Check this node can take the service (data dir writable, free disk, command resolvable). */
  | { type: "prepare"; service: string; generation: number }
  /**
   * Bring the service's data here. `fromUrl`: the old primary's agent, tried first when
   * `sources` lists "primary"; `fromNode`: its node id, whom the copy request is signed for
   * (null exactly when `fromUrl` is); `quiesce`: ask it to stop its instance first (planned moves),
   * so the copy is exact. Otherwise, or if it fails, start empty with a warning.
   */
  | {
      type: "sync-data";
      service: string;
      generation: number;
      fromUrl: string | null;
      fromNode: string | null;
      quiesce: boolean;
      sources: ("primary" | "backup")[];
    }
  | {
      type: "run-hook";
      service: string;
      generation: number;
      hook: string;
      command: string[];
      timeoutMs: number;
    }
  /** Start the instance with EDGEWARD_GENERATION = generation; result carries its endpoint. */
  | { type: "start"; service: string; generation: number }
  /** Run the service's health check once against the instance of `generation`. */
  | { type: "check-health"; service: string; generation: number }
  /** Stop every instance of the service with generation <= `generation`. */
  | { type: "stop"; service: string; generation: number; reason: "rollback" | "fence" | "drill" };

export interface CommandResult {
  id: number;
  ok: boolean;
  /** Why it failed (ok false), or a warning (ok true, e.g. "started with empty data"). */
  message?: string;
  /** start: host:port the instance listens on. */
  endpoint?: string;
  /** sync-data: age of the data brought over in ms (0: an exact copy); absent when started empty. */
  dataAgeMs?: number;
}

export type InstanceState =
  "starting" | "running" | "unhealthy" | "restarting" | "failed" | "stopped";

/** An instance an agent supervises, as it reports it. */
export interface InstanceStatus {
  service: string;
  generation: number;
  state: InstanceState;
  endpoint: string | null;
  pid: number | null;
  restarts: number;
  /** Last health or exit problem, if any. */
  lastError: string | null;
}

/** Service messages the server sends an agent (besides welcome/error/goodbye-acknowledged). */
export type ServerServiceMessage =
  /**
   * Sent after welcome and whenever they change. `assignments`: the generation of each service
   * this node should run now (routed here, or a failover attempt here). `newestGenerations`:
   * the newest generation issued per service. On receipt the agent stops every instance that
   * is not assigned here at that generation (fencing) and only then starts heartbeating.
   */
  | {
      type: "services";
      definitions: ServiceDefinition[];
      assignments: Record<string, number>;
      newestGenerations: Record<string, number>;
    }
  /** The whole routing table, after welcome and on every change; proxies switch at once. */
  | { type: "routes"; routes: Record<string, RouteEntry | null> }
  | { type: "command"; id: number; command: AgentCommand }
  | ServerBackupMessage
  | ServerSecurityMessage;

/** Service messages an agent sends the server. */
export type AgentServiceMessage = AgentFailoverMessage | AgentBackupMessage | AgentSecurityMessage;

/** What an agent reports about the services it runs (the failover runtime's part). */
export type AgentFailoverMessage =
  | ({ type: "command-result" } & CommandResult)
  /** The full set, whenever any instance changes state. */
  | { type: "instances"; instances: InstanceStatus[] }
  /** Local restarts are used up: the server treats this as the service_unhealthy condition. */
  | { type: "instance-failed"; service: string; generation: number; reason: string }
  /** The stable local port of each service's forwarding proxy on this agent, after welcome. */
  | { type: "proxies"; ports: Record<string, number> };

/** Limits on what an agent reports, so one agent cannot flood the server. */
export const instancesPerAgentMax = 256;
export const commandMessageCharactersMax = 4_096;

// ---- fleet backups (docs/adr/0005-fleet-backups.md) ------------------------------------------

export type BackupLevelName = "EDGE_LOCAL" | "EDGE_CLUSTER" | "REGIONAL" | "CLOUD";

/** Where one data type of a policy is read from (the spec's backup sources). */
export type BackupSourceDefinition =
  | { type: "service_data"; service: string; path: string | null }
  | { type: "configuration" }
  | { type: "logs"; service: string | null }
  | { type: "metrics" }
  | { type: "sqlite"; path: string };

/** A backup policy as an agent runs it; every agent gets every policy and backs up what it holds. */
export interface BackupPolicyDefinition {
  name: string;
  dataTypes: string[];
  sources: Record<string, BackupSourceDefinition>;
  levels: { level: BackupLevelName; intervalSeconds: number; retentionDays: number }[];
  encryptionRequired: boolean;
}

/** Where each tier's repository lives; every tier holds one repository per node. */
export interface BackupTargets {
  /** The fleet's current repository password (sealed at rest in the server's backup.key). */
  password: string;
  /**
   * Passwords of earlier rotations, newest first (at most backupPasswordsMax). An agent opens a
   * repository still keyed to one of them and re-wraps its key under `password`.
   */
  previousPasswords?: string[];
  /** Agent URL of every node with a blob API, this one included (EDGE_CLUSTER holders). */
  peers: Record<string, string>;
  clusterDataShards: number;
  clusterParityShards: number;
  /** The server's blob API (REGIONAL), or null when the server has no --blob-dir. */
  regionalUrl: string | null;
  /** s3://host:port/bucket/prefix and its credentials, or null: CLOUD is skipped. */
  cloud: {
    url: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  } | null;
}

/** A repository of one tier: the node whose repository it is, and for EDGE_CLUSTER its holders. */
export interface BackupRepositoryRef {
  level: BackupLevelName;
  owner: string;
  /** EDGE_CLUSTER: node ids holding the shards, in placement order; empty otherwise. */
  holders: string[];
}

export type BackupCommand =
  /** Back up `policy` now, at `level` or every level of the policy. */
  | { type: "run"; policy: string; level: BackupLevelName | null }
  /** Restore a snapshot into `targetDir` (on this node) or into `service`'s data dir. */
  | {
      type: "restore";
      repository: BackupRepositoryRef;
      snapshotId: string;
      /** The data type (top-level entry) to restore; null restores the whole snapshot. */
      entry: string | null;
      targetDir: string | null;
      service: string | null;
    }
  /** Check this node's repositories; readData reads every pack. */
  | { type: "verify"; readData: boolean }
  /** Forget these expired snapshots from this node's repository of `level`, then prune. */
  | { type: "forget"; level: BackupLevelName; snapshotIds: string[] };

/** One snapshot as the agent reports it to the server's catalogue. */
export interface BackupSnapshotReport {
  snapshotId: string;
  /**
   * The snapshot's root tree blob id (HMAC-SHA-256 under the repository's blob-id key, hex):
   * it commits to every file's content, and the ledger records it as the snapshot's digest.
   */
  treeId: string;
  policy: string;
  level: BackupLevelName;
  node: string;
  holders: string[];
  atMs: number;
  durationMs: number;
  sizeBytes: number;
  addedBytes: number;
  filesNew: number;
  filesUnchanged: number;
  dataTypes: string[];
  /** Which service's data each data type of the snapshot holds, for restores and failover. */
  services: Record<string, string>;
  encrypted: boolean;
}

export interface BackupVerifyReport {
  node: string;
  level: BackupLevelName;
  ok: boolean;
  snapshots: number;
  packsRead: number;
  errors: string[];
}

/**
 * What a `run` did at one level: a backup read the sources; a copy copied the snapshot the
 * run took at `fromLevel` (docs/adr/0005-fleet-backups.md, "Copies between tiers"); skipped:
 * the tier is not configured or nothing of the policy lives on the node; failed: see message
 * (a copy that failed is retried by the scheduler).
 */
export interface BackupLevelRunReport {
  level: BackupLevelName;
  outcome: "backup" | "copy" | "skipped" | "failed";
  fromLevel: BackupLevelName | null;
  snapshotId: string | null;
  durationMs: number;
  /** The snapshot's size (bytes read from the sources by the backup the copies come from). */
  sizeBytes: number;
  /** A backup: bytes it stored; a copy: sealed bytes it copied. */
  addedBytes: number;
  /** A copy: blobs stored in the destination; 0 otherwise. */
  blobsCopied: number;
  message: string | null;
}

export interface BackupCommandResult {
  id: number;
  ok: boolean;
  message?: string;
  snapshots?: BackupSnapshotReport[];
  /** A `run`: per level of the policy, what was done. */
  levels?: BackupLevelRunReport[];
  verified?: BackupVerifyReport[];
  filesRestored?: number;
  bytesRestored?: number;
}

/** A snapshot holding a service's data that a failover target may restore. */
export interface BackupRestorePoint {
  repository: BackupRepositoryRef;
  snapshotId: string;
  policy: string;
  /** The snapshot's top-level entry holding the service's data. */
  dataType: string;
  atMs: number;
}

/** Restore points per service the server sends, newest first. */
export const restorePointsPerServiceMax = 8;

/** Backup messages the server sends an agent. */
export type ServerBackupMessage =
  | {
      type: "backup-policies";
      policies: BackupPolicyDefinition[];
      targets: BackupTargets;
      /** Per service, its newest snapshots on tiers other nodes can read, newest first. */
      restorePoints: Record<string, BackupRestorePoint[]>;
    }
  | { type: "backup-command"; id: number; command: BackupCommand };

/** Backup messages an agent sends the server. */
export type AgentBackupMessage =
  | { type: "backup-completed"; snapshot: BackupSnapshotReport }
  | { type: "backup-failed"; policy: string; level: BackupLevelName; atMs: number; reason: string }
  | ({ type: "backup-command-result" } & BackupCommandResult);

/** Snapshots or verify reports one command result may carry. */
export const backupResultEntriesMax = 64;

// ---- peer requests and firewall (docs/adr/0006-security-model.md) --------------------------

/** Most fleet backup passwords (current and previous) the server keeps and sends. */
export const backupPasswordsMax = 120;

/** Most enrolled nodes one `peer-identities` message may carry. */
export const peerIdentitiesMax = 20_000;

/**
 * The fleet's enrolled node keys, after welcome and whenever a node connects. Agents verify
 * signed peer requests against them and cache them (0600) for when the server is unreachable.
 * `required` is false on a server started with --open-access: peers then accept unsigned
 * requests.
 */
export type PeerIdentitiesMessage = {
  type: "peer-identities";
  required: boolean;
  /** node id -> its enrolled Ed25519 public key, SPKI DER in base64. */
  keys: Record<string, string>;
};

/** Most firewall rules one `firewall-rules` message may carry (the spec's limit). */
export const firewallRulesMax = 1_024;

/**
 * The fleet spec's firewall rules that apply to this node, in order, after welcome (ADR 0006,
 * "Firewall"). Agents enforce them on every listener they own and keep the last set on disk
 * for when the server is unreachable. An empty list allows everything.
 */
export type FirewallRulesMessage = { type: "firewall-rules"; rules: FirewallRule[] };

export type ServerSecurityMessage = PeerIdentitiesMessage | FirewallRulesMessage;

export type PeerRejectionReason = PeerRejection;

/** An agent refused a peer request, or its firewall denied a connection or request. */
export type AgentSecurityMessage = PeerRequestRejectedMessage | FirewallDeniedMessage;

/**
 * An agent refused peer requests; the server turns them into security events. Summed on the
 * agent per reason, address and claimed node: one message stands for `rejectedCount` refusals
 * (this one, the newest, and those of its kind not reported since the previous message).
 */
export type PeerRequestRejectedMessage = {
  type: "peer-request-rejected";
  reason: PeerRejectionReason;
  /** The node the request claimed to come from, if it named one. */
  claimedNodeId: string | null;
  remoteAddress: string;
  path: string;
  atMs: number;
  rejectedCount: number;
};

/** Where a firewall denial happened on the agent. */
export type FirewallListener = "agent-api" | "service-proxy";

/**
 * The agent's firewall denied a connection (at accept) or a request (after its signature was
 * verified). Summed on the agent per rule, listener and source: one message may stand for
 * several denials (`deniedCount`: this one and those of its kind not reported since the
 * previous message).
 */
export type FirewallDeniedMessage = {
  type: "firewall-denied";
  /** Position of the denying rule in the spec's security.network.firewall. */
  ruleIndex: number;
  listener: FirewallListener;
  /** The service whose proxy was reached (service-proxy), else null. */
  service: string | null;
  localPort: number;
  remoteAddress: string;
  /** The verified sender of a denied request, null for a connection denied at accept. */
  peerNodeId: string | null;
  /** The request path (agent API, per-request decisions), else null. */
  path: string | null;
  atMs: number;
  deniedCount: number;
};
