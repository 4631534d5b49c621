import { describe, expect, it } from "vitest";
import { NodeStatus } from "../membership/node-status.ts";
import {
  judgeCandidate,
  placeByRule,
  placeWithPlan,
  utilizationAfter,
  type PlacementCandidate,
  type PlacementRequest,
  type Resources,
} from "./placement.ts";

const capacity: Resources = { cpuCores: 4, memoryMb: 4_000, storageGb: 100, networkMbps: 100 };

function resources(fraction: number): Resources {
  return {
    cpuCores: capacity.cpuCores * fraction,
    memoryMb: capacity.memoryMb * fraction,
    storageGb: capacity.storageGb * fraction,
    networkMbps: capacity.networkMbps * fraction,
  };
}

function node(
  nodeId: string,
  usedFraction: number,
  overrides: Partial<Omit<PlacementCandidate, "capabilities">> & {
    capabilities?: readonly string[];
  } = {},
): PlacementCandidate {
  return {
    nodeId,
    status: overrides.status ?? NodeStatus.healthy,
    capabilities: new Set(overrides.capabilities ?? ["video_processing"]),
    capacity: overrides.capacity ?? capacity,
    used: overrides.used ?? resources(usedFraction),
  };
}

/** A request for 10 % of a node on every resource. */
const request: PlacementRequest = {
  requiredCapabilities: ["video_processing"],
  demand: resources(0.1),
};

describe("judgeCandidate", () => {
  it.each([
    ["a healthy node with room", node("a", 0.5), "eligible"],
    ["exactly 90 % after placement", node("a", 0.8), "eligible"],
    ["just over 90 % after placement", node("a", 0.81), "over-capacity"],
    ["a DEGRADED node", node("a", 0, { status: NodeStatus.degraded }), "not-healthy"],
    ["a FAILED node", node("a", 0, { status: NodeStatus.failed }), "not-healthy"],
    ["an OFFLINE node", node("a", 0, { status: NodeStatus.offline }), "not-healthy"],
    ["a node without the capability", node("a", 0, { capabilities: [] }), "missing-capability"],
    [
      "one resource over while the others are free",
      node("a", 0, { used: { ...resources(0), storageGb: 85 } }),
      "over-capacity",
    ],
    [
      "a node without network capacity at all",
      node("a", 0, { capacity: { ...capacity, networkMbps: 0 } }),
      "over-capacity",
    ],
  ])("%s is %s", (_label, candidate, expected) => {
    const verdict = judgeCandidate(request, candidate);
    expect(verdict.kind === "eligible" ? "eligible" : verdict.reason).toBe(expected);
  });

  it("costs nothing for a resource the service does not need", () => {
    const candidate = node("a", 0, { capacity: { ...capacity, networkMbps: 0 } });
    expect(utilizationAfter(candidate, { ...resources(0.1), networkMbps: 0 })).toBeCloseTo(0.1);
  });
});

describe("placeByRule", () => {
  it.each([
    ["picks the least loaded", [node("a", 0.5), node("b", 0.2), node("c", 0.4)], "b"],
    ["breaks ties by node id", [node("c", 0.3), node("a", 0.3), node("b", 0.3)], "a"],
    [
      "skips unhealthy nodes even when idle",
      [node("a", 0, { status: NodeStatus.failed }), node("b", 0.6)],
      "b",
    ],
    [
      "judges load after placement on the busiest resource",
      [node("a", 0.3, { used: { ...resources(0.1), memoryMb: 2_800 } }), node("b", 0.4)],
      "b",
    ],
  ])("%s", (_label, candidates, expected) => {
    const decision = placeByRule(request, candidates);
    expect(decision.kind === "placed" ? decision.nodeId : decision.kind).toBe(expected);
  });

  it("explains why nothing fits", () => {
    const decision = placeByRule(request, [
      node("a", 0.85),
      node("b", 0, { status: NodeStatus.degraded }),
      node("c", 0, { capabilities: ["data_processing"] }),
      node("d", 0.9),
    ]);
    expect(decision).toEqual({
      kind: "no-candidate",
      rejections: { "not-healthy": 1, "missing-capability": 1, "over-capacity": 2 },
    });
  });
});

describe("placeWithPlan", () => {
  const fleet = [node("backup-1", 0.7), node("backup-2", 0.5), node("idle", 0)];

  it("takes the first eligible backup location in plan order, not the least loaded", () => {
    const backups = [fleet[0], fleet[1]].filter((candidate) => candidate !== undefined);
    expect(placeWithPlan(request, backups, fleet)).toMatchObject({
      nodeId: "backup-1",
      via: "plan",
    });
  });

  it("moves down the plan when a location is not eligible", () => {
    const full = node("backup-1", 0.85);
    const backups = [full, node("backup-2", 0.5)];
    expect(placeWithPlan(request, backups, fleet)).toMatchObject({
      nodeId: "backup-2",
      via: "plan",
    });
  });

  it("falls back to the rule when no backup location fits", () => {
    const backups = [node("backup-1", 0, { status: NodeStatus.failed })];
    expect(placeWithPlan(request, backups, fleet)).toMatchObject({ nodeId: "idle", via: "rule" });
  });
});
