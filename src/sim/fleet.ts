// Expands a scenario into the concrete fleet the simulator runs: every node, every service
// instance with its resolved failover plan, scaled to --nodes. Cross-references are checked
// here, where a typo can still be reported against the scenario's own names.

import {
  detectorOptionsFor,
  DetectorOptionsError,
  type DetectorOptions,
} from "../core/membership/detector-options.ts";
import {
  resourceNames,
  utilizationAfterPlacementMax,
  type PlacementRequest,
  type Resources,
} from "../core/placement/placement.ts";
import type { FailoverCondition } from "../core/spec/service-schema.ts";
import {
  ScenarioError,
  type LinkProfileSpec,
  type NodeGroupSpec,
  type Scenario,
} from "./scenario.ts";

/** Upper bound on simulated nodes (the membership core tracks at most 100,000). */
export const simulatedNodesMax = 100_000;

export interface FleetZone {
  readonly name: string;
  readonly district: string;
}

export interface FleetGroup {
  readonly name: string;
  readonly spec: NodeGroupSpec;
  readonly detector: DetectorOptions;
  readonly linkProfileIndex: number;
  readonly nodeIndices: readonly number[];
  /** How much --nodes scaled this group (1 for explicit node lists). */
  readonly scale: number;
}

export interface FleetNode {
  readonly id: string;
  readonly groupIndex: number;
  readonly zoneIndex: number;
  readonly capabilities: ReadonlySet<string>;
  readonly capacity: Resources;
  /** What the OS, the agent and unmanaged work take, before any service. */
  readonly baseUsed: Resources;
}

export interface FleetService {
  readonly name: string;
  readonly request: PlacementRequest;
  readonly startMs: number;
  /** What sync_data copies to a new location. */
  readonly dataMb: number;
  /** The conditions its failover plan reacts to. */
  readonly conditions: readonly FailoverCondition[];
}

/** One running copy of a service: a singleton with its own failover plan. */
export interface FleetInstance {
  readonly id: string;
  readonly serviceIndex: number;
  readonly primaryNodeIndex: number;
  /** The plan's backup locations, in order. */
  readonly backupNodeIndices: readonly number[];
}

export interface Fleet {
  readonly scenario: Scenario;
  readonly zones: readonly FleetZone[];
  readonly linkProfiles: readonly LinkProfileSpec[];
  readonly groups: readonly FleetGroup[];
  readonly nodes: readonly FleetNode[];
  readonly services: readonly FleetService[];
  readonly instances: readonly FleetInstance[];
  readonly nodeIndexById: ReadonlyMap<string, number>;
  readonly zoneIndexByName: ReadonlyMap<string, number>;
  readonly groupIndexByName: ReadonlyMap<string, number>;
}

export interface FleetOptions {
  /** Scale the counted groups so the fleet has about this many nodes. */
  readonly nodesTarget?: number | undefined;
}

