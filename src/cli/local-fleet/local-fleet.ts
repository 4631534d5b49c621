// A whole fleet on this machine: one server and one agent process per node of a spec, on
// loopback with free ports, each in its own process group.

import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { NodeView } from "../../api/contract.ts";
import type { FleetSpec } from "../../core/spec/fleet-spec-schema.ts";
import { ApiClient, resolveServerAccess } from "../api-client.ts";
import {
  readFleetFile,
  removeFleetFile,
  writeFleetFile,
  type FleetFile,
  type FleetNodeEntry,
} from "./fleet-file.ts";
import {
  isAlive,
  isEdgewardProcess,
  LocalProcessError,
  startEdgewardProcess,
  stopGroup,
} from "./processes.ts";

/** How long a process may take to start listening. */
export const processStartTimeoutMs = 30_000;
/** Agent processes one machine is asked to run; larger fleets belong in `edgeward sim`. */
export const localFleetNodesMax = 64;
/** How long a stopping process may take before it is killed. */
export const processStopGraceMs = 10_000;

export interface UpOptions {
  spec: FleetSpec;
  specPath: string;
  dir: string;
  healthyTimeoutMs: number;
  onProgress: (message: string) => void;
}

function agentArgs(dir: string, nodeId: string, serverUrl: string): string[] {
  return [
    "agent",
    "--node",
    nodeId,
    "--server",
    serverUrl,
    "--data-dir",
    join(dir, "nodes", nodeId),
    "--listen",
    "127.0.0.1:0",
  ];
}

function agentLogPath(dir: string, nodeId: string): string {
  return join(dir, "logs", `${nodeId}.log`);
}

/** The running fleet in `dir` whose server still lives, if any. */
export function runningFleet(dir: string): FleetFile | undefined {
  const fleet = readFleetFile(dir);
  if (fleet === undefined) return undefined;
  return isAlive(fleet.server.pid) && isEdgewardProcess(fleet.server.pid) ? fleet : undefined;
}

export async function upFleet(options: UpOptions): Promise<FleetFile> {
  const { dir, spec, onProgress } = options;
  if (spec.nodes.length > localFleetNodesMax) {
    throw new LocalProcessError(
      `the spec lists ${spec.nodes.length} nodes; a local fleet runs at most ${localFleetNodesMax} agent processes. Use \`edgeward sim\` for larger fleets`,
    );
  }
  const existing = runningFleet(dir);
  if (existing !== undefined) {
    throw new LocalProcessError(
      `a fleet is already running in ${dir}/ (server pid ${existing.server.pid}, ${existing.server.url}); run \`edgeward down --dir ${dir}\` first`,
    );
  }
  mkdirSync(join(dir, "logs"), { recursive: true });
  const serverDir = join(dir, "server");
  mkdirSync(serverDir, { recursive: true });
  onProgress(`starting server (logs: ${join(dir, "logs", "server.log")})`);
  const server = await startEdgewardProcess(
    [
      "server",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--data-dir",
      serverDir,
      "--spec",
      resolve(options.specPath),
    ],
    join(dir, "logs", "server.log"),
    serverDir,
    processStartTimeoutMs,
  );
  const fleet: FleetFile = {
    server,
    nodes: [],
    spec: resolve(options.specPath),
    startedAtMs: Date.now(),
  };
  writeFleetFile(dir, fleet);
  try {
    // The server wrote its admin credential and CA at start; each agent enrols with a join token.
    const client = fleetClient(dir, server.url);
    onProgress(`enrolling and starting ${spec.nodes.length} agents`);
    fleet.nodes = await Promise.all(
      spec.nodes.map((node) => startAgentProcess(dir, node.id, client)),
    );
    writeFleetFile(dir, fleet);
    onProgress("waiting until every node is HEALTHY");
    await waitForStatus(
      client,
      spec.nodes.map((node) => node.id),
      "HEALTHY",
      options.healthyTimeoutMs,
    );
  } catch (error) {
    await downFleet(dir);
    throw error;
  }
  return fleet;
}

/** An API client of the local fleet in `dir`: its admin credential, trusting its CA. */
export function fleetClient(dir: string, serverUrl: string): ApiClient {
  return new ApiClient(serverUrl, resolveServerAccess(dir));
}

