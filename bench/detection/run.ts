// Failure-detection benchmark (not a test). Real processes on loopback, nothing simulated.
//   (a) crash -> FAILED latency: kill -9 of a node's process group in a real local fleet,
//       and a silent hang (SIGSTOP: no FIN, no heartbeats) that only the detector can see;
//   (b) false convictions in N minutes with heartbeat loss and jitter injected in the agents;
//   (c) server CPU and RSS with 1,000 and 10,000 agents at 1 Hz from a real-protocol load
//       generator;
//   (d) an agent's idle RSS and CPU.
// Writes bench/results/detection.json.
//
//   npm run bench:detection -- [--parts crash,hang,loss,load,agent] [--kills 20]
//                              [--loss-minutes 10] [--agents 1000,10000] [--load-seconds 60]

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import type { FleetEvent, NodeListResponse } from "../../src/api/contract.ts";
import { ApiClient } from "../../src/cli/api-client.ts";
import { detectorOptionsFor } from "../../src/core/membership/detector-options.ts";
import type { FleetFile } from "../../src/cli/local-fleet/fleet-file.ts";
import { readEndpointFile } from "../../src/runtime/endpoint-file.ts";

const { values } = parseArgs({
  options: {
    parts: { type: "string", default: "crash,hang,loss,load,agent" },
    kills: { type: "string", default: "20" },
    "loss-minutes": { type: "string", default: "10" },
    "loss-fraction": { type: "string", default: "0.05" },
    "jitter-ms": { type: "string", default: "50" },
    agents: { type: "string", default: "1000,10000" },
    "load-seconds": { type: "string", default: "60" },
    "agent-seconds": { type: "string", default: "60" },
  },
});
const parts = new Set(values.parts.split(","));
const root = join(import.meta.dirname, "..", "..");
const cli = join(root, "bin", "edgeward.js");
const run = promisify(execFile);
const clockTicksPerSecond = 100;

const edgeward = (...args: string[]) =>
  run(process.execPath, [cli, ...args], { cwd: root, timeout: 120_000 });
const log = (message: string) => process.stderr.write(`[bench:detection] ${message}\n`);
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

function summary(samplesMs: number[]) {
  const sorted = [...samplesMs].sort((left, right) => left - right);
  const round = (value: number) => Math.round(value * 10) / 10;
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
    minMs: round(sorted[0] ?? Number.NaN),
    samplesMs: sorted.map(round),
  };
}

/** CPU seconds (user + system) and RSS of a process, from /proc. */
function processUsage(pid: number): { cpuSeconds: number; rssBytes: number; peakRssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kilobytes = (key: string) =>
    Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { cpuSeconds, rssBytes: kilobytes("VmRSS"), peakRssBytes: kilobytes("VmHWM") };
}

/** Events from the server's stream, collected while a part runs. */
function collectEvents(client: ApiClient): { events: FleetEvent[]; stop: () => void } {
  const events: FleetEvent[] = [];
  const controller = new AbortController();
  client.followEvents(0, (event) => events.push(event), controller.signal).catch(() => undefined);
  return { events, stop: () => controller.abort() };
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadlineMs = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await wait(5);
  }
}

