// The one typed API contract between server, agents, CLI and dashboard. Request bodies are
// validated at the edge with these schemas; responses are typed with the inferred types.

import { z } from "zod";
import type {
  AlertSeverity,
  FailoverRecord,
  TriggerOutcome,
} from "../core/failover/failover-protocol.ts";
import type {
  BackupLevelName,
  BackupLevelRunReport,
  BackupSnapshotReport,
  BackupVerifyReport,
  InstanceStatus,
} from "./service-messages.ts";
import { nodeStatuses } from "../core/membership/node-status.ts";
import { nodeIdPattern, nodeIdRule } from "./node-id.ts";

export const nodeIdSchema = z.string().regex(nodeIdPattern, nodeIdRule);

const fractionSchema = z.number().min(0).max(1);
const nonNegativeSchema = z.number().finite().min(0);

/** Resource usage measured on the node: fractions of capacity and absolute figures. */
export const nodeMetricsSchema = z.strictObject({
  measuredAtMs: nonNegativeSchema,
  cpu: z.strictObject({ fraction: fractionSchema, cores: z.number().int().min(1).max(4096) }),
  memory: z.strictObject({
    fraction: fractionSchema,
    usedBytes: nonNegativeSchema,
    totalBytes: nonNegativeSchema,
  }),
  storage: z.strictObject({
    fraction: fractionSchema,
    usedBytes: nonNegativeSchema,
    totalBytes: nonNegativeSchema,
  }),
  network: z.strictObject({
    receiveBytesPerSecond: nonNegativeSchema,
    transmitBytesPerSecond: nonNegativeSchema,
  }),
});
export type NodeMetrics = z.infer<typeof nodeMetricsSchema>;

const labelsSchema = z
  .record(z.string().min(1).max(63), z.string().max(253))
  .refine((labels) => Object.keys(labels).length <= 64, "at most 64 labels");

export const registerRequestSchema = z.strictObject({
  nodeId: nodeIdSchema,
  /** Incremented by the agent at every start, so the server can tell a restart. */
  incarnation: z.number().int().min(0),
  /** Where the server can probe the agent (http://host:port); absent if unreachable. */
  agentUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
  zone: z.string().min(1).max(128).optional(),
  tier: z.string().min(1).max(64).optional(),
  capabilities: z.array(z.string().min(1).max(128)).max(64).optional(),
  labels: labelsSchema.optional(),
  agentVersion: z.string().max(64).optional(),
});
export type RegisterRequest = z.infer<typeof registerRequestSchema>;

export interface RegisterResponse {
  nodeId: string;
  heartbeatIntervalMs: number;
  detectionPreset: string;
  serverTimeMs: number;
}

export const heartbeatSchema = z.strictObject({
  nodeId: nodeIdSchema,
  incarnation: z.number().int().min(0),
  sequence: z.number().int().min(0),
  metrics: nodeMetricsSchema.optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** Largest batch `POST /v1/heartbeats` accepts (a relay or a load generator batches). */
export const heartbeatBatchMax = 1_000;

export const heartbeatBatchSchema = z.strictObject({
  heartbeats: z.array(heartbeatSchema).min(1).max(heartbeatBatchMax),
});

export interface HeartbeatBatchResponse {
  accepted: number;
}

/** Messages an agent sends over its persistent connection (`GET /v1/agents/connect`). */
export const agentMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("heartbeat"),
    sequence: z.number().int().min(0),
    metrics: nodeMetricsSchema.optional(),
  }),
  z.strictObject({ type: z.literal("goodbye") }),
]);
export type AgentMessage = z.infer<typeof agentMessageSchema>;

/** Messages the server sends to an agent over the same connection. */
export type ServerMessage =
  | { type: "welcome"; heartbeatIntervalMs: number; serverTimeMs: number }
  | { type: "goodbye-acknowledged" }
  | { type: "error"; message: string };

export const nodeStatusSchema = z.enum(nodeStatuses as [string, ...string[]]);

