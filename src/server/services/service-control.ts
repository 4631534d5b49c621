// Runs the core FailoverOrchestrator in real time: turns node transitions and agent reports
// into triggers, its commands into agent commands over the channels, persists its state before
// anything it decided reaches an agent, and keeps every agent's assignments (fencing) and
// routing table (proxies) in step with the registry.

import type { FleetEvent, NodeRecord, ServiceView } from "../../api/contract.ts";
import type {
  AgentCommand,
  AgentFailoverMessage,
  CommandResult,
  InstanceStatus,
  RouteEntry,
} from "../../api/service-messages.ts";
import type { FailoverOptions } from "../../core/failover/failover-options.ts";
import type {
  FailoverEffect,
  FailoverReason,
  FailoverRecord,
  StepAddress,
  TriggerOutcome,
} from "../../core/failover/failover-protocol.ts";
import { FailoverOrchestrator, type FailoverSnapshot } from "../../core/failover/orchestrator.ts";
import { TransitionReason } from "../../core/membership/membership.ts";
import { NodeStatus } from "../../core/membership/node-status.ts";
import type { PlacementCandidate, Resources } from "../../core/placement/placement.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import { StoreError, type Store } from "../../ports/store.ts";
import type { EventLog } from "../event-log.ts";
import { HttpError } from "../http-error.ts";
import type { AgentLinks } from "./agent-links.ts";
import type { AlertWebhook } from "./alert-webhook.ts";
import type { ServiceCatalog } from "./service-catalog.ts";

/** The orchestrator's state in the store's documents. */
export const failoverDocumentName = "failover";
/** Quarantined nodes in the store's documents. */
export const quarantineDocumentName = "quarantine";
/** Unrouted services are placed, and step deadlines checked, this often. */
export const reconcileIntervalMs = 500;
/** After this long without its primary healthy, a service is placed wherever the plan allows. */
export const placementGraceMs = 10_000;
/** A service whose placement failed waits this long before the next try. */
export const placementRetryMs = 30_000;
/** A stop command waits this long for the agent (the instance gets SIGTERM, then SIGKILL). */
export const stopCommandTimeoutMs = 15_000;
/** Statuses in which a node's agent can answer a data request. */
const reachableStatuses = new Set<string>([NodeStatus.healthy, NodeStatus.degraded]);

/** What the server knows about nodes, read when placing and routing. */
export interface NodeSource {
  all(): Iterable<NodeRecord>;
  get(nodeId: string): NodeRecord | undefined;
  status(nodeId: string): NodeStatus | undefined;
}

export interface ServiceControlComponents {
  clock: Clock;
  logger: Logger;
  store: Store;
  events: EventLog;
  links: AgentLinks;
  catalog: ServiceCatalog;
  nodes: NodeSource;
  options: FailoverOptions;
  webhook: AlertWebhook | undefined;
  /** Told of every finished failover; the ledger records it. */
  onFailoverEnded?: (record: FailoverRecord) => void;
}

export class ServiceControl {
  readonly #components: ServiceControlComponents;
  #orchestrator: FailoverOrchestrator | undefined;
  readonly #pendingEffects: FailoverEffect[] = [];
  #chain: Promise<void> = Promise.resolve();
  #startedAtMs = 0;
  #cancelReconcile: CancelTimer | undefined;
  #closed = false;
  /** Earliest time each unplaced service may be tried again. */
  readonly #placementNotBeforeMs = new Map<string, number>();
  /** What each agent was last told to run; resent only when it changes. */
  readonly #sentAssignments = new Map<string, string>();
  #sentRoutes = "";
  readonly #instances = new Map<string, InstanceStatus[]>();
  readonly #proxyPorts = new Map<string, Record<string, number>>();
  /** Nodes excluded from placement until an operator lifts the quarantine. */
  #quarantined = new Set<string>();
  /** Failovers waiting for their end, by id (drills wait on them). */
  readonly #endWaiters = new Map<number, ((record: FailoverRecord) => void)[]>();

