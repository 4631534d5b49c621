// The agents' persistent channel (`GET /v1/agents/connect`, WebSocket): heartbeats in, config
// and acknowledgements out. One connection per agent is what lets one core serve 10,000
// agents at 1 Hz, and its closing without a goodbye is the first sign of a crashed agent.

import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import { z } from "zod";
import { agentMessageSchema, nodeIdSchema, type ServerMessage } from "../../api/contract.ts";
import {
  agentBackupMessageSchema,
  agentSecurityMessageSchema,
  agentServiceMessageSchema,
  backupMessageTypes,
  securityMessageTypes,
  serviceMessageTypes,
} from "../../api/service-message-schemas.ts";
import type { ServerServiceMessage } from "../../api/service-messages.ts";
import { decideObjectAccess } from "../../core/security/access-policy.ts";
import {
  AgentChannelBudget,
  agentChannelBudgetDefaults,
  type ChannelMessageKind,
} from "../../core/security/agent-channel-budget.ts";
import { messageText } from "../../runtime/websocket-text.ts";
import type { ControlPlane } from "../control-plane.ts";
import { describeIssues, HttpError } from "../http-error.ts";
import { credentialRevokedClose, LiveSessionsFullError } from "../live-sessions.ts";

/** Largest message an agent may send; a heartbeat with metrics is about 400 bytes, a full instance report of 256 instances about 64 KiB. */
export const agentMessageBytesMax = 128 * 1024;
/** The agent is told about messages dropped over its budget at most this often. */
const dropNoticeIntervalMs = 1_000;

const connectQuerySchema = z.strictObject({
  nodeId: nodeIdSchema,
  incarnation: z.coerce.number().int().min(0),
});

/** WebSocket close codes, in the private range, so agents can tell why they were closed. */
export const ChannelCloseCode = {
  invalidRequest: 4400,
  forbidden: 4403,
  unknownNode: 4404,
  staleIncarnation: 4409,
  rateLimited: 4429,
  replaced: 4000,
  /** The node's credential was revoked (a token revocation or a quarantine) while connected. */
  credentialRevoked: credentialRevokedClose.code,
  tryAgainLater: 1013,
  internalError: 1011,
  goodbye: 1000,
} as const;

function closeCodeFor(error: HttpError): number {
  if (error.statusCode === 404) return ChannelCloseCode.unknownNode;
  if (error.statusCode === 409) return ChannelCloseCode.staleIncarnation;
  return ChannelCloseCode.invalidRequest;
}

function send(socket: WebSocket, message: ServerMessage | ServerServiceMessage): void {
  socket.send(JSON.stringify(message));
}

