// The failover orchestrator (SPEC §5): a pure state machine per service, fed triggers, step
// reports, health checks and time, emitting commands for the runtime. It tries the operator's
// target, then the plan's backup locations in order, then the placement rule; each attempt runs
// prepare_target -> sync_data -> hooks -> start_service -> update_routing -> verify, and a
// failed or timed-out step rolls the attempt back and moves on. Its whole state is JSON, so a
// restarted server resumes a half-done failover. See docs/adr/0003-failover-orchestrator.md.

import {
  judgeCandidate,
  placeByRule,
  resourceNames,
  type PlacementCandidate,
  type Resources,
} from "../placement/placement.ts";
import type { FailoverOptions } from "./failover-options.ts";
import {
  defaultDataSources,
  StepKind,
  type AlertSeverity,
  type FailoverEffectSink,
  type FailoverHook,
  type FailoverReason,
  type FailoverRecord,
  type FailoverService,
  type FailoverStatus,
  type HealthCheckReport,
  type LocationSource,
  type StepAddress,
  type StepFailedReport,
  type StepRecord,
  type StepSucceededReport,
  type TriggerOutcome,
  type TriggerRequest,
} from "./failover-protocol.ts";
import {
  ServiceRegistry,
  type ServiceRegistrySnapshot,
  type ServiceRegistryView,
} from "./service-registry.ts";

/** Where an attempt is; the kinds follow each other in this order. */
export type AttemptStep =
  | { readonly kind: typeof StepKind.prepareTarget }
  | { readonly kind: typeof StepKind.syncData }
  | { readonly kind: typeof StepKind.hook; readonly hookIndex: number }
  | { readonly kind: typeof StepKind.startService }
  | { readonly kind: typeof StepKind.updateRouting; readonly endpoint: string }
  | { readonly kind: typeof StepKind.verify; readonly healthPasses: number };

export interface Attempt {
  readonly node: string;
  readonly via: LocationSource;
  readonly generation: number;
  readonly step: AttemptStep;
  readonly stepStartedAtMs: number;
  readonly deadlineMs: number;
  readonly dataAgeMs: number | null;
}

interface FailoverBase {
  readonly failoverId: number;
  readonly service: FailoverService;
  readonly reason: FailoverReason;
  readonly from: string | null;
  /** The trigger's `to`: an operator's choice, tried before the plan's locations. */
  readonly operatorTarget: string | null;
  readonly startedAtMs: number;
}

/** One service's failover while it is not finished. Finished ones live in the history. */
export type ActiveFailover =
  | (FailoverBase & { readonly phase: "queued" })
  | (FailoverBase & {
      readonly phase: "attempting";
      /** Nodes judged or attempted so far, never tried twice in one failover. */
      readonly tried: readonly string[];
      readonly reallocations: number;
      readonly steps: readonly StepRecord[];
      readonly attempt: Attempt;
    });

type QueuedFailover = Extract<ActiveFailover, { phase: "queued" }>;
type AttemptingFailover = Extract<ActiveFailover, { phase: "attempting" }>;

/** Everything the orchestrator knows, as JSON. */
export interface FailoverSnapshot {
  readonly version: 1;
  readonly nextFailoverId: number;
  /** In trigger order; queued ones start in this order. */
  readonly failovers: readonly ActiveFailover[];
  readonly history: readonly FailoverRecord[];
  readonly registry: ServiceRegistrySnapshot;
}

export interface FailoverComponents {
  /** The fleet as the server sees it now, without this orchestrator's reservations. */
  readonly candidates: () => Iterable<PlacementCandidate>;
  /** One node of that fleet, looked up directly: plan locations need no pass over the fleet. */
  readonly candidate: (nodeId: string) => PlacementCandidate | undefined;
  /** Receives commands; it must not call the orchestrator back before returning (queue reports). */
  readonly emit: FailoverEffectSink;
}

export class FailoverSnapshotError extends Error {
  override readonly name = "FailoverSnapshotError";
}

const emptySnapshot: FailoverSnapshot = {
  version: 1,
  nextFailoverId: 1,
  failovers: [],
  history: [],
  registry: { services: {} },
};

