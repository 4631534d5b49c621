// The fleet spec: one YAML file that describes a whole fleet. These zod schemas are the single
// source of truth for the parser, the TypeScript types and the published JSON Schema.

import { z } from "zod";
import { detectorPresetNames } from "../membership/detector-options.ts";
import { backupSchema } from "./backup-schema.ts";
import { addCrossFieldIssues } from "./cross-field-checks.ts";
import {
  argvSchema,
  dnsLabelSchema,
  identifierSchema,
  mapEntriesMax,
  positiveIntegerSchema,
  textCharactersMax,
  textSchema,
  uniqueListSchema,
  httpUrlSchema,
} from "./schema-primitives.ts";
import { securitySchema } from "./security-schema.ts";
import { serviceSchema } from "./service-schema.ts";

/** Most nodes one spec may list (the scale the server is designed for). */
export const fleetNodesMax = 10_000;
/** Most services one spec may list. */
const fleetServicesMax = 1_000;
/** Most capabilities one node may advertise. */
const nodeCapabilitiesMax = 64;

export const nodeTiers = [
  "site",
  "street",
  "neighbourhood",
  "district",
  "regional",
  "cloud",
] as const;
export type NodeTier = (typeof nodeTiers)[number];

export const equipmentFailureActions = [
  "record_failure",
  "schedule_predictive_maintenance",
  "notify",
] as const;

const detectionOverridesSchema = z
  .strictObject({
    heartbeatIntervalMs: z
      .number()
      .positive()
      .optional()
      .describe(
        "How often agents send a heartbeat. Shorter detects sooner and costs more messages.",
      ),
    suspectPhi: z
      .number()
      .positive()
      .optional()
      .describe(
        "Phi at which a node is suspected (DEGRADED) and probed; 3 = a 1 in 1,000 chance it is only late.",
      ),
    convictPhi: z
      .number()
      .positive()
      .max(16)
      .optional()
      .describe(
        "Phi after which a suspect whose probe failed is convicted (FAILED); above suspectPhi, at most 16.",
      ),
    minStdDevMs: z
      .number()
      .positive()
      .optional()
      .describe(
        "Floor on the heartbeat inter-arrival standard deviation, so one late heartbeat after a very regular history is not fatal.",
      ),
    acceptablePauseMs: z
      .number()
      .nonnegative()
      .optional()
      .describe(
        "Pause tolerated on top of the mean interval (garbage collection, scheduling, a busy link).",
      ),
    readmitHeartbeats: positiveIntegerSchema
      .optional()
      .describe("On-time heartbeats in a row that re-admit a FAILED node."),
    startupGraceMs: z
      .number()
      .nonnegative()
      .optional()
      .describe(
        "After the server starts, nobody is convicted for missing heartbeats for this long.",
      ),
    probeTimeoutMs: z
      .number()
      .positive()
      .optional()
      .describe("A direct probe not answered within this is a failed probe."),
  })
  .prefault({})
  .describe("Per-field overrides on top of the preset.");

const detectionSchema = z
  .strictObject({
    preset: z
      .enum(detectorPresetNames)
      .default("lan")
      .describe(
        "lan: phi accrual tuned to detect a crash in about a second; wan and cellular: slower, " +
          "tolerant of long pauses; documents: the source documents' rule (a check every 30 s, " +
          "3 consecutive misses FAILED, fewer DEGRADED).",
      ),
    overrides: detectionOverridesSchema,
  })
  .prefault({})
  .describe("Failure detection (SPEC §1): a preset and optional overrides.");

const resourcesSchema = z
  .strictObject({
    monitorIntervalSeconds: positiveIntegerSchema
      .default(60)
      .describe("How often node usage is compared with its quotas (documents: 60 s)."),
    overQuotaFraction: z
      .number()
      .positive()
      .max(1)
      .default(0.9)
      .describe(
        "A node is over quota when any measured usage exceeds this fraction of its quota; " +
          "placement keeps every resource at or below it (documents: 0.9).",
      ),
  })
  .prefault({})
  .describe("Resource monitoring (SPEC §6).");

const quotasSchema = z
  .strictObject({
    cpuCores: z.number().positive().describe("CPU cores the node offers."),
    memoryMb: positiveIntegerSchema.describe("Memory the node offers, in MB."),
    storageGb: z.number().positive().describe("Storage the node offers, in GB."),
    networkMbps: z.number().positive().describe("Network bandwidth the node offers, in Mbps."),
  })
  .describe("Resource quotas of the node (SPEC §6).");

const labelsSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/, {
      error: "expected a label key (letters, digits, '.', '_', '/', '-', at most 63 characters)",
    }),
    z.string().max(textCharactersMax),
  )
  .refine((labels) => Object.keys(labels).length <= mapEntriesMax, {
    error: `expected at most ${mapEntriesMax} labels`,
  })
  .default({})
  .describe("Free-form key/value labels for selection and display, e.g. line: a.");

