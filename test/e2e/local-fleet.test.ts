// End to end on loopback: the industrial fleet as real processes, a real crash (kill -9 of a
// node's process group), a graceful stop, and a restart.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FleetEvent, NodeListResponse } from "../../src/api/contract.ts";
import { fleetGet } from "./fleet-api.ts";
import { LocalFleetHarness } from "./local-fleet-harness.ts";

const fleet = new LocalFleetHarness("edgeward-e2e-");
const { dir } = fleet;
const edgeward = (...args: string[]) => fleet.edgeward(...args);
const fleetFile = () => fleet.fleetFile();

async function nodes(): Promise<NodeListResponse["nodes"]> {
  const { stdout } = await edgeward("status", "--dir", dir, "--json");
  return (JSON.parse(stdout) as NodeListResponse).nodes;
}

/** Polls until `nodeId` has `status`; a bounded wait, never a fixed sleep. */
async function waitForStatus(nodeId: string, status: string, timeoutMs = 15_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  let seen = "";
  while (Date.now() < deadlineMs) {
    const fleet = await fleetGet<{ status: string }>(dir, `/v1/nodes/${nodeId}`);
    seen = fleet.status;
    if (seen === status) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${nodeId} stayed ${seen}, expected ${status} within ${timeoutMs} ms`);
}

beforeAll(async () => {
  const stdout = await fleet.up();
  expect(stdout.trim()).toBe(fleetFile().server.url);
}, 120_000);

afterAll(() => fleet.down(), 60_000);

describe("a local industrial fleet", () => {
  it("starts every node of the spec HEALTHY with measured usage", async () => {
    const listed = await nodes();
    expect(listed.map((node) => node.id)).toEqual([
      "factory-1-line-a-edge-1",
      "factory-1-line-a-edge-2",
      "factory-1-line-b-edge-1",
      "factory-1-quality-control-edge",
      "factory-1-warehouse-edge",
    ]);
    expect(listed.every((node) => node.status === "HEALTHY")).toBe(true);
    expect(fleetFile().nodes.every((node) => node.pgid === node.pid)).toBe(true);
  });

  it("records the spec, the enrolments and the tokens in the ledger (audit log)", async () => {
    const { stdout } = await edgeward(
      "audit",
      "log",
      "--from",
      "0",
      "--limit",
      "100",
      "--dir",
      dir,
      "--json",
    );
    const entries = (JSON.parse(stdout) as { entries: { kind: string; encoded: string }[] })
      .entries;
    const kinds = entries.map((entry) => entry.kind);
    expect(kinds.filter((kind) => kind === "config.changed")).toHaveLength(1);
    const enrolments = entries
      .filter((entry) => entry.kind === "enrolment")
      .map((entry) => (JSON.parse(entry.encoded) as { data: Record<string, unknown> }).data);
    expect(enrolments.length).toBeGreaterThanOrEqual(5);
    for (const enrolment of enrolments)
      expect(enrolment).toMatchObject({ method: "join-token", publicKeyDigest: /^[0-9a-f]{64}$/ });
    expect(kinds).toContain("token.issued");
    const text = (await edgeward("audit", "log", "--dir", dir)).stdout;
    expect(text).toMatch(/config\.changed +\{"digest":"[0-9a-f]{64}","what":"fleet-spec"\}/);
  });

  it("marks a crashed node FAILED, a stopped node OFFLINE, and re-admits the crashed one", async () => {
    const [crashed, stopped] = fleetFile().nodes;
    if (crashed === undefined || stopped === undefined)
      throw new Error("fleet.json lists too few nodes");

    process.kill(-crashed.pgid, "SIGKILL");
    await waitForStatus(crashed.id, "FAILED");

    process.kill(-stopped.pgid, "SIGTERM");
    await waitForStatus(stopped.id, "OFFLINE");

    const { stdout } = await edgeward("node", "start", crashed.id, "--dir", dir);
    expect(stdout).toContain(`${crashed.id}: started`);
    fleet.trackGroups();
    await waitForStatus(crashed.id, "HEALTHY");

    const events = (await edgeward("events", "--dir", dir, "--json")).stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as FleetEvent);
    const transitions = events.flatMap((event) =>
      event.type === "node.status"
        ? [{ node: event.node, from: event.from, to: event.to, atMs: event.atMs }]
        : [],
    );
    expect(transitions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ node: crashed.id, to: "FAILED" }),
        expect.objectContaining({ node: stopped.id, from: "HEALTHY", to: "OFFLINE" }),
        expect.objectContaining({ node: crashed.id, from: "FAILED", to: "HEALTHY" }),
      ]),
    );
    // A graceful stop is never mistaken for a failure.
    expect(
      transitions.filter(
        (transition) => transition.node === stopped.id && transition.to === "FAILED",
      ),
    ).toEqual([]);
  }, 60_000);

  it("refuses a second fleet in the same directory", async () => {
    await expect(
      edgeward("up", "examples/industrial-iot.yaml", "--dir", dir, "--detach"),
    ).rejects.toThrow(/already running/);
  });
});