export function buildFleet(scenario: Scenario, options: FleetOptions = {}): Fleet {
  const problems: string[] = [];
  const zones = scenario.zones.map((zone) => ({
    name: zone.name,
    district: zone.district ?? zone.name,
  }));
  const zoneIndexByName = indexByName(zones, "zone", problems);
  const profileNames = Object.keys(scenario.linkProfiles).sort();
  const linkProfiles = profileNames.map((profileName) => scenario.linkProfiles[profileName]);
  const groupIndexByName = indexByName(scenario.nodeGroups, "node group", problems);

  const countedNodes = sum(scenario.nodeGroups.map((group) => group.count ?? 0));
  const explicitNodes = sum(scenario.nodeGroups.map((group) => group.nodes?.length ?? 0));
  let factor = 1;
  if (options.nodesTarget !== undefined) {
    if (countedNodes === 0) {
      problems.push("--nodes needs node groups with `count`; this scenario lists every node");
    } else {
      factor = Math.max(0, options.nodesTarget - explicitNodes) / countedNodes;
    }
  }

  const nodes: FleetNode[] = [];
  const nodeIndexById = new Map<string, number>();
  const groups: FleetGroup[] = scenario.nodeGroups.map((spec, groupIndex) => {
    const profileIndex = profileNames.indexOf(spec.link);
    if (profileIndex < 0)
      problems.push(`nodeGroups.${spec.name}.link: no link profile "${spec.link}"`);
    let detector = detectorOptionsFor("lan");
    try {
      detector = detectorOptionsFor(spec.detection.preset, spec.detection.overrides);
    } catch (error) {
      if (!(error instanceof DetectorOptionsError)) throw error;
      problems.push(`nodeGroups.${spec.name}.${error.message}`);
    }
    const members: { id: string; zone: string }[] = [];
    if (spec.nodes !== undefined) {
      members.push(...spec.nodes);
    } else {
      const count = Math.max(1, Math.round((spec.count ?? 1) * factor));
      const groupZones =
        spec.zones === "all" || spec.zones === undefined
          ? zones.map((zone) => zone.name)
          : spec.zones;
      const width = String(count).length;
      for (let ordinal = 0; ordinal < count; ordinal += 1) {
        const zone = groupZones[ordinal % groupZones.length] ?? "";
        members.push({ id: `${spec.name}-${String(ordinal + 1).padStart(width, "0")}`, zone });
      }
    }
    const capabilities = new Set(spec.capabilities);
    const baseUsed = scaled(spec.capacity, spec.baseLoad);
    const nodeIndices: number[] = [];
    for (const member of members) {
      const zoneIndex = zoneIndexByName.get(member.zone);
      if (zoneIndex === undefined) {
        problems.push(
          `nodeGroups.${spec.name}: node ${member.id} is in unknown zone "${member.zone}"`,
        );
        continue;
      }
      if (nodeIndexById.has(member.id)) {
        problems.push(`nodeGroups.${spec.name}: node id "${member.id}" is used twice`);
        continue;
      }
      nodeIndexById.set(member.id, nodes.length);
      nodeIndices.push(nodes.length);
      nodes.push({
        id: member.id,
        groupIndex,
        zoneIndex,
        capabilities,
        capacity: spec.capacity,
        baseUsed,
      });
    }
    const scale = spec.count === undefined ? 1 : nodeIndices.length / spec.count;
    return { name: spec.name, spec, detector, linkProfileIndex: profileIndex, nodeIndices, scale };
  });
  if (nodes.length > simulatedNodesMax) {
    problems.push(
      `the fleet has ${nodes.length} nodes; the simulator runs at most ${simulatedNodesMax}`,
    );
  }

  const services: FleetService[] = [];
  const instances: FleetInstance[] = [];
  const backupCache = new Map<string, number[]>();
  indexByName(scenario.services, "service", problems);
  for (const spec of scenario.services) {
    const serviceIndex = services.length;
    services.push({
      name: spec.name,
      request: { requiredCapabilities: spec.requires, demand: spec.demand },
      startMs: spec.startSeconds * 1_000,
      dataMb: spec.dataMb,
      conditions: spec.failover.conditions,
    });
    let primaries: readonly number[] = [];
    if ("perNodeOf" in spec.runsOn) {
      const groupIndex = groupIndexByName.get(spec.runsOn.perNodeOf);
      if (groupIndex === undefined) {
        problems.push(`services.${spec.name}.runsOn: no node group "${spec.runsOn.perNodeOf}"`);
      } else {
        primaries = groups[groupIndex]?.nodeIndices ?? [];
      }
    } else {
      const nodeIndex = nodeIndexById.get(spec.runsOn.node);
      if (nodeIndex === undefined)
        problems.push(`services.${spec.name}.runsOn: no node "${spec.runsOn.node}"`);
      else primaries = [nodeIndex];
    }
    const perNode = "perNodeOf" in spec.runsOn;
    primaries.forEach((primaryNodeIndex, ordinal) => {
      const primary = nodes[primaryNodeIndex];
      if (primary === undefined) return;
      const backupNodeIndices: number[] = [];
      for (const location of spec.failover.backups) {
        if ("node" in location) {
          const nodeIndex = nodeIndexById.get(location.node);
          if (nodeIndex === undefined) {
            if (ordinal === 0)
              problems.push(`services.${spec.name}.failover.backups: no node "${location.node}"`);
          } else if (nodeIndex !== primaryNodeIndex) backupNodeIndices.push(nodeIndex);
          continue;
        }
        const groupIndex = groupIndexByName.get(location.group);
        if (groupIndex === undefined) {
          if (ordinal === 0)
            problems.push(
              `services.${spec.name}.failover.backups: no node group "${location.group}"`,
            );
          continue;
        }
        const primaryZone = zones[primary.zoneIndex];
        const key = `${groupIndex}|${location.sameZone ? primary.zoneIndex : "*"}|${location.sameDistrict ? primaryZone?.district : "*"}`;
        let pool = backupCache.get(key);
        if (pool === undefined) {
          pool = (groups[groupIndex]?.nodeIndices ?? []).filter((nodeIndex) => {
            const candidate = nodes[nodeIndex];
            if (candidate === undefined) return false;
            if (location.sameZone && candidate.zoneIndex !== primary.zoneIndex) return false;
            return (
              !location.sameDistrict ||
              zones[candidate.zoneIndex]?.district === primaryZone?.district
            );
          });
          backupCache.set(key, pool);
        }
        // Rotate the starting point per instance so backups spread over the pool.
        const eligible = pool.filter((nodeIndex) => nodeIndex !== primaryNodeIndex);
        for (let offset = 0; offset < Math.min(location.count, eligible.length); offset += 1) {
          const nodeIndex = eligible[(ordinal + offset) % eligible.length];
          if (nodeIndex !== undefined && !backupNodeIndices.includes(nodeIndex))
            backupNodeIndices.push(nodeIndex);
        }
      }
      instances.push({
        id: perNode ? `${spec.name}@${primary.id}` : spec.name,
        serviceIndex,
        primaryNodeIndex,
        backupNodeIndices,
      });
    });
  }

  checkInitialLoad(nodes, services, instances, problems);
  if (problems.length > 0) {
    const shown = problems.slice(0, 20).map((problem) => `  ${problem}`);
    if (problems.length > shown.length)
      shown.push(`  … and ${problems.length - shown.length} more`);
    throw new ScenarioError(
      `scenario "${scenario.name}" does not hold together:\n${shown.join("\n")}`,
    );
  }
  return {
    scenario,
    zones,
    linkProfiles: linkProfiles.filter((profile) => profile !== undefined),
    groups,
    nodes,
    services,
    instances,
    nodeIndexById,
    zoneIndexByName,
    groupIndexByName,
  };
}

