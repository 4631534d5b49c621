// The scenario file: a fleet, its services and failover plans, its objectives and the faults
// to throw at it. Validated with zod at the edge; every error names the field and the file.

import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { detectorPresetNames } from "../core/membership/detector-options.ts";

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/, "use lower-case letters, digits, '.', '_' and '-'");
const positive = z.number().positive();
const fraction = z.number().min(0).max(1);

const resourcesSchema = z.strictObject({
  cpuCores: z.number().min(0),
  memoryMb: z.number().min(0),
  storageGb: z.number().min(0),
  networkMbps: z.number().min(0),
});

const latencySchema = z.discriminatedUnion("distribution", [
  z.strictObject({ distribution: z.literal("constant"), latencyMs: z.number().min(0) }),
  z.strictObject({
    distribution: z.literal("uniform"),
    latencyMsMin: z.number().min(0),
    latencyMsMax: z.number().min(0),
  }),
  /** Heavy-tailed, as real wide-area latency is: exp(ln(median) + sigma * N(0, 1)). */
  z.strictObject({
    distribution: z.literal("lognormal"),
    latencyMsMedian: positive,
    sigma: z.number().min(0).max(3),
  }),
]);

const linkProfileSchema = z.strictObject({
  /** One-way latency of this access link; a message crosses the sender's and the receiver's. */
  latency: latencySchema,
  lossProbability: fraction.default(0),
  duplicationProbability: fraction.default(0),
  /** A message is held back by `reorderDelayMs` with this probability, overtaken by later ones. */
  reorderProbability: fraction.default(0),
  reorderDelayMs: z.number().min(0).default(0),
});

const detectionSchema = z.strictObject({
  preset: z.enum(detectorPresetNames),
  overrides: z
    .strictObject({
      heartbeatIntervalMs: positive.optional(),
      suspectPhi: positive.optional(),
      convictPhi: positive.optional(),
      minStdDevMs: positive.optional(),
      acceptablePauseMs: z.number().min(0).optional(),
      readmitHeartbeats: z.number().int().positive().optional(),
      startupGraceMs: z.number().min(0).optional(),
      probeTimeoutMs: positive.optional(),
    })
    .default({}),
});

const crashesSchema = z.strictObject({
  /** Mean time between crashes of one node. */
  mtbfHours: positive,
  /** Mean time until a crashed node is back (exponentially distributed). */
  mttrMinutes: positive,
  /** Share of crashes that take the host down (power, kernel) rather than only the processes. */
  powerLossFraction: fraction.default(0.3),
});

const explicitNodeSchema = z.strictObject({ id: name, zone: name });

const nodeGroupSchema = z
  .strictObject({
    name,
    tier: z.enum(["street", "neighbourhood", "district", "cloud"]),
    /** Either `count` nodes spread round-robin over `zones` (scaled by --nodes) … */
    count: z.number().int().positive().optional(),
    zones: z.union([z.literal("all"), z.array(name).min(1)]).optional(),
    /** … or these exact nodes (never scaled). */
    nodes: z.array(explicitNodeSchema).min(1).optional(),
    capabilities: z.array(z.string().min(1)).default([]),
    capacity: resourcesSchema,
    /** Share of every resource taken by the OS, the agent and unmanaged work. */
    baseLoad: fraction.default(0.2),
    link: name,
    detection: detectionSchema,
    /** Each node's clock runs fast or slow by up to this much (uniform in ±). */
    clockDriftPpmMax: z.number().min(0).max(10_000).default(50),
    crashes: crashesSchema.optional(),
  })
  .refine((group) => (group.count === undefined) !== (group.nodes === undefined), {
    message: "give either `count` (with `zones`) or `nodes`, not both",
  })
  .refine((group) => group.count === undefined || group.zones !== undefined, {
    message: "`count` needs `zones` (a list, or `all`)",
  });

const backupLocationSchema = z.union([
  z.strictObject({ node: name }),
  /** `count` nodes of `group`, chosen per instance so backups spread over the group. */
  z.strictObject({
    group: name,
    count: z.number().int().positive().default(1),
    sameZone: z.boolean().default(false),
    sameDistrict: z.boolean().default(false),
  }),
]);