export class FailoverOrchestrator {
  readonly #options: FailoverOptions;
  readonly #candidates: () => Iterable<PlacementCandidate>;
  readonly #candidate: (nodeId: string) => PlacementCandidate | undefined;
  readonly #emit: FailoverEffectSink;
  readonly #registry: ServiceRegistry;
  /** By service, in trigger order. */
  readonly #failovers = new Map<string, ActiveFailover>();
  /** Services whose failover waits for a slot, oldest first. */
  readonly #queue: string[] = [];
  readonly #history: FailoverRecord[];
  #attemptingCount = 0;
  #nextFailoverId: number;

  constructor(
    options: FailoverOptions,
    components: FailoverComponents,
    snapshot: FailoverSnapshot = emptySnapshot,
  ) {
    if (snapshot.version !== 1) {
      throw new FailoverSnapshotError(
        `failover state has version ${String(snapshot.version)}; this server reads version 1`,
      );
    }
    this.#options = options;
    this.#candidates = components.candidates;
    this.#candidate = components.candidate;
    this.#emit = components.emit;
    this.#registry = ServiceRegistry.restore(snapshot.registry);
    this.#history = [...snapshot.history];
    this.#nextFailoverId = snapshot.nextFailoverId;
    for (const failover of snapshot.failovers) {
      this.#failovers.set(failover.service.name, failover);
      if (failover.phase === "queued") this.#queue.push(failover.service.name);
      else this.#attemptingCount += 1;
    }
  }

  /** What routing reads. */
  get registry(): ServiceRegistryView {
    return this.#registry;
  }

