// Flood-induced flapping (issue 13): a real server and a real agent process on loopback, and a
// flood of unsigned peer requests to the agent's listener — at a sustained rate, and as one
// burst of concurrent connections. What must not happen: the flooded node changes status, its
// channel is closed, its heartbeats stall, its probe stops answering. Measured per phase:
// status changes of the node (target 0), failovers, channel closes, the longest heartbeat age
// the server saw, the agent's /healthz latency (the server's probe target), how many refusal
// reports reached the server and what they summed to, and the agent's CPU and RSS.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { FleetEvent, NodeView } from "../../src/api/contract.ts";
import { detectorOptionsFor } from "../../src/core/membership/detector-options.ts";
import { BenchServer, benchSecuritySpec, percentile } from "./bench-server.ts";
import type { FloodAnswers } from "./flood-client.ts";

export type FloodPhase =
  | { name: string; kind: "rate"; requestsPerSecond: number; seconds: number }
  | { name: string; kind: "burst"; concurrent: number };

export interface FlappingOptions {
  phases: readonly FloodPhase[];
  /** Quiet time after each phase before it is counted: late effects (a flap) show up here. */
  settleSeconds: number;
}

export interface LatencySummary {
  count: number;
  /** Probes without an answer within `probeTimeoutMs` (the server's `lan` probe timeout). */
  timedOut: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface FlappingRow {
  phase: string;
  /** Flood requests sent and how they were answered (by status, or error code: ECONNRESET is shed at accept). */
  requests: number;
  answers: FloodAnswers;
  floodSeconds: number;
  /** node.status events of the flooded node during the phase and its settle time. */
  statusChanges: number;
  transitions: string[];
  /** service.failover events during the phase. */
  failovers: number;
  /** Channel closes the agent logged, by close code. */
  channelCloses: Record<string, number>;
  /** The longest heartbeat age the server reported for the node (polled every 50 ms). */
  heartbeatAgeMsMax: number;
  /** GET /healthz on the agent every 100 ms during the flood, each on a new connection. */
  probe: LatencySummary;
  /** Refusal reports that reached the server (channel messages), and the refusals they count. */
  reportsReceived: number | null;
  refusalsReported: number | null;
  /** Refusals the agent logged one line each (before aggregation) or in summary lines. */
  agentLogLines: number;
  agentCpuPercent: number;
  /** The agent's resident memory before the phase, and the most seen during it. */
  agentRssMbBefore: number;
  agentRssMbMax: number;
}

export interface FlappingResult {
  detectionPreset: string;
  heartbeatIntervalMs: number;
  probeTimeoutMs: number;
  rows: FlappingRow[];
}

const nodeId = "flood-1";
const cli = join(import.meta.dirname, "..", "..", "bin", "edgeward.js");
const floodProcess = join(import.meta.dirname, "flood-process.ts");
const clockTicksPerSecond = 100;
const healthzIntervalMs = 100;
const nodePollIntervalMs = 50;
const megabytes = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The agent as `edgeward agent` runs it (the built CLI), its log lines counted as they come. */
class AgentProcess {
  readonly child: ChildProcess;
  readonly closes: Record<string, number> = {};
  lines = 0;
  #partial = "";