const serviceSchema = z.strictObject({
  name,
  /** One instance on every node of a group, or one instance on one node. */
  runsOn: z.union([z.strictObject({ perNodeOf: name }), z.strictObject({ node: name })]),
  requires: z.array(z.string().min(1)).default([]),
  demand: resourcesSchema,
  /** start_service: from the start command to the process listening (image present). */
  startSeconds: z.number().min(0),
  /** Data the service keeps; sync_data copies it to the new location, so it lengthens failover. */
  dataMb: z.number().min(0).default(0),
  failover: z.strictObject({
    conditions: z
      .array(z.enum(["node_failure", "network_partition", "hardware_failure", "service_unhealthy"]))
      .min(1),
    /** Tried in order before the placement rule (SPEC §5). */
    backups: z.array(backupLocationSchema).default([]),
    testSchedule: z.string().optional(),
  }),
});

const targetSchema = z.union([
  z.strictObject({ zones: z.array(name).min(1) }),
  /** Zones drawn at random each time the fault fires. */
  z.strictObject({ zoneCount: z.number().int().positive() }),
  /** Nodes of a group drawn at random each time (scaled with the group by --nodes). */
  z.strictObject({ group: name, count: z.number().int().positive() }),
  z.strictObject({ nodes: z.array(name).min(1) }),
]);

const timingFields = {
  /** Fires once at this time … */
  atSeconds: z.number().min(0).optional(),
  /** … or again and again, with exponential gaps of this mean (a Poisson process). */
  meanIntervalSeconds: positive.optional(),
  durationSeconds: positive,
  target: targetSchema,
};

const faultEventSchema = z
  .discriminatedUnion("kind", [
    /** Every host in the target loses power. */
    z.strictObject({ kind: z.literal("zone-outage"), ...timingFields }),
    z.strictObject({
      kind: z.literal("crash"),
      crash: z.enum(["process", "power"]),
      ...timingFields,
    }),
    /** `both` is symmetric; the others cut one direction only (asymmetric). */
    z.strictObject({
      kind: z.literal("partition"),
      direction: z.enum(["both", "to-server", "from-server"]),
      ...timingFields,
    }),
    z.strictObject({ kind: z.literal("flapping-link"), periodSeconds: positive, ...timingFields }),
    z.strictObject({ kind: z.literal("loss-burst"), lossProbability: fraction, ...timingFields }),
    /** Processes frozen (stop-the-world GC, SIGSTOP, a stalled VM): alive but silent. */
    z.strictObject({ kind: z.literal("pause"), ...timingFields }),
    /** Messages held, not dropped; the links come back one by one, `restoreSpacingSeconds` apart. */
    z.strictObject({
      kind: z.literal("clog"),
      restoreSpacingSeconds: z.number().min(0).default(1),
      ...timingFields,
    }),
  ])
  .refine(
    (event) => (event.atSeconds === undefined) !== (event.meanIntervalSeconds === undefined),
    {
      message: "give either `atSeconds` or `meanIntervalSeconds`",
    },
  );

const probability = z.number().min(0).max(1);

/** How one kind of failover step behaves on the simulated agents: its duration and how often it fails. */
const stepSchema = z.strictObject({
  /** Median duration; each run draws ±10 % around it. */
  ms: z.number().min(0),
  failureProbability: probability,
});

/** Defaults: small and realistic for a LAN (the start step takes the service's `startSeconds`). */
const failoverStepDefaults = {
  prepare: { ms: 50, failureProbability: 0.001 },
  /** Plus `dataMb / syncMbPerSecond`. */
  syncData: { ms: 20, failureProbability: 0.001 },
  syncMbPerSecond: 100,
  hook: { ms: 500, failureProbability: 0.001 },
  startFailureProbability: 0.002,
  route: { ms: 10, failureProbability: 0 },
  /** Per health check during verify. */
  healthCheckFailureProbability: 0.001,
} as const;

const failoverStepsSchema = z.strictObject({
  prepare: stepSchema.default(failoverStepDefaults.prepare),
  syncData: stepSchema.default(failoverStepDefaults.syncData),
  syncMbPerSecond: z.number().positive().default(failoverStepDefaults.syncMbPerSecond),
  hook: stepSchema.default(failoverStepDefaults.hook),
  startFailureProbability: probability.default(failoverStepDefaults.startFailureProbability),
  route: stepSchema.default(failoverStepDefaults.route),
  healthCheckFailureProbability: probability.default(
    failoverStepDefaults.healthCheckFailureProbability,
  ),
});