  snapshot(): FailoverSnapshot {
    return {
      version: 1,
      nextFailoverId: this.#nextFailoverId,
      failovers: [...this.#failovers.values()],
      history: [...this.#history],
      registry: this.#registry.snapshot(),
    };
  }

  active(): IterableIterator<ActiveFailover> {
    return this.#failovers.values();
  }

  /** Finished failovers (oldest first), then the running and queued ones as `initiated`. */
  records(): FailoverRecord[] {
    const running = [...this.#failovers.values()].map((failover) =>
      recordOf(failover, "initiated", null),
    );
    return [...this.#history, ...running];
  }

  /**
   * A condition was detected for a service (or an operator asked for a move). The service's
   * own instance is fenced first: stopped and unrouted, so it can never be a second primary.
   */
  trigger(request: TriggerRequest): TriggerOutcome {
    const { service, reason, from, atMs } = request;
    const existing = this.#failovers.get(service.name);
    if (existing !== undefined) {
      if (existing.phase === "attempting" && from !== null && existing.attempt.node === from) {
        this.#failStep(existing, atMs, `target node ${from} reported ${reason}`);
      }
      return { kind: "in-progress", failoverId: existing.failoverId };
    }
    if (
      reason !== "planned" &&
      service.plan !== null &&
      !service.plan.conditions.includes(reason)
    ) {
      return { kind: "ignored", why: "condition-not-in-plan" };
    }
    const route = this.#registry.resolve(service.name);
    if (from !== null && route !== undefined && route.nodeId !== from) {
      return { kind: "ignored", why: "not-on-node" };
    }
    const failover: QueuedFailover = {
      phase: "queued",
      failoverId: this.#nextFailoverId++,
      service,
      reason,
      from,
      operatorTarget: request.to ?? null,
      startedAtMs: atMs,
    };
    if (this.#attemptingCount < this.#options.concurrentFailoversMax) {
      this.#failovers.set(service.name, failover);
      this.#begin(failover, atMs);
      return { kind: "started", failoverId: failover.failoverId };
    }
    if (this.#queue.length >= this.#options.queuedFailoversMax) {
      this.#alert(
        failover,
        "critical",
        atMs,
        `failover refused: ${this.#queue.length} failovers already wait`,
      );
      this.#finish(recordOf(failover, "error", atMs));
      return { kind: "refused", failoverId: failover.failoverId, why: "queue-full" };
    }
    this.#failovers.set(service.name, failover);
    this.#queue.push(service.name);
    return { kind: "queued", failoverId: failover.failoverId };
  }

  stepSucceeded(report: StepSucceededReport): void {
    const failover = this.#current(report);
    if (failover === undefined) return;
    const { attempt } = failover;
    const { step } = attempt;
    const hooks = failover.service.plan?.hooks ?? [];
    let next: AttemptStep;
    let dataAgeMs = attempt.dataAgeMs;
    switch (step.kind) {
      case StepKind.prepareTarget:
        next = { kind: StepKind.syncData };
        break;
      case StepKind.syncData:
      case StepKind.hook: {
        if (step.kind === StepKind.syncData) dataAgeMs = report.dataAgeMs ?? null;
        const hookIndex = step.kind === StepKind.hook ? step.hookIndex + 1 : 0;
        next =
          hookIndex < hooks.length
            ? { kind: StepKind.hook, hookIndex }
            : { kind: StepKind.startService };
        break;
      }
      case StepKind.startService:
        if (report.endpoint === undefined || report.endpoint === "") {
          this.#failStep(failover, report.atMs, "the start was reported without an endpoint");
          return;
        }
        next = { kind: StepKind.updateRouting, endpoint: report.endpoint };
        break;
      case StepKind.updateRouting:
        next = { kind: StepKind.verify, healthPasses: 0 };
        break;
      case StepKind.verify:
        // Only passing health checks complete verify: a bare success is no evidence of health.
        return;
    }
    this.#enterStep(
      {
        ...failover,
        steps: [...failover.steps, stepRecordOf(failover, report.atMs, null)],
        attempt: { ...attempt, step: next, dataAgeMs },
      },
      report.atMs,
    );
  }

  stepFailed(report: StepFailedReport): void {
    const failover = this.#current(report);
    if (failover !== undefined) this.#failStep(failover, report.atMs, report.error);
  }

  /** A health check of an instance; it counts only while that generation is being verified. */
  healthChecked(report: HealthCheckReport): void {
    const failover = this.#failovers.get(report.service);
    if (failover?.phase !== "attempting") return;
    const { attempt } = failover;
    const { step } = attempt;
    if (attempt.generation !== report.generation || step.kind !== StepKind.verify) return;
    const healthPasses = report.ok ? step.healthPasses + 1 : 0;
    if (healthPasses >= this.#options.verifyPassesRequired) {
      this.#complete(failover, report.atMs);
      return;
    }
    this.#failovers.set(report.service, {
      ...failover,
      attempt: { ...attempt, step: { ...step, healthPasses } },
    });
  }

  /** Time passes: a step past its deadline fails. */
  tick(atMs: number): void {
    for (const failover of [...this.#failovers.values()]) {
      if (failover.phase !== "attempting" || atMs < failover.attempt.deadlineMs) continue;
      const timeoutMs = this.#timeoutMs(failover.attempt.step, failover.service);
      this.#failStep(failover, atMs, `${stepNameOf(failover)} timed out after ${timeoutMs} ms`);
    }
  }

  /**
   * After a restore: issues each running step's command again (the runtime may have lost it
   * with the old process) with a fresh deadline, and starts queued failovers if slots are free.
   */
  resume(atMs: number): void {
    for (const failover of [...this.#failovers.values()]) {
      if (failover.phase !== "attempting") continue;
      const { attempt } = failover;
      // Health passes seen before the restart are not trusted: the instance may have died since.
      const step =
        attempt.step.kind === StepKind.verify ? { ...attempt.step, healthPasses: 0 } : attempt.step;
      this.#enterStep(
        { ...failover, attempt: { ...attempt, step } },
        atMs,
        attempt.stepStartedAtMs,
      );
    }
    this.#startQueued(atMs);
  }

  /** The report's failover, if it names the step that failover is in now. */
  #current(address: StepAddress): AttemptingFailover | undefined {
    const failover = this.#failovers.get(address.service);
    if (failover?.phase !== "attempting") return undefined;
    const { attempt } = failover;
    if (attempt.generation !== address.generation) return undefined;
    if (stepIndexOf(attempt.step, failover.service) !== address.stepIndex) return undefined;
    return failover;
  }

  /** Fences the service's current instance and starts the first attempt. */
  #begin(failover: QueuedFailover, atMs: number): void {
    const { service } = failover;
    const entry = this.#registry.entry(service.name);
    const route = entry?.route;
    // An initial placement names no node, but if the service is routed somewhere it runs there.
    const current = failover.from ?? route?.nodeId ?? null;
    if (current !== null && entry !== undefined) {
      this.#emit({
        type: "stop",
        service: service.name,
        node: current,
        generation: entry.generation,
        reason: "fence",
      });
    }
    if (route !== undefined) {
      this.#registry.unroute(service.name, route.generation);
      this.#emit({ type: "unroute", service: service.name, generation: route.generation });
    }
    this.#attemptingCount += 1;
    const fromText = current === null ? "" : ` from ${current}`;
    this.#alert(failover, "warning", atMs, `failover initiated (${failover.reason})${fromText}`);
    this.#nextAttempt(
      {
        ...failover,
        from: current,
        tried: current === null ? [] : [current],
        reallocations: 0,
        steps: [],
      },
      atMs,
    );
  }

  /** Picks the next location and starts an attempt there, or fails the failover. */
  #nextAttempt(failover: BetweenAttempts, atMs: number): void {
    const { service } = failover;
    const request = { requiredCapabilities: service.requiredCapabilities, demand: service.demand };
    const reserved = this.#reservations(service.name);
    const tried = [...failover.tried];
    const steps = [...failover.steps];
    const named: { node: string; via: "operator" | "plan" }[] = [];
    if (failover.operatorTarget !== null) {
      named.push({ node: failover.operatorTarget, via: "operator" });
    }
    for (const node of service.plan?.backups ?? []) named.push({ node, via: "plan" });

    let chosen: { node: string; via: LocationSource } | undefined;
    for (const location of named) {
      if (tried.includes(location.node)) continue;
      tried.push(location.node);
      const candidate = this.#candidate(location.node);
      const verdict =
        candidate === undefined
          ? undefined
          : judgeCandidate(request, withReservation(candidate, reserved));
      if (verdict?.kind === "eligible") {
        chosen = location;
        break;
      }
      const why = verdict === undefined ? "unknown node" : verdict.reason;
      steps.push({
        name: StepKind.prepareTarget,
        node: location.node,
        ms: 0,
        ok: false,
        error: `not eligible: ${why}`,
      });
    }
    let reallocations = failover.reallocations;
    if (chosen === undefined && reallocations < this.#options.reallocationAttemptsMax) {
      const decision = placeByRule(request, this.#untried(new Set(tried), reserved));
      if (decision.kind === "placed") {
        reallocations += 1;
        tried.push(decision.nodeId);
        chosen = { node: decision.nodeId, via: "rule" };
      }
    }
    if (chosen === undefined) {
      this.#fail({ ...failover, tried, steps, reallocations }, atMs);
      return;
    }
    const attempt: Attempt = {
      node: chosen.node,
      via: chosen.via,
      generation: this.#registry.issueGeneration(service.name),
      step: { kind: StepKind.prepareTarget },
      stepStartedAtMs: atMs,
      deadlineMs: atMs,
      dataAgeMs: null,
    };
    this.#enterStep(
      { ...failover, phase: "attempting", tried, steps, reallocations, attempt },
      atMs,
    );
  }

  /**
   * Stores the failover with its step's deadline and issues the step's command. A resumed step
   * keeps `stepStartedAtMs`, so its recorded duration includes the restart.
   */
  #enterStep(failover: AttemptingFailover, atMs: number, stepStartedAtMs = atMs): void {
    const { service } = failover;
    const { step, node, generation } = failover.attempt;
    const attempt: Attempt = {
      ...failover.attempt,
      stepStartedAtMs,
      deadlineMs: atMs + this.#timeoutMs(step, service),
    };
    this.#failovers.set(service.name, { ...failover, attempt });
    const address = { service: service.name, generation, stepIndex: stepIndexOf(step, service) };
    switch (step.kind) {
      case StepKind.prepareTarget:
        this.#emit({
          ...address,
          type: "prepare",
          node,
          demand: service.demand,
          requiredCapabilities: service.requiredCapabilities,
        });
        return;
      case StepKind.syncData:
        this.#emit({
          ...address,
          type: "sync-data",
          from: failover.from,
          to: node,
          sources: service.plan?.dataSources ?? defaultDataSources,
        });
        return;
      case StepKind.hook: {
        const hook = hookOf(service, step.hookIndex);
        this.#emit({
          ...address,
          type: "run-hook",
          node,
          hook: hook.hook,
          command: hook.command,
          timeoutMs: hook.timeoutMs,
        });
        return;
      }
      case StepKind.startService:
        this.#emit({ ...address, type: "start", node });
        return;
      case StepKind.updateRouting: {
        const route = { nodeId: node, endpoint: step.endpoint, generation };
        const outcome = this.#registry.route(service.name, route);
        // An attempt's generation is the newest issued for its service until the attempt ends.
        if (outcome.kind === "stale") {
          throw new Error(
            `${service.name}: generation ${generation} routed while ${outcome.newestGeneration} is newest`,
          );
        }
        this.#emit({ ...address, type: "route", route });
        return;
      }
      case StepKind.verify:
        this.#emit({
          ...address,
          type: "verify",
          node,
          passesRequired: this.#options.verifyPassesRequired,
          checkIntervalMs: this.#options.verifyCheckIntervalMs,
        });
        return;
    }
  }

  /** Records the failed step, undoes what the attempt did (newest first) and moves on. */
  #failStep(failover: AttemptingFailover, atMs: number, error: string): void {
    const { service, attempt } = failover;
    const order = stepOrder[attempt.step.kind];
    if (order >= stepOrder[StepKind.updateRouting]) {
      this.#registry.unroute(service.name, attempt.generation);
      this.#emit({ type: "unroute", service: service.name, generation: attempt.generation });
    }
    if (order >= stepOrder[StepKind.startService]) {
      this.#emit({
        type: "stop",
        service: service.name,
        node: attempt.node,
        generation: attempt.generation,
        reason: "rollback",
      });
    }
    this.#emit({
      type: "release",
      service: service.name,
      node: attempt.node,
      generation: attempt.generation,
    });
    this.#alert(
      failover,
      "warning",
      atMs,
      `attempt on ${attempt.node} failed at ${stepNameOf(failover)}: ${error}`,
    );
    const steps = [...failover.steps, stepRecordOf(failover, atMs, error)];
    this.#nextAttempt({ ...failover, steps }, atMs);
  }

  #complete(failover: AttemptingFailover, atMs: number): void {
    const { attempt } = failover;
    const done = { ...failover, steps: [...failover.steps, stepRecordOf(failover, atMs, null)] };
    const record = recordOf(done, "completed", atMs);
    this.#alert(
      failover,
      "info",
      atMs,
      `serving from ${attempt.node} (generation ${attempt.generation}) after ${record.durationMs} ms`,
    );
    this.#end(failover.service.name, record, atMs);
  }

  /** Every location failed: nothing serves the service. */
  #fail(failover: BetweenAttempts, atMs: number): void {
    const record = recordOf(failover, "failed", atMs);
    this.#alert(
      failover,
      "critical",
      atMs,
      `failover failed: no location could take the service (tried ${failover.tried.join(", ") || "none"})`,
    );
    this.#end(failover.service.name, record, atMs);
  }

  #end(service: string, record: FailoverRecord, atMs: number): void {
    this.#failovers.delete(service);
    this.#attemptingCount -= 1;
    this.#finish(record);
    this.#startQueued(atMs);
  }

  #finish(record: FailoverRecord): void {
    this.#history.push(record);
    if (this.#history.length > this.#options.historyRecordsMax) this.#history.shift();
    this.#emit({ type: "record", record });
  }

  #startQueued(atMs: number): void {
    while (this.#attemptingCount < this.#options.concurrentFailoversMax) {
      const service = this.#queue.shift();
      if (service === undefined) return;
      const failover = this.#failovers.get(service);
      if (failover?.phase !== "queued") throw new Error(`queued ${service} is not queued`);
      this.#begin(failover, atMs);
    }
  }

  #alert(failover: FailoverBase, severity: AlertSeverity, atMs: number, message: string): void {
    this.#emit({
      type: "alert",
      severity,
      service: failover.service.name,
      failoverId: failover.failoverId,
      message,
      atMs,
    });
  }

  #timeoutMs(step: AttemptStep, service: FailoverService): number {
    switch (step.kind) {
      case StepKind.prepareTarget:
        return this.#options.prepareTimeoutMs;
      case StepKind.syncData:
        return this.#options.syncDataTimeoutMs;
      case StepKind.hook:
        return hookOf(service, step.hookIndex).timeoutMs;
      case StepKind.startService:
        return this.#options.startTimeoutMs;
      case StepKind.updateRouting:
        return this.#options.routeTimeoutMs;
      case StepKind.verify:
        return this.#options.verifyTimeoutMs;
    }
  }

  /**
   * The demand other running attempts hold on each node, so two failovers running at once
   * cannot both fill the last 10 % of a node.
   */
  #reservations(excludedService: string): Map<string, Resources> {
    const reserved = new Map<string, Resources>();
    for (const failover of this.#failovers.values()) {
      if (failover.phase !== "attempting" || failover.service.name === excludedService) continue;
      const node = failover.attempt.node;
      reserved.set(node, addResources(reserved.get(node), failover.service.demand));
    }
    return reserved;
  }

  /** The fleet minus the nodes tried, with reservations added; one pass, no copy of the fleet. */
  *#untried(
    tried: ReadonlySet<string>,
    reserved: ReadonlyMap<string, Resources>,
  ): Generator<PlacementCandidate> {
    for (const candidate of this.#candidates()) {
      if (!tried.has(candidate.nodeId)) yield withReservation(candidate, reserved);
    }
  }
}