const nodeSchema = z
  .strictObject({
    id: dnsLabelSchema.describe(
      "Unique node id, a lowercase DNS label, e.g. factory-1-line-a-edge-1.",
    ),
    zone: textSchema.describe(
      "Location of the node, e.g. Line A; replicas are spread across zones.",
    ),
    tier: z
      .enum(nodeTiers)
      .describe("Where the node sits in the edge hierarchy, from a single site up to the cloud."),
    capabilities: uniqueListSchema(identifierSchema, nodeCapabilitiesMax, "capability")
      .default([])
      .describe("What the node can run, e.g. data_processing, real_time_analytics."),
    labels: labelsSchema,
    quotas: quotasSchema,
  })
  .describe("An edge node.");

const equipmentFailureActionSchema = z.union(
  [
    z.enum(equipmentFailureActions).describe("A built-in action."),
    z
      .strictObject({
        hook: identifierSchema.describe(
          "Name of the site-specific action, e.g. adjust_production_schedule.",
        ),
        command: argvSchema.describe(
          "Program and arguments the server runs for this action (no shell).",
        ),
        timeoutMs: positiveIntegerSchema
          .default(60_000)
          .describe("The action fails if the command has not exited within this."),
      })
      .describe("A site-specific action run as a command."),
  ],
  { error: `expected one of ${equipmentFailureActions.join("|")} or a map {hook, command}` },
);

const equipmentFailureSchema = z
  .strictObject({
    actions: z
      .array(equipmentFailureActionSchema)
      .min(1)
      .max(32)
      .default(["record_failure", "schedule_predictive_maintenance", "notify"])
      .describe(
        "What happens, in order, when equipment attached to a node reports a failure: " +
          "record_failure (a replicated record and a ledger entry), schedule_predictive_maintenance " +
          "(from the equipment's telemetry), notify, and site-specific hooks.",
      ),
    severity: z
      .enum(["low", "medium", "high", "critical"])
      .default("high")
      .describe("Severity recorded for an equipment failure (documents: high)."),
    notify: z
      .strictObject({
        team: textSchema.default("maintenance").describe("Who is notified, shown in the alert."),
        webhookUrl: httpUrlSchema
          .optional()
          .describe("Webhook for equipment alerts; omit to use alerts.webhookUrl."),
      })
      .prefault({})
      .describe("Where equipment-failure notifications go, besides the log and event stream."),
  })
  .prefault({})
  .describe("Equipment-failure handling (SPEC §14).");

const fleetSpecObjectSchema = z
  .strictObject({
    $schema: z
      .string()
      .max(4096)
      .optional()
      .describe("JSON Schema for editors; ignored by edgeward."),
    apiVersion: z.literal("edgeward/v1").describe("Version of this file format."),
    kind: z.literal("Fleet").describe("What this file describes."),
    metadata: z
      .strictObject({
        name: dnsLabelSchema.describe("Name of the fleet, a lowercase DNS label."),
        description: z.string().max(4096).optional().describe("What the fleet is for."),
      })
      .describe("Name and description of the fleet."),
    detection: detectionSchema,
    resources: resourcesSchema,
    alerts: z
      .strictObject({
        webhookUrl: httpUrlSchema
          .optional()
          .describe(
            "Alerts (failovers, security events, equipment failures) are POSTed here as JSON.",
          ),
        webhookTimeoutMs: positiveIntegerSchema
          .default(5_000)
          .describe("A webhook call not answered within this is abandoned."),
      })
      .prefault({})
      .describe("Where alerts go besides the log and the event stream."),
    nodes: z.array(nodeSchema).min(1).max(fleetNodesMax).describe("The edge nodes of the fleet."),
    services: z
      .array(serviceSchema)
      .max(fleetServicesMax)
      .default([])
      .describe("Services the fleet runs, with their failover plans."),
    backup: backupSchema.prefault({}),
    security: securitySchema.prefault({}),
    equipmentFailure: equipmentFailureSchema,
  })
  .meta({
    title: "edgeward fleet spec",
    description: "An edgeward fleet: nodes, services, failover plans, backups and security.",
  });

/** The whole fleet spec, with the checks that span fields (unique names, known references). */
export const fleetSpecSchema = fleetSpecObjectSchema.superRefine(addCrossFieldIssues);

export type FleetSpec = z.output<typeof fleetSpecObjectSchema>;
/** What a fleet spec file may contain before defaults are applied. */
export type FleetSpecInput = z.input<typeof fleetSpecObjectSchema>;
export type NodeSpec = z.output<typeof nodeSchema>;
export type NodeQuotas = z.output<typeof quotasSchema>;
export type DetectionSpec = z.output<typeof detectionSchema>;
export type DetectionOverrides = z.output<typeof detectionOverridesSchema>;
export type ResourcesSpec = z.output<typeof resourcesSchema>;
export type AlertsSpec = FleetSpec["alerts"];
export type EquipmentFailureSpec = z.output<typeof equipmentFailureSchema>;
