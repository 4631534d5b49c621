// The simulation: a fleet of simulated agents and one simulated server on a virtual clock.
//
// The server side runs the real core: one `Membership` per node group (each group has its own
// detection preset) fed exactly as the real server feeds it — heartbeats and registrations off
// the network, `connectionLost` when a connection closes, probe answers — and the failover
// orchestrator for every service of a FAILED node: it fences, then walks the plan's locations
// and the placement rule through prepare, sync, start, route and verify. The simulated agents
// carry out its commands in simulated time (seeded durations and failures per step kind) and
// their answers come back as events, never synchronously. Only the agents and the wire are
// simulated. Crash kinds matter to the detector: a dead process leaves its host answering
// (the peer sees the connection reset, a probe is refused), a dead host or a cut link leaves
// silence (a probe times out).
//
// Hot-path state lives in typed arrays indexed by node and instance number; events carry two
// integers, never a closure.

import { Membership, type MembershipEffect } from "../core/membership/membership.ts";
import { NodeStatus } from "../core/membership/node-status.ts";
import {
  detectorTickIntervalMs,
  type DetectorOptions,
} from "../core/membership/detector-options.ts";
import {
  placeByRule,
  resourceNames,
  type PlacementCandidate,
  type PlacementRequest,
  type Resources,
} from "../core/placement/placement.ts";
import { failoverOptionsFor, type FailoverOptions } from "../core/failover/failover-options.ts";
import type {
  FailoverEffect,
  FailoverRecord,
  FailoverService,
  FailoverStatus,
} from "../core/failover/failover-protocol.ts";
import { FailoverOrchestrator } from "../core/failover/orchestrator.ts";
import type { ServiceRegistrySnapshot } from "../core/failover/service-registry.ts";
import { invariantCheckers, type InvariantChecker } from "./checkers.ts";
import type { Fleet, FleetInstance } from "./fleet.ts";
import { Direction, SimulatedNetwork } from "./network.ts";
import { SeededRandom } from "./random.ts";
import { ScenarioError, type FaultEventSpec, type FaultTarget } from "./scenario.ts";
import { VirtualClock, type EventHandler } from "./virtual-clock.ts";

/**
 * Deliberate bugs for testing the checkers (a checker that never fires proves nothing).
 * Each breaks one property the checkers guard.
 */
export const injectedBugs = [
  "placement-ignores-capacity",
  "detector-convicts-early",
  "no-fencing",
] as const;
export type InjectedBug = (typeof injectedBugs)[number];

export interface SimulationOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly injectedBug?: InjectedBug | undefined;
}

const EventKind = {
  heartbeat: 1,
  deliver: 2,
  tick: 3,
  faultFire: 4,
  faultEnd: 5,
  faultStep: 6,
  groupCrash: 7,
  nodeRestart: 8,
  pauseEnd: 9,
  /** An agent restarted a service of its own after coming back (no failover involved). */
  serviceStarted: 10,
  failoverRetry: 11,
  replacementDeadline: 12,
  agentStart: 13,
  /** A step command finished on its agent; `first` names the pending step. */
  stepDone: 14,
  /** One health check during verify: instance, generation. */
  healthCheck: 15,
  failoverTick: 16,
} as const;

/** How often the server hands the orchestrator the time, so a step past its deadline fails. */
const failoverTickIntervalMs = 250;
/** Failover records kept in the measurements for tests and debugging; the rest are only counted. */
const failoverRecordsKeptMax = 200;
/** Steps in flight at once; one per running failover, so this is far above any sane setting. */
const pendingStepsMax = 1_000_000;

/** A step command the simulated agents are carrying out. */
interface PendingStep {
  readonly effect: Extract<
    FailoverEffect,
    { type: "prepare" | "sync-data" | "run-hook" | "start" | "route" }
  >;
  readonly instance: number;
  readonly node: number;
  readonly fails: boolean;
}

const Message = {
  register: 1,
  heartbeat: 2,
  connectionClosed: 3,
  probeAlive: 4,
  probeRefused: 5,
  probeRequest: 6,
} as const;
/**
 * A message travels as kind + connection number * 8: the server tells the agent's current
 * connection from an old one, as a real server tells two TCP connections apart.
 */
const messageKindBits = 3;
const messageKindMask = (1 << messageKindBits) - 1;

/** What runs on a node, as ground truth (the server only learns it through messages). */
const NodeState = { running: 0, paused: 1, processDown: 2, hostDown: 3 } as const;

/** The fault a node is in, for detection latency: none, or the kind that started it. */
export const faultKinds = ["process", "power", "pause"] as const;
export type FaultKind = (typeof faultKinds)[number];
const noFault = -1;

const InstanceState = { running: 0, starting: 1, down: 2, unplaced: 3 } as const;

/** A network fault, or a node fault that just ended, this recent explains a conviction of a live node. */
const faultMemoryMs = 60_000;

interface MutableResources {
  cpuCores: number;
  memoryMb: number;
  storageGb: number;
  networkMbps: number;
}

interface SimulatedCandidate extends PlacementCandidate {
  status: NodeStatus;
  readonly used: MutableResources;
}

interface ActiveFault {
  readonly spec: FaultEventSpec;
  readonly nodes: readonly number[];
  readonly endMs: number;
  /** flapping-link: whether the links are cut right now. */
  linksCut: boolean;
}

/** Raw measurements of one run; `buildReport` turns them into the report. */
export interface SimulationMeasurements {
  readonly eventsProcessed: number;
  readonly nodeCount: number;
  readonly instanceCount: number;
  readonly faultsInjected: Record<string, number>;
  readonly detectionLatencyMsByKind: Record<FaultKind, number[]>;
  readonly detectionLatencyMsByGroup: Record<string, number[]>;
  readonly recoveredBeforeConvictionByKind: Record<FaultKind, number>;
  readonly convictions: number;
  /** Live nodes convicted: during a network fault, just after their own fault, or neither. */
  readonly falseConvictionsByCause: { network: number; recovering: number; unexplained: number };
  readonly pausedConvictions: number;
  readonly failoverMsByService: Record<string, number[]>;
  readonly outageMsByService: Record<string, number[]>;
  readonly downMsByService: Record<string, number>;
  readonly instancesByService: Record<string, number>;
  /** Completed failovers by how the location was chosen, failovers that found no location, failed attempts. */
  readonly placements: {
    viaPlan: number;
    viaRule: number;
    noCandidate: number;
    attemptsFailed: number;
  };
  /** Durations of the orchestrator's steps that succeeded, by step name. */
  readonly stepMsByName: Record<string, number[]>;
  /** Steps that failed or timed out (plan locations found ineligible are counted apart). */
  readonly stepFailuresByName: Record<string, number>;
  readonly ineligibleLocations: number;
  readonly failoverRecordsByStatus: Record<FailoverStatus, number>;
  /** The first `failoverRecordsKeptMax` records, in the order they ended. */
  readonly failoverRecords: FailoverRecord[];
  readonly staleCopies: { fenced: number; runningMs: number };
  readonly network: SimulatedNetwork["counters"];
}

export interface SimulationResult {
  readonly measurements: SimulationMeasurements;
  readonly checkers: readonly InvariantChecker[];
}

export class Simulation implements EventHandler {
  readonly #fleet: Fleet;
  readonly #options: SimulationOptions;
  readonly #clock = new VirtualClock(0);
  readonly #network: SimulatedNetwork;
  readonly #faultRandom: SeededRandom;
  readonly #stepRandom: SeededRandom;
  readonly #checkers = invariantCheckers();

