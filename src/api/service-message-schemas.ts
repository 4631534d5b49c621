// zod schemas for the service messages agents send (src/api/service-messages.ts): the server
// validates every one at the edge before it reaches the failover runtime.

import { z } from "zod";
import { peerRejections } from "../core/security/peer-request.ts";
import {
  backupResultEntriesMax,
  commandMessageCharactersMax,
  firewallRulesMax,
  type AgentBackupMessage,
  type AgentSecurityMessage,
  instancesPerAgentMax,
  type AgentServiceMessage,
} from "./service-messages.ts";

const serviceNameSchema = z.string().min(1).max(128);
const generationSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const messageSchema = z.string().max(commandMessageCharactersMax);
const endpointSchema = z.string().regex(/^[^\s/]{1,253}:\d{1,5}$/, "expected host:port");

const instanceStatusSchema = z.strictObject({
  service: serviceNameSchema,
  generation: generationSchema,
  state: z.enum(["starting", "running", "unhealthy", "restarting", "failed", "stopped"]),
  endpoint: endpointSchema.nullable(),
  pid: z.number().int().min(1).nullable(),
  restarts: z.number().int().min(0),
  lastError: messageSchema.nullable(),
});

export const agentServiceMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("command-result"),
    id: z.number().int().min(0),
    ok: z.boolean(),
    message: messageSchema.optional(),
    endpoint: endpointSchema.optional(),
    dataAgeMs: z.number().int().min(0).optional(),
  }),
  z.strictObject({
    type: z.literal("instances"),
    instances: z.array(instanceStatusSchema).max(instancesPerAgentMax),
  }),
  z.strictObject({
    type: z.literal("instance-failed"),
    service: serviceNameSchema,
    generation: generationSchema,
    reason: messageSchema,
  }),
  z.strictObject({
    type: z.literal("proxies"),
    ports: z
      .record(serviceNameSchema, z.number().int().min(1).max(65_535))
      .refine((ports) => Object.keys(ports).length <= instancesPerAgentMax, {
        error: `expected at most ${instancesPerAgentMax} proxies`,
      }),
  }),
]) satisfies z.ZodType<AgentServiceMessage>;

export const serviceMessageTypes: ReadonlySet<string> = new Set([
  "command-result",
  "instances",
  "instance-failed",
  "proxies",
]);

// ---- fleet backups ---------------------------------------------------------------------------

const backupLevelSchema = z.enum(["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL", "CLOUD"]);
const snapshotIdSchema = z.string().regex(/^[0-9a-f]{64}$/, "expected a snapshot id (64 hex)");
const treeIdSchema = z.string().regex(/^[0-9a-f]{64}$/, "expected a tree id (64 hex)");
const byteCountSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const dataTypeNameSchema = z.string().min(1).max(128);

const backupSnapshotReportSchema = z.strictObject({
  snapshotId: snapshotIdSchema,
  treeId: treeIdSchema,
  policy: serviceNameSchema,
  level: backupLevelSchema,
  node: z.string().min(1).max(253),
  holders: z.array(z.string().min(1).max(253)).max(255),
  atMs: byteCountSchema,
  durationMs: byteCountSchema,
  sizeBytes: byteCountSchema,
  addedBytes: byteCountSchema,
  filesNew: byteCountSchema,
  filesUnchanged: byteCountSchema,
  dataTypes: z.array(dataTypeNameSchema).max(64),
  services: z.record(dataTypeNameSchema, serviceNameSchema),
  encrypted: z.boolean(),
});

const backupLevelRunReportSchema = z.strictObject({
  level: backupLevelSchema,
  outcome: z.enum(["backup", "copy", "skipped", "failed"]),
  fromLevel: backupLevelSchema.nullable(),
  snapshotId: snapshotIdSchema.nullable(),
  durationMs: byteCountSchema,
  sizeBytes: byteCountSchema,
  addedBytes: byteCountSchema,
  blobsCopied: byteCountSchema,
  message: messageSchema.nullable(),
});

const backupVerifyReportSchema = z.strictObject({
  node: z.string().min(1).max(253),
  level: backupLevelSchema,
  ok: z.boolean(),
  snapshots: byteCountSchema,
  packsRead: byteCountSchema,
  errors: z.array(messageSchema).max(backupResultEntriesMax),
});

/** What agents send about backups; the channel routes these to the backup catalogue. */
export const agentBackupMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("backup-completed"), snapshot: backupSnapshotReportSchema }),
  z.strictObject({
    type: z.literal("backup-failed"),
    policy: serviceNameSchema,
    level: backupLevelSchema,
    atMs: byteCountSchema,
    reason: messageSchema,
  }),
  z.strictObject({
    type: z.literal("backup-command-result"),
    id: z.number().int().min(0),
    ok: z.boolean(),
    message: messageSchema.optional(),
    snapshots: z.array(backupSnapshotReportSchema).max(backupResultEntriesMax).optional(),
    levels: z.array(backupLevelRunReportSchema).max(backupResultEntriesMax).optional(),
    verified: z.array(backupVerifyReportSchema).max(backupResultEntriesMax).optional(),
    filesRestored: byteCountSchema.optional(),
    bytesRestored: byteCountSchema.optional(),
  }),
]) satisfies z.ZodType<AgentBackupMessage>;

export const backupMessageTypes: ReadonlySet<string> = new Set([
  "backup-completed",
  "backup-failed",
  "backup-command-result",
]);

// ---- peer requests ---------------------------------------------------------------------------

const atMsSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** How many refusals or denials one summed report stands for. */
const summedCountSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** What an agent reports about refused peer requests and firewall denials (routed to security). */
export const agentSecurityMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("peer-request-rejected"),
    reason: z.enum(peerRejections),
    claimedNodeId: z.string().min(1).max(253).nullable(),
    remoteAddress: z.string().max(64),
    path: z.string().max(512),
    atMs: atMsSchema,
    rejectedCount: summedCountSchema,
  }),
  z.strictObject({
    type: z.literal("firewall-denied"),
    ruleIndex: z
      .number()
      .int()
      .min(0)
      .max(firewallRulesMax - 1),
    listener: z.enum(["agent-api", "service-proxy"]),
    service: serviceNameSchema.nullable(),
    localPort: z.number().int().min(0).max(65_535),
    remoteAddress: z.string().max(64),
    peerNodeId: z.string().min(1).max(253).nullable(),
    path: z.string().max(512).nullable(),
    atMs: atMsSchema,
    deniedCount: summedCountSchema,
  }),
]) satisfies z.ZodType<AgentSecurityMessage>;

export const securityMessageTypes: ReadonlySet<string> = new Set([
  "peer-request-rejected",
  "firewall-denied",
]);
