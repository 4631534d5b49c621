// Backup policies and tiers (SPEC §4): what data is read from where, how often each level
// is written, how long it is kept, and where the regional and cloud tiers live.
// Secrets never appear in the spec: cloud credentials are named, not written.

import { z } from "zod";
import {
  environmentVariableSchema,
  httpUrlSchema,
  identifierSchema,
  pathSchema,
  positiveIntegerSchema,
  relativePathSchema,
  textSchema,
  uniqueListSchema,
} from "./schema-primitives.ts";

/** Most data types one policy may cover. */
const policyDataTypesMax = 64;
/** Most shards an erasure-coded cluster tier may spread one pack over. */
const clusterShardsMax = 255;

export const backupLevels = ["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL", "CLOUD"] as const;
export type BackupLevel = (typeof backupLevels)[number];

const backupSourceSchema = z
  .discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("service_data").describe("The data directory of a service (its dataDir)."),
      service: identifierSchema.describe("Service whose data directory is read."),
      path: relativePathSchema
        .optional()
        .describe("Only this subdirectory of the service's data directory."),
    }),
    z.strictObject({
      type: z
        .literal("configuration")
        .describe("The fleet spec and each node's own configuration."),
    }),
    z.strictObject({
      type: z.literal("logs").describe("Service logs the agent captured."),
      service: identifierSchema
        .optional()
        .describe("Only this service's logs; omit for every service on the node."),
    }),
    z.strictObject({
      type: z.literal("metrics").describe("The node's exported metrics history."),
    }),
    z.strictObject({
      type: z
        .literal("sqlite")
        .describe(
          "A SQLite database, copied with SQLite's online backup API so the copy is consistent.",
        ),
      path: pathSchema.describe(
        "Database file, relative to the node's data directory or absolute.",
      ),
    }),
  ])
  .describe("Where the data of one data type is read from.");

const backupLevelSettingsSchema = z.strictObject({
  level: z
    .enum(backupLevels)
    .describe(
      "EDGE_LOCAL: the node's own disk; EDGE_CLUSTER: erasure-coded over peer nodes; " +
        "REGIONAL: the regional blob store; CLOUD: S3-compatible object storage.",
    ),
  intervalSeconds: positiveIntegerSchema.describe("Time between two backups at this level."),
  retentionDays: positiveIntegerSchema.describe(
    "Days a backup at this level is kept before it expires.",
  ),
});

const backupPolicySchema = z
  .strictObject({
    name: identifierSchema.describe("Unique policy name, e.g. production_data."),
    dataTypes: uniqueListSchema(identifierSchema, policyDataTypesMax, "data type")
      .min(1)
      .describe("Kinds of data the policy protects, e.g. production_metrics, configuration."),
    sources: z
      .record(identifierSchema, backupSourceSchema)
      .describe("For each data type, where its data is read from."),
    levels: z
      .array(backupLevelSettingsSchema)
      .min(1)
      .max(backupLevels.length)
      .describe("Levels the policy writes to, each with its own interval and retention."),
    encryptionRequired: z
      .boolean()
      .default(true)
      .describe("Refuse to store this policy's backups unencrypted (documents: true)."),
  })
  .describe("A backup policy (SPEC §4).");

const cloudCredentialsSchema = z
  .discriminatedUnion("source", [
    z.strictObject({
      source: z.literal("environment").describe("Read the keys from environment variables."),
      accessKeyIdVariable: environmentVariableSchema
        .default("AWS_ACCESS_KEY_ID")
        .describe("Variable holding the access key id."),
      secretAccessKeyVariable: environmentVariableSchema
        .default("AWS_SECRET_ACCESS_KEY")
        .describe("Variable holding the secret access key."),
    }),
    z.strictObject({
      source: z.literal("file").describe("Read the keys from a file."),
      path: pathSchema.describe(
        'JSON file {"accessKeyId": ..., "secretAccessKey": ...}; keep it readable by its owner only.',
      ),
    }),
  ])
  .describe("Where the S3 credentials come from. Never write secrets into the fleet spec.");

export const backupSchema = z
  .strictObject({
    tiers: z
      .strictObject({
        edgeCluster: z
          .strictObject({
            dataShards: z
              .int()
              .min(1)
              .max(clusterShardsMax)
              .default(4)
              .describe("Reed-Solomon data shards k (default 4)."),
            parityShards: z
              .int()
              .min(1)
              .max(clusterShardsMax)
              .default(2)
              .describe(
                "Reed-Solomon parity shards m (default 2): the backup survives the loss of any m peer nodes.",
              ),
          })
          .prefault({})
          .describe(
            "EDGE_CLUSTER: each pack is split into k + m shards on k + m distinct peer nodes, " +
              "at (k + m) / k storage overhead.",
          ),
        regional: z
          .strictObject({
            directory: pathSchema
              .optional()
              .describe("Directory for the regional tier; omit to use the server's blob store."),
          })
          .prefault({})
          .describe("REGIONAL: a blob store the server hosts, or any directory."),
        cloud: z
          .strictObject({
            endpoint: httpUrlSchema.describe(
              "S3 API endpoint, e.g. https://s3.eu-central-1.amazonaws.com.",
            ),
            region: textSchema.default("us-east-1").describe("S3 region used for request signing."),
            bucket: z
              .string()
              .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
                error: "expected an S3 bucket name (3 to 63 of a-z, 0-9, '.', '-')",
              })
              .describe("Bucket that holds the backup repository."),
            prefix: z
              .string()
              .max(1024)
              .default("")
              .describe("Key prefix inside the bucket, e.g. factory-1/."),
            forcePathStyle: z
              .boolean()
              .default(true)
              .describe("Address the bucket in the path, as most S3-compatible servers need."),
            credentials: cloudCredentialsSchema,
          })
          .optional()
          .describe("CLOUD: S3-compatible object storage; required when a policy uses CLOUD."),
      })
      .prefault({})
      .describe("Settings of the backup tiers the policies write to."),
    policies: z
      .array(backupPolicySchema)
      .max(256)
      .default([])
      .describe("Backup policies, each naming its data, levels, intervals and retention."),
  })
  .describe("Multi-tier backups (SPEC §4).");

export type BackupSpec = z.output<typeof backupSchema>;
export type BackupPolicySpec = z.output<typeof backupPolicySchema>;
export type BackupLevelSettings = z.output<typeof backupLevelSettingsSchema>;
export type BackupSource = z.output<typeof backupSourceSchema>;
export type CloudCredentialsSpec = z.output<typeof cloudCredentialsSchema>;
