// End to end on loopback: production_monitoring as a real process supervised by real agents.
// Crash the node running it (kill -9 of its process group): it serves again from the plan's
// first backup through a proxy on a surviving node; crash that one too: the second backup.
// Restart the first: it comes back fenced, and no second instance ever runs.

import { readdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DrillResult, ServiceView } from "../../src/api/contract.ts";
import { fleetGet } from "./fleet-api.ts";
import { LocalFleetHarness } from "./local-fleet-harness.ts";

const fleet = new LocalFleetHarness("edgeward-e2e-failover-");
const { dir } = fleet;
const edgeward = (...args: string[]) => fleet.edgeward(...args);
const fleetFile = () => fleet.fleetFile();
const service = "production_monitoring";
const [primary, firstBackup, secondBackup] = [
  "factory-1-line-a-edge-1",
  "factory-1-line-a-edge-2",
  "factory-1-line-b-edge-1",
];
/** The client's node: it survives every crash of this test. */
const clientNode = "factory-1-warehouse-edge";

async function serviceView(): Promise<ServiceView> {
  return fleetGet<ServiceView>(dir, `/v1/services/${service}`);
}

/** Polls with a bound until `read` gives a value; never a fixed sleep. */
async function waitFor<Value>(
  read: () => Promise<Value | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<Value> {
  const deadlineMs = Date.now() + timeoutMs;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadlineMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const servingFrom = (nodeId: string) =>
  waitFor(async () => {
    const view = await serviceView();
    return view.status === "serving" && view.node === nodeId ? view : undefined;
  }, `${service} serving from ${nodeId}`);

/** One HTTP request through the client node's proxy. */
function throughProxy(
  port: number,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<{ statusCode: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const outgoing = request(
      { host: "127.0.0.1", port, method, path, agent: false, timeout: 15_000 },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          try {
            resolve({
              statusCode: response.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
            });
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    outgoing.on("error", reject);
    outgoing.on("timeout", () => outgoing.destroy(new Error("timed out")));
    outgoing.end(payload);
  });
}

/** Processes of this test's fleet running the service: their command line names its program. */
function serviceProcesses(): number[] {
  const groups = new Set(fleetFile().nodes.map((node) => node.pgid));
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 5 of /proc/<pid>/stat (after the parenthesised name) is the process group.
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (commandLine.includes(`${service}.mjs`) && groups.has(pgid)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

function crash(nodeId: string): void {
  const node = fleetFile().nodes.find((candidate) => candidate.id === nodeId);
  if (node === undefined) throw new Error(`no ${nodeId} in fleet.json`);
  process.kill(-node.pgid, "SIGKILL");
}

beforeAll(() => fleet.up(), 120_000);

afterAll(() => fleet.down(), 60_000);

describe("failover of a real service on a local fleet", () => {
  it("serves through one proxy address across two crashes, and never runs two instances", async () => {
    const placed = await servingFrom(primary);
    // Sampled all along: at no moment may two processes of the singleton run.
    let mostAtOnce = 0;
    const sampler = setInterval(() => {
      mostAtOnce = Math.max(mostAtOnce, serviceProcesses().length);
    }, 20);
    const proxy = placed.proxies.find((candidate) => candidate.node === clientNode);
    if (proxy === undefined) throw new Error(`no proxy of ${service} on ${clientNode}`);

    const written = await throughProxy(proxy.port, "POST", "/readings", {
      sensorId: "line-a/temperature-1",
      value: 71.5,
    });
    expect(written.statusCode).toBe(201);
    expect(await throughProxy(proxy.port, "GET", "/health")).toMatchObject({
      statusCode: 200,
      body: { generation: placed.generation },
    });

    crash(primary);
    const second = await servingFrom(firstBackup);
    expect(second.generation).toBeGreaterThan(placed.generation);
    const afterFirst = await throughProxy(proxy.port, "GET", "/health");
    expect(afterFirst).toMatchObject({ statusCode: 200, body: { generation: second.generation } });

    crash(firstBackup);
    const third = await servingFrom(secondBackup);
    expect(third.generation).toBeGreaterThan(second.generation);
    expect(await throughProxy(proxy.port, "GET", "/health")).toMatchObject({
      statusCode: 200,
      body: { generation: third.generation },
    });

    await edgeward("node", "start", primary, "--dir", dir);
    fleet.trackGroups();
    await waitFor(async () => {
      const node = await fleetGet<{ status: string }>(dir, `/v1/nodes/${primary}`);
      return node.status === "HEALTHY" ? node : undefined;
    }, `${primary} HEALTHY again`);

    // The returning node runs nothing: the service stays where it is, in exactly one process.
    const settled = await serviceView();
    expect(settled).toMatchObject({ node: secondBackup, generation: third.generation });
    const running = settled.instances.filter((instance) => instance.state === "running");
    expect(running).toEqual([
      expect.objectContaining({ node: secondBackup, generation: third.generation }),
    ]);
    expect(serviceProcesses()).toHaveLength(1);
    clearInterval(sampler);
    expect(mostAtOnce).toBe(1);

    const { stdout } = await edgeward("failovers", "--dir", dir, "--json");
    const records = (
      JSON.parse(stdout) as {
        service: string;
        reason: string;
        status: string;
        from: string | null;
        to: string | null;
      }[]
    ).filter((record) => record.service === service && record.reason === "node_failure");
    expect(records).toEqual([
      expect.objectContaining({ from: primary, to: firstBackup, status: "completed" }),
      expect.objectContaining({ from: firstBackup, to: secondBackup, status: "completed" }),
    ]);
  }, 120_000);

  it("drills a planned failover and back with no acknowledged write lost", async () => {
    const proxy = (await serviceView()).proxies.find((candidate) => candidate.node === clientNode);
    if (proxy === undefined) throw new Error(`no proxy of ${service} on ${clientNode}`);
    for (let reading = 0; reading < 5; reading += 1) {
      const written = await throughProxy(proxy.port, "POST", "/readings", {
        sensorId: "line-b/pressure-1",
        value: reading,
      });
      expect(written.statusCode).toBe(201);
    }
    const before = await throughProxy(proxy.port, "GET", "/stats");

    const { stdout } = await edgeward("drill", service, "--dir", dir, "--json");
    const drill = JSON.parse(stdout) as DrillResult;
    expect(drill).toMatchObject({ service, passed: true, rpoWritesLost: 0, problem: null });
    expect(drill.legs).toHaveLength(2);
    for (const leg of drill.legs) {
      expect(leg).toMatchObject({ status: "completed", writesLost: 0, dataAgeMs: 0 });
      expect(leg.unavailableMs).toBeGreaterThan(0);
    }
    // The data travelled with the service both ways.
    const after = await throughProxy(proxy.port, "GET", "/stats");
    expect(after.body["acknowledgedWrites"]).toBe(before.body["acknowledgedWrites"]);
    expect(before.body["acknowledgedWrites"]).toBeGreaterThanOrEqual(5);
  }, 60_000);
});
