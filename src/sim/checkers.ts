// Invariant checkers: properties that must hold in every run, whatever the seed and faults.
// The simulation reports what happened (observations); each checker judges independently of
// the code under test, so a bug in placement or detection cannot hide its own tracks.
//
// Extension point: a new property is a new class implementing `InvariantChecker` and listening
// to the observations it needs, added to `invariantCheckers()`. When replication reaches the
// simulator it adds `writeAcknowledged` and `readCompleted` observations, and "every
// acknowledged write survives" becomes one more checker here.

import {
  resourceNames,
  utilizationAfterPlacementMax,
  type Resources,
} from "../core/placement/placement.ts";

/** Violations kept per checker; the count goes on, the details stop. */
export const violationsKeptMax = 20;

export interface ConvictionObservation {
  readonly atMs: number;
  readonly nodeId: string;
  readonly reason: string;
  /** Ground truth: the node's processes were running and not paused. */
  readonly processAlive: boolean;
  /** When its last heartbeat reached the server. */
  readonly lastHeartbeatArrivalMs: number;
  /** The preset's bound on a heartbeat gap: interval plus acceptable pause. */
  readonly heartbeatBoundMs: number;
}

export interface PlacementObservation {
  readonly atMs: number;
  readonly instanceId: string;
  readonly nodeId: string;
  readonly capacity: Resources;
  /** Usage on the node before this placement, reservations included. */
  readonly usedBefore: Resources;
  readonly demand: Resources;
}

export interface ServiceStartObservation {
  readonly atMs: number;
  readonly instanceId: string;
  readonly nodeId: string;
  readonly generation: number;
  /** Nodes where a copy of this instance with the same generation is running now. */
  readonly otherNodesWithGeneration: readonly string[];
}

export interface ReplacementDeadlineObservation {
  readonly atMs: number;
  readonly instanceId: string;
  readonly failedNodeId: string;
  readonly convictedAtMs: number;
  /** The instance has run somewhere since the conviction (it may have failed again since). */
  readonly served: boolean;
  /** Some attempt in the window found no eligible node, or a start failed on its target. */
  readonly excused: boolean;
  /** An eligible node exists now (the placement rule finds one). */
  readonly capacityNow: boolean;
}

export interface Violation {
  readonly atMs: number;
  readonly message: string;
}

export interface InvariantChecker {
  readonly name: string;
  readonly statement: string;
  readonly checks: number;
  readonly violationCount: number;
  readonly violations: readonly Violation[];
  conviction?(observation: ConvictionObservation): void;
  placement?(observation: PlacementObservation): void;
  serviceStarted?(observation: ServiceStartObservation): void;
  replacementDeadline?(observation: ReplacementDeadlineObservation): void;
}

abstract class CheckerBase {
  checks = 0;
  violationCount = 0;
  readonly violations: Violation[] = [];

  protected verify(holds: boolean, atMs: number, message: () => string): void {
    this.checks += 1;
    if (holds) return;
    this.violationCount += 1;
    if (this.violations.length < violationsKeptMax)
      this.violations.push({ atMs, message: message() });
  }
}

export class SingletonChecker extends CheckerBase implements InvariantChecker {
  readonly name = "singleton";
  readonly statement =
    "a service instance never runs in two places with the same fencing generation";

  serviceStarted(observation: ServiceStartObservation): void {
    this.verify(
      observation.otherNodesWithGeneration.length === 0,
      observation.atMs,
      () =>
        `${observation.instanceId} started on ${observation.nodeId} with generation ${observation.generation} while ${observation.otherNodesWithGeneration.join(", ")} still runs that generation`,
    );
  }
}

export class CapacityChecker extends CheckerBase implements InvariantChecker {
  readonly name = "capacity";
  readonly statement = "no placement pushes any resource of a node over 90 %";

  placement(observation: PlacementObservation): void {
    let worst: string | undefined;
    for (const resource of resourceNames) {
      const capacity = observation.capacity[resource];
      const after = observation.usedBefore[resource] + observation.demand[resource];
      // A tiny tolerance for floating-point sums of many fractional demands.
      if (after > capacity * utilizationAfterPlacementMax + 1e-9) {
        worst = `${resource} ${after.toFixed(2)} of ${capacity} (${((100 * after) / capacity).toFixed(1)} %)`;
        break;
      }
    }
    this.verify(
      worst === undefined,
      observation.atMs,
      () => `placing ${observation.instanceId} on ${observation.nodeId} takes ${worst}`,
    );
  }
}

export class ReplacementChecker extends CheckerBase implements InvariantChecker {
  readonly name = "replacement";
  readonly statement =
    "every service of a FAILED node runs elsewhere within the bound when capacity exists";

  replacementDeadline(observation: ReplacementDeadlineObservation): void {
    this.verify(
      observation.served || observation.excused || !observation.capacityNow,
      observation.atMs,
      () =>
        `${observation.instanceId} of ${observation.failedNodeId} (FAILED at ${observation.convictedAtMs} ms) has not run anywhere ${observation.atMs - observation.convictedAtMs} ms later although a node has room`,
    );
  }
}

export class FalseConvictionChecker extends CheckerBase implements InvariantChecker {
  readonly name = "no-false-conviction";
  readonly statement =
    "the detector never convicts a live node whose heartbeats arrived within the preset's bound";

  conviction(observation: ConvictionObservation): void {
    const silenceMs = observation.atMs - observation.lastHeartbeatArrivalMs;
    this.verify(
      !observation.processAlive || silenceMs >= observation.heartbeatBoundMs,
      observation.atMs,
      () =>
        `${observation.nodeId} convicted (${observation.reason}) while alive, ${silenceMs.toFixed(0)} ms after its last heartbeat arrived (bound ${observation.heartbeatBoundMs} ms)`,
    );
  }
}

/** The checkers every run goes through. */
export function invariantCheckers(): InvariantChecker[] {
  return [
    new SingletonChecker(),
    new ReplacementChecker(),
    new CapacityChecker(),
    new FalseConvictionChecker(),
  ];
}