  constructor(server: BenchServer, joinToken: string) {
    const dataDir = join(server.dataDir, "agent");
    mkdirSync(dataDir, { recursive: true });
    this.child = spawn(
      process.execPath,
      [cli, "agent", "--node", nodeId, "--server", server.url, "--data-dir", dataDir],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, EDGEWARD_JOIN_TOKEN: joinToken },
      },
    );
    const stopChild = () => this.child.kill("SIGKILL");
    process.once("exit", stopChild);
    this.child.once("exit", () => process.removeListener("exit", stopChild));
    this.child.stdout?.on("data", (chunk: Buffer) => {
      const text = this.#partial + chunk.toString();
      const lines = text.split("\n");
      this.#partial = lines.pop() ?? "";
      for (const line of lines) {
        this.lines += 1;
        if (!line.includes("channel closed")) continue;
        const code = (JSON.parse(line) as { code?: number }).code?.toString() ?? "?";
        this.closes[code] = (this.closes[code] ?? 0) + 1;
      }
    });
  }

  usage(): { cpuSeconds: number; rssBytes: number } {
    const pid = this.child.pid ?? 0;
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return {
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond,
      rssBytes: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024,
    };
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/** GET /healthz on a new connection, as the server probes; its latency or undefined. */
function probeOnce(agentUrl: string, timeoutMs: number): Promise<number | undefined> {
  const started = performance.now();
  return new Promise((resolve) => {
    const outgoing = httpRequest(`${agentUrl}/healthz`, { method: "GET", agent: false });
    const timer = setTimeout(() => {
      outgoing.destroy();
      resolve(undefined);
    }, timeoutMs);
    outgoing.on("response", (response) => {
      response.resume();
      response.on("end", () => {
        clearTimeout(timer);
        resolve(response.statusCode === 200 ? performance.now() - started : undefined);
      });
    });
    outgoing.on("error", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    outgoing.end();
  });
}

/**
 * Runs `phase` in a flood process; `onStarted` is called as its flood begins (the process has
 * loaded), and the answers come back when it is over.
 */
async function runFlood(
  phase: FloodPhase,
  agentUrl: string,
  onStarted: () => void,
): Promise<FloodAnswers> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", floodProcess, agentUrl, JSON.stringify(phase)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const stopChild = () => child.kill("SIGKILL");
  process.once("exit", stopChild);
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    const before = output;
    output += chunk.toString();
    if (!before.includes("started\n") && output.includes("started\n")) onStarted();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  process.removeListener("exit", stopChild);
  const answers = output.split("\n").find((line) => line.startsWith("{"));
  if (code !== 0 || answers === undefined)
    throw new Error(`the flood process exited with ${code}: ${output.slice(0, 500)}`);
  return JSON.parse(answers) as FloodAnswers;
}

function summarise(latenciesMs: number[], timedOut: number): LatencySummary {
  const sorted = [...latenciesMs].sort((left, right) => left - right);
  const round = (value: number) => Math.round(value * 10) / 10;
  return {
    count: sorted.length + timedOut,
    timedOut,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
  };
}

/** A counter's value summed over its series in a Prometheus text page; null if absent. */
function counterSum(page: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of page.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export async function measureFlapping(options: FlappingOptions): Promise<FlappingResult> {
  const detection = detectorOptionsFor("lan");
  const server = await BenchServer.start({ tls: true, enforce: true, security: benchSecuritySpec });
  const startedAtMs = Date.now();
  const admin = { authorization: `Bearer ${server.adminToken}` };
  const getJson = async <T>(path: string): Promise<T> => {
    const response = await server.request({ method: "GET", path, headers: admin });
    if (response.statusCode !== 200)
      throw new Error(`GET ${path}: ${response.statusCode} ${response.body}`);
    return JSON.parse(response.body) as T;
  };
  const metrics = async () => {
    const page = (await server.request({ method: "GET", path: "/metrics", headers: admin })).body;
    return {
      reports: counterSum(page, "edgeward_agent_security_reports_total"),
      refusals: counterSum(page, "edgeward_peer_requests_refused_total"),
    };
  };
  const joined = await server.request({
    method: "POST",
    path: "/v1/tokens/join",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ nodeId }),
  });
  if (joined.statusCode !== 200) throw new Error(`join token: ${joined.body}`);
  const agent = new AgentProcess(server, (JSON.parse(joined.body) as { token: string }).token);
  const rows: FlappingRow[] = [];
  try {
    let node: NodeView | undefined;
    const deadlineMs = Date.now() + 60_000;
    while (node?.status !== "HEALTHY" || node.agentUrl === null) {
      if (Date.now() > deadlineMs) throw new Error(`${nodeId} did not become HEALTHY`);
      await wait(100);
      const response = await server.request({
        method: "GET",
        path: `/v1/nodes/${nodeId}`,
        headers: admin,
      });
      node = response.statusCode === 200 ? (JSON.parse(response.body) as NodeView) : undefined;
    }
    const agentUrl = node.agentUrl;
    // Nobody is convicted during the server's startup grace: flood only once it is over, and
    // after the detector has a few seconds of heartbeat history.
    await wait(Math.max(0, startedAtMs + detection.startupGraceMs + 3_000 - Date.now()));

    for (const phase of options.phases) {
      process.stderr.write(`[flapping] ${phase.name}\n`);
      let afterId = 0;
      for (;;) {
        const page = await getJson<{ events: FleetEvent[]; lastId: number }>(
          `/v1/events?limit=1000&afterId=${afterId}`,
        );
        if (page.events.length === 0) break;
        afterId = page.lastId;
      }
      const metricsBefore = await metrics();
      const closesBefore = { ...agent.closes };
      const linesBefore = agent.lines;
      let usageBefore = agent.usage();
      let started = performance.now();
      let rssMax = usageBefore.rssBytes;
      let heartbeatAgeMsMax = 0;
      const probeLatenciesMs: number[] = [];
      let probesTimedOut = 0;
      let flooding = true;
      const watchers = [
        (async () => {
          while (flooding) {
            const response = await server.request({
              method: "GET",
              path: `/v1/nodes/${nodeId}`,
              headers: admin,
            });
            if (response.statusCode === 200)
              heartbeatAgeMsMax = Math.max(
                heartbeatAgeMsMax,
                (JSON.parse(response.body) as NodeView).heartbeatAgeMs ?? 0,
              );
            rssMax = Math.max(rssMax, agent.usage().rssBytes);
            await wait(nodePollIntervalMs);
          }
        })(),
        (async () => {
          while (flooding) {
            const latencyMs = await probeOnce(agentUrl, detection.probeTimeoutMs);
            if (latencyMs === undefined) probesTimedOut += 1;
            else probeLatenciesMs.push(latencyMs);
            await wait(healthzIntervalMs);
          }
        })(),
      ];
      const answers = await runFlood(phase, agentUrl, () => {
        usageBefore = agent.usage();
        started = performance.now();
      });
      const requests = Object.values(answers).reduce((sum, count) => sum + count, 0);
      const floodSeconds = (performance.now() - started) / 1_000;
      const usageAfterFlood = agent.usage();
      await wait(options.settleSeconds * 1_000);
      flooding = false;
      await Promise.all(watchers);
      const events: FleetEvent[] = [];
      for (;;) {
        const page = await getJson<{ events: FleetEvent[]; lastId: number }>(
          `/v1/events?limit=1000&afterId=${afterId}`,
        );
        events.push(...page.events);
        if (page.events.length === 0) break;
        afterId = page.lastId;
      }
      const metricsAfter = await metrics();
      const transitions = events.flatMap((event) =>
        event.type === "node.status" && event.node === nodeId
          ? [`${event.from ?? "-"}->${event.to} (${event.reason})`]
          : [],
      );
      const channelCloses: Record<string, number> = {};
      for (const [code, closes] of Object.entries(agent.closes)) {
        const delta = closes - (closesBefore[code] ?? 0);
        if (delta > 0) channelCloses[code] = delta;
      }
      const delta = (after: number | null, before: number | null) =>
        after === null ? null : after - (before ?? 0);
      rows.push({
        phase: phase.name,
        requests,
        answers,
        floodSeconds: Math.round(floodSeconds * 10) / 10,
        statusChanges: transitions.length,
        transitions,
        failovers: events.filter((event) => event.type === "service.failover").length,
        channelCloses,
        heartbeatAgeMsMax: Math.round(heartbeatAgeMsMax),
        probe: summarise(probeLatenciesMs, probesTimedOut),
        reportsReceived: delta(metricsAfter.reports, metricsBefore.reports),
        refusalsReported: delta(metricsAfter.refusals, metricsBefore.refusals),
        agentLogLines: agent.lines - linesBefore,
        agentCpuPercent: Math.round(
          ((usageAfterFlood.cpuSeconds - usageBefore.cpuSeconds) / floodSeconds) * 100,
        ),
        agentRssMbBefore: megabytes(usageBefore.rssBytes),
        agentRssMbMax: megabytes(rssMax),
      });
    }
  } finally {
    await agent.stop();
    await server.stop();
  }
  return {
    detectionPreset: detection.presetName,
    heartbeatIntervalMs: detection.heartbeatIntervalMs,
    probeTimeoutMs: detection.probeTimeoutMs,
    rows,
  };
}
