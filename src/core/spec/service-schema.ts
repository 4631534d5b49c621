// Services and their failover plans (SPEC §§1, 5): what runs where, how its health is
// checked, and where it goes when its node or the service itself fails.

import { z } from "zod";
import {
  argvSchema,
  environmentVariableSchema,
  identifierSchema,
  mapEntriesMax,
  pathCharactersMax,
  positiveIntegerSchema,
  relativePathSchema,
  scheduleSchema,
  uniqueListSchema,
  dnsLabelSchema,
} from "./schema-primitives.ts";

/** Most backup locations one failover plan may list. */
const failoverBackupsMax = 32;
/** Most capabilities a service may require. */
const requiredCapabilitiesMax = 64;
/** Most recovery procedures in one plan. */
const proceduresMax = 32;

export const failoverConditions = [
  "node_failure",
  "network_partition",
  "hardware_failure",
  "service_unhealthy",
] as const;
export type FailoverCondition = (typeof failoverConditions)[number];

export const builtInProcedures = [
  "restart_service",
  "sync_data",
  "update_routing",
  "restore_from_backup",
] as const;
export type BuiltInProcedure = (typeof builtInProcedures)[number];

const healthCheckTimingShape = {
  intervalMs: positiveIntegerSchema
    .default(30_000)
    .describe("How often the agent checks the service (documents: every 30 s)."),
  timeoutMs: positiveIntegerSchema
    .default(5_000)
    .describe("A check not answered within this counts as a failure; at most intervalMs."),
  threshold: positiveIntegerSchema
    .max(100)
    .default(3)
    .describe(
      "Consecutive failed checks that make the service unhealthy (documents: failure_threshold 3).",
    ),
};

const healthCheckSchema = z
  .discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("http").describe("GET a path on the service's port; any 2xx passes."),
      path: z
        .string()
        .max(pathCharactersMax)
        .regex(/^\//, { error: "expected an absolute URL path such as /health" })
        .describe("URL path to request, e.g. /health."),
      ...healthCheckTimingShape,
    }),
    z.strictObject({
      type: z.literal("tcp").describe("Open a TCP connection to the service's port."),
      ...healthCheckTimingShape,
    }),
    z.strictObject({
      type: z.literal("exec").describe("Run a command; exit code 0 passes."),
      command: argvSchema,
      ...healthCheckTimingShape,
    }),
  ])
  .describe("How the agent decides the service is healthy.");

const hookSchema = z
  .strictObject({
    hook: identifierSchema.describe(
      "Name of the site-specific step, e.g. reconfigure_sensors or calibrate_equipment.",
    ),
    command: argvSchema.describe(
      "Program and arguments the agent runs on the target node for this step (no shell).",
    ),
    timeoutMs: positiveIntegerSchema
      .default(60_000)
      .describe("The step fails if the command has not exited within this."),
  })
  .describe("A site-specific recovery step run as a command on the target node.");

const procedureSchema = z.union(
  [z.enum(builtInProcedures).describe("A built-in recovery step."), hookSchema],
  {
    error: `expected one of ${builtInProcedures.join("|")} or a map {hook, command}`,
  },
);

const failoverPlanSchema = z
  .strictObject({
    primary: dnsLabelSchema.describe("Node the service runs on normally."),
    backups: uniqueListSchema(dnsLabelSchema, failoverBackupsMax, "backup node")
      .min(1)
      .describe("Nodes to fail over to, tried in this order; a failed attempt moves to the next."),
    conditions: uniqueListSchema(z.enum(failoverConditions), failoverConditions.length, "condition")
      .min(1)
      .describe("What triggers a failover."),
    procedures: z
      .array(procedureSchema)
      .min(1)
      .max(proceduresMax)
      .describe(
        "Recovery steps, in order: built-in steps and site-specific hooks ({hook, command}).",
      ),
    testSchedule: scheduleSchema
      .optional()
      .describe(
        "When to drill this plan (planned failover and failback, measuring RTO and RPO): " +
          "weekly, monthly or a 5-field cron expression. Omit for no automatic drills.",
      ),
    objectives: z
      .strictObject({
        rtoSeconds: positiveIntegerSchema
          .default(30)
          .describe("Longest tolerated unavailability (documents: failover under 30 s)."),
        rpoSeconds: positiveIntegerSchema
          .default(3_600)
          .describe("Most recent data a failover may lose, in seconds (documents: RPO 1 h)."),
      })
      .prefault({})
      .describe("Recovery objectives that drills are measured against."),
  })
  .describe("Where the service goes when its node or the service fails (SPEC §5).");

export const serviceSchema = z
  .strictObject({
    name: identifierSchema.describe("Unique service name, e.g. production_monitoring."),
    command: argvSchema.describe(
      "Program and arguments that start the service, run directly (no shell); relative paths " +
        "resolve against the directory `edgeward up` or the agent was started in.",
    ),
    env: z
      .record(environmentVariableSchema, z.string().max(pathCharactersMax))
      .refine((env) => Object.keys(env).length <= mapEntriesMax, {
        error: `expected at most ${mapEntriesMax} variables`,
      })
      .default({})
      .describe("Environment variables for the service, added to the agent's own."),
    port: z
      .int()
      .min(1)
      .max(65_535)
      .optional()
      .describe(
        "TCP port the service listens on. Omit it where several nodes share one host " +
          "(as under `edgeward up`) and the agent assigns a free one.",
      ),
    healthCheck: healthCheckSchema.optional(),
    dataDir: relativePathSchema
      .optional()
      .describe(
        "Directory holding the service's data, relative to the node's data directory; " +
          "sync_data, restore_from_backup and backups copy it. Omit for a stateless service.",
      ),
    resources: z
      .strictObject({
        cpuCores: z.number().positive().describe("CPU the service needs, in cores (0.5 = half)."),
        memoryMb: positiveIntegerSchema.describe("Memory the service needs, in MB."),
        storageGb: z.number().nonnegative().default(0).describe("Disk the service needs, in GB."),
        networkMbps: z
          .number()
          .nonnegative()
          .default(0)
          .describe("Network bandwidth the service needs, in Mbps."),
      })
      .describe(
        "What placement reserves on a node; every node resource must stay at or below the " +
          "over-quota fraction after placement.",
      ),
    requiredCapabilities: uniqueListSchema(identifierSchema, requiredCapabilitiesMax, "capability")
      .default([])
      .describe("Capabilities a node must have to run the service."),
    singleton: z
      .boolean()
      .default(true)
      .describe(
        "At most one instance in the whole fleet, even across a network partition " +
          "(leases and fencing). False allows an instance per partition.",
      ),
    restart: z
      .strictObject({
        attempts: z
          .int()
          .min(0)
          .max(100)
          .default(1)
          .describe(
            "Local restarts before failing over (the documents' restart_service); 0 fails over at once.",
          ),
      })
      .prefault({})
      .describe("What the agent does when the service process exits or turns unhealthy."),
    failover: failoverPlanSchema.optional(),
  })
  .describe("A service: a real process an agent supervises.");

export type ServiceSpec = z.output<typeof serviceSchema>;
export type HealthCheckSpec = z.output<typeof healthCheckSchema>;
export type FailoverPlanSpec = z.output<typeof failoverPlanSchema>;
export type FailoverProcedure = z.output<typeof procedureSchema>;
export type HookProcedure = z.output<typeof hookSchema>;