async function startAgentProcess(
  dir: string,
  nodeId: string,
  client: ApiClient,
): Promise<FleetNodeEntry> {
  const nodeDir = join(dir, "nodes", nodeId);
  mkdirSync(nodeDir, { recursive: true });
  // A fresh join token each start; an agent that still holds a valid credential ignores it.
  const joinToken = await client.createJoinToken({ nodeId });
  const started = await startEdgewardProcess(
    agentArgs(dir, nodeId, client.baseUrl),
    agentLogPath(dir, nodeId),
    nodeDir,
    processStartTimeoutMs,
    { EDGEWARD_JOIN_TOKEN: joinToken.token },
  );
  return { id: nodeId, ...started };
}

/** Starts (or restarts) one node's agent of the fleet in `dir`. */
export async function startNode(dir: string, nodeId: string): Promise<FleetNodeEntry> {
  const fleet = runningFleet(dir);
  if (fleet === undefined)
    throw new LocalProcessError(
      `no running fleet in ${dir}/; start one with \`edgeward up <spec.yaml>\``,
    );
  const index = fleet.nodes.findIndex((node) => node.id === nodeId);
  if (index === -1)
    throw new LocalProcessError(`node ${nodeId} is not part of the fleet in ${dir}/`);
  const current = fleet.nodes[index];
  if (current !== undefined && isAlive(current.pid) && isEdgewardProcess(current.pid)) {
    throw new LocalProcessError(
      `node ${nodeId} is still running (pid ${current.pid}); stop it first with \`edgeward node stop ${nodeId}\``,
    );
  }
  const started = await startAgentProcess(dir, nodeId, fleetClient(dir, fleet.server.url));
  const latest = readFleetFile(dir) ?? fleet;
  latest.nodes = latest.nodes.map((node) => (node.id === nodeId ? started : node));
  writeFleetFile(dir, latest);
  return started;
}

/** Stops one node's agent: gracefully (goodbye, OFFLINE) or with SIGKILL to its group (a crash). */
export async function stopNode(dir: string, nodeId: string, crash: boolean): Promise<string> {
  const fleet = readFleetFile(dir);
  const node = fleet?.nodes.find((entry) => entry.id === nodeId);
  if (node === undefined)
    throw new LocalProcessError(`node ${nodeId} is not part of a fleet in ${dir}/`);
  if (!isAlive(node.pid) || !isEdgewardProcess(node.pid)) return "gone";
  if (crash) {
    process.kill(-node.pgid, "SIGKILL");
    return "killed";
  }
  return stopGroup(node.pgid, processStopGraceMs);
}

/** Stops every agent (gracefully, so they go OFFLINE), then the server, and forgets the fleet. */
export async function downFleet(dir: string): Promise<{ id: string; outcome: string }[]> {
  const fleet = readFleetFile(dir);
  if (fleet === undefined) return [];
  const outcomes = await Promise.all(
    fleet.nodes.map(async (node) => ({
      id: node.id,
      outcome: await stopGroup(node.pgid, processStopGraceMs),
    })),
  );
  outcomes.push({ id: "server", outcome: await stopGroup(fleet.server.pgid, processStopGraceMs) });
  removeFleetFile(dir);
  return outcomes;
}

/** Polls the server until every listed node has `status`, or throws after `timeoutMs`. */
export async function waitForStatus(
  client: ApiClient,
  nodeIds: string[],
  status: string,
  timeoutMs: number,
): Promise<NodeView[]> {
  const deadlineMs = Date.now() + timeoutMs;
  let nodes: NodeView[] = [];
  for (;;) {
    try {
      nodes = (await client.listNodes()).nodes;
    } catch {
      nodes = [];
    }
    const pending = nodeIds.filter((id) => nodes.find((node) => node.id === id)?.status !== status);
    if (pending.length === 0) return nodes;
    if (Date.now() > deadlineMs) {
      throw new LocalProcessError(
        `not ${status} after ${timeoutMs} ms: ${pending.join(", ")}; see the logs in the fleet dir`,
      );
    }
    await new Promise((resolvePoll) => setTimeout(resolvePoll, 50));
  }
}