/** (a) kill -9 or SIGSTOP a node's process group, time until the server says FAILED. */
async function measureConvictions(kind: "crash" | "hang", rounds: number) {
  const dir = mkdtempSync(join(tmpdir(), `edgeward-bench-${kind}-`));
  try {
    await edgeward("up", "examples/industrial-iot.yaml", "--dir", dir, "--detach");
    const fleetOf = () => JSON.parse(readFileSync(join(dir, "fleet.json"), "utf8")) as FleetFile;
    const client = new ApiClient(fleetOf().server.url);
    const stream = collectEvents(client);
    // The server convicts nobody for silence during its startup grace period; start after it.
    await wait(detectorOptionsFor("lan").startupGraceMs);
    const latenciesMs: number[] = [];
    const reasons: Record<string, number> = {};
    for (let round = 0; round < rounds; round += 1) {
      const fleet = fleetOf();
      const node = fleet.nodes[round % fleet.nodes.length];
      if (node === undefined) throw new Error("empty fleet");
      await wait(1_000 + Math.random() * 500); // let the detector's history settle, desynchronise from heartbeats
      const seenBefore = stream.events.length;
      const injectedAtMs = Date.now();
      process.kill(-node.pgid, kind === "crash" ? "SIGKILL" : "SIGSTOP");
      const failed = await waitFor(
        () =>
          stream.events
            .slice(seenBefore)
            .find(
              (event) =>
                event.type === "node.status" && event.node === node.id && event.to === "FAILED",
            ),
        30_000,
        `${node.id} FAILED`,
      );
      latenciesMs.push(failed.atMs - injectedAtMs);
      if (failed.type === "node.status") reasons[failed.reason] = (reasons[failed.reason] ?? 0) + 1;
      if (kind === "crash") await edgeward("node", "start", node.id, "--dir", dir);
      else process.kill(-node.pgid, "SIGCONT");
      const readmittedFrom = stream.events.length;
      await waitFor(
        () =>
          stream.events
            .slice(readmittedFrom)
            .find(
              (event) =>
                event.type === "node.status" && event.node === node.id && event.to === "HEALTHY",
            ),
        30_000,
        `${node.id} HEALTHY again`,
      );
      log(`${kind} ${round + 1}/${rounds}: ${node.id} FAILED after ${latenciesMs.at(-1)} ms`);
    }
    stream.stop();
    return { ...summary(latenciesMs), reasons };
  } finally {
    await edgeward("down", "--dir", dir).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface ServerProcess {
  child: ChildProcess;
  url: string;
  dir: string;
}

async function startServerProcess(preset: string): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), "edgeward-bench-server-"));
  const child = spawn(
    process.execPath,
    [
      cli,
      "server",
      "--port",
      "0",
      "--preset",
      preset,
      "--data-dir",
      dir,
      "--log-level",
      "warn",
      // The benchmark measures detection, not TLS or tokens; its agents do not enrol.
      "--insecure",
      "--open-access",
    ],
    {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const endpoint = await waitFor(
    () => {
      const found = readEndpointFile(dir);
      return found?.pid === child.pid ? found : undefined;
    },
    30_000,
    "the server to listen",
  );
  return { child, url: endpoint.url, dir };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await Promise.race([exited, wait(10_000)]);
  child.kill("SIGKILL");
}

/** Starts a real agent process of `server`, with its own data dir. */
function spawnAgent(server: ServerProcess, nodeId: string, extraArgs: string[]): ChildProcess {
  const dataDir = join(server.dir, nodeId);
  mkdirSync(dataDir, { recursive: true });
  return spawn(
    process.execPath,
    [
      cli,
      "agent",
      "--node",
      nodeId,
      "--server",
      server.url,
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
      ...extraArgs,
    ],
    { cwd: root, stdio: ["ignore", "ignore", "inherit"] },
  );
}

/** (b) N agents with injected heartbeat loss and jitter for a while: count false convictions. */
async function measureFalseConvictions(minutes: number, lossFraction: number, jitterMs: number) {
  const server = await startServerProcess("lan");
  const agents: ChildProcess[] = [];
  try {
    const client = new ApiClient(server.url);
    const stream = collectEvents(client);
    for (let index = 0; index < 5; index += 1) {
      agents.push(
        spawnAgent(server, `lossy-${index}`, [
          "--enable-fault-injection",
          "--fault-heartbeat-loss",
          String(lossFraction),
          "--fault-jitter-ms",
          String(jitterMs),
        ]),
      );
    }
    await waitFor(
      () =>
        stream.events.filter((event) => event.type === "node.status" && event.to === "HEALTHY")
          .length >= 5
          ? true
          : undefined,
      30_000,
      "5 agents",
    );
    log(
      `loss: 5 agents, ${lossFraction * 100} % heartbeat loss, ${jitterMs} ms jitter, for ${minutes} min`,
    );
    await wait(minutes * 60_000);
    const transitions = stream.events.filter((event) => event.type === "node.status");
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const heartbeats = Number(
      /edgeward_heartbeats_received_total\{transport="channel"\} (\d+)/.exec(metrics)?.[1] ?? 0,
    );
    stream.stop();
    return {
      agents: 5,
      minutes,
      heartbeatLossFraction: lossFraction,
      jitterMs,
      heartbeatsReceived: heartbeats,
      falseConvictions: transitions.filter((event) => event.to === "FAILED").length,
      suspicions: transitions.filter((event) => event.to === "DEGRADED").length,
    };
  } finally {
    for (const agent of agents) await stopProcess(agent);
    await stopProcess(server.child);
    rmSync(server.dir, { recursive: true, force: true });
  }
}

/** (c) server CPU and RSS under N real-protocol agents at 1 Hz (the wan preset). */
async function measureServerLoad(agentCount: number, seconds: number) {
  const server = await startServerProcess("wan");
  try {
    const warmupSeconds = 15;
    const generator = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(root, "bench/detection/load-generator.ts"),
        "--server",
        server.url,
        "--agents",
        String(agentCount),
        "--interval-ms",
        "1000",
        "--duration-s",
        String(seconds + warmupSeconds + 5),
      ],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    generator.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    const client = new ApiClient(server.url);
    // Wait until every simulated agent is registered and connected.
    for (;;) {
      const list: NodeListResponse = await client.listNodes();
      if (list.nodes.length >= agentCount) break;
      await wait(500);
    }
    log(`load: ${agentCount} agents connected; warming up for ${warmupSeconds} s`);
    await wait(warmupSeconds * 1_000);
    log(`load: measuring for ${seconds} s`);
    const before = processUsage(server.child.pid ?? 0);
    const startedAtMs = Date.now();
    await wait(seconds * 1_000);
    const after = processUsage(server.child.pid ?? 0);
    const elapsedSeconds = (Date.now() - startedAtMs) / 1_000;
    const list = await client.listNodes();
    const statuses: Record<string, number> = {};
    for (const node of list.nodes) statuses[node.status] = (statuses[node.status] ?? 0) + 1;
    await new Promise((resolve) => generator.once("exit", resolve));
    const generated = JSON.parse(output.trim().split("\n").at(-1) ?? "{}") as Record<
      string,
      number
    >;
    return {
      agents: agentCount,
      heartbeatIntervalMs: 1_000,
      measuredSeconds: Math.round(elapsedSeconds),
      serverCpuCores:
        Math.round(((after.cpuSeconds - before.cpuSeconds) / elapsedSeconds) * 1_000) / 1_000,
      serverRssMb: Math.round(after.rssBytes / 1_048_576),
      serverPeakRssMb: Math.round(after.peakRssBytes / 1_048_576),
      statusesAtEnd: statuses,
      generator: generated,
    };
  } finally {
    await stopProcess(server.child);
    rmSync(server.dir, { recursive: true, force: true });
  }
}