export interface NodeQuotas {
  cpuCores: number;
  memoryMb: number;
  storageGb: number;
  networkMbps: number;
}

/** What the server knows and keeps about a node (also its stored record). */
export interface NodeRecord {
  id: string;
  zone: string | null;
  tier: string | null;
  capabilities: string[];
  labels: Record<string, string>;
  quotas: NodeQuotas | null;
  agentUrl: string | null;
  incarnation: number;
  status: string;
  statusSinceMs: number;
  registeredAtMs: number;
  lastHeartbeatAtMs: number | null;
  metrics: NodeMetrics | null;
}

/** A node as the API shows it: its record and the detector's view of it now. */
export interface NodeView extends NodeRecord {
  heartbeatAgeMs: number | null;
  phi: number | null;
}

export interface NodeListResponse {
  nodes: NodeView[];
  detectionPreset: string;
  serverTimeMs: number;
}

/** Everything that happens in the fleet, one JSON object per event. */
export type FleetEvent =
  | {
      id: number;
      type: "node.status";
      node: string;
      from: string | null;
      to: string;
      atMs: number;
      reason: string;
    }
  | { id: number; type: "node.removed"; node: string; atMs: number }
  /** A failover started (status initiated) or ended; the fields are its FailoverRecord. */
  | ({ id: number; type: "service.failover"; atMs: number } & FailoverRecord)
  | {
      id: number;
      type: "service.alert";
      service: string;
      failoverId: number | null;
      severity: AlertSeverity;
      message: string;
      atMs: number;
    }
  /** An agent reported an instance changing state. */
  | {
      id: number;
      type: "service.instance";
      node: string;
      service: string;
      generation: number;
      state: string;
      error: string | null;
      atMs: number;
    }
  | ({ id: number; type: "service.drill"; atMs: number } & DrillResult)
  /** Suspicious activity (failed-auth burst, bad signature, replay, impersonation, flood) or a quarantine. */
  | {
      id: number;
      type: "security.event";
      /** `ip:<address>`, `node:<id>` or `user:<name>`. */
      source: string;
      atMs: number;
      severity: "low" | "medium" | "high";
      activity: string;
      details: string;
    }
  /**
   * An agent's firewall denied connections or requests (ADR 0006, "Firewall"). `source`:
   * `node:<id>` for a denied signed request, `ip:<address>` for a connection denied at accept.
   * Agents rate-limit these: `count` denials are reported by this one event.
   */
  | {
      id: number;
      type: "firewall.denied";
      /** The node whose firewall denied. */
      node: string;
      source: string;
      atMs: number;
      severity: "low" | "medium" | "high";
      details: string;
      count: number;
    }
  /** An agent reported a snapshot (scheduled or on demand). */
  | ({ id: number; type: "backup.completed" } & BackupSnapshotReport)
  /** A backup at one level failed (a tier offline, a disk error); it is retried later. */
  | {
      id: number;
      type: "backup.failed";
      node: string;
      policy: string;
      level: BackupLevelName;
      reason: string;
      atMs: number;
    }
  /** Snapshots past their level's retentionDays were forgotten on their node. */
  | {
      id: number;
      type: "backup.expired";
      node: string;
      level: BackupLevelName;
      snapshotIds: string[];
      atMs: number;
    };

export type FleetEventDraft = FleetEvent extends infer Event
  ? Event extends FleetEvent
    ? Omit<Event, "id">
    : never
  : never;

export interface EventListResponse {
  events: FleetEvent[];
  /** Pass as `afterId` to continue where this page ended. */
  lastId: number;
}

export const eventQuerySchema = z.strictObject({
  afterId: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
});

/** Every error the API returns has this shape. */
export interface ApiError {
  error: string;
  message: string;
  statusCode: number;
}

/** One leg of a drill: a planned failover and what a client probing through a proxy saw. */
export interface DrillLeg {
  from: string | null;
  to: string | null;
  failoverId: number | null;
  status: string;
  /** Longest stretch without a successful probe through the proxy (the RTO a client sees). */
  unavailableMs: number | null;
  /** Acknowledged writes missing afterwards (from the service's GET /stats counter), if it has one. */
  writesLost: number | null;
  /** Age of the data the new instance started with (null: started empty). */
  dataAgeMs: number | null;
}