function withReservation(
  candidate: PlacementCandidate,
  reserved: ReadonlyMap<string, Resources>,
): PlacementCandidate {
  const extra = reserved.get(candidate.nodeId);
  return extra === undefined
    ? candidate
    : { ...candidate, used: addResources(candidate.used, extra) };
}

/** An attempting failover between two attempts: the last one ended, the next is not chosen. */
type BetweenAttempts = Omit<AttemptingFailover, "phase" | "attempt">;

function addResources(left: Resources | undefined, right: Resources): Resources {
  const sum = { cpuCores: 0, memoryMb: 0, storageGb: 0, networkMbps: 0 };
  for (const resource of resourceNames) sum[resource] = (left?.[resource] ?? 0) + right[resource];
  return sum;
}

function hookOf(service: FailoverService, hookIndex: number): FailoverHook {
  const hook = service.plan?.hooks[hookIndex];
  if (hook === undefined) throw new Error(`${service.name} has no hook ${hookIndex}`);
  return hook;
}

/** Position of a step kind in an attempt, hooks counted as one. */
const stepOrder: Readonly<Record<StepKind, number>> = {
  [StepKind.prepareTarget]: 0,
  [StepKind.syncData]: 1,
  [StepKind.hook]: 2,
  [StepKind.startService]: 3,
  [StepKind.updateRouting]: 4,
  [StepKind.verify]: 5,
};

