// Runs the core Membership in real time: ticks it, carries out the probes it asks for, and
// turns its transitions into stored statuses, events, metrics and log lines.

import {
  Membership,
  type TransitionReason,
  type MembershipEffect,
  type NodeHealthView,
} from "../core/membership/membership.ts";
import {
  detectorTickIntervalMs,
  type DetectorOptions,
} from "../core/membership/detector-options.ts";
import { isNodeStatus, NodeStatus } from "../core/membership/node-status.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { Prober } from "../runtime/probe/http-prober.ts";
import type { EventLog } from "./event-log.ts";
import type { NodeDirectory } from "./node-directory.ts";
import type { ServerMetrics } from "./server-metrics.ts";

export interface FailureDetectionComponents {
  clock: Clock;
  directory: NodeDirectory;
  events: EventLog;
  metrics: ServerMetrics;
  logger: Logger;
  prober: Prober;
}

/** Told of every status change after it is recorded (the failover runtime listens). */
export type StatusListener = (nodeId: string, to: NodeStatus, reason: TransitionReason) => void;

/** Probes in flight at once; a mass outage must not open thousands of sockets. */
export const probesInFlightMax = 512;

export class FailureDetection {
  readonly #components: FailureDetectionComponents;
  readonly #membership: Membership;
  readonly #tickIntervalMs: number;
  #cancelTick: CancelTimer | undefined;
  #probesInFlight = 0;
  #statusListener: StatusListener = () => {};

  constructor(options: DetectorOptions, components: FailureDetectionComponents) {
    this.#components = components;
    this.#tickIntervalMs = detectorTickIntervalMs(options);
    this.#membership = new Membership(options, components.clock.nowMs(), (effect) =>
      this.#apply(effect),
    );
  }

  /** Sets the one listener for status changes. */
  onStatusChange(listener: StatusListener): void {
    this.#statusListener = listener;
  }

  /** The node's status now, or undefined if it is not registered. */
  status(nodeId: string): NodeStatus | undefined {
    return this.#membership.view(nodeId, this.#components.clock.nowMs())?.status;
  }

  get options(): DetectorOptions {
    return this.#membership.options;
  }

  /** Re-creates the nodes the store knew, under the startup grace period, and starts ticking. */
  start(): void {
    const atMs = this.#components.clock.nowMs();
    for (const record of this.#components.directory.all()) {
      const status = isNodeStatus(record.status) ? record.status : NodeStatus.healthy;
      this.#membership.restore(
        record.id,
        status,
        record.statusSinceMs,
        atMs,
        record.agentUrl !== null,
      );
    }
    this.#scheduleTick();
  }

  stop(): void {
    this.#cancelTick?.();
    this.#cancelTick = undefined;
  }

  register(nodeId: string, probeable: boolean): void {
    this.#membership.register(nodeId, this.#components.clock.nowMs(), { probeable });
  }

  has(nodeId: string): boolean {
    return this.#membership.has(nodeId);
  }

  heartbeat(nodeId: string): void {
    this.#membership.heartbeat(nodeId, this.#components.clock.nowMs());
  }

  goodbye(nodeId: string): void {
    this.#membership.goodbye(nodeId, this.#components.clock.nowMs());
  }

  connectionLost(nodeId: string): void {
    this.#membership.connectionLost(nodeId, this.#components.clock.nowMs());
  }

  /** The server closed the node's channel for sending too much (ADR 0010): alive, not lost. */
  channelRateLimited(nodeId: string): void {
    this.#membership.channelRateLimited(nodeId, this.#components.clock.nowMs());
  }

  remove(nodeId: string): void {
    this.#membership.remove(nodeId);
  }

  view(nodeId: string): NodeHealthView | undefined {
    return this.#membership.view(nodeId, this.#components.clock.nowMs());
  }

  countByStatus(): Map<string, number> {
    const counts = new Map<string, number>();
    const atMs = this.#components.clock.nowMs();
    for (const nodeId of this.#membership.nodeIds()) {
      const status = this.#membership.view(nodeId, atMs)?.status;
      if (status !== undefined) counts.set(status, (counts.get(status) ?? 0) + 1);
    }
    return counts;
  }

  #scheduleTick(): void {
    this.#cancelTick = this.#components.clock.schedule(this.#tickIntervalMs, () => {
      this.#membership.tick(this.#components.clock.nowMs());
      this.#scheduleTick();
    });
  }

  #apply(effect: MembershipEffect): void {
    const { directory, events, metrics, logger } = this.#components;
    switch (effect.type) {
      case "transition": {
        const lastHeartbeatAtMs = directory.get(effect.nodeId)?.lastHeartbeatAtMs ?? null;
        directory.setStatus(effect.nodeId, effect.to, effect.atMs);
        metrics.transitions.inc({ to: effect.to, reason: effect.reason });
        if (effect.to === NodeStatus.failed && lastHeartbeatAtMs !== null) {
          metrics.detectionSeconds.observe(Math.max(0, effect.atMs - lastHeartbeatAtMs) / 1_000);
        }
        events.publish({
          type: "node.status",
          node: effect.nodeId,
          from: effect.from ?? null,
          to: effect.to,
          atMs: effect.atMs,
          reason: effect.reason,
        });
        const fields = {
          node: effect.nodeId,
          from: effect.from,
          to: effect.to,
          reason: effect.reason,
        };
        if (effect.to === NodeStatus.failed) logger.warn(fields, "node failed");
        else logger.info(fields, "node status changed");
        this.#statusListener(effect.nodeId, effect.to, effect.reason);
        return;
      }
      case "probe":
        this.#probe(effect.nodeId, effect.attempts);
        return;
    }
  }

  /** Probes over `attempts` separate connections at once; the best answer counts. */
  #probe(nodeId: string, attempts: number): void {
    const agentUrl = this.#components.directory.get(nodeId)?.agentUrl;
    if (agentUrl === null || agentUrl === undefined) return;
    if (this.#probesInFlight + attempts > probesInFlightMax) return;
    this.#probesInFlight += attempts;
    const timeoutMs = this.#membership.options.probeTimeoutMs;
    const probes = Array.from({ length: attempts }, () =>
      this.#components.prober(agentUrl, timeoutMs),
    );
    void Promise.all(probes).then((answers) => {
      this.#probesInFlight -= attempts;
      const answer = answers.includes("alive")
        ? "alive"
        : answers.includes("refused")
          ? "refused"
          : undefined;
      this.#components.metrics.probes.inc({ answer: answer ?? "none" });
      if (answer !== undefined)
        this.#membership.probeAnswered(nodeId, answer, this.#components.clock.nowMs());
    });
  }
}
