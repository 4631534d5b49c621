// Where a service may run: the reallocation rule of SPEC §1 and §6, and the plan-first choice
// of §5 (try the plan's backup locations in order, then the rule). Pure: the caller hands in
// the fleet as the server sees it.

import { NodeStatus } from "../membership/node-status.ts";

/** The four resources every node has a quota for, in their natural units. */
export interface Resources {
  readonly cpuCores: number;
  readonly memoryMb: number;
  readonly storageGb: number;
  readonly networkMbps: number;
}

export const resourceNames = ["cpuCores", "memoryMb", "storageGb", "networkMbps"] as const;
export type ResourceName = (typeof resourceNames)[number];

/** SPEC §1: every resource stays at or below 90 % of the node's quota after placement. */
export const utilizationAfterPlacementMax = 0.9;

/** A node as placement sees it. The caller may reuse these objects between calls. */
export interface PlacementCandidate {
  readonly nodeId: string;
  readonly status: NodeStatus;
  readonly capabilities: ReadonlySet<string>;
  readonly capacity: Resources;
  /** What already runs there, including reservations for services being started. */
  readonly used: Resources;
}

export interface PlacementRequest {
  readonly requiredCapabilities: readonly string[];
  readonly demand: Resources;
}

export const RejectionReason = {
  notHealthy: "not-healthy",
  missingCapability: "missing-capability",
  overCapacity: "over-capacity",
} as const;
export type RejectionReason = (typeof RejectionReason)[keyof typeof RejectionReason];

export type CandidateVerdict =
  | { readonly kind: "eligible"; readonly utilizationAfter: number }
  | { readonly kind: "rejected"; readonly reason: RejectionReason };

export type PlacementDecision =
  | {
      readonly kind: "placed";
      readonly nodeId: string;
      /** The highest resource fraction on the chosen node after placement. */
      readonly utilizationAfter: number;
      /** `plan`: one of the plan's backup locations; `rule`: the least loaded eligible node. */
      readonly via: "plan" | "rule";
    }
  | {
      readonly kind: "no-candidate";
      readonly rejections: Readonly<Record<RejectionReason, number>>;
    };

/** The highest fraction of any resource on `candidate` once `demand` is added. */
export function utilizationAfter(candidate: PlacementCandidate, demand: Resources): number {
  let highest = 0;
  for (const resource of resourceNames) {
    const capacity = candidate.capacity[resource];
    const after = candidate.used[resource] + demand[resource];
    // A resource the node lacks can hold nothing; one the service does not need costs nothing.
    const fraction = capacity > 0 ? after / capacity : after > 0 ? Number.POSITIVE_INFINITY : 0;
    if (fraction > highest) highest = fraction;
  }
  return highest;
}

/** Whether `candidate` may take the request, and how loaded it would be. */
export function judgeCandidate(
  request: PlacementRequest,
  candidate: PlacementCandidate,
): CandidateVerdict {
  const after = utilizationOrRejection(request, candidate);
  return typeof after === "number"
    ? { kind: "eligible", utilizationAfter: after }
    : { kind: "rejected", reason: after };
}

/** judgeCandidate without the verdict object: the rule calls it once per node of the fleet. */
function utilizationOrRejection(
  request: PlacementRequest,
  candidate: PlacementCandidate,
): number | RejectionReason {
  if (candidate.status !== NodeStatus.healthy) return RejectionReason.notHealthy;
  for (const capability of request.requiredCapabilities) {
    if (!candidate.capabilities.has(capability)) return RejectionReason.missingCapability;
  }
  const after = utilizationAfter(candidate, request.demand);
  return after > utilizationAfterPlacementMax ? RejectionReason.overCapacity : after;
}

/**
 * The rule: among eligible candidates, the least loaded after placement; ties go to the
 * smallest node id (code-unit order, so every machine agrees).
 */
export function placeByRule(
  request: PlacementRequest,
  candidates: Iterable<PlacementCandidate>,
): PlacementDecision {
  const rejections: Record<RejectionReason, number> = {
    [RejectionReason.notHealthy]: 0,
    [RejectionReason.missingCapability]: 0,
    [RejectionReason.overCapacity]: 0,
  };
  let best: PlacementCandidate | undefined;
  let bestUtilization = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const after = utilizationOrRejection(request, candidate);
    if (typeof after !== "number") {
      rejections[after] += 1;
      continue;
    }
    if (
      best === undefined ||
      after < bestUtilization ||
      (after === bestUtilization && candidate.nodeId < best.nodeId)
    ) {
      best = candidate;
      bestUtilization = after;
    }
  }
  if (best === undefined) return { kind: "no-candidate", rejections };
  return { kind: "placed", nodeId: best.nodeId, utilizationAfter: bestUtilization, via: "rule" };
}

/**
 * A failover plan's choice: the first of `backupLocations` (in plan order) that is eligible,
 * otherwise the rule over all `candidates`.
 */
export function placeWithPlan(
  request: PlacementRequest,
  backupLocations: readonly PlacementCandidate[],
  candidates: Iterable<PlacementCandidate>,
): PlacementDecision {
  for (const location of backupLocations) {
    const verdict = judgeCandidate(request, location);
    if (verdict.kind === "eligible") {
      return {
        kind: "placed",
        nodeId: location.nodeId,
        utilizationAfter: verdict.utilizationAfter,
        via: "plan",
      };
    }
  }
  return placeByRule(request, candidates);
}
