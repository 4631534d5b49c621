// The server's application service: registration, heartbeats and node queries, shared by the
// HTTP routes and the agents' persistent channel so both behave the same.

import { createHash } from "node:crypto";
import type { ServerPeerRequests } from "./peer-requests.ts";
import type { ServerFirewall } from "./server-firewall.ts";
import type { NodeMetrics, NodeView, RegisterRequest, RegisterResponse } from "../api/contract.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { EventLog } from "./event-log.ts";
import type { FailureDetection } from "./failure-detection.ts";
import { HttpError } from "./http-error.ts";
import type { DeclaredNode, NodeDirectory } from "./node-directory.ts";
import type { ServerLedger } from "./ledger/server-ledger.ts";
import type { ServerMetrics } from "./server-metrics.ts";
import type { BackupControl } from "./backup/backup-control.ts";
import type { AgentLinks } from "./services/agent-links.ts";
import type { DrillRunner } from "./services/drill-runner.ts";
import type { ServiceControl } from "./services/service-control.ts";

export interface ControlPlaneComponents {
  clock: Clock;
  logger: Logger;
  directory: NodeDirectory;
  detection: FailureDetection;
  events: EventLog;
  metrics: ServerMetrics;
  /** Nodes the fleet spec declares; when present, no other node may register. */
  declaredNodes: ReadonlyMap<string, DeclaredNode> | undefined;
  /** The failover runtime and its agent links. */
  services: ServiceControl;
  links: AgentLinks;
  drills: DrillRunner;
  /** Fleet backups: catalogue, policies pushed to agents, run/restore/verify. */
  backups?: BackupControl;
  /** The tamper-evident ledger: new nodes and new incarnations are recorded as enrolments. */
  ledger?: ServerLedger;
  /** Signed peer requests: the enrolled keys pushed to agents, and refusals they report. */
  peers?: ServerPeerRequests;
  /** The agents' firewalls: the rules pushed to each agent, and the denials they report. */
  firewall?: ServerFirewall;
  /** A node's key enrolled with a join token (SPKI DER, base64), for its ledger entries. */
  enrolledKeyOf?: (nodeId: string) => string | undefined;
}

/** Registered nodes at most; registration beyond it is refused with 507. */
export const registeredNodesMax = 50_000;

export class ControlPlane {
  readonly components: ControlPlaneComponents;

  constructor(components: ControlPlaneComponents) {
    this.components = components;
  }

  async register(request: RegisterRequest): Promise<RegisterResponse> {
    const { clock, directory, detection, declaredNodes, logger } = this.components;
    const declared = declaredNodes?.get(request.nodeId);
    if (declaredNodes !== undefined && declared === undefined) {
      throw new HttpError(
        403,
        "undeclared_node",
        `node ${request.nodeId} is not in this fleet's spec; add it to the spec's nodes and restart the server`,
      );
    }
    const existing = directory.get(request.nodeId);
    if (existing === undefined && directory.size >= registeredNodesMax) {
      throw new HttpError(
        507,
        "fleet_full",
        `the server already tracks ${registeredNodesMax} nodes; remove gone nodes with DELETE /v1/nodes/:id`,
      );
    }
    if (existing !== undefined && request.incarnation < existing.incarnation) {
      throw new HttpError(
        409,
        "stale_incarnation",
        `incarnation ${request.incarnation} is older than ${existing.incarnation}; an older agent process is still running for ${request.nodeId}`,
      );
    }
    await directory.register(request, declared, clock.nowMs());
    detection.register(request.nodeId, request.agentUrl !== undefined);
    if (existing === undefined || request.incarnation !== existing.incarnation) {
      const enrolledKey = this.components.enrolledKeyOf?.(request.nodeId);
      this.components.ledger?.record({
        kind: "enrolment",
        atMs: Math.round(clock.nowMs()),
        data: {
          node: request.nodeId,
          incarnation: request.incarnation,
          ...(enrolledKey === undefined
            ? { method: "register" }
            : {
                method: "join-token",
                publicKeyDigest: createHash("sha256")
                  .update(Buffer.from(enrolledKey, "base64"))
                  .digest("hex"),
              }),
          ...(request.agentUrl === undefined ? {} : { agentUrl: request.agentUrl }),
        },
      });
    }
    if (existing !== undefined && request.incarnation > existing.incarnation) {
      this.components.services.nodeRestarted(request.nodeId);
    }
    logger.info(
      { node: request.nodeId, incarnation: request.incarnation, agentUrl: request.agentUrl },
      "node registered",
    );
    return {
      nodeId: request.nodeId,
      heartbeatIntervalMs: detection.options.heartbeatIntervalMs,
      detectionPreset: detection.options.presetName,
      serverTimeMs: clock.nowMs(),
    };
  }

  /** Accepts one heartbeat or throws an HttpError saying why not. */
  heartbeat(
    nodeId: string,
    incarnation: number,
    metrics: NodeMetrics | undefined,
    transport: "http" | "channel",
  ): void {
    const { clock, directory, detection, metrics: serverMetrics } = this.components;
    const record = directory.get(nodeId);
    if (record === undefined || !detection.has(nodeId)) {
      serverMetrics.heartbeatsRejected.inc({ reason: "unknown_node" });
      throw new HttpError(
        404,
        "unknown_node",
        `node ${nodeId} is not registered; register it first with POST /v1/nodes/register`,
      );
    }
    if (incarnation !== record.incarnation) {
      serverMetrics.heartbeatsRejected.inc({ reason: "stale_incarnation" });
      throw new HttpError(
        409,
        "stale_incarnation",
        `incarnation ${incarnation} does not match the registered ${record.incarnation}; re-register`,
      );
    }
    detection.heartbeat(nodeId);
    directory.recordHeartbeat(nodeId, clock.nowMs(), metrics);
    serverMetrics.heartbeatsReceived.inc({ transport });
  }

  goodbye(nodeId: string): void {
    if (!this.components.detection.has(nodeId)) {
      throw new HttpError(404, "unknown_node", `node ${nodeId} is not registered`);
    }
    this.components.detection.goodbye(nodeId);
  }

  listNodes(): NodeView[] {
    const { directory, detection } = this.components;
    return [...directory.all()]
      .sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0))
      .map((record) => directory.view(record, detection.view(record.id)));
  }

  getNode(nodeId: string): NodeView {
    const { directory, detection } = this.components;
    const record = directory.get(nodeId);
    if (record === undefined)
      throw new HttpError(404, "unknown_node", `no node ${nodeId}; list nodes with GET /v1/nodes`);
    return directory.view(record, detection.view(nodeId));
  }

  async removeNode(nodeId: string): Promise<void> {
    const { directory, detection, events, clock } = this.components;
    if (!(await directory.remove(nodeId)))
      throw new HttpError(404, "unknown_node", `no node ${nodeId}`);
    detection.remove(nodeId);
    events.publish({ type: "node.removed", node: nodeId, atMs: clock.nowMs() });
  }
}