const positiveInteger = z.number().int().positive();

/** Overrides of the orchestrator's options (`failoverDefaults`), as a real server's config would set them. */
const failoverOptionsSchema = z.strictObject({
  prepareTimeoutMs: positiveInteger.optional(),
  syncDataTimeoutMs: positiveInteger.optional(),
  startTimeoutMs: positiveInteger.optional(),
  routeTimeoutMs: positiveInteger.optional(),
  verifyTimeoutMs: positiveInteger.optional(),
  verifyPassesRequired: positiveInteger.optional(),
  verifyCheckIntervalMs: positiveInteger.optional(),
  reallocationAttemptsMax: positiveInteger.optional(),
  concurrentFailoversMax: positiveInteger.optional(),
  queuedFailoversMax: positiveInteger.optional(),
  historyRecordsMax: positiveInteger.optional(),
});

export const scenarioSchema = z.strictObject({
  name,
  description: z.string().default(""),
  zones: z.array(z.strictObject({ name, district: name.optional() })).min(1),
  linkProfiles: z.record(name, linkProfileSchema),
  nodeGroups: z.array(nodeGroupSchema).min(1),
  services: z.array(serviceSchema).default([]),
  objectives: z
    .strictObject({
      failoverSecondsMax: positive.optional(),
      dataCopies: z.number().int().positive().optional(),
      rpoSeconds: positive.optional(),
      rtoSeconds: positive.optional(),
      backupIntervalSeconds: positive.optional(),
    })
    .default({}),
  checks: z
    .strictObject({
      /** A FAILED node's services must run elsewhere this soon when capacity exists. */
      replacementBoundSeconds: positive.default(60),
    })
    .default({ replacementBoundSeconds: 60 }),
  server: z
    .strictObject({
      /** How often the server evaluates each detector; 0: as the real server (detectorTickIntervalMs). */
      tickIntervalMs: z.number().min(0).default(0),
      /** A service with no eligible node is tried again this often. */
      placementRetrySeconds: positive.default(5),
      /** The failover orchestrator's options. */
      failover: failoverOptionsSchema.default({}),
    })
    .default({ tickIntervalMs: 0, placementRetrySeconds: 5, failover: {} }),
  /** What the simulated agents do with the orchestrator's step commands. */
  failoverSteps: failoverStepsSchema.default({ ...failoverStepDefaults }),
  faults: z
    .strictObject({
      /** Random faults start after this, once detectors are past their startup grace. */
      startAfterSeconds: z.number().min(0).default(60),
      events: z.array(faultEventSchema).default([]),
    })
    .default({ startAfterSeconds: 60, events: [] }),
});

export type Scenario = z.infer<typeof scenarioSchema>;
export type NodeGroupSpec = Scenario["nodeGroups"][number];
export type ServiceSpec = Scenario["services"][number];
export type FaultEventSpec = Scenario["faults"]["events"][number];
export type FaultTarget = FaultEventSpec["target"];
export type LinkProfileSpec = Scenario["linkProfiles"][string];

/** A scenario that cannot be read or does not make sense, with every problem listed. */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

/** Largest scenario file read, so a wrong path to a huge file fails fast. */
export const scenarioBytesMax = 4 * 1024 * 1024;

export async function loadScenario(path: string): Promise<Scenario> {
  let text: string;
  try {
    const buffer = await readFile(path);
    if (buffer.byteLength > scenarioBytesMax) {
      throw new ScenarioError(`${path}: larger than ${scenarioBytesMax} bytes`);
    }
    text = buffer.toString("utf8");
  } catch (error) {
    if (error instanceof ScenarioError) throw error;
    throw new ScenarioError(`${path}: cannot read: ${(error as Error).message}`);
  }
  return parseScenario(text, path);
}

export function parseScenario(text: string, sourceName: string): Scenario {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ScenarioError(`${sourceName}: not valid YAML: ${(error as Error).message}`);
  }
  const result = scenarioSchema.safeParse(document);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) =>
        `  ${issue.path.length > 0 ? issue.path.join(".") : "(top level)"}: ${issue.message}`,
    );
    throw new ScenarioError(`${sourceName}: invalid scenario:\n${problems.join("\n")}`);
  }
  return result.data;
}
