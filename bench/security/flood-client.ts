// A flood of unsigned peer requests to an agent, for the flapping benchmark and the e2e flood
// test: each request on a new connection, from another loopback address than the server's
// (an attacker is another host), to a route that needs a signed peer request.

import { request as httpRequest } from "node:http";
import { performance } from "node:perf_hooks";

/** Where the flood comes from: loopback, but not the server's address (127.0.0.1). */
export const floodSourceAddress = "127.0.0.2";
/** A signed route of the agent: an unsigned request gets 401. */
const floodPath = "/v1/services/flood/data";
const floodRequestTimeoutMs = 30_000;
/** Flood connections held open at once during a sustained flood, at most. */
const sustainedConnectionsMax = 4_096;

/** Answers by status code, or by error code when none came (ECONNRESET: shed at accept). */
export type FloodAnswers = Record<string, number>;

function floodRequest(agentUrl: string): Promise<string> {
  return new Promise((resolve) => {
    const outgoing = httpRequest(`${agentUrl}${floodPath}`, {
      method: "GET",
      agent: false,
      localAddress: floodSourceAddress,
      timeout: floodRequestTimeoutMs,
    });
    outgoing.on("response", (response) => {
      response.resume();
      response.on("end", () => resolve(String(response.statusCode ?? 0)));
      response.on("error", () => resolve(String(response.statusCode ?? 0)));
    });
    outgoing.on("timeout", () => outgoing.destroy(new Error("timeout")));
    outgoing.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "none"));
    outgoing.end();
  });
}

function counted(statuses: readonly string[]): FloodAnswers {
  const answers: FloodAnswers = {};
  for (const status of statuses) answers[status] = (answers[status] ?? 0) + 1;
  return answers;
}

/** `concurrent` requests opened at once; resolves when every one is answered or failed. */
export async function floodBurst(agentUrl: string, concurrent: number): Promise<FloodAnswers> {
  return counted(
    await Promise.all(Array.from({ length: concurrent }, () => floodRequest(agentUrl))),
  );
}

/** `requestsPerSecond` for `seconds`, paced against the start so slow answers do not slow it. */
export async function floodSustained(
  agentUrl: string,
  requestsPerSecond: number,
  seconds: number,
): Promise<FloodAnswers> {
  const total = Math.round(requestsPerSecond * seconds);
  const started = performance.now();
  const statuses: string[] = [];
  const pending = new Set<Promise<void>>();
  for (let sent = 0; sent < total; sent += 1) {
    const dueMs = (sent * 1_000) / requestsPerSecond - (performance.now() - started);
    if (dueMs > 1) await new Promise((resolve) => setTimeout(resolve, dueMs));
    if (pending.size >= sustainedConnectionsMax) await Promise.race(pending);
    const request = floodRequest(agentUrl).then((status) => {
      statuses.push(status);
      pending.delete(request);
    });
    pending.add(request);
  }
  await Promise.all(pending);
  return counted(statuses);
}