/** (d) one real agent, connected and heartbeating on the lan preset, otherwise idle. */
async function measureAgentIdle(seconds: number) {
  const server = await startServerProcess("lan");
  const agent = spawnAgent(server, "idle-1", []);
  try {
    await wait(10_000);
    const before = processUsage(agent.pid ?? 0);
    const startedAtMs = Date.now();
    await wait(seconds * 1_000);
    const after = processUsage(agent.pid ?? 0);
    const elapsedSeconds = (Date.now() - startedAtMs) / 1_000;
    return {
      preset: "lan",
      heartbeatIntervalMs: 200,
      measuredSeconds: Math.round(elapsedSeconds),
      cpuFractionOfCore:
        Math.round(((after.cpuSeconds - before.cpuSeconds) / elapsedSeconds) * 10_000) / 10_000,
      rssMb: Math.round((after.rssBytes / 1_048_576) * 10) / 10,
      peakRssMb: Math.round((after.peakRssBytes / 1_048_576) * 10) / 10,
    };
  } finally {
    await stopProcess(agent);
    await stopProcess(server.child);
    rmSync(server.dir, { recursive: true, force: true });
  }
}

const results: Record<string, unknown> = {
  benchmark: "detection",
  startedAt: new Date().toISOString(),
  machine: { cores: (await import("node:os")).cpus().length, node: process.version },
};
const kills = Number(values.kills);
if (parts.has("crash")) results["crashToFailed"] = await measureConvictions("crash", kills);
if (parts.has("hang")) results["hangToFailed"] = await measureConvictions("hang", kills);
if (parts.has("loss")) {
  results["falseConvictions"] = await measureFalseConvictions(
    Number(values["loss-minutes"]),
    Number(values["loss-fraction"]),
    Number(values["jitter-ms"]),
  );
}
if (parts.has("load")) {
  const loads = [];
  for (const count of values.agents.split(",").map(Number)) {
    log(`load: ${count} agents at 1 Hz`);
    loads.push(await measureServerLoad(count, Number(values["load-seconds"])));
  }
  results["serverLoad"] = loads;
}
if (parts.has("agent"))
  results["agentIdle"] = await measureAgentIdle(Number(values["agent-seconds"]));

const outputDir = join(root, "bench", "results");
mkdirSync(outputDir, { recursive: true });
const outputPath = join(
  outputDir,
  parts.size === 5 ? "detection.json" : `detection-${[...parts].join("-")}.json`,
);
writeFileSync(outputPath, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(
  `${JSON.stringify(results, (key, value: unknown) => (key === "samplesMs" ? undefined : value), 2)}\n`,
);
log(`wrote ${outputPath}`);
