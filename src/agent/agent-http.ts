// The agent's own listener: the target of the server's probes. It stays tiny on purpose; the
// cheaper it is, the more a probe's answer says about the process rather than its load.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface AgentIdentity {
  nodeId: string;
  incarnation: number;
}

/** Answers a request and returns true, or returns false to leave it to the next handler. */
export type AgentRequestHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

export function createAgentHttpServer(
  identity: AgentIdentity,
  handlers: readonly AgentRequestHandler[] = [],
): Server {
  const body = JSON.stringify({ status: "ok", ...identity });
  return createServer((request, response) => {
    if (request.method === "GET" && request.url === "/healthz") {
      response.writeHead(200, { "content-type": "application/json" }).end(body);
      return;
    }
    for (const handle of handlers) if (handle(request, response)) return;
    response.writeHead(404, { "content-type": "application/json" }).end(
      JSON.stringify({
        error: "not_found",
        message: `no route ${request.method ?? ""} ${request.url ?? ""}`,
        statusCode: 404,
      }),
    );
  });
}
