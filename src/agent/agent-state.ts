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
import { z } from "zod";
import { nodeIdSchema } from "../api/contract.ts";

const agentStateSchema = z.strictObject({
  formatVersion: z.literal(1),
  nodeId: nodeIdSchema,
  incarnation: z.number().int().min(0),
});
export type AgentState = z.infer<typeof agentStateSchema>;

export class AgentStateError extends Error {
  override readonly name = "AgentStateError";
}

/** Reads agent.json, bumps the incarnation and writes it back durably before returning. */
export function beginIncarnation(dataDir: string, nodeId: string): AgentState {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "agent.json");
  let previous: AgentState | undefined;
  try {
    const parsed = agentStateSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    if (!parsed.success)
      throw new AgentStateError(
        `${path} is damaged (${parsed.error.issues[0]?.message ?? "invalid"}); move it away to start afresh`,
      );
    previous = parsed.data;
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
