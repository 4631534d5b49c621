// The agent's own state in its data dir (agent.json): which node it is and how many times it
// has started. The incarnation lets the server fence off a stale process after a restart.

import {
  mkdirSync,
  openSync,
  closeSync,
  fsyncSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { isNodeId } from "../api/node-id.ts";

export interface AgentState {
  formatVersion: 1;
  nodeId: string;
  incarnation: number;
}

/** Checks agent.json by hand: the agent keeps zod out of its memory. */
function parseAgentState(value: unknown): AgentState | string {
  if (typeof value !== "object" || value === null) return "not a JSON object";
  const { formatVersion, nodeId, incarnation, ...unknown } = value as Record<string, unknown>;
  if (formatVersion !== 1) return `unknown formatVersion ${String(formatVersion)}`;
  if (!isNodeId(nodeId)) return "nodeId is not a node id";
  if (typeof incarnation !== "number" || !Number.isSafeInteger(incarnation) || incarnation < 0) {
    return "incarnation is not a whole number >= 0";
  }
  const extra = Object.keys(unknown);
  if (extra.length > 0) return `unknown field ${extra[0] ?? ""}`;
  return { formatVersion, nodeId, incarnation };
}

export class AgentStateError extends Error {
  override readonly name = "AgentStateError";
}

/** Reads agent.json, bumps the incarnation and writes it back durably before returning. */
export function beginIncarnation(dataDir: string, nodeId: string): AgentState {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "agent.json");
  let previous: AgentState | undefined;
  try {
    const parsed = parseAgentState(JSON.parse(readFileSync(path, "utf8")));
    if (typeof parsed === "string") {
      throw new AgentStateError(`${path} is damaged (${parsed}); move it away to start afresh`);
    }
    previous = parsed;
  } catch (error) {
    if (error instanceof AgentStateError) throw error;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new AgentStateError(`cannot read ${path}: ${(error as Error).message}`);
    }
  }
  if (previous !== undefined && previous.nodeId !== nodeId) {
    throw new AgentStateError(
      `${dataDir} belongs to node ${previous.nodeId}, not ${nodeId}; use another --data-dir`,
    );
  }
  const state: AgentState = {
    formatVersion: 1,
    nodeId,
    incarnation: (previous?.incarnation ?? 0) + 1,
  };
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state)}\n`);
  const descriptor = openSync(`${path}.tmp`, "r");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(`${path}.tmp`, path);
  return state;
}
