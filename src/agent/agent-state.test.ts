import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentStateError, beginIncarnation } from "./agent-state.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

function dataDir(): string {
  const directory = mkdtempSync(join(tmpdir(), "edgeward-agent-state-"));
  directories.push(directory);
  return directory;
}

describe("agent state", () => {
  it("counts incarnations up across starts and keeps them on disk", () => {
    const directory = dataDir();
    expect(beginIncarnation(directory, "edge-1").incarnation).toBe(1);
    expect(beginIncarnation(directory, "edge-1").incarnation).toBe(2);
    expect(JSON.parse(readFileSync(join(directory, "agent.json"), "utf8"))).toEqual({
      formatVersion: 1,
      nodeId: "edge-1",
      incarnation: 2,
    });
  });

  it("refuses a data dir that belongs to another node", () => {
    const directory = dataDir();
    beginIncarnation(directory, "edge-1");
    expect(() => beginIncarnation(directory, "edge-2")).toThrow(
      /belongs to node edge-1, not edge-2/,
    );
  });

  it.each([
    ["not JSON", "{", /cannot read/],
    [
      "a wrong version",
      JSON.stringify({ formatVersion: 2, nodeId: "edge-1", incarnation: 1 }),
      /damaged \(unknown formatVersion 2\)/,
    ],
    [
      "a negative incarnation",
      JSON.stringify({ formatVersion: 1, nodeId: "edge-1", incarnation: -1 }),
      /damaged \(incarnation/,
    ],
    [
      "an unknown field",
      JSON.stringify({ formatVersion: 1, nodeId: "edge-1", incarnation: 1, extra: true }),
      /damaged \(unknown field extra\)/,
    ],
  ])("refuses a damaged agent.json (%s) with a clear error", (_name, content, message) => {
    const directory = dataDir();
    writeFileSync(join(directory, "agent.json"), content);
    expect(() => beginIncarnation(directory, "edge-1")).toThrow(AgentStateError);
    expect(() => beginIncarnation(directory, "edge-1")).toThrow(message);
  });
});