  // Nodes.
  readonly #nodeIds: readonly string[];
  readonly #groupOfNode: Int32Array;
  readonly #state: Uint8Array;
  /** The agent's heartbeat connection, numbered from 1; a restart opens a new one. */
  readonly #connection: Int32Array;
  /** The connection the server has accepted from each agent (0: none yet). */
  readonly #serverConnection: Int32Array;
  readonly #incarnation: Int32Array;
  readonly #restartToken: Int32Array;
  readonly #pauseToken: Int32Array;
  readonly #heartbeatIntervalMs: Float64Array;
  readonly #faultKind: Int8Array;
  readonly #faultStartMs: Float64Array;
  readonly #faultDetected: Uint8Array;
  readonly #lastArrivalMs: Float64Array;
  readonly #lastNetworkFaultMs: Float64Array;
  readonly #lastNodeFaultEndMs: Float64Array;
  readonly #candidates: SimulatedCandidate[];
  /** Instances the server has assigned to each node (registry view). */
  readonly #assigned: number[][];
  /** Instances physically running on each node, any generation. */
  readonly #copies: number[][];
  /** The same, by instance: the nodes running a copy of it. */
  readonly #copyNodes: number[][];
  readonly #copyGeneration = new Map<number, number>();
  readonly #copyFencedAtMs = new Map<number, number>();
  readonly #nodesByZone: number[][];

  // Server.
  readonly #memberships: Membership[];
  /** Each node's handle in its group's membership, from its first registration (-1: none). */
  readonly #memberHandle: Int32Array;
  readonly #tickIntervalMs: Float64Array;

  // Instances.
  readonly #instanceNode: Int32Array;
  readonly #generation: Int32Array;
  readonly #attempt: Int32Array;
  readonly #instanceState: Uint8Array;
  readonly #downSinceMs: Float64Array;
  readonly #replacedSinceOutage: Uint8Array;
  readonly #incident: Int32Array;
  readonly #incidentConvictedAtMs: Float64Array;
  readonly #incidentNode: Int32Array;
  readonly #incidentExcused: Uint8Array;
  /** The instance has served somewhere since its latest incident began. */
  readonly #incidentServed: Uint8Array;

  // Failover.
  readonly #orchestrator: FailoverOrchestrator;
  readonly #failoverOptions: FailoverOptions;
  readonly #failoverServices: readonly FailoverService[];
  readonly #instanceByName = new Map<string, number>();
  /** Commands the orchestrator emitted, carried out once its call has returned. */
  readonly #effects: FailoverEffect[] = [];
  readonly #pendingSteps = new Map<number, PendingStep>();
  #nextStepId = 1;
  /** The generation of the instance's running attempt (0: none) and its node. */
  readonly #attemptGeneration: Int32Array;
  readonly #attemptNode: Int32Array;
  readonly #healthPasses: Int32Array;
  readonly #healthChecks: Int32Array;

  // Faults.
  readonly #activeFaults: ActiveFault[] = [];