  constructor(components: ServiceControlComponents) {
    this.#components = components;
  }

  get #core(): FailoverOrchestrator {
    if (this.#orchestrator === undefined) throw new Error("service control is not started");
    return this.#orchestrator;
  }

  /** Restores the persisted state, re-issues every running step, and starts reconciling. */
  async start(): Promise<void> {
    const { store, clock, options, logger } = this.#components;
    const quarantined = await store.loadDocument(quarantineDocumentName);
    if (quarantined !== undefined) {
      this.#quarantined = new Set(
        storedDocument<{ nodes: string[] }>(quarantined, "quarantine").nodes,
      );
    }
    const saved = await store.loadDocument(failoverDocumentName);
    let snapshot: FailoverSnapshot | undefined;
    if (saved !== undefined) {
      snapshot = storedDocument<FailoverSnapshot>(saved, failoverDocumentName);
    }
    this.#orchestrator = new FailoverOrchestrator(
      options,
      {
        candidates: () => this.#candidates(),
        candidate: (nodeId) => this.#candidates().find((candidate) => candidate.nodeId === nodeId),
        emit: (effect) => this.#pendingEffects.push(effect),
      },
      snapshot,
    );
    this.#startedAtMs = clock.nowMs();
    const running = [...this.#core.active()].length;
    if (running > 0) logger.info({ failovers: running }, "resuming failovers");
    await this.#drive(() => this.#core.resume(clock.nowMs()));
    this.#scheduleReconcile();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelReconcile?.();
    await this.#chain;
  }

  /**
   * A node's status changed: its services fail over when it failed or left. A refused probe
   * means the node's agent is gone (`node_failure`); a probe that timed out cannot tell a dead
   * node from one cut off, so plans that name `network_partition` get that condition.
   */
  nodeStatusChanged(nodeId: string, to: NodeStatus, reason: TransitionReason): void {
    if (to === NodeStatus.offline) this.#triggerForNode(nodeId, () => "planned");
    if (to !== NodeStatus.failed) return;
    if (reason === TransitionReason.probeRefused) {
      this.#triggerForNode(nodeId, () => "node_failure");
      return;
    }
    this.#triggerForNode(nodeId, (service) =>
      this.#components.catalog.get(service)?.failover.plan?.conditions.includes("network_partition")
        ? "network_partition"
        : "node_failure",
    );
  }

  /**
   * A node is quarantined (security): it takes no new service until released, and what runs
   * there moves away now; its assignments shrink, so its agent, if still connected, stops them.
   */
  async quarantine(nodeId: string, reason: string): Promise<void> {
    if (this.#quarantined.has(nodeId)) return;
    this.#quarantined.add(nodeId);
    await this.#saveQuarantine();
    // The quarantine itself is a security event in the stream; the moves raise their own alerts.
    this.#components.logger.error(
      { node: nodeId, reason },
      "node quarantined; its services move away",
    );
    this.#triggerForNode(nodeId, () => "planned");
  }

  /** Lifts a quarantine; says whether the node was quarantined. */
  async release(nodeId: string): Promise<boolean> {
    if (!this.#quarantined.delete(nodeId)) return false;
    await this.#saveQuarantine();
    this.#components.logger.warn({ node: nodeId }, "node released from quarantine");
    return true;
  }

  quarantined(): string[] {
    return [...this.#quarantined].sort();
  }

  async #saveQuarantine(): Promise<void> {
    await this.#components.store.saveDocument(
      quarantineDocumentName,
      JSON.stringify({ nodes: this.quarantined() }),
    );
  }

  /** A node registered with a new incarnation: its agent restarted, so its instances are gone. */
  nodeRestarted(nodeId: string): void {
    this.#triggerForNode(nodeId, () => "node_failure");
  }

  /** An agent connected: tell it what to run and where everything is. */
  agentConnected(nodeId: string): void {
    this.#sentAssignments.delete(nodeId);
    this.#sendAssignments(nodeId, true);
    this.#components.links.send(nodeId, { type: "routes", routes: this.#routes() });
  }

  /** Its reports go with it: a disconnected agent's instances and proxies are not vouched for. */
  agentDisconnected(nodeId: string): void {
    this.#sentAssignments.delete(nodeId);
    this.#instances.delete(nodeId);
    this.#proxyPorts.delete(nodeId);
  }

  /** A service message from an agent (already validated). */
  agentMessage(nodeId: string, message: AgentFailoverMessage): void {
    switch (message.type) {
      case "command-result": {
        this.#components.links.result(nodeId, message);
        return;
      }
      case "instances":
        this.#instancesReported(nodeId, message.instances);
        return;
      case "instance-failed":
        this.#instanceFailed(nodeId, message.service, message.generation, message.reason);
        return;
      case "proxies":
        this.#proxyPorts.set(nodeId, message.ports);
        return;
    }
  }

  /** An operator's failover: a planned move of the service, to `to` if given. */
  async failover(service: string, to: string | undefined): Promise<TriggerOutcome> {
    const entry = this.#components.catalog.get(service);
    if (entry === undefined) throw new UnknownServiceError(service);
    let outcome: TriggerOutcome | undefined;
    await this.#drive(() => {
      outcome = this.#trigger(
        service,
        "planned",
        this.#core.registry.resolve(service)?.nodeId ?? null,
        to,
      );
    });
    if (outcome === undefined) throw new Error("trigger produced no outcome");
    return outcome;
  }

  /** Resolves with the failover's record once it has ended. */
  waitForEnd(failoverId: number): Promise<FailoverRecord> {
    const ended = this.#core
      .records()
      .find((record) => record.failoverId === failoverId && record.status !== "initiated");
    if (ended !== undefined) return Promise.resolve(ended);
    return new Promise((resolve) => {
      const waiters = this.#endWaiters.get(failoverId) ?? [];
      waiters.push(resolve);
      this.#endWaiters.set(failoverId, waiters);
    });
  }

  resolve(service: string): RouteEntry | undefined {
    const route = this.#core.registry.resolve(service);
    return route === undefined ? undefined : { ...route };
  }

  records(): FailoverRecord[] {
    return this.#core.records();
  }

  list(): ServiceView[] {
    const active = new Map<string, number>();
    for (const failover of this.#core.active())
      active.set(failover.service.name, failover.failoverId);
    return [...this.#components.catalog.keys()].sort().map((name) => this.#view(name, active));
  }

  view(name: string): ServiceView {
    if (!this.#components.catalog.has(name)) throw new UnknownServiceError(name);
    const active = new Map<string, number>();
    for (const failover of this.#core.active())
      active.set(failover.service.name, failover.failoverId);
    return this.#view(name, active);
  }

  #view(name: string, active: ReadonlyMap<string, number>): ServiceView {
    const entry = this.#core.registry.entry(name);
    const route = entry?.route;
    const failoverId = active.get(name) ?? null;
    const instances: ServiceView["instances"] = [];
    for (const [node, reported] of this.#instances) {
      for (const instance of reported) {
        if (instance.service === name) instances.push({ ...instance, node });
      }
    }
    const proxies: ServiceView["proxies"] = [];
    for (const [node, ports] of this.#proxyPorts) {
      const port = ports[name];
      const agentUrl = this.#components.nodes.get(node)?.agentUrl;
      if (port === undefined || agentUrl === null || agentUrl === undefined) continue;
      proxies.push({ node, host: new URL(agentUrl).hostname, port });
    }
    proxies.sort((left, right) => (left.node < right.node ? -1 : 1));
    return {
      name,
      node: route?.nodeId ?? null,
      generation: entry?.generation ?? 0,
      endpoint: route?.endpoint ?? null,
      status: failoverId !== null ? "failing-over" : route !== undefined ? "serving" : "unplaced",
      instances,
      proxies,
      failoverId,
    };
  }

  /**
   * Runs `action` against the orchestrator after everything queued before it, then persists
   * the state and carries out the commands it emitted. The orchestrator never sees two
   * actions interleave.
   */
  #drive(action: () => void): Promise<void> {
    const run = async () => {
      if (this.#closed && this.#orchestrator !== undefined) return;
      action();
      const effects = this.#pendingEffects.splice(0);
      if (effects.length === 0) return;
      await this.#components.store.saveDocument(
        failoverDocumentName,
        JSON.stringify(this.#core.snapshot()),
      );
      for (const effect of effects) this.#carryOut(effect);
      this.#pushAssignmentsAndRoutes();
    };
    this.#chain = this.#chain.then(run).catch((error: unknown) => {
      // The state could not be saved: nothing it decided has reached an agent. Say so loudly;
      // the next action saves again.
      this.#components.logger.error({ err: error }, "failover state could not be saved");
    });
    return this.#chain;
  }

  #carryOut(effect: FailoverEffect): void {
    const { options, logger } = this.#components;
    switch (effect.type) {
      case "prepare":
        this.#step(
          effect,
          effect.node,
          { type: "prepare", service: effect.service, generation: effect.generation },
          options.prepareTimeoutMs,
        );
        return;
      case "sync-data": {
        // A reachable old primary holds the freshest data: copy it first even when the plan
        // names only backups (a planned move, a drill, a node that left gracefully).
        const fromUrl = this.#reachableAgentUrl(effect.from);
        this.#step(
          effect,
          effect.to,
          {
            type: "sync-data",
            service: effect.service,
            generation: effect.generation,
            fromUrl,
            fromNode: fromUrl === null ? null : effect.from,
            quiesce: true,
            sources:
              fromUrl !== null && !effect.sources.includes("primary")
                ? ["primary", ...effect.sources]
                : [...effect.sources],
          },
          options.syncDataTimeoutMs,
        );
        return;
      }
      case "run-hook":
        this.#step(
          effect,
          effect.node,
          {
            type: "run-hook",
            service: effect.service,
            generation: effect.generation,
            hook: effect.hook,
            command: [...effect.command],
            timeoutMs: effect.timeoutMs,
          },
          effect.timeoutMs + options.prepareTimeoutMs,
        );
        return;
      case "start":
        this.#step(
          effect,
          effect.node,
          { type: "start", service: effect.service, generation: effect.generation },
          options.startTimeoutMs,
        );
        return;
      case "route":
        // The routing table goes to every connected agent as part of this drive; the step is
        // done once it has been sent.
        void this.#report(effect, { id: 0, ok: true });
        return;
      case "verify":
        void this.#verify(effect.service, effect.generation, effect.node, effect.checkIntervalMs);
        return;
      case "stop":
        void this.#components.links
          .command(
            effect.node,
            {
              type: "stop",
              service: effect.service,
              generation: effect.generation,
              reason: effect.reason,
            },
            stopCommandTimeoutMs,
          )
          .then((result) => {
            // An unreachable node is fenced when it reconnects: its assignments leave it out.
            if (!result.ok)
              logger.info(
                { service: effect.service, node: effect.node, why: result.message },
                "stop not confirmed; fencing on reconnect",
              );
          });
        return;
      case "release":
      case "unroute":
        // Reservations live in the orchestrator; routes are pushed after this drive.
        return;
      case "alert":
        this.#alert(
          effect.service,
          effect.failoverId,
          effect.severity,
          effect.message,
          effect.atMs,
        );
        return;
      case "record":
        this.#recordEnded(effect.record);
        return;
    }
  }

  #step(address: StepAddress, node: string, command: AgentCommand, timeoutMs: number): void {
    void this.#components.links
      .command(node, command, timeoutMs)
      .then((result) => this.#report(address, result));
  }

  #report(address: StepAddress, result: CommandResult): Promise<void> {
    const atMs = this.#components.clock.nowMs();
    if (result.ok && result.message !== undefined) {
      this.#alert(address.service, null, "warning", result.message, atMs);
    }
    return this.#drive(() => {
      if (result.ok) {
        this.#core.stepSucceeded({
          ...address,
          atMs,
          ...(result.endpoint === undefined ? {} : { endpoint: result.endpoint }),
          ...(result.dataAgeMs === undefined ? {} : { dataAgeMs: result.dataAgeMs }),
        });
      } else {
        this.#core.stepFailed({ ...address, atMs, error: result.message ?? "failed" });
      }
    });
  }

  /** Health checks every `intervalMs` while the attempt is in verify. */
  async #verify(
    service: string,
    generation: number,
    node: string,
    intervalMs: number,
  ): Promise<void> {
    const { links, clock } = this.#components;
    while (!this.#closed && this.#verifying(service, generation)) {
      const result = await links.command(
        node,
        { type: "check-health", service, generation },
        this.#components.options.verifyTimeoutMs,
      );
      await this.#drive(() =>
        this.#core.healthChecked({ service, generation, ok: result.ok, atMs: clock.nowMs() }),
      );
      if (!this.#verifying(service, generation)) return;
      await new Promise<void>((resolve) => clock.schedule(intervalMs, resolve));
    }
  }

  #verifying(service: string, generation: number): boolean {
    for (const failover of this.#core.active()) {
      if (failover.service.name !== service || failover.phase !== "attempting") continue;
      return failover.attempt.generation === generation && failover.attempt.step.kind === "verify";
    }
    return false;
  }

  #triggerForNode(nodeId: string, reasonFor: (service: string) => FailoverReason): void {
    void this.#drive(() => {
      for (const [service, entry] of this.#core.registry.entries()) {
        if (entry.route?.nodeId === nodeId) {
          this.#trigger(service, reasonFor(service), nodeId, undefined);
        }
      }
      for (const failover of [...this.#core.active()]) {
        if (failover.phase === "attempting" && failover.attempt.node === nodeId) {
          const service = failover.service.name;
          this.#trigger(service, reasonFor(service), nodeId, undefined);
        }
      }
    });
  }

  /** Call inside #drive only. */
  #trigger(
    service: string,
    reason: FailoverReason,
    from: string | null,
    to: string | undefined,
  ): TriggerOutcome {
    const { catalog, clock, logger, events } = this.#components;
    const entry = catalog.get(service);
    if (entry === undefined) return { kind: "ignored", why: "not-on-node" };
    const atMs = clock.nowMs();
    const outcome = this.#core.trigger({
      service: entry.failover,
      reason,
      from,
      ...(to === undefined ? {} : { to }),
      atMs,
    });
    logger.info({ service, reason, from, to, outcome: outcome.kind }, "failover trigger");
    if (outcome.kind === "started" || outcome.kind === "queued") {
      const record = this.#core
        .records()
        .find((candidate) => candidate.failoverId === outcome.failoverId);
      if (record !== undefined) events.publish({ type: "service.failover", ...record, atMs });
    }
    if (outcome.kind === "ignored" && outcome.why === "condition-not-in-plan") {
      this.#alert(
        service,
        null,
        "critical",
        `${reason} on ${from ?? "?"}: the plan does not fail over on it; the service stays down`,
        atMs,
      );
    }
    return outcome;
  }

  #instancesReported(nodeId: string, instances: InstanceStatus[]): void {
    const { events, clock } = this.#components;
    const before = new Map(
      (this.#instances.get(nodeId) ?? []).map((instance) => [
        `${instance.service}@${instance.generation}`,
        instance.state,
      ]),
    );
    this.#instances.set(nodeId, instances);
    for (const instance of instances) {
      if (before.get(`${instance.service}@${instance.generation}`) === instance.state) continue;
      events.publish({
        type: "service.instance",
        node: nodeId,
        service: instance.service,
        generation: instance.generation,
        state: instance.state,
        error: instance.lastError,
        atMs: clock.nowMs(),
      });
    }
  }

  #instanceFailed(nodeId: string, service: string, generation: number, reason: string): void {
    this.#components.logger.warn(
      { node: nodeId, service, generation, reason },
      "instance failed after its local restarts",
    );
    void this.#drive(() => {
      const entry = this.#core.registry.entry(service);
      if (entry?.route?.nodeId === nodeId && entry.route.generation === generation) {
        this.#trigger(service, "service_unhealthy", nodeId, undefined);
      }
    });
  }

  /** Places services that run nowhere, and lets step deadlines pass. */
  #reconcile(): void {
    const { clock, catalog, nodes } = this.#components;
    void this.#drive(() => {
      const atMs = clock.nowMs();
      this.#core.tick(atMs);
      const active = new Set<string>();
      for (const failover of this.#core.active()) active.add(failover.service.name);
      const graceOver = atMs - this.#startedAtMs >= placementGraceMs;
      for (const [name, entry] of catalog) {
        if (active.has(name) || this.#core.registry.resolve(name) !== undefined) continue;
        if (atMs < (this.#placementNotBeforeMs.get(name) ?? 0)) continue;
        const primary = entry.spec.failover?.primary;
        const primaryReady = primary !== undefined && nodes.status(primary) === NodeStatus.healthy;
        if (!primaryReady && !graceOver) continue;
        this.#placementNotBeforeMs.set(name, atMs + placementRetryMs);
        this.#trigger(name, "planned", null, primaryReady ? primary : undefined);
      }
    });
  }

  #scheduleReconcile(): void {
    if (this.#closed) return;
    this.#cancelReconcile = this.#components.clock.schedule(reconcileIntervalMs, () => {
      this.#reconcile();
      this.#scheduleReconcile();
    });
  }

  /** The fleet as placement sees it, with what the registry routes to each node counted as used. */
  #candidates(): PlacementCandidate[] {
    const { nodes, catalog } = this.#components;
    const used = new Map<string, Resources>();
    for (const [service, entry] of this.#core.registry.entries()) {
      const node = entry.route?.nodeId;
      const demand = catalog.get(service)?.failover.demand;
      if (node === undefined || demand === undefined) continue;
      const sum = used.get(node) ?? { cpuCores: 0, memoryMb: 0, storageGb: 0, networkMbps: 0 };
      used.set(node, {
        cpuCores: sum.cpuCores + demand.cpuCores,
        memoryMb: sum.memoryMb + demand.memoryMb,
        storageGb: sum.storageGb + demand.storageGb,
        networkMbps: sum.networkMbps + demand.networkMbps,
      });
    }
    const candidates: PlacementCandidate[] = [];
    for (const record of nodes.all()) {
      const status = nodes.status(record.id);
      if (status === undefined || this.#quarantined.has(record.id)) continue;
      candidates.push({
        nodeId: record.id,
        status,
        capabilities: new Set(record.capabilities),
        capacity: capacityOf(record),
        used: used.get(record.id) ?? { cpuCores: 0, memoryMb: 0, storageGb: 0, networkMbps: 0 },
      });
    }
    return candidates;
  }

  /** The agent URL of `nodeId` if it may answer a data request now. */
  #reachableAgentUrl(nodeId: string | null): string | null {
    if (nodeId === null) return null;
    const status = this.#components.nodes.status(nodeId);
    if (status === undefined || !reachableStatuses.has(status)) return null;
    return this.#components.nodes.get(nodeId)?.agentUrl ?? null;
  }

  #routes(): Record<string, RouteEntry | null> {
    const routes: Record<string, RouteEntry | null> = {};
    for (const name of this.#components.catalog.keys()) {
      const route = this.#core.registry.resolve(name);
      routes[name] = route === undefined ? null : { ...route };
    }
    return routes;
  }

  /** Per node: the generation of each service it should run now (routed there or being started there). */
  #assignments(): Map<string, Record<string, number>> {
    const byNode = new Map<string, Record<string, number>>();
    const assign = (node: string, service: string, generation: number) => {
      const assignments = byNode.get(node) ?? {};
      assignments[service] = generation;
      byNode.set(node, assignments);
    };
    for (const [service, entry] of this.#core.registry.entries()) {
      if (entry.route !== undefined) assign(entry.route.nodeId, service, entry.route.generation);
    }
    for (const failover of this.#core.active()) {
      if (failover.phase === "attempting") {
        assign(failover.attempt.node, failover.service.name, failover.attempt.generation);
      }
    }
    return byNode;
  }

  #pushAssignmentsAndRoutes(): void {
    for (const nodeId of [...this.#components.links.nodes()]) this.#sendAssignments(nodeId, false);
    const routes = this.#routes();
    const text = JSON.stringify(routes);
    if (text === this.#sentRoutes) return;
    this.#sentRoutes = text;
    for (const nodeId of [...this.#components.links.nodes()]) {
      this.#components.links.send(nodeId, { type: "routes", routes });
    }
  }

  #sendAssignments(nodeId: string, force: boolean): void {
    if (this.#orchestrator === undefined) return;
    const assignments = this.#assignments().get(nodeId) ?? {};
    const text = JSON.stringify(assignments);
    if (!force && this.#sentAssignments.get(nodeId) === text) return;
    const newestGenerations: Record<string, number> = {};
    for (const [service, entry] of this.#core.registry.entries())
      newestGenerations[service] = entry.generation;
    const sent = this.#components.links.send(nodeId, {
      type: "services",
      definitions: [...this.#components.catalog.values()].map((entry) => entry.definition),
      assignments,
      newestGenerations,
    });
    if (sent) this.#sentAssignments.set(nodeId, text);
  }

  #alert(
    service: string,
    failoverId: number | null,
    severity: "info" | "warning" | "critical",
    message: string,
    atMs: number,
  ): void {
    const { logger, events, webhook } = this.#components;
    const fields = { service, failoverId, severity };
    if (severity === "critical") logger.error(fields, message);
    else if (severity === "warning") logger.warn(fields, message);
    else logger.info(fields, message);
    const event = { type: "service.alert", service, failoverId, severity, message, atMs } as const;
    events.publish(event);
    webhook?.post(event);
  }

  #recordEnded(record: FailoverRecord): void {
    const { events, webhook, clock } = this.#components;
    const event: Omit<Extract<FleetEvent, { type: "service.failover" }>, "id"> = {
      type: "service.failover",
      ...record,
      atMs: record.endedAtMs ?? clock.nowMs(),
    };
    events.publish(event);
    webhook?.post(event);
    this.#components.onFailoverEnded?.(record);
    if (record.status === "completed") this.#placementNotBeforeMs.delete(record.service);
    const waiters = this.#endWaiters.get(record.failoverId);
    this.#endWaiters.delete(record.failoverId);
    for (const waiter of waiters ?? []) waiter(record);
  }
}

export class UnknownServiceError extends HttpError {
  constructor(readonly service: string) {
    super(
      404,
      "unknown_service",
      `no service ${service} in the fleet spec; list services with edgeward services`,
    );
  }
}

/** The node's declared quotas, or what its agent measured when the spec declares none. */
function capacityOf(record: NodeRecord): Resources {
  if (record.quotas !== null) return record.quotas;
  const metrics = record.metrics;
  return {
    cpuCores: metrics?.cpu.cores ?? 1,
    memoryMb: Math.floor((metrics?.memory.totalBytes ?? 0) / 1024 / 1024),
    storageGb: Math.floor((metrics?.storage.totalBytes ?? 0) / 1024 ** 3),
    networkMbps: 1_000,
  };
}

/** Parses a document the server stored; a damaged one stops the start with what to do. */
export function storedDocument<Document>(json: string, name: string): Document {
  try {
    return JSON.parse(json) as Document;
  } catch (error) {
    throw new StoreError(
      `the stored ${name} document is not JSON (${(error as Error).message}); restore state.db from a backup`,
    );
  }
}