/** A drill: planned failover to the plan's first backup location and back (SPEC §5). */
export interface DrillResult {
  drillId: number;
  service: string;
  trigger: "operator" | "schedule";
  startedAtMs: number;
  endedAtMs: number;
  legs: DrillLeg[];
  rtoMs: number | null;
  rpoWritesLost: number | null;
  objectives: { rtoSeconds: number; rpoSeconds: number };
  passed: boolean;
  /** Why it did not pass, or null. */
  problem: string | null;
}

/** A service as `GET /v1/services` shows it. */
export interface ServiceView {
  name: string;
  node: string | null;
  generation: number;
  endpoint: string | null;
  status: "serving" | "failing-over" | "unplaced";
  /** The newest instance reports for this service, from every agent that runs one. */
  instances: (InstanceStatus & { node: string })[];
  /** Stable proxy port per node: connect to `<node host>:<port>` from anywhere. */
  proxies: { node: string; host: string; port: number }[];
  failoverId: number | null;
}

export interface ServiceListResponse {
  services: ServiceView[];
  serverTimeMs: number;
}

export interface FailoverListResponse {
  failovers: FailoverRecord[];
}

export interface DrillListResponse {
  drills: DrillResult[];
}

/** `POST /v1/services/:name/failover`: 202 when started or queued, else 409 with the outcome. */
export type FailoverResponse = TriggerOutcome;

// ---- fleet backups ---------------------------------------------------------------------------

/** A catalogued snapshot, as `GET /v1/backups` lists it. */
export type BackupSnapshotView = BackupSnapshotReport;

/** The newest failure of a (node, policy, level) that has not succeeded since. */
export interface BackupFailureView {
  node: string;
  policy: string;
  level: BackupLevelName;
  reason: string;
  atMs: number;
}

export interface BackupListResponse {
  /** Newest first. */
  snapshots: BackupSnapshotView[];
  failures: BackupFailureView[];
  serverTimeMs: number;
}

export const backupRunRequestSchema = z.strictObject({
  policy: z.string().min(1).max(128),
  level: z.enum(["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL", "CLOUD"]).optional(),
  node: nodeIdSchema.optional(),
});
export type BackupRunRequest = z.infer<typeof backupRunRequestSchema>;

/** One node's answer to a backup command. */
export interface BackupNodeResult {
  node: string;
  ok: boolean;
  message: string | null;
}

export interface BackupRunResponse {
  /** Per node: the snapshots made (backups and copies) and, per level, what was done. */
  results: (BackupNodeResult & {
    snapshots: BackupSnapshotView[];
    levels: BackupLevelRunReport[];
  })[];
}

export const backupRestoreRequestSchema = z
  .strictObject({
    target: z.string().min(1).max(4096).optional(),
    service: z.string().min(1).max(128).optional(),
    /** The node to restore on; default: the snapshot's node, or the service's current node. */
    node: nodeIdSchema.optional(),
  })
  .refine((body) => (body.target === undefined) !== (body.service === undefined), {
    error: "give exactly one of target (a directory on the node) or service",
  });
export type BackupRestoreRequest = z.infer<typeof backupRestoreRequestSchema>;

export interface BackupRestoreResponse extends BackupNodeResult {
  snapshotId: string;
  filesRestored: number;
  bytesRestored: number;
}

export const backupVerifyRequestSchema = z
  .strictObject({ readData: z.boolean().default(false) })
  .optional()
  .transform((body) => body ?? { readData: false });

export interface BackupVerifyResponse {
  ok: boolean;
  reports: BackupVerifyReport[];
  /** Nodes that could not verify (disconnected, no answer). */
  unreachable: BackupNodeResult[];
}

/** `GET /v1/quarantine`: nodes excluded from placement until `edgeward node unquarantine`. */
export interface QuarantineListResponse {
  nodes: string[];
}