export function registerAgentChannel(app: FastifyInstance, plane: ControlPlane): void {
  const { detection, directory, metrics, logger, clock, services, links } = plane.components;
  const channels = new Map<string, WebSocket>();

  app.get(
    "/v1/agents/connect",
    { websocket: true, config: { access: { resource: "nodes", action: "write" } } },
    (socket, request) => {
      const query = connectQuerySchema.safeParse(request.query);
      if (!query.success) {
        socket.close(
          ChannelCloseCode.invalidRequest,
          `invalid query: ${describeIssues(query.error)}`.slice(0, 120),
        );
        return;
      }
      const { nodeId, incarnation } = query.data;
      const principal = request.principal;
      const object = { kind: "node", nodeId } as const;
      const allowed = principal === undefined || decideObjectAccess(principal, object).allowed;
      if (!allowed) {
        app.accessGuard.objectDenied(request, principal, `may not connect as node ${nodeId}`);
        socket.close(ChannelCloseCode.forbidden, `this credential may not act as node ${nodeId}`);
        return;
      }
      const record = directory.get(nodeId);
      if (record === undefined) {
        socket.close(
          ChannelCloseCode.unknownNode,
          "node is not registered; POST /v1/nodes/register first",
        );
        return;
      }
      if (record.incarnation !== incarnation) {
        socket.close(
          ChannelCloseCode.staleIncarnation,
          "incarnation does not match the registration; re-register",
        );
        return;
      }
      let releaseSession: () => void;
      try {
        releaseSession =
          principal === undefined
            ? () => {}
            : app.accessGuard.holdSession(principal, () =>
                socket.close(ChannelCloseCode.credentialRevoked, credentialRevokedClose.reason),
              );
      } catch (error) {
        if (!(error instanceof LiveSessionsFullError)) throw error;
        socket.close(ChannelCloseCode.tryAgainLater, "the server holds too many sessions");
        return;
      }
      const previous = channels.get(nodeId);
      channels.set(nodeId, socket);
      previous?.close(ChannelCloseCode.replaced, "replaced by a newer connection");
      metrics.agentConnections.inc();
      const sender = (message: ServerServiceMessage) => send(socket, message);
      links.attach(nodeId, sender);
      // Assignments first: the agent stops stale instances before it starts heartbeating, and
      // knows every service before a command that waited for it names one.
      services.agentConnected(nodeId);
      links.flushWaiting(nodeId);
      plane.components.backups?.agentConnected(nodeId);
      plane.components.peers?.agentConnected(nodeId);
      plane.components.firewall?.agentConnected(nodeId);
      send(socket, {
        type: "welcome",
        heartbeatIntervalMs: detection.options.heartbeatIntervalMs,
        serverTimeMs: clock.nowMs(),
      });

      let saidGoodbye = false;
      // Heartbeats have a budget of their own: a flood of reports cannot crowd them out, and
      // what is over budget is dropped rather than costing the node its channel (ADR 0010).
      const budget = new AgentChannelBudget(agentChannelBudgetDefaults, clock.nowMs());
      let closedForRate = false;
      let droppedUntold = 0;
      let toldOfDropsAtMs = -Infinity;
      const dropped = (kind: ChannelMessageKind, nowMs: number) => {
        metrics.agentMessagesDropped.inc({ budget: kind });
        droppedUntold += 1;
        if (nowMs - toldOfDropsAtMs < dropNoticeIntervalMs) return;
        toldOfDropsAtMs = nowMs;
        logger.warn({ node: nodeId, dropped: droppedUntold, kind }, "agent messages over budget");
        send(socket, {
          type: "error",
          message:
            `dropped ${droppedUntold} messages over the channel's budget (${budget.options.otherPerSecondMax} ` +
            `per second, heartbeats ${budget.options.livenessPerSecondMax} of their own); pace them`,
        });
        droppedUntold = 0;
      };

      socket.on("message", (data, isBinary) => {
        if (closedForRate) return;
        const nowMs = clock.nowMs();
        if (!budget.arrived(nowMs)) {
          closedForRate = true;
          metrics.agentChannelsRateLimited.inc();
          socket.close(
            ChannelCloseCode.rateLimited,
            `more than ${budget.options.messagesPerSecondCeiling} messages per second`,
          );
          return;
        }
        let parsed: unknown;
        try {
          parsed = isBinary ? undefined : JSON.parse(messageText(data));
        } catch {
          parsed = undefined;
        }
        const type = (parsed as { type?: unknown } | null | undefined)?.type;
        const kind = type === "heartbeat" || type === "goodbye" ? "liveness" : "other";
        if (!budget.admit(kind, nowMs)) {
          dropped(kind, nowMs);
          return;
        }
        if (typeof type === "string" && backupMessageTypes.has(type)) {
          const backupMessage = agentBackupMessageSchema.safeParse(parsed);
          if (!backupMessage.success) {
            send(socket, {
              type: "error",
              message: `invalid message: ${describeIssues(backupMessage.error)}`,
            });
            return;
          }
          plane.components.backups?.agentMessage(nodeId, backupMessage.data);
          return;
        }
        if (typeof type === "string" && securityMessageTypes.has(type)) {
          const securityMessage = agentSecurityMessageSchema.safeParse(parsed);
          if (!securityMessage.success) {
            send(socket, {
              type: "error",
              message: `invalid message: ${describeIssues(securityMessage.error)}`,
            });
            return;
          }
          metrics.agentSecurityReports.inc({ type: securityMessage.data.type });
          if (securityMessage.data.type === "firewall-denied")
            plane.components.firewall?.agentReported(nodeId, securityMessage.data);
          else plane.components.peers?.agentReported(nodeId, securityMessage.data);
          return;
        }
        if (typeof type === "string" && serviceMessageTypes.has(type)) {
          const serviceMessage = agentServiceMessageSchema.safeParse(parsed);
          if (!serviceMessage.success) {
            send(socket, {
              type: "error",
              message: `invalid message: ${describeIssues(serviceMessage.error)}`,
            });
            return;
          }
          try {
            services.agentMessage(nodeId, serviceMessage.data);
          } catch (error) {
            logger.error({ node: nodeId, err: error }, "agent service message handling failed");
          }
          return;
        }
        const message = agentMessageSchema.safeParse(parsed);
        if (!message.success) {
          send(socket, {
            type: "error",
            message: `invalid message: ${describeIssues(message.error)}`,
          });
          return;
        }
        try {
          switch (message.data.type) {
            case "heartbeat":
              plane.heartbeat(nodeId, incarnation, message.data.metrics, "channel");
              return;
            case "goodbye":
              saidGoodbye = true;
              plane.goodbye(nodeId);
              send(socket, { type: "goodbye-acknowledged" });
              socket.close(ChannelCloseCode.goodbye, "goodbye");
              return;
          }
        } catch (error) {
          if (error instanceof HttpError) {
            send(socket, { type: "error", message: error.message });
            socket.close(closeCodeFor(error), error.code);
            return;
          }
          // A bug must not take the server down with it: log it and drop this connection.
          logger.error({ node: nodeId, err: error }, "agent message handling failed");
          socket.close(ChannelCloseCode.internalError, "internal error");
        }
      });

      socket.on("close", () => {
        releaseSession();
        metrics.agentConnections.dec();
        links.detach(nodeId, sender);
        if (channels.get(nodeId) !== socket) return; // replaced by a newer connection
        channels.delete(nodeId);
        services.agentDisconnected(nodeId);
        if (saidGoodbye || !detection.has(nodeId)) return;
        if (closedForRate) {
          // It was sending a moment ago: alive, if misbehaving; not a lost connection.
          logger.warn({ node: nodeId }, "agent channel closed for sending too much");
          detection.channelRateLimited(nodeId);
          return;
        }
        logger.info({ node: nodeId }, "agent connection lost");
        detection.connectionLost(nodeId);
      });
      socket.on("error", (error) =>
        logger.warn({ node: nodeId, err: error }, "agent connection error"),
      );
    },
  );
}
