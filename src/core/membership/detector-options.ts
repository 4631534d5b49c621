// One documented options type for the failure detector, with named presets.
//
// Detection time is a trade between speed and false alarms. A node is suspected (DEGRADED)
// when its heartbeat is overdue by `suspectPhi`, and convicted (FAILED) when it is overdue
// by `convictPhi` AND a direct probe from the server fails. The probe is what keeps lossy
// links from convicting live nodes: heartbeat loss alone never convicts a node that answers.

import { upperTailQuantile } from "./normal-distribution.ts";

export const detectorPresetNames = ["lan", "wan", "cellular", "documents"] as const;
export type DetectorPresetName = (typeof detectorPresetNames)[number];

export interface DetectorOptions {
  /** Preset this was built from, for display. */
  readonly presetName: DetectorPresetName;
  /**
   * `accrual`: phi accrual over the observed inter-arrival times (adapts to jitter and loss).
   * `strikes`: the source documents' rule, a fixed number of missed check intervals.
   */
  readonly kind: "accrual" | "strikes";
  /** How often agents send a heartbeat. Shorter detects sooner and costs more messages. */
  readonly heartbeatIntervalMs: number;
  /** accrual: phi at which a node is suspected and probed (3 = 1 in 1,000 chance it is late). */
  readonly suspectPhi: number;
  /** accrual: phi after which a suspect whose probe failed is convicted (8 = 1 in 10^8). */
  readonly convictPhi: number;
  /** accrual: floor on the inter-arrival standard deviation; a very regular history would otherwise make one late heartbeat look fatal. */
  readonly minStdDevMs: number;
  /** Pause tolerated on top of the mean interval (GC, scheduling, a busy link). */
  readonly acceptablePauseMs: number;
  /** accrual: inter-arrival samples kept per node. */
  readonly windowSize: number;
  /** strikes: missed intervals before suspicion (documents: 1). */
  readonly suspectMisses: number;
  /** strikes: missed intervals before conviction (documents: failure_threshold = 3). */
  readonly convictMisses: number;
  /** On-time heartbeats in a row that re-admit a FAILED node. */
  readonly readmitHeartbeats: number;
  /** After the server starts, nobody is convicted for missing heartbeats for this long. */
  readonly startupGraceMs: number;
  /** A probe not answered within this is a failed probe. */
  readonly probeTimeoutMs: number;
  /**
   * Probes sent at once to a suspect, each over its own connection; it is convicted only if
   * none answers. On a lossy link one lost probe must not convict a live node.
   */
  readonly probeAttempts: number;
  /** A suspect that answered a probe is probed again this often until heartbeats resume. */
  readonly reprobeIntervalMs: number;
  /**
   * After the server closed a node's channel for sending too much, probe timeouts do not
   * convict it for this long: it was sending a moment ago, and a flood that slows its listener
   * must not get it failed over (ADR 0010). A refused probe still convicts. Longer than the
   * agent's reconnect backoff cap (10 s), after which heartbeats normally resume.
   */
  readonly rateLimitedGraceMs: number;
}

const lanDefaults: DetectorOptions = {
  presetName: "lan",
  kind: "accrual",
  heartbeatIntervalMs: 200,
  suspectPhi: 3,
  convictPhi: 8,
  minStdDevMs: 50,
  acceptablePauseMs: 200,
  windowSize: 100,
  suspectMisses: 1,
  convictMisses: 3,
  readmitHeartbeats: 3,
  startupGraceMs: 5_000,
  probeTimeoutMs: 250,
  probeAttempts: 2,
  reprobeIntervalMs: 1_000,
  rateLimitedGraceMs: 30_000,
};

const wanDefaults: DetectorOptions = {
  ...lanDefaults,
  presetName: "wan",
  heartbeatIntervalMs: 1_000,
  minStdDevMs: 200,
  acceptablePauseMs: 1_000,
  startupGraceMs: 15_000,
  probeTimeoutMs: 1_000,
  reprobeIntervalMs: 3_000,
};

const cellularDefaults: DetectorOptions = {
  ...lanDefaults,
  presetName: "cellular",
  heartbeatIntervalMs: 5_000,
  minStdDevMs: 1_000,
  acceptablePauseMs: 5_000,
  startupGraceMs: 60_000,
  probeTimeoutMs: 5_000,
  probeAttempts: 3,
  reprobeIntervalMs: 15_000,
  rateLimitedGraceMs: 60_000,
};

