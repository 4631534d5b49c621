// The agent's own listener: the target of the server's probes. It stays tiny on purpose; the
// cheaper it is, the more a probe's answer says about the process rather than its load. Under
// a flood it sheds connections as they are accepted and never reads a body it refused, so the
// probe keeps its answer (ADR 0010).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { closeIfBodyUnread } from "../runtime/unread-request-body.ts";
import type { ConnectionLimits } from "./connection-limits.ts";

export interface AgentIdentity {
  nodeId: string;
  incarnation: number;
}

/** Answers a request and returns true, or returns false to leave it to the next handler. */
export type AgentRequestHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

/** The firewall's hooks on this listener (ADR 0006, "Firewall"). */
export interface AgentListenerGuard {
  /** Called as a connection is accepted; false: the guard destroyed it, nothing is read. */
  admitApiConnection(socket: Socket): boolean;
  /**
   * Decides an unsigned request (the probe route, unknown routes); signed routes decide in
   * their own authorize hooks, once the signature is verified.
   */
  checkRequest(
    request: IncomingMessage,
    peerNodeId: undefined,
  ): { ok: true } | { ok: false; statusCode: 403; message: string };
}

/**
 * Connections the listener holds open at once, from all clients; more are closed as they are
 * accepted (ADR 0010). Far above what a fleet's peers and probes need (8 each from 128 peers);
 * a flood from one host is held much lower, by `ConnectionLimits`.
 */
const agentConnectionsMax = 1_024;

export function createAgentHttpServer(
  identity: AgentIdentity,
  handlers: readonly AgentRequestHandler[] = [],
  guard?: AgentListenerGuard,
  connections?: ConnectionLimits,
): Server {
  const body = JSON.stringify({ status: "ok", ...identity });
  const server = createServer((request, response) => {
    const isProbe = request.method === "GET" && request.url === "/healthz";
    if (!isProbe) for (const handle of handlers) if (handle(request, response)) return;
    const check = guard?.checkRequest(request, undefined) ?? { ok: true };
    // No route here reads a body: whatever a client sends with its request is never read.
    closeIfBodyUnread(response);
    if (!check.ok) {
      response
        .writeHead(check.statusCode, { "content-type": "application/json" })
        .end(JSON.stringify({ error: "forbidden", message: check.message, statusCode: 403 }));
    } else if (isProbe) {
      response.writeHead(200, { "content-type": "application/json" }).end(body);
    } else {
      response.writeHead(404, { "content-type": "application/json" }).end(
        JSON.stringify({
          error: "not_found",
          message: `no route ${request.method ?? ""} ${request.url ?? ""}`,
          statusCode: 404,
        }),
      );
    }
  });
  server.maxConnections = agentConnectionsMax;
  // Runs in the same tick as node:http's own connection handler, before any read completes:
  // a denied or shed client's bytes are never parsed.
  server.on("connection", (socket: Socket) => {
    if (guard !== undefined && !guard.admitApiConnection(socket)) return;
    connections?.admit(socket);
  });
  return server;
}