  readonly #measurements: {
    -readonly [Key in keyof SimulationMeasurements]: SimulationMeasurements[Key];
  };

  constructor(fleet: Fleet, options: SimulationOptions) {
    this.#fleet = fleet;
    this.#options = options;
    const random = new SeededRandom(options.seed);
    const networkRandom = random.fork();
    this.#faultRandom = random.fork();
    const nodeRandom = random.fork();
    this.#stepRandom = random.fork();
    const nodeCount = fleet.nodes.length;
    const instanceCount = fleet.instances.length;

    this.#nodeIds = fleet.nodes.map((node) => node.id);
    this.#groupOfNode = Int32Array.from(fleet.nodes, (node) => node.groupIndex);
    this.#state = new Uint8Array(nodeCount);
    this.#connection = new Int32Array(nodeCount);
    this.#serverConnection = new Int32Array(nodeCount);
    this.#incarnation = new Int32Array(nodeCount);
    this.#restartToken = new Int32Array(nodeCount);
    this.#pauseToken = new Int32Array(nodeCount);
    this.#faultKind = new Int8Array(nodeCount).fill(noFault);
    this.#faultStartMs = new Float64Array(nodeCount).fill(Number.NaN);
    this.#faultDetected = new Uint8Array(nodeCount);
    this.#lastArrivalMs = new Float64Array(nodeCount).fill(Number.NEGATIVE_INFINITY);
    this.#lastNetworkFaultMs = new Float64Array(nodeCount).fill(Number.NEGATIVE_INFINITY);
    this.#lastNodeFaultEndMs = new Float64Array(nodeCount).fill(Number.NEGATIVE_INFINITY);
    this.#heartbeatIntervalMs = Float64Array.from(fleet.nodes, (node) => {
      const group = fleet.groups[node.groupIndex];
      const driftPpm = (nodeRandom.nextFloat() * 2 - 1) * (group?.spec.clockDriftPpmMax ?? 0);
      // A fast clock fires its timers early in real time.
      return (group?.detector.heartbeatIntervalMs ?? 1_000) / (1 + driftPpm / 1e6);
    });
    this.#candidates = fleet.nodes.map((node) => ({
      nodeId: node.id,
      status: NodeStatus.healthy,
      capabilities: node.capabilities,
      capacity: node.capacity,
      used: { ...node.baseUsed },
    }));
    this.#assigned = fleet.nodes.map(() => []);
    this.#copies = fleet.nodes.map(() => []);
    this.#copyNodes = fleet.instances.map(() => []);
    this.#nodesByZone = fleet.zones.map(() => []);
    fleet.nodes.forEach((node, index) => this.#nodesByZone[node.zoneIndex]?.push(index));

    this.#network = new SimulatedNetwork(
      this.#clock,
      networkRandom,
      EventKind.deliver,
      fleet.linkProfiles,
      Int32Array.from(fleet.nodes, (node) => fleet.groups[node.groupIndex]?.linkProfileIndex ?? 0),
    );

    this.#memberHandle = new Int32Array(nodeCount).fill(-1);
    this.#memberships = fleet.groups.map(
      (group) =>
        new Membership(this.#detectorOptions(group.detector), 0, (effect) =>
          this.#onMembershipEffect(effect),
        ),
    );
    const tickSetting = fleet.scenario.server.tickIntervalMs;
    // Unless the scenario says otherwise, tick as the real server does.
    this.#tickIntervalMs = Float64Array.from(fleet.groups, (group) =>
      tickSetting > 0 ? tickSetting : detectorTickIntervalMs(group.detector),
    );

    this.#instanceNode = Int32Array.from(fleet.instances, (instance) => instance.primaryNodeIndex);
    this.#generation = new Int32Array(instanceCount).fill(1);
    this.#attempt = new Int32Array(instanceCount);
    this.#instanceState = new Uint8Array(instanceCount);
    this.#downSinceMs = new Float64Array(instanceCount).fill(Number.NaN);
    this.#replacedSinceOutage = new Uint8Array(instanceCount);
    this.#incident = new Int32Array(instanceCount);
    this.#incidentConvictedAtMs = new Float64Array(instanceCount).fill(Number.NaN);
    this.#incidentNode = new Int32Array(instanceCount).fill(-1);
    this.#incidentExcused = new Uint8Array(instanceCount);
    this.#incidentServed = new Uint8Array(instanceCount);
    this.#attemptGeneration = new Int32Array(instanceCount);
    this.#attemptNode = new Int32Array(instanceCount).fill(-1);
    this.#healthPasses = new Int32Array(instanceCount);
    this.#healthChecks = new Int32Array(instanceCount);
    fleet.instances.forEach((instance, index) => this.#instanceByName.set(instance.id, index));
    this.#failoverServices = fleet.instances.map((instance) => {
      const service = fleet.services[instance.serviceIndex];
      if (service === undefined) throw new Error(`no service for instance ${instance.id}`);
      return {
        name: instance.id,
        demand: service.request.demand,
        requiredCapabilities: service.request.requiredCapabilities,
        plan: {
          backups: instance.backupNodeIndices.map((node) => this.#nodeIds[node] ?? ""),
          conditions: service.conditions,
          hooks: [],
          dataSources: ["primary", "backup"],
        },
      };
    });
    this.#failoverOptions = failoverOptionsFor(fleet.scenario.server.failover);
    // The server starts from its saved state: every instance routed to its primary, generation 1.
    const services: Record<string, { generation: number; route: ServiceRoutePlain }> = {};
    fleet.instances.forEach((instance, index) => {
      const nodeId = this.#nodeIds[instance.primaryNodeIndex] ?? "";
      services[instance.id] = {
        generation: 1,
        route: { nodeId, endpoint: endpointOf(nodeId, index), generation: 1 },
      };
    });
    const registry: ServiceRegistrySnapshot = { services };
    this.#orchestrator = new FailoverOrchestrator(
      this.#failoverOptions,
      {
        candidates: () => this.#orchestratorCandidates(),
        candidate: (nodeId) => this.#orchestratorCandidate(nodeId),
        emit: (effect) => {
          this.#effects.push(effect);
        },
      },
      { version: 1, nextFailoverId: 1, failovers: [], history: [], registry },
    );

    const byService = <T>(make: () => T): Record<string, T> =>
      Object.fromEntries(fleet.services.map((service) => [service.name, make()]));
    this.#measurements = {
      eventsProcessed: 0,
      nodeCount,
      instanceCount,
      faultsInjected: {},
      detectionLatencyMsByKind: { process: [], power: [], pause: [] },
      detectionLatencyMsByGroup: Object.fromEntries(fleet.groups.map((group) => [group.name, []])),
      recoveredBeforeConvictionByKind: { process: 0, power: 0, pause: 0 },
      convictions: 0,
      falseConvictionsByCause: { network: 0, recovering: 0, unexplained: 0 },
      pausedConvictions: 0,
      failoverMsByService: byService(() => []),
      outageMsByService: byService(() => []),
      downMsByService: byService(() => 0),
      instancesByService: byService(() => 0),
      placements: { viaPlan: 0, viaRule: 0, noCandidate: 0, attemptsFailed: 0 },
      stepMsByName: {},
      stepFailuresByName: {},
      ineligibleLocations: 0,
      failoverRecordsByStatus: { initiated: 0, completed: 0, failed: 0, error: 0 },
      failoverRecords: [],
      staleCopies: { fenced: 0, runningMs: 0 },
      network: this.#network.counters,
    };

    // Every primary starts out running where its plan puts it.
    fleet.instances.forEach((instance, index) => {
      const node = instance.primaryNodeIndex;
      this.#assigned[node]?.push(index);
      this.#addCopy(node, index);
      this.#reserve(node, this.#demandOf(index), 1);
      const service = this.#serviceName(index);
      this.#measurements.instancesByService[service] =
        (this.#measurements.instancesByService[service] ?? 0) + 1;
    });
  }

  run(): SimulationResult {
    const clock = this.#clock;
    const random = this.#faultRandom;
    this.#nodeIds.forEach((_id, node) => {
      const intervalMs = this.#heartbeatIntervalMs[node] ?? 1_000;
      // Agents come up spread over one heartbeat interval, as a fleet restarting would.
      const startMs = random.nextFloat() * intervalMs;
      clock.post(startMs, EventKind.agentStart, node, 0);
    });
    this.#fleet.groups.forEach((_group, groupIndex) => {
      clock.post(this.#tickIntervalMs[groupIndex] ?? 100, EventKind.tick, groupIndex, 0);
    });
    clock.post(failoverTickIntervalMs, EventKind.failoverTick, 0, 0);
    this.#scheduleFaults();
    this.#measurements.eventsProcessed = clock.runUntil(this.#options.durationMs, this);
    this.#closeBooks();
    return { measurements: this.#measurements, checkers: this.#checkers };
  }

  handleEvent(kind: number, first: number, second: number): void {
    switch (kind) {
      case EventKind.heartbeat:
        this.#onHeartbeatTimer(first, second);
        break;
      case EventKind.deliver:
        this.#onDeliver(first, second);
        break;
      case EventKind.tick: {
        const membership = this.#memberships[first];
        membership?.tick(this.#clock.nowMs());
        this.#clock.post(
          this.#clock.nowMs() + (this.#tickIntervalMs[first] ?? 100),
          EventKind.tick,
          first,
          0,
        );
        break;
      }
      case EventKind.agentStart:
        this.#startAgent(first);
        break;
      case EventKind.faultFire:
        this.#fireFault(first);
        break;
      case EventKind.faultEnd:
        this.#endFault(first);
        break;
      case EventKind.faultStep:
        this.#stepFault(first, second);
        break;
      case EventKind.groupCrash:
        this.#randomCrash(first);
        break;
      case EventKind.nodeRestart:
        if (this.#restartToken[first] === second) this.#restart(first);
        break;
      case EventKind.pauseEnd:
        if (this.#pauseToken[first] === second && this.#state[first] === NodeState.paused)
          this.#resume(first);
        break;
      case EventKind.serviceStarted:
        if (this.#attempt[first] === second) this.#onServiceStarted(first);
        break;
      case EventKind.failoverRetry:
        if (this.#incident[first] === second) this.#retryFailover(first);
        break;
      case EventKind.stepDone:
        this.#onStepDone(first);
        break;
      case EventKind.healthCheck:
        this.#onHealthCheck(first, second);
        break;
      case EventKind.failoverTick:
        this.#orchestrator.tick(this.#clock.nowMs());
        this.#carryOutEffects();
        this.#clock.post(
          this.#clock.nowMs() + failoverTickIntervalMs,
          EventKind.failoverTick,
          0,
          0,
        );
        break;
      case EventKind.replacementDeadline:
        if (this.#incident[first] === second) this.#checkReplacementDeadline(first);
        break;
      default:
        throw new Error(`unknown simulator event kind ${kind}`);
    }
  }

  // ---- Agents -------------------------------------------------------------------------------

  #onHeartbeatTimer(node: number, incarnation: number): void {
    if (this.#incarnation[node] !== incarnation || this.#state[node] !== NodeState.running) return;
    this.#sendToServer(node, Message.heartbeat);
    this.#clock.post(
      this.#clock.nowMs() + (this.#heartbeatIntervalMs[node] ?? 1_000),
      EventKind.heartbeat,
      node,
      incarnation,
    );
  }

  /** The agent process starts (boot or restart): it connects, registers and heartbeats. */
  #startAgent(node: number): void {
    const incarnation = (this.#incarnation[node] ?? 0) + 1;
    this.#incarnation[node] = incarnation;
    this.#connection[node] = (this.#connection[node] ?? 0) + 1;
    this.#sendToServer(node, Message.register);
    this.#clock.post(
      this.#clock.nowMs() + (this.#heartbeatIntervalMs[node] ?? 1_000),
      EventKind.heartbeat,
      node,
      incarnation,
    );
  }

  #sendToServer(node: number, kind: number): void {
    this.#network.send(
      node,
      Direction.toServer,
      kind | ((this.#connection[node] ?? 0) << messageKindBits),
    );
  }

  #onDeliver(node: number, message: number): void {
    const nowMs = this.#clock.nowMs();
    const kind = message & messageKindMask;
    const connection = message >>> messageKindBits;
    if (kind === Message.probeRequest) {
      switch (this.#state[node] ?? NodeState.hostDown) {
        case NodeState.running:
          this.#sendToServer(node, Message.probeAlive);
          break;
        case NodeState.processDown:
          // Nothing listens on the port, so the host's kernel refuses the connection.
          this.#sendToServer(node, Message.probeRefused);
          break;
        default:
          // A frozen process or a dead host: the probe goes unanswered and times out.
          break;
      }
      return;
    }
    const membership = this.#memberships[this.#groupOfNode[node] ?? 0];
    const nodeId = this.#nodeIds[node] ?? "";
    if (membership === undefined) return;
    const current = this.#serverConnection[node] ?? 0;
    switch (kind) {
      case Message.heartbeat:
      case Message.register:
        // Whatever arrives first on a new connection opens it: on a real wire the hello and
        // the heartbeats share one ordered, retransmitted stream.
        if (connection > current) {
          this.#serverConnection[node] = connection;
          this.#lastArrivalMs[node] = nowMs;
          this.#memberHandle[node] = membership.register(nodeId, nowMs, {
            probeable: this.#probeable(),
          });
          this.#restartAssignedServices(node);
        } else if (connection === current) {
          this.#lastArrivalMs[node] = nowMs;
          membership.heartbeatAt(this.#memberHandle[node] ?? -1, nowMs);
        }
        break;
      case Message.connectionClosed:
        if (connection === current) membership.connectionLost(nodeId, nowMs);
        break;
      case Message.probeAlive:
        membership.probeAnswered(nodeId, "alive", nowMs);
        break;
      case Message.probeRefused:
        membership.probeAnswered(nodeId, "refused", nowMs);
        break;
      default:
        throw new Error(`unknown simulated message ${message}`);
    }
  }

  // ---- Node faults --------------------------------------------------------------------------

  #crash(node: number, kind: "process" | "power", restartAtMs: number): void {
    const state = this.#state[node];
    if (state === NodeState.hostDown || (state === NodeState.processDown && kind === "process"))
      return;
    this.#state[node] = kind === "power" ? NodeState.hostDown : NodeState.processDown;
    this.#incarnation[node] = (this.#incarnation[node] ?? 0) + 1;
    const token = (this.#restartToken[node] ?? 0) + 1;
    this.#restartToken[node] = token;
    this.#clock.post(restartAtMs, EventKind.nodeRestart, node, token);
    this.#beginFault(node, kind === "power" ? 1 : 0);
    this.#count(kind === "power" ? "node-power-losses" : "node-process-crashes");
    for (const instance of this.#copies[node] ?? []) {
      // The outage starts now, at the crash, not when the server notices.
      if (this.#isCurrentHere(instance, node)) this.#markDown(instance);
      this.#endStaleTime(node, instance);
      this.#forgetCopy(node, instance);
    }
    this.#copies[node] = [];
    for (const instance of this.#assigned[node] ?? []) {
      if (this.#instanceState[instance] === InstanceState.running)
        this.#instanceState[instance] = InstanceState.down;
    }
    if (kind === "process") {
      // The kernel closes the dead process's sockets: the server's end sees the connection drop.
      this.#sendToServer(node, Message.connectionClosed);
    }
  }

  #restart(node: number): void {
    this.#clearNodeFault(node);
    this.#state[node] = NodeState.running;
    this.#startAgent(node);
  }

  #pause(node: number, untilMs: number): void {
    if (this.#state[node] !== NodeState.running) return;
    this.#state[node] = NodeState.paused;
    this.#incarnation[node] = (this.#incarnation[node] ?? 0) + 1;
    const token = (this.#pauseToken[node] ?? 0) + 1;
    this.#pauseToken[node] = token;
    this.#clock.post(untilMs, EventKind.pauseEnd, node, token);
    this.#beginFault(node, 2);
    this.#count("node-pauses");
    for (const instance of this.#copies[node] ?? []) {
      if (this.#isCurrentHere(instance, node)) this.#markDown(instance);
    }
  }

  #resume(node: number): void {
    this.#clearNodeFault(node);
    this.#state[node] = NodeState.running;
    const incarnation = (this.#incarnation[node] ?? 0) + 1;
    this.#incarnation[node] = incarnation;
    // The overdue heartbeat timer fires the moment the process runs again.
    this.#onHeartbeatTimer(node, incarnation);
    for (const instance of this.#copies[node] ?? []) {
      if (
        this.#isCurrentHere(instance, node) &&
        this.#instanceState[instance] === InstanceState.running
      ) {
        this.#markUp(instance);
      }
    }
  }

  #beginFault(node: number, kind: number): void {
    if (this.#faultKind[node] !== noFault) return;
    this.#faultKind[node] = kind;
    this.#faultStartMs[node] = this.#clock.nowMs();
    this.#faultDetected[node] = 0;
  }

  #clearNodeFault(node: number): void {
    const kind = this.#faultKind[node] ?? noFault;
    if (kind === noFault) return;
    if (this.#faultDetected[node] === 0) {
      const name = faultKinds[kind] ?? "process";
      this.#measurements.recoveredBeforeConvictionByKind[name] += 1;
    }
    this.#faultKind[node] = noFault;
    this.#faultStartMs[node] = Number.NaN;
    this.#lastNodeFaultEndMs[node] = this.#clock.nowMs();
  }

  // ---- Server: membership effects -----------------------------------------------------------

  #onMembershipEffect(effect: MembershipEffect): void {
    const node = this.#fleet.nodeIndexById.get(effect.nodeId);
    if (node === undefined) throw new Error(`membership reported unknown node ${effect.nodeId}`);
    switch (effect.type) {
      case "probe":
        // Each attempt is its own connection, lost or delivered on its own.
        for (let attempt = 0; attempt < effect.attempts; attempt += 1) {
          this.#network.send(node, Direction.fromServer, Message.probeRequest);
        }
        return;
      case "transition": {
        const candidate = this.#candidates[node];
        if (candidate !== undefined) candidate.status = effect.to;
        if (effect.to === NodeStatus.failed) this.#onConvicted(node, effect.reason);
        else if (effect.from === NodeStatus.failed) this.#onReadmitted(node);
        return;
      }
    }
  }

  #onConvicted(node: number, reason: string): void {
    const nowMs = this.#clock.nowMs();
    const measurements = this.#measurements;
    measurements.convictions += 1;
    const state = this.#state[node];
    const processAlive = state === NodeState.running;
    const group = this.#fleet.groups[this.#groupOfNode[node] ?? 0];
    const detector = group?.detector;
    for (const checker of this.#checkers) {
      checker.conviction?.({
        atMs: nowMs,
        nodeId: this.#nodeIds[node] ?? "",
        reason,
        processAlive,
        lastHeartbeatArrivalMs: this.#lastArrivalMs[node] ?? 0,
        heartbeatBoundMs: (detector?.heartbeatIntervalMs ?? 0) + (detector?.acceptablePauseMs ?? 0),
      });
    }
    const faultKind = this.#faultKind[node] ?? noFault;
    if (faultKind !== noFault && this.#faultDetected[node] === 0) {
      this.#faultDetected[node] = 1;
      const latencyMs = nowMs - (this.#faultStartMs[node] ?? nowMs);
      measurements.detectionLatencyMsByKind[faultKinds[faultKind] ?? "process"].push(latencyMs);
      measurements.detectionLatencyMsByGroup[group?.name ?? ""]?.push(latencyMs);
      if (state === NodeState.paused) measurements.pausedConvictions += 1;
    } else if (processAlive) {
      const byCause = measurements.falseConvictionsByCause;
      if (
        this.#network.isDisturbed(node) ||
        nowMs - (this.#lastNetworkFaultMs[node] ?? 0) < faultMemoryMs
      ) {
        byCause.network += 1;
      } else if (nowMs - (this.#lastNodeFaultEndMs[node] ?? 0) < faultMemoryMs) {
        // Back from a crash or a pause, its first heartbeats still on the way.
        byCause.recovering += 1;
      } else {
        byCause.unexplained += 1;
      }
    }

    const boundMs = this.#fleet.scenario.checks.replacementBoundSeconds * 1_000;
    const nodeId = this.#nodeIds[node] ?? "";
    for (const instance of [...(this.#assigned[node] ?? [])]) {
      const incident = (this.#incident[instance] ?? 0) + 1;
      this.#incident[instance] = incident;
      this.#incidentConvictedAtMs[instance] = nowMs;
      this.#incidentNode[instance] = node;
      this.#incidentExcused[instance] = 0;
      this.#incidentServed[instance] = 0;
      this.#clock.post(nowMs + boundMs, EventKind.replacementDeadline, instance, incident);
    }
    // Attempts under way on the convicted node fail their step (the orchestrator rolls them
    // back and moves on); the services routed to it fail over. Collected first: triggering
    // changes what `active()` iterates.
    const triggered = new Set<number>(this.#assigned[node] ?? []);
    for (const failover of this.#orchestrator.active()) {
      if (failover.phase === "attempting" && failover.attempt.node === nodeId)
        triggered.add(this.#instanceByName.get(failover.service.name) ?? -1);
    }
    for (const instance of triggered) {
      const service = this.#failoverServices[instance];
      if (service === undefined) continue;
      this.#orchestrator.trigger({ service, reason: "node_failure", from: nodeId, atMs: nowMs });
    }
    this.#carryOutEffects();
  }

  /** A FAILED node is back: it learns it no longer owns what moved, and stops those copies. */
  #onReadmitted(node: number): void {
    const copies = this.#copies[node] ?? [];
    const kept: number[] = [];
    for (const instance of copies) {
      if (this.#isCurrentHere(instance, node)) kept.push(instance);
      else {
        this.#endStaleTime(node, instance);
        this.#forgetCopy(node, instance);
      }
    }
    this.#copies[node] = kept;
  }

  #restartAssignedServices(node: number): void {
    for (const instance of this.#assigned[node] ?? []) {
      if (this.#instanceState[instance] === InstanceState.down) this.#startOn(instance);
    }
  }

  // ---- Server: failover through the orchestrator ----------------------------------------

  /** One node as the orchestrator sees it (see #orchestratorCandidates). */
  #orchestratorCandidate(nodeId: string): PlacementCandidate | undefined {
    const node = this.#fleet.nodeIndexById.get(nodeId);
    const candidate = node === undefined ? undefined : this.#candidates[node];
    if (candidate === undefined || this.#options.injectedBug !== "placement-ignores-capacity") {
      return candidate;
    }
    return { ...candidate, used: { cpuCores: 0, memoryMb: 0, storageGb: 0, networkMbps: 0 } };
  }

  /** What the orchestrator sees: the fleet, with `used` counting every routed instance. */
  #orchestratorCandidates(): readonly PlacementCandidate[] {
    if (this.#options.injectedBug !== "placement-ignores-capacity") return this.#candidates;
    // The injected bug: a candidates port that reports every node empty, so the 90 % rule
    // passes everywhere; the capacity checker sees the real usage.
    return this.#candidates.map((candidate) => ({
      ...candidate,
      used: { cpuCores: 0, memoryMb: 0, storageGb: 0, networkMbps: 0 },
    }));
  }

  /** Carries out what the orchestrator emitted, after its call returned (it must not be re-entered). */
  #carryOutEffects(): void {
    // Effects never call the orchestrator, so the queue only shrinks here.
    for (let index = 0; index < this.#effects.length; index += 1) {
      const effect = this.#effects[index];
      if (effect !== undefined) this.#carryOut(effect);
    }
    this.#effects.length = 0;
  }

  #carryOut(effect: FailoverEffect): void {
    const steps = this.#fleet.scenario.failoverSteps;
    switch (effect.type) {
      case "prepare": {
        const instance = this.#instanceIndex(effect.service);
        const node = this.#nodeIndex(effect.node);
        this.#attemptGeneration[instance] = effect.generation;
        this.#attemptNode[instance] = node;
        this.#observePlacement(instance, node);
        this.#startStep(effect, instance, node, steps.prepare.ms, steps.prepare.failureProbability);
        return;
      }
      case "sync-data": {
        const instance = this.#instanceIndex(effect.service);
        const dataMb = this.#fleet.services[this.#instance(instance).serviceIndex]?.dataMb ?? 0;
        const ms = steps.syncData.ms + (dataMb / steps.syncMbPerSecond) * 1_000;
        const node = this.#nodeIndex(effect.to);
        this.#startStep(effect, instance, node, ms, steps.syncData.failureProbability);
        return;
      }
      case "run-hook": {
        const instance = this.#instanceIndex(effect.service);
        const node = this.#nodeIndex(effect.node);
        this.#startStep(effect, instance, node, steps.hook.ms, steps.hook.failureProbability);
        return;
      }
      case "start": {
        const instance = this.#instanceIndex(effect.service);
        const startMs = this.#fleet.services[this.#instance(instance).serviceIndex]?.startMs ?? 0;
        const node = this.#nodeIndex(effect.node);
        this.#startStep(effect, instance, node, startMs, steps.startFailureProbability);
        return;
      }
      case "route": {
        const instance = this.#instanceIndex(effect.service);
        const node = this.#nodeIndex(effect.route.nodeId);
        this.#startStep(effect, instance, node, steps.route.ms, steps.route.failureProbability);
        return;
      }
      case "verify": {
        const instance = this.#instanceIndex(effect.service);
        this.#healthPasses[instance] = 0;
        this.#healthChecks[instance] = 0;
        this.#clock.post(
          this.#clock.nowMs() + effect.checkIntervalMs,
          EventKind.healthCheck,
          instance,
          effect.generation,
        );
        return;
      }
      case "stop":
        this.#stop(
          this.#instanceIndex(effect.service),
          this.#nodeIndex(effect.node),
          effect.generation,
          effect.reason,
        );
        return;
      case "release": {
        // Only a failed attempt releases: the deadline check excuses the incident, as a start
        // that failed on its target did before.
        const instance = this.#instanceIndex(effect.service);
        this.#incidentExcused[instance] = 1;
        this.#measurements.placements.attemptsFailed += 1;
        if (this.#attemptGeneration[instance] === effect.generation)
          this.#attemptGeneration[instance] = 0;
        return;
      }
      case "unroute": {
        const instance = this.#instanceIndex(effect.service);
        if (
          (this.#instanceNode[instance] ?? -1) >= 0 &&
          this.#generation[instance] === this.#runtimeGeneration(effect.generation)
        ) {
          this.#markDown(instance);
          this.#unassign(instance);
        }
        return;
      }
      case "alert":
        return;
      case "record":
        this.#onRecord(effect.record);
        return;
    }
  }

  /** The step runs on its agent for about `medianMs`; its answer comes back as an event. */
  #startStep(
    effect: PendingStep["effect"],
    instance: number,
    node: number,
    medianMs: number,
    failureProbability: number,
  ): void {
    if (this.#pendingSteps.size >= pendingStepsMax)
      throw new Error(`more than ${pendingStepsMax} failover steps in flight`);
    const random = this.#stepRandom;
    const durationMs = medianMs * (0.9 + 0.2 * random.nextFloat());
    const fails = failureProbability > 0 && random.chance(failureProbability);
    const stepId = this.#nextStepId++;
    this.#pendingSteps.set(stepId, { effect, instance, node, fails });
    this.#clock.post(this.#clock.nowMs() + durationMs, EventKind.stepDone, stepId, 0);
  }

  #onStepDone(stepId: number): void {
    const step = this.#pendingSteps.get(stepId);
    if (step === undefined) return;
    this.#pendingSteps.delete(stepId);
    const { effect, instance, node } = step;
    // A node that is down or frozen never answers: the orchestrator's deadline, or the node's
    // conviction, ends the step.
    if (this.#state[node] !== NodeState.running) return;
    const atMs = this.#clock.nowMs();
    const address = {
      service: effect.service,
      generation: effect.generation,
      stepIndex: effect.stepIndex,
      atMs,
    };
    if (step.fails) {
      this.#orchestrator.stepFailed({ ...address, error: `simulated ${effect.type} failure` });
      this.#carryOutEffects();
      return;
    }
    switch (effect.type) {
      case "prepare":
      case "run-hook":
        this.#orchestrator.stepSucceeded(address);
        break;
      case "sync-data":
        this.#orchestrator.stepSucceeded({ ...address, dataAgeMs: 0 });
        break;
      case "start":
        // A start that was rolled back meanwhile (stop already sent) must not leave a copy.
        if (this.#attemptGeneration[instance] !== effect.generation) return;
        this.#startCopy(instance, node, this.#runtimeGeneration(effect.generation));
        this.#orchestrator.stepSucceeded({
          ...address,
          endpoint: endpointOf(effect.node, instance),
        });
        break;
      case "route":
        // The proxies switched, unless the orchestrator has fenced this generation since.
        if (this.#orchestrator.registry.resolve(effect.service)?.generation === effect.generation)
          this.#assign(instance, node, this.#runtimeGeneration(effect.generation));
        this.#orchestrator.stepSucceeded(address);
        break;
    }
    this.#carryOutEffects();
  }

  #onHealthCheck(instance: number, generation: number): void {
    if (this.#attemptGeneration[instance] !== generation) return;
    const node = this.#attemptNode[instance] ?? -1;
    const copyGeneration = this.#copyGeneration.get(this.#copyKey(node, instance));
    const ok =
      this.#state[node] === NodeState.running &&
      copyGeneration === this.#runtimeGeneration(generation) &&
      !this.#stepRandom.chance(this.#fleet.scenario.failoverSteps.healthCheckFailureProbability);
    const checks = (this.#healthChecks[instance] ?? 0) + 1;
    this.#healthChecks[instance] = checks;
    const passes = ok ? (this.#healthPasses[instance] ?? 0) + 1 : 0;
    this.#healthPasses[instance] = passes;
    this.#orchestrator.healthChecked({
      service: this.#instance(instance).id,
      generation,
      ok,
      atMs: this.#clock.nowMs(),
    });
    this.#carryOutEffects();
    const options = this.#failoverOptions;
    // Enough checks to fill verify's timeout, and no more.
    const checksMax = Math.ceil(options.verifyTimeoutMs / options.verifyCheckIntervalMs) + 1;
    if (passes < options.verifyPassesRequired && checks < checksMax) {
      this.#clock.post(
        this.#clock.nowMs() + options.verifyCheckIntervalMs,
        EventKind.healthCheck,
        instance,
        generation,
      );
    }
  }

  /** `stop` reaches the node: a fence leaves a live node's stale copy until it rejoins. */
  #stop(instance: number, node: number, generation: number, reason: "rollback" | "fence"): void {
    const key = this.#copyKey(node, instance);
    const copyGeneration = this.#copyGeneration.get(key);
    if (reason === "rollback" && this.#attemptGeneration[instance] === generation)
      this.#attemptGeneration[instance] = 0;
    if (copyGeneration === undefined || copyGeneration > this.#runtimeGeneration(generation))
      return;
    if (reason === "fence") {
      // A convicted node that is alive (partitioned, paused, or wrongly convicted) cannot hear
      // the stop; it learns when it rejoins (#onReadmitted). Until then the copy is stale.
      if (!this.#copyFencedAtMs.has(key)) {
        this.#measurements.staleCopies.fenced += 1;
        this.#copyFencedAtMs.set(key, this.#clock.nowMs());
      }
      return;
    }
    // A rollback targets a node the server was just talking to.
    this.#endStaleTime(node, instance);
    this.#forgetCopy(node, instance);
    const copies = this.#copies[node];
    const position = copies?.indexOf(instance) ?? -1;
    if (position >= 0) copies?.splice(position, 1);
  }

  #onRecord(record: FailoverRecord): void {
    const measurements = this.#measurements;
    measurements.failoverRecordsByStatus[record.status] += 1;
    if (measurements.failoverRecords.length < failoverRecordsKeptMax)
      measurements.failoverRecords.push(record);
    for (const step of record.steps) {
      if (step.ok) {
        const samples = (measurements.stepMsByName[step.name] ??= []);
        samples.push(step.ms);
      } else if (step.ms === 0 && step.error?.startsWith("not eligible") === true) {
        measurements.ineligibleLocations += 1;
      } else {
        measurements.stepFailuresByName[step.name] =
          (measurements.stepFailuresByName[step.name] ?? 0) + 1;
      }
    }
    const instance = this.#instanceIndex(record.service);
    switch (record.status) {
      case "completed":
        if (record.via === "rule") measurements.placements.viaRule += 1;
        else measurements.placements.viaPlan += 1;
        return;
      case "failed":
      case "error": {
        // No location could take it now: try again later, as the real server does.
        measurements.placements.noCandidate += 1;
        this.#incidentExcused[instance] = 1;
        const retryMs = this.#fleet.scenario.server.placementRetrySeconds * 1_000;
        this.#clock.post(
          this.#clock.nowMs() + retryMs,
          EventKind.failoverRetry,
          instance,
          this.#incident[instance] ?? 0,
        );
        return;
      }
      case "initiated":
        return;
    }
  }

  #retryFailover(instance: number): void {
    if ((this.#instanceNode[instance] ?? -1) >= 0) return;
    const service = this.#failoverServices[instance];
    if (service === undefined) return;
    // Nothing serves it, so this is a placement from nowhere rather than a move.
    this.#orchestrator.trigger({
      service,
      reason: "planned",
      from: null,
      atMs: this.#clock.nowMs(),
    });
    this.#carryOutEffects();
  }

  /** The capacity checker judges the node as it is: routed instances plus other attempts' reservations. */
  #observePlacement(instance: number, node: number): void {
    const candidate = this.#candidates[node];
    if (candidate === undefined) return;
    const usedBefore = { ...candidate.used };
    const name = this.#instance(instance).id;
    for (const failover of this.#orchestrator.active()) {
      if (
        failover.phase !== "attempting" ||
        failover.service.name === name ||
        failover.attempt.node !== candidate.nodeId
      )
        continue;
      for (const resource of resourceNames)
        usedBefore[resource] += failover.service.demand[resource];
    }
    const observation = {
      atMs: this.#clock.nowMs(),
      instanceId: name,
      nodeId: candidate.nodeId,
      capacity: candidate.capacity,
      usedBefore,
      demand: this.#demandOf(instance),
    };
    for (const checker of this.#checkers) checker.placement?.(observation);
  }

  /** A failover's start: a copy of `generation` runs on `node` (not yet routed). */
  #startCopy(instance: number, node: number, generation: number): void {
    this.#observeStart(instance, node, generation);
    const key = this.#copyKey(node, instance);
    if (!this.#copyGeneration.has(key)) {
      this.#copies[node]?.push(instance);
      this.#copyNodes[instance]?.push(node);
    }
    this.#endStaleTime(node, instance);
    this.#copyGeneration.set(key, generation);
  }

  /** The route reached the proxies: the instance serves from `node` now. */
  #assign(instance: number, node: number, generation: number): void {
    if ((this.#instanceNode[instance] ?? -1) >= 0) this.#unassign(instance);
    this.#instanceNode[instance] = node;
    this.#generation[instance] = generation;
    this.#assigned[node]?.push(instance);
    this.#reserve(node, this.#demandOf(instance), 1);
    this.#instanceState[instance] = InstanceState.running;
    this.#incidentServed[instance] = 1;
    this.#replacedSinceOutage[instance] = 1;
    this.#markUp(instance);
  }

  /** The agent came back before the server convicted it: it restarts its own services. */
  #startOn(instance: number): void {
    this.#instanceState[instance] = InstanceState.starting;
    const attempt = (this.#attempt[instance] ?? 0) + 1;
    this.#attempt[instance] = attempt;
    const startMs = this.#fleet.services[this.#instance(instance).serviceIndex]?.startMs ?? 0;
    this.#clock.post(this.#clock.nowMs() + startMs, EventKind.serviceStarted, instance, attempt);
  }

  #onServiceStarted(instance: number): void {
    const node = this.#instanceNode[instance] ?? -1;
    if (this.#state[node] !== NodeState.running) return;
    const generation = this.#generation[instance] ?? 0;
    this.#observeStart(instance, node, generation);
    this.#addCopy(node, instance);
    this.#instanceState[instance] = InstanceState.running;
    this.#incidentServed[instance] = 1;
    this.#markUp(instance);
  }

  #observeStart(instance: number, node: number, generation: number): void {
    const others: string[] = [];
    for (const other of this.#copyNodes[instance] ?? []) {
      if (
        other !== node &&
        this.#copyGeneration.get(this.#copyKey(other, instance)) === generation
      ) {
        others.push(this.#nodeIds[other] ?? "");
      }
    }
    const observation = {
      atMs: this.#clock.nowMs(),
      instanceId: this.#instance(instance).id,
      nodeId: this.#nodeIds[node] ?? "",
      generation,
      otherNodesWithGeneration: others,
    };
    for (const checker of this.#checkers) checker.serviceStarted?.(observation);
  }

  /** The generation a started instance runs with: the injected bug drops the orchestrator's. */
  #runtimeGeneration(generation: number): number {
    return this.#options.injectedBug === "no-fencing" ? 1 : generation;
  }

  #instanceIndex(name: string): number {
    const instance = this.#instanceByName.get(name);
    if (instance === undefined) throw new Error(`the orchestrator named unknown service ${name}`);
    return instance;
  }

  #nodeIndex(nodeId: string): number {
    const node = this.#fleet.nodeIndexById.get(nodeId);
    if (node === undefined) throw new Error(`the orchestrator named unknown node ${nodeId}`);
    return node;
  }

  #checkReplacementDeadline(instance: number): void {
    const served = this.#incidentServed[instance] === 1;
    const decision = served ? undefined : placeByRule(this.#requestOf(instance), this.#candidates);
    const observation = {
      atMs: this.#clock.nowMs(),
      instanceId: this.#instance(instance).id,
      failedNodeId: this.#nodeIds[this.#incidentNode[instance] ?? -1] ?? "",
      convictedAtMs: this.#incidentConvictedAtMs[instance] ?? 0,
      served,
      excused: this.#incidentExcused[instance] === 1,
      capacityNow: decision?.kind === "placed",
    };
    for (const checker of this.#checkers) checker.replacementDeadline?.(observation);
  }

  #unassign(instance: number): void {
    const node = this.#instanceNode[instance] ?? -1;
    const assigned = this.#assigned[node];
    if (assigned !== undefined) {
      const position = assigned.indexOf(instance);
      if (position >= 0) assigned.splice(position, 1);
      this.#reserve(node, this.#demandOf(instance), -1);
    }
    this.#instanceNode[instance] = -1;
    this.#instanceState[instance] = InstanceState.unplaced;
    // A pending local restart for the old location must not complete.
    this.#attempt[instance] = (this.#attempt[instance] ?? 0) + 1;
  }

  // ---- Bookkeeping ----------------------------------------------------------------------------

  #addCopy(node: number, instance: number): void {
    const key = this.#copyKey(node, instance);
    if (!this.#copyGeneration.has(key)) {
      this.#copies[node]?.push(instance);
      this.#copyNodes[instance]?.push(node);
    }
    this.#copyGeneration.set(key, this.#generation[instance] ?? 0);
  }

  /** Drops a copy from the by-instance index; the caller rebuilds the node's own list. */
  #forgetCopy(node: number, instance: number): void {
    this.#copyGeneration.delete(this.#copyKey(node, instance));
    const nodes = this.#copyNodes[instance];
    const position = nodes?.indexOf(node) ?? -1;
    if (position >= 0) nodes?.splice(position, 1);
  }

  #isCurrentHere(instance: number, node: number): boolean {
    return (
      this.#instanceNode[instance] === node &&
      this.#copyGeneration.get(this.#copyKey(node, instance)) === this.#generation[instance]
    );
  }

  #endStaleTime(node: number, instance: number): void {
    const key = this.#copyKey(node, instance);
    const fencedAtMs = this.#copyFencedAtMs.get(key);
    if (fencedAtMs === undefined) return;
    this.#copyFencedAtMs.delete(key);
    this.#measurements.staleCopies.runningMs += this.#clock.nowMs() - fencedAtMs;
  }

  #markDown(instance: number): void {
    if (Number.isNaN(this.#downSinceMs[instance] ?? 0)) {
      this.#downSinceMs[instance] = this.#clock.nowMs();
      this.#replacedSinceOutage[instance] = 0;
    }
  }

  #markUp(instance: number): void {
    const downSinceMs = this.#downSinceMs[instance] ?? Number.NaN;
    if (Number.isNaN(downSinceMs)) return;
    const outageMs = this.#clock.nowMs() - downSinceMs;
    const service = this.#serviceName(instance);
    const measurements = this.#measurements;
    measurements.outageMsByService[service]?.push(outageMs);
    measurements.downMsByService[service] = (measurements.downMsByService[service] ?? 0) + outageMs;
    if (this.#replacedSinceOutage[instance] === 1)
      measurements.failoverMsByService[service]?.push(outageMs);
    this.#downSinceMs[instance] = Number.NaN;
  }

  /** Outages still open at the end count as downtime, and stale copies as stale time. */
  #closeBooks(): void {
    const endMs = this.#clock.nowMs();
    const measurements = this.#measurements;
    this.#downSinceMs.forEach((downSinceMs, instance) => {
      if (Number.isNaN(downSinceMs)) return;
      const service = this.#serviceName(instance);
      measurements.downMsByService[service] =
        (measurements.downMsByService[service] ?? 0) + endMs - downSinceMs;
      measurements.outageMsByService[service]?.push(endMs - downSinceMs);
    });
    for (const fencedAtMs of this.#copyFencedAtMs.values())
      measurements.staleCopies.runningMs += endMs - fencedAtMs;
  }

  #reserve(node: number, demand: Resources, sign: 1 | -1): void {
    const used = this.#candidates[node]?.used;
    if (used === undefined) return;
    for (const resource of resourceNames) used[resource] += sign * demand[resource];
  }

  #copyKey(node: number, instance: number): number {
    return node * this.#fleet.instances.length + instance;
  }

  #instance(instance: number): FleetInstance {
    const found = this.#fleet.instances[instance];
    if (found === undefined) throw new Error(`no service instance ${instance}`);
    return found;
  }

  #requestOf(instance: number): PlacementRequest {
    const service = this.#fleet.services[this.#instance(instance).serviceIndex];
    if (service === undefined) throw new Error(`no service for instance ${instance}`);
    return service.request;
  }

  #demandOf(instance: number): Resources {
    return this.#requestOf(instance).demand;
  }

  #serviceName(instance: number): string {
    return this.#fleet.services[this.#instance(instance).serviceIndex]?.name ?? "";
  }

  #probeable(): boolean {
    return this.#options.injectedBug !== "detector-convicts-early";
  }

  #detectorOptions(options: DetectorOptions): DetectorOptions {
    if (this.#options.injectedBug !== "detector-convicts-early") return options;
    // Convicts on silence alone at phi 1, with no allowance for a pause: far too eager.
    return { ...options, suspectPhi: 0.5, convictPhi: 1, acceptablePauseMs: 0, minStdDevMs: 1 };
  }

  #count(what: string): void {
    this.#measurements.faultsInjected[what] = (this.#measurements.faultsInjected[what] ?? 0) + 1;
  }

  // ---- Fault schedule -----------------------------------------------------------------------

  #scheduleFaults(): void {
    const faults = this.#fleet.scenario.faults;
    const startMs = faults.startAfterSeconds * 1_000;
    const random = this.#faultRandom;
    faults.events.forEach((spec, specIndex) => {
      this.#validateTarget(spec.target, specIndex);
      const atMs =
        spec.atSeconds !== undefined
          ? spec.atSeconds * 1_000
          : startMs + random.exponential((spec.meanIntervalSeconds ?? 1) * 1_000);
      this.#clock.post(atMs, EventKind.faultFire, specIndex, 0);
    });
    this.#fleet.groups.forEach((group, groupIndex) => {
      const crashes = group.spec.crashes;
      if (crashes === undefined || group.nodeIndices.length === 0) return;
      this.#clock.post(
        startMs + random.exponential(this.#crashGapMs(groupIndex)),
        EventKind.groupCrash,
        groupIndex,
        0,
      );
    });
  }

  /** Mean gap between crashes anywhere in a group: MTBF per node over the group's size. */
  #crashGapMs(groupIndex: number): number {
    const group = this.#fleet.groups[groupIndex];
    return (
      ((group?.spec.crashes?.mtbfHours ?? 1) * 3_600_000) /
      Math.max(1, group?.nodeIndices.length ?? 1)
    );
  }

  #randomCrash(groupIndex: number): void {
    const group = this.#fleet.groups[groupIndex];
    const crashes = group?.spec.crashes;
    if (group === undefined || crashes === undefined) return;
    const random = this.#faultRandom;
    const node = group.nodeIndices[random.nextIndex(group.nodeIndices.length)] ?? 0;
    const kind = random.chance(crashes.powerLossFraction) ? "power" : "process";
    const nowMs = this.#clock.nowMs();
    this.#crash(node, kind, nowMs + random.exponential(crashes.mttrMinutes * 60_000));
    this.#clock.post(
      nowMs + random.exponential(this.#crashGapMs(groupIndex)),
      EventKind.groupCrash,
      groupIndex,
      0,
    );
  }

  #fireFault(specIndex: number): void {
    const spec = this.#fleet.scenario.faults.events[specIndex];
    if (spec === undefined) return;
    const nowMs = this.#clock.nowMs();
    const random = this.#faultRandom;
    if (spec.meanIntervalSeconds !== undefined) {
      this.#clock.post(
        nowMs + random.exponential(spec.meanIntervalSeconds * 1_000),
        EventKind.faultFire,
        specIndex,
        0,
      );
    }
    const nodes = this.#pickTargets(spec.target);
    const endMs = nowMs + spec.durationSeconds * 1_000;
    const faultIndex = this.#activeFaults.length;
    this.#activeFaults.push({ spec, nodes, endMs, linksCut: false });
    this.#count(spec.kind);
    switch (spec.kind) {
      case "zone-outage":
        for (const node of nodes) this.#crash(node, "power", endMs);
        return;
      case "crash":
        for (const node of nodes) this.#crash(node, spec.crash, endMs);
        return;
      case "pause":
        for (const node of nodes) this.#pause(node, endMs);
        return;
      case "partition":
        for (const node of nodes) {
          if (spec.direction !== "from-server") this.#network.cut(node, Direction.toServer);
          if (spec.direction !== "to-server") this.#network.cut(node, Direction.fromServer);
        }
        break;
      case "flapping-link":
        this.#toggleFlap(faultIndex);
        this.#clock.post(
          nowMs + (spec.periodSeconds * 1_000) / 2,
          EventKind.faultStep,
          faultIndex,
          0,
        );
        break;
      case "loss-burst":
        for (const node of nodes) this.#network.startLossBurst(node, spec.lossProbability);
        break;
      case "clog":
        for (const node of nodes) {
          this.#network.clog(node, Direction.toServer);
          this.#network.clog(node, Direction.fromServer);
        }
        break;
    }
    this.#noteNetworkFault(nodes);
    this.#clock.post(endMs, EventKind.faultEnd, faultIndex, 0);
  }

  #endFault(faultIndex: number): void {
    const fault = this.#activeFaults[faultIndex];
    if (fault === undefined) return;
    const spec = fault.spec;
    switch (spec.kind) {
      case "partition":
        for (const node of fault.nodes) {
          if (spec.direction !== "from-server") this.#network.restoreCut(node, Direction.toServer);
          if (spec.direction !== "to-server") this.#network.restoreCut(node, Direction.fromServer);
        }
        break;
      case "flapping-link":
        if (fault.linksCut) this.#toggleFlap(faultIndex);
        break;
      case "loss-burst":
        for (const node of fault.nodes) this.#network.endLossBurst(node);
        break;
      case "clog":
        // Restored one link at a time, so the backlog arrives in waves rather than at once.
        fault.nodes.forEach((_node, ordinal) => {
          this.#clock.post(
            this.#clock.nowMs() + ordinal * spec.restoreSpacingSeconds * 1_000,
            EventKind.faultStep,
            faultIndex,
            ordinal,
          );
        });
        return;
      case "zone-outage":
      case "crash":
      case "pause":
        return;
    }
    this.#noteNetworkFault(fault.nodes);
  }

  #stepFault(faultIndex: number, ordinal: number): void {
    const fault = this.#activeFaults[faultIndex];
    if (fault === undefined) return;
    const spec = fault.spec;
    if (spec.kind === "clog") {
      const node = fault.nodes[ordinal];
      if (node === undefined) return;
      this.#network.restoreClog(node, Direction.toServer);
      this.#network.restoreClog(node, Direction.fromServer);
      this.#noteNetworkFault([node]);
      return;
    }
    if (spec.kind !== "flapping-link") return;
    const nowMs = this.#clock.nowMs();
    const nextMs = nowMs + (spec.periodSeconds * 1_000) / 2;
    if (nowMs >= fault.endMs) return;
    this.#toggleFlap(faultIndex);
    this.#noteNetworkFault(fault.nodes);
    if (nextMs < fault.endMs) this.#clock.post(nextMs, EventKind.faultStep, faultIndex, 0);
  }

  #toggleFlap(faultIndex: number): void {
    const fault = this.#activeFaults[faultIndex];
    if (fault === undefined) return;
    for (const node of fault.nodes) {
      for (const direction of [Direction.toServer, Direction.fromServer]) {
        if (fault.linksCut) this.#network.restoreCut(node, direction);
        else this.#network.cut(node, direction);
      }
    }
    fault.linksCut = !fault.linksCut;
  }

  #noteNetworkFault(nodes: readonly number[]): void {
    const nowMs = this.#clock.nowMs();
    for (const node of nodes) this.#lastNetworkFaultMs[node] = nowMs;
  }

  #pickTargets(target: FaultTarget): number[] {
    const random = this.#faultRandom;
    const fleet = this.#fleet;
    if ("zones" in target) {
      return target.zones.flatMap(
        (zone) => this.#nodesByZone[fleet.zoneIndexByName.get(zone) ?? -1] ?? [],
      );
    }
    if ("nodes" in target) return target.nodes.map((id) => fleet.nodeIndexById.get(id) ?? 0);
    if ("zoneCount" in target) {
      const zones = drawDistinct(fleet.zones.length, target.zoneCount, random);
      return zones.flatMap((zone) => this.#nodesByZone[zone] ?? []);
    }
    const group = fleet.groups[fleet.groupIndexByName.get(target.group) ?? -1];
    if (group === undefined) return [];
    const count = Math.max(1, Math.round(target.count * group.scale));
    return drawDistinct(group.nodeIndices.length, count, random).map(
      (ordinal) => group.nodeIndices[ordinal] ?? 0,
    );
  }

  #validateTarget(target: FaultTarget, specIndex: number): void {
    const fleet = this.#fleet;
    const where = `faults.events.${specIndex}.target`;
    if ("zones" in target) {
      const unknown = target.zones.filter((zone) => !fleet.zoneIndexByName.has(zone));
      if (unknown.length > 0)
        throw new ScenarioError(`${where}: unknown zones ${unknown.join(", ")}`);
    } else if ("nodes" in target) {
      const unknown = target.nodes.filter((id) => !fleet.nodeIndexById.has(id));
      if (unknown.length > 0)
        throw new ScenarioError(`${where}: unknown nodes ${unknown.join(", ")}`);
    } else if ("group" in target && !fleet.groupIndexByName.has(target.group)) {
      throw new ScenarioError(`${where}: unknown node group ${target.group}`);
    }
  }
}

/** `count` distinct integers from [0, size), drawn with a partial Fisher–Yates shuffle. */
function drawDistinct(size: number, count: number, random: SeededRandom): number[] {
  const pool = Array.from({ length: size }, (_value, index) => index);
  const drawn = Math.min(size, count);
  for (let index = 0; index < drawn; index += 1) {
    const swap = index + random.nextIndex(size - index);
    const value = pool[swap] ?? 0;
    pool[swap] = pool[index] ?? 0;
    pool[index] = value;
  }
  return pool.slice(0, drawn);
}

/** Where a simulated instance listens; unique per node and instance. */
function endpointOf(nodeId: string, instance: number): string {
  return `${nodeId}:${20_000 + (instance % 40_000)}`;
}

interface ServiceRoutePlain {
  readonly nodeId: string;
  readonly endpoint: string;
  readonly generation: number;
}