/** Every node must start at or below the 90 % rule with its primaries placed. */
function checkInitialLoad(
  nodes: readonly FleetNode[],
  services: readonly FleetService[],
  instances: readonly FleetInstance[],
  problems: string[],
): void {
  const used = nodes.map((node) => ({ ...node.baseUsed }));
  for (const instance of instances) {
    const demand = services[instance.serviceIndex]?.request.demand;
    const nodeUsed = used[instance.primaryNodeIndex];
    if (demand === undefined || nodeUsed === undefined) continue;
    for (const resource of resourceNames) nodeUsed[resource] += demand[resource];
  }
  let reported = 0;
  nodes.forEach((node, nodeIndex) => {
    const nodeUsed = used[nodeIndex];
    if (nodeUsed === undefined) return;
    for (const resource of resourceNames) {
      const capacity = node.capacity[resource];
      if (nodeUsed[resource] > capacity * utilizationAfterPlacementMax + 1e-9 && reported < 5) {
        reported += 1;
        problems.push(
          `node ${node.id} starts over 90 % of its ${resource} (${nodeUsed[resource]} of ${capacity}) with its primaries`,
        );
        return;
      }
    }
  });
}

function indexByName(
  items: readonly { name: string }[],
  what: string,
  problems: string[],
): Map<string, number> {
  const index = new Map<string, number>();
  items.forEach((item, position) => {
    if (index.has(item.name)) problems.push(`${what} "${item.name}" is defined twice`);
    index.set(item.name, position);
  });
  return index;
}

function scaled(resources: Resources, factor: number): Resources {
  return {
    cpuCores: resources.cpuCores * factor,
    memoryMb: resources.memoryMb * factor,
    storageGb: resources.storageGb * factor,
    networkMbps: resources.networkMbps * factor,
  };
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
