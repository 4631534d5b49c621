// Cost of TLS and of the Bearer-token check per request: GET /v1/nodes over keep-alive
// connections against four real servers that differ only in their security settings.

import { performance } from "node:perf_hooks";
import { BenchServer, benchSecuritySpec, percentile } from "./bench-server.ts";

export interface OverheadOptions {
  requests: number;
  warmupRequests: number;
  concurrency: number;
}

export interface LatencySummary {
  requests: number;
  failed: number;
  requestsPerSecond: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU per request (user + system, from /proc), in microseconds. */
  serverCpuUsPerRequest: number;
}

export interface OverheadRow {
  setup: string;
  tls: boolean;
  tokenCheck: boolean;
  sequential: LatencySummary;
  concurrent: LatencySummary & { concurrency: number };
}

const setups = [
  { setup: "HTTP, open access", tls: false, enforce: false },
  { setup: "HTTP + Bearer token", tls: false, enforce: true },
  { setup: "HTTPS, open access", tls: true, enforce: false },
  { setup: "HTTPS + Bearer token (default)", tls: true, enforce: true },
] as const;

async function measure(
  server: BenchServer,
  headers: Record<string, string>,
  requests: number,
  concurrency: number,
): Promise<LatencySummary> {
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const cpuBefore = server.cpuSeconds();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next += 1;
        const response = await server.request({ method: "GET", path: "/v1/nodes", headers });
        if (response.statusCode === 200) latencies.push(response.latencyMs);
        else failed += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  const cpuSeconds = server.cpuSeconds() - cpuBefore;
  latencies.sort((a, b) => a - b);
  return {
    requests,
    failed,
    requestsPerSecond: Math.round(requests / seconds),
    meanMs: latencies.reduce((sum, value) => sum + value, 0) / Math.max(1, latencies.length),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    serverCpuUsPerRequest: Math.round((cpuSeconds * 1e6) / requests),
  };
}

export async function measureOverhead(options: OverheadOptions): Promise<OverheadRow[]> {
  const rows: OverheadRow[] = [];
  for (const setup of setups) {
    const server = await BenchServer.start(
      { tls: setup.tls, enforce: setup.enforce, security: benchSecuritySpec },
      options.concurrency,
    );
    try {
      // Every setup gets the same header, so the only difference is whether it is checked.
      const headers = { authorization: `Bearer ${server.adminToken}` };
      await measure(server, headers, options.warmupRequests, 1);
      const sequential = await measure(server, headers, options.requests, 1);
      await measure(server, headers, options.warmupRequests, options.concurrency);
      const concurrent = await measure(server, headers, options.requests, options.concurrency);
      rows.push({
        setup: setup.setup,
        tls: setup.tls,
        tokenCheck: setup.enforce,
        sequential,
        concurrent: { ...concurrent, concurrency: options.concurrency },
      });
      process.stderr.write(
        `overhead: ${setup.setup}: p50 ${sequential.p50Ms.toFixed(3)} ms, p99 ${sequential.p99Ms.toFixed(3)} ms sequential; ${concurrent.requestsPerSecond} req/s at ${options.concurrency}\n`,
      );
    } finally {
      await server.stop();
    }
  }
  return rows;
}
