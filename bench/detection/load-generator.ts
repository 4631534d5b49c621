// A load generator that speaks the agents' real protocol: it registers N nodes over HTTP,
// opens one WebSocket channel per node and sends a heartbeat with realistic metrics from each
// at the given interval, spread evenly over the interval. Prints one JSON summary line.
//
//   npx tsx bench/detection/load-generator.ts --server URL --agents 10000 --interval-ms 1000 --duration-s 90

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import type { NodeMetrics } from "../../src/api/contract.ts";

const { values } = parseArgs({
  options: {
    server: { type: "string" },
    agents: { type: "string", default: "1000" },
    "interval-ms": { type: "string", default: "1000" },
    "duration-s": { type: "string", default: "60" },
    prefix: { type: "string", default: "load" },
  },
});
const serverUrl = values.server ?? "";
const agentCount = Number(values.agents);
const intervalMs = Number(values["interval-ms"]);
const durationMs = Number(values["duration-s"]) * 1_000;
/** Registrations and connections opened at once while ramping up. */
const rampConcurrency = 64;
/** The sender wakes this often and sends the heartbeats that fell due. */
const sendTickMs = 10;

const metrics: NodeMetrics = {
  measuredAtMs: 0,
  cpu: { fraction: 0.23, cores: 4 },
  memory: { fraction: 0.41, usedBytes: 3_400_000_000, totalBytes: 8_200_000_000 },
  storage: { fraction: 0.37, usedBytes: 95_000_000_000, totalBytes: 256_000_000_000 },
  network: { receiveBytesPerSecond: 120_000, transmitBytesPerSecond: 45_000 },
};

interface SimulatedAgent {
  nodeId: string;
  socket: WebSocket | undefined;
  sequence: number;
}

const agents: SimulatedAgent[] = Array.from({ length: agentCount }, (_, index) => ({
  nodeId: `${values.prefix}-${String(index).padStart(5, "0")}`,
  socket: undefined,
  sequence: 0,
}));

async function connect(agent: SimulatedAgent): Promise<void> {
  const response = await fetch(new URL("/v1/nodes/register", serverUrl), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ nodeId: agent.nodeId, incarnation: 1 }),
  });
  if (!response.ok)
    throw new Error(`register ${agent.nodeId}: HTTP ${response.status} ${await response.text()}`);
  const url = new URL("/v1/agents/connect", serverUrl);
  url.protocol = "ws:";
  url.search = `nodeId=${agent.nodeId}&incarnation=1`;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("message", () => resolve());
    socket.once("error", reject);
    socket.once("close", (code) =>
      reject(new Error(`channel of ${agent.nodeId} closed with ${code}`)),
    );
  });
  agent.socket = socket;
}

let sent = 0;
let closed = 0;
let nextIndex = 0;
const senderStartedAtMs = Date.now();
// Heartbeats start with the ramp: a node registered early must not go silent while the
// others connect. Agent i is due at (i / N) of every interval; unconnected ones are skipped.
const sender = setInterval(() => {
  const dueCount = Math.floor(((Date.now() - senderStartedAtMs) / intervalMs) * agentCount) + 1;
  for (; nextIndex < dueCount; nextIndex += 1) {
    const agent = agents[nextIndex % agentCount];
    if (agent?.socket?.readyState !== WebSocket.OPEN) continue;
    agent.sequence += 1;
    agent.socket.send(
      JSON.stringify({
        type: "heartbeat",
        sequence: agent.sequence,
        metrics: { ...metrics, measuredAtMs: Date.now() },
      }),
    );
    sent += 1;
  }
}, sendTickMs);

const rampStartedAtMs = Date.now();
for (let start = 0; start < agents.length; start += rampConcurrency) {
  await Promise.all(agents.slice(start, start + rampConcurrency).map(connect));
  if ((start / rampConcurrency) % 20 === 0) {
    process.stderr.write(
      `[load-generator] ${start + rampConcurrency} of ${agentCount} connected\n`,
    );
  }
}
const rampMs = Date.now() - rampStartedAtMs;
for (const agent of agents) agent.socket?.on("close", () => (closed += 1));
const sentBeforeSteadyState = sent;
await new Promise((resolve) => setTimeout(resolve, durationMs));
clearInterval(sender);

process.stdout.write(
  `${JSON.stringify({ agents: agentCount, intervalMs, durationMs, rampMs, heartbeatsSent: sent - sentBeforeSteadyState, channelsClosed: closed })}\n`,
);
for (const agent of agents) agent.socket?.terminate();
process.exit(0);