/** The documents' rule: a check every 30 s, 1–2 misses DEGRADED, 3 consecutive misses FAILED. */
const documentsDefaults: DetectorOptions = {
  ...lanDefaults,
  presetName: "documents",
  kind: "strikes",
  heartbeatIntervalMs: 30_000,
  acceptablePauseMs: 5_000,
  suspectMisses: 1,
  convictMisses: 3,
  startupGraceMs: 90_000,
  probeTimeoutMs: 5_000,
  reprobeIntervalMs: 30_000,
  rateLimitedGraceMs: 120_000,
};

export const detectorPresets: Readonly<Record<DetectorPresetName, DetectorOptions>> = {
  lan: lanDefaults,
  wan: wanDefaults,
  cellular: cellularDefaults,
  documents: documentsDefaults,
};

/** The fields a fleet spec may override on top of a preset. */
export type DetectorOverrides = Partial<
  Pick<
    DetectorOptions,
    | "heartbeatIntervalMs"
    | "suspectPhi"
    | "convictPhi"
    | "minStdDevMs"
    | "acceptablePauseMs"
    | "readmitHeartbeats"
    | "startupGraceMs"
    | "probeTimeoutMs"
  >
>;

export class DetectorOptionsError extends Error {
  override readonly name = "DetectorOptionsError";
}

/** A preset with overrides applied, checked for consistency. */
export function detectorOptionsFor(
  presetName: DetectorPresetName,
  overrides: DetectorOverrides = {},
): DetectorOptions {
  const options: DetectorOptions = { ...detectorPresets[presetName], ...overrides };
  const positive: (keyof DetectorOptions)[] = [
    "heartbeatIntervalMs",
    "suspectPhi",
    "convictPhi",
    "minStdDevMs",
    "windowSize",
    "readmitHeartbeats",
    "probeTimeoutMs",
    "probeAttempts",
    "reprobeIntervalMs",
  ];
  for (const key of positive) {
    const value = options[key];
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new DetectorOptionsError(
        `detection.${key} must be a positive number, got ${String(value)}`,
      );
    }
  }
  if (
    options.acceptablePauseMs < 0 ||
    options.startupGraceMs < 0 ||
    !(options.rateLimitedGraceMs >= 0)
  ) {
    throw new DetectorOptionsError(
      "detection.acceptablePauseMs, startupGraceMs and rateLimitedGraceMs must not be negative",
    );
  }
  if (options.convictPhi <= options.suspectPhi) {
    throw new DetectorOptionsError(
      `detection.convictPhi (${options.convictPhi}) must be above suspectPhi (${options.suspectPhi})`,
    );
  }
  if (options.convictPhi > 16) {
    throw new DetectorOptionsError(
      `detection.convictPhi must be at most 16, got ${options.convictPhi}`,
    );
  }
  if (!Number.isInteger(options.probeAttempts) || options.probeAttempts > 8) {
    throw new DetectorOptionsError(
      `detection.probeAttempts must be an integer from 1 to 8, got ${options.probeAttempts}`,
    );
  }
  if (!Number.isInteger(options.readmitHeartbeats)) {
    throw new DetectorOptionsError(
      `detection.readmitHeartbeats must be an integer, got ${options.readmitHeartbeats}`,
    );
  }
  return options;
}

/**
 * How often a server should tick the detector: an eighth of the heartbeat interval, from 10 ms
 * to 1 s — fine enough that ticking adds little to detection time, coarse enough that ticking
 * 10,000 nodes stays cheap. The server and the simulator both use it, so simulated detection
 * times are the server's.
 */
export function detectorTickIntervalMs(options: DetectorOptions): number {
  return Math.min(1_000, Math.max(10, Math.round(options.heartbeatIntervalMs / 8)));
}

/** Standard-normal quantiles for the two thresholds, computed once per options object. */
export interface PhiQuantiles {
  readonly suspect: number;
  readonly convict: number;
}

export function phiQuantiles(options: DetectorOptions): PhiQuantiles {
  return {
    suspect: upperTailQuantile(10 ** -options.suspectPhi),
    convict: upperTailQuantile(10 ** -options.convictPhi),
  };
}