/** The step's place in its attempt, as commands and reports carry it. */
function stepIndexOf(step: AttemptStep, service: FailoverService): number {
  const hookCount = service.plan?.hooks.length ?? 0;
  switch (step.kind) {
    case StepKind.prepareTarget:
    case StepKind.syncData:
      return stepOrder[step.kind];
    case StepKind.hook:
      return stepOrder[step.kind] + step.hookIndex;
    case StepKind.startService:
    case StepKind.updateRouting:
    case StepKind.verify:
      return stepOrder[step.kind] - 1 + hookCount;
  }
}

/** The step kind, or the hook's name. */
function stepNameOf(failover: AttemptingFailover): string {
  const { step } = failover.attempt;
  return step.kind === StepKind.hook ? hookOf(failover.service, step.hookIndex).hook : step.kind;
}

function stepRecordOf(
  failover: AttemptingFailover,
  atMs: number,
  error: string | null,
): StepRecord {
  return {
    name: stepNameOf(failover),
    node: failover.attempt.node,
    ms: atMs - failover.attempt.stepStartedAtMs,
    ok: error === null,
    error,
  };
}

function recordOf(
  failover: FailoverBase & { readonly steps?: readonly StepRecord[]; readonly attempt?: Attempt },
  status: FailoverStatus,
  endedAtMs: number | null,
): FailoverRecord {
  const attempt = status === "failed" || status === "error" ? undefined : failover.attempt;
  return {
    failoverId: failover.failoverId,
    plan: failover.service.plan === null ? null : failover.service.name,
    service: failover.service.name,
    reason: failover.reason,
    from: failover.from,
    to: attempt?.node ?? null,
    via: attempt?.via ?? null,
    generation: attempt?.generation ?? null,
    startedAtMs: failover.startedAtMs,
    endedAtMs,
    durationMs: endedAtMs === null ? null : endedAtMs - failover.startedAtMs,
    dataAgeMs: attempt?.dataAgeMs ?? null,
    steps: failover.steps ?? [],
    status,
  };
}
