// The agent's own listener: the target of the server's probes. It stays tiny on purpose; the
// cheaper it is, the more a probe's answer says about the process rather than its load.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

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

export function createAgentHttpServer(
  identity: AgentIdentity,
  handlers: readonly AgentRequestHandler[] = [],
  guard?: AgentListenerGuard,
): Server {
  const body = JSON.stringify({ status: "ok", ...identity });
  const server = createServer((request, response) => {
    const isProbe = request.method === "GET" && request.url === "/healthz";
    if (!isProbe) for (const handle of handlers) if (handle(request, response)) return;
    const check = guard?.checkRequest(request, undefined) ?? { ok: true };
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
  // Runs in the same tick as node:http's own connection handler, before any read completes:
  // a denied client's bytes are never parsed.
  if (guard !== undefined)
    server.on("connection", (socket: Socket) => guard.admitApiConnection(socket));
  return server;
}
