import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { InjectOptions } from "fastify";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { FleetEvent, NodeListResponse, NodeView } from "../api/contract.ts";
import { detectorOptionsFor } from "../core/membership/detector-options.ts";
import { agentChannelBudgetDefaults } from "../core/security/agent-channel-budget.ts";
import type { Clock } from "../ports/clock.ts";
import { MemoryStore } from "../runtime/store/memory-store.ts";
import { waitFor } from "./fleet-test-support.ts";
import { startServer, type RunningServer } from "./main.ts";
import { messageText } from "../runtime/websocket-text.ts";

/** A clock the test moves by hand; scheduled callbacks run when their time comes. */
function manualClock(startMs: number) {
  let nowMs = startMs;
  const timers = new Set<{ dueMs: number; callback: () => void }>();
  const clock: Clock = {
    nowMs: () => nowMs,
    schedule(delayMs, callback) {
      const timer = { dueMs: nowMs + delayMs, callback };
      timers.add(timer);
      return () => timers.delete(timer);
    },
  };
  const advance = (byMs: number) => {
    const targetMs = nowMs + byMs;
    for (;;) {
      const due = [...timers]
        .filter((timer) => timer.dueMs <= targetMs)
        .sort((a, b) => a.dueMs - b.dueMs)[0];
      if (due === undefined) break;
      timers.delete(due);
      nowMs = due.dueMs;
      due.callback();
    }
    nowMs = targetMs;
  };
  return { clock, advance };
}

const servers: RunningServer[] = [];
const directories: string[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

async function serverWith(options: { clock?: Clock; probeAnswer?: "alive" | "refused" } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "edgeward-server-"));
  directories.push(dataDir);
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
    logger: pino({ level: "silent" }),
    store: new MemoryStore(),
    ...(options.clock ? { clock: options.clock } : {}),
    prober: () => Promise.resolve(options.probeAnswer),
  });
  servers.push(server);
  return server;
}

/** Requests as the bootstrap admin unless the test passes its own authorization header. */
const call = (server: RunningServer, options: InjectOptions) =>
  server.app.inject({
    ...options,
    headers: { authorization: `Bearer ${server.adminToken}`, ...options.headers },
  });

const registration = (nodeId: string, extra: Record<string, unknown> = {}) => ({
  nodeId,
  incarnation: 1,
  agentUrl: "http://127.0.0.1:1",
  zone: "line-a",
  ...extra,
});

const register = (server: RunningServer, nodeId: string, extra: Record<string, unknown> = {}) =>
  call(server, {
    method: "POST",
    url: "/v1/nodes/register",
    payload: registration(nodeId, extra),
  });

const statusOf = async (server: RunningServer, nodeId: string) =>
  (await call(server, { method: "GET", url: `/v1/nodes/${nodeId}` })).json<NodeView>().status;

const openChannel = (server: RunningServer, nodeId: string, token = server.adminToken) =>
  new WebSocket(
    `${server.url.replace("http", "ws")}/v1/agents/connect?nodeId=${nodeId}&incarnation=1`,
    { headers: { authorization: `Bearer ${token}` } },
  );

describe("server API", () => {
  it("registers a node, accepts its heartbeats and lists it HEALTHY", async () => {
    const server = await serverWith();
    const registered = await register(server, "edge-1");
    expect(registered.statusCode).toBe(200);
    expect(registered.json()).toMatchObject({
      nodeId: "edge-1",
      heartbeatIntervalMs: 200,
      detectionPreset: "lan",
    });
    const beat = await call(server, {
      method: "POST",
      url: "/v1/heartbeats",
      payload: { nodeId: "edge-1", incarnation: 1, sequence: 1 },
    });
    expect(beat.json()).toEqual({ accepted: 1, rejected: [] });
    const list = (await call(server, { method: "GET", url: "/v1/nodes" })).json<NodeListResponse>();
    expect(list.nodes.map((node) => [node.id, node.status, node.zone])).toEqual([
      ["edge-1", "HEALTHY", "line-a"],
    ]);
    const one = (await call(server, { method: "GET", url: "/v1/nodes/edge-1" })).json<NodeView>();
    expect(one.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ["malformed JSON", "{not json", 400, /json/i],
    [
      "unknown field",
      JSON.stringify({ ...registration("edge-1"), color: "red" }),
      400,
      /unrecognized key/i,
    ],
    ["bad node id", JSON.stringify(registration("Edge_1!")), 400, /nodeId: expected a node id/],
    [
      "negative incarnation",
      JSON.stringify(registration("edge-1", { incarnation: -1 })),
      400,
      /incarnation/,
    ],
    [
      "oversized body",
      JSON.stringify({ ...registration("edge-1"), zone: "x".repeat(2 * 1024 * 1024) }),
      413,
      /too large/i,
    ],
  ])(
    "rejects a registration with %s with a clear 4xx",
    async (_name, payload, statusCode, message) => {
      const server = await serverWith();
      const response = await call(server, {
        method: "POST",
        url: "/v1/nodes/register",
        headers: { "content-type": "application/json" },
        payload,
      });
      expect(response.statusCode).toBe(statusCode);
      expect(response.json<{ message: string }>().message).toMatch(message);
    },
  );

  it("rejects a heartbeat from a node that never registered", async () => {
    const server = await serverWith();
    const response = await call(server, {
      method: "POST",
      url: "/v1/heartbeats",
      payload: { nodeId: "ghost", incarnation: 1, sequence: 1 },
    });
    expect(response.statusCode).toBe(404);
    expect(response.json<{ message: string }>().message).toMatch(
      /not registered; register it first/,
    );
  });

  it("rejects heartbeats from a stale incarnation and stale re-registrations", async () => {
    const server = await serverWith();
    await register(server, "edge-1", { incarnation: 2 });
    const beat = await call(server, {
      method: "POST",
      url: "/v1/heartbeats",
      payload: { nodeId: "edge-1", incarnation: 1, sequence: 1 },
    });
    expect(beat.statusCode).toBe(409);
    const older = await register(server, "edge-1", { incarnation: 1 });
    expect(older.statusCode).toBe(409);
  });

  it("answers unknown routes and unknown nodes with 404 JSON", async () => {
    const server = await serverWith();
    expect((await call(server, { method: "GET", url: "/v1/nope" })).statusCode).toBe(404);
    const missing = await call(server, { method: "GET", url: "/v1/nodes/absent" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: "unknown_node" });
  });

  it("never answers fuzzed requests with a 5xx", async () => {
    const server = await serverWith();
    await register(server, "edge-1");
    const routes = [
      "/v1/nodes/register",
      "/v1/heartbeats",
      "/v1/nodes/edge-1/goodbye",
      "/v1/events",
      "/v1/nodes/edge-1",
      // The security routes, as the bootstrap admin (security.test.ts fuzzes every route and credential).
      "/v1/tokens",
      "/v1/tokens/join",
      "/v1/tokens/revoke",
      "/v1/nodes/enrol",
      "/v1/nodes/credential/renew",
      "/v1/ca",
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.constantFrom("GET", "POST", "DELETE"),
        fc.oneof(
          fc.json(),
          fc.string(),
          fc
            .jsonValue()
            .map((value) => JSON.stringify({ nodeId: "edge-1", incarnation: 1, sequence: value })),
        ),
        async (url, method, payload) => {
          const response = await call(server, {
            method,
            url,
            headers: { "content-type": "application/json" },
            ...(method === "GET" ? {} : { payload }),
          });
          expect(response.statusCode).toBeLessThan(500);
        },
      ),
      { seed: 20261122, numRuns: 300 },
    );
  });

  it("opens the event stream at once on a quiet fleet, and answers HEAD on it without a stream", async () => {
    const server = await serverWith();
    const open = (method: string) =>
      new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = httpRequest(
          `${server.url}/v1/events/stream`,
          { method, headers: { authorization: `Bearer ${server.adminToken}` } },
          resolve,
        );
        outgoing.on("error", reject);
        outgoing.end();
      });
    const stream = await open("GET");
    expect(stream.statusCode).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    stream.destroy();
    const head = await open("HEAD");
    expect(head.statusCode).toBe(200);
    await new Promise((resolve) => head.on("end", resolve).resume());
  });

  it("exposes Prometheus metrics and a health check", async () => {
    const server = await serverWith();
    expect((await call(server, { method: "GET", url: "/healthz" })).json()).toEqual({
      status: "ok",
    });
    const metrics = await call(server, { method: "GET", url: "/metrics" });
    expect(metrics.body).toContain('edgeward_nodes{status="HEALTHY"}');
    expect(metrics.body).toContain("edgeward_heartbeats_received_total");
  });
});

describe("failure detection through the server", () => {
  it("suspects, probes and convicts a silent node, recording node.status events", async () => {
    const { clock, advance } = manualClock(1_000_000);
    const server = await serverWith({ clock });
    await register(server, "edge-1");
    for (let sequence = 1; sequence <= 10; sequence += 1) {
      advance(200);
      await call(server, {
        method: "POST",
        url: "/v1/heartbeats",
        payload: { nodeId: "edge-1", incarnation: 1, sequence },
      });
    }
    advance(2_000);
    const node = (await call(server, { method: "GET", url: "/v1/nodes/edge-1" })).json<NodeView>();
    expect(node.status).toBe("FAILED");
    const events = (await call(server, { method: "GET", url: "/v1/events" })).json<{
      events: FleetEvent[];
    }>();
    expect(
      events.events.map((event) =>
        event.type === "node.status" ? `${event.from}->${event.to}` : event.type,
      ),
    ).toEqual(["null->HEALTHY", "HEALTHY->DEGRADED", "DEGRADED->FAILED"]);
  });

  it("convicts at once when an agent's channel drops and its probe is refused", async () => {
    const server = await serverWith({ probeAnswer: "refused" });
    await register(server, "edge-1");
    const socket = openChannel(server, "edge-1");
    // The services message (assignments for fencing) comes first, then the welcome.
    const welcome = await new Promise<unknown>((resolve, reject) => {
      socket.on("message", (data) => {
        const message = JSON.parse(messageText(data)) as { type: string };
        if (message.type === "welcome") resolve(message);
      });
      socket.once("error", reject);
    });
    expect(welcome).toMatchObject({ type: "welcome", heartbeatIntervalMs: 200 });
    socket.send(JSON.stringify({ type: "heartbeat", sequence: 1 }));
    socket.terminate();
    const deadlineMs = Date.now() + 5_000;
    let status = "";
    while (Date.now() < deadlineMs && status !== "FAILED") {
      status = await statusOf(server, "edge-1");
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(status).toBe("FAILED");
  });

  it("marks a node OFFLINE when it says goodbye on its channel", async () => {
    const server = await serverWith();
    await register(server, "edge-1");
    const socket = openChannel(server, "edge-1");
    const messages: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      socket.on("message", (data) => {
        messages.push(JSON.parse(messageText(data)));
        if (messages.length === 1) socket.send(JSON.stringify({ type: "goodbye" }));
      });
      socket.once("close", () => resolve());
      socket.once("error", reject);
    });
    expect(messages.at(-1)).toEqual({ type: "goodbye-acknowledged" });
    expect(await statusOf(server, "edge-1")).toBe("OFFLINE");
  });

  it("keeps nodes and statuses across a restart, and convicts nobody during the grace period", async () => {
    const { clock, advance } = manualClock(2_000_000);
    const dataDir = mkdtempSync(join(tmpdir(), "edgeward-restart-"));
    directories.push(dataDir);
    const start = () =>
      startServer({
        host: "127.0.0.1",
        port: 0,
        dataDir,
        detection: detectorOptionsFor("lan"),
        logger: pino({ level: "silent" }),
        clock,
        prober: () => Promise.resolve(undefined),
      });
    const first = await start();
    advance(detectorOptionsFor("lan").startupGraceMs);
    for (const nodeId of ["edge-1", "edge-2"]) {
      await register(first, nodeId);
    }
    await first.close();

    advance(60_000); // the server was down for a minute: every heartbeat is long overdue
    const second = await start();
    servers.push(second);
    advance(4_000);
    const during = (
      await call(second, { method: "GET", url: "/v1/nodes" })
    ).json<NodeListResponse>();
    expect(during.nodes.map((node) => [node.id, node.status])).toEqual([
      ["edge-1", "HEALTHY"],
      ["edge-2", "HEALTHY"],
    ]);
    // edge-1 comes back within the grace period; edge-2 never does.
    await register(second, "edge-1", { incarnation: 2 });
    for (let sequence = 1; sequence <= 20; sequence += 1) {
      advance(200);
      await call(second, {
        method: "POST",
        url: "/v1/heartbeats",
        payload: { nodeId: "edge-1", incarnation: 2, sequence },
      });
    }
    const after = (
      await call(second, { method: "GET", url: "/v1/nodes" })
    ).json<NodeListResponse>();
    expect(after.nodes.map((node) => [node.id, node.status])).toEqual([
      ["edge-1", "HEALTHY"],
      ["edge-2", "FAILED"],
    ]);
  });

  it("drops an agent's messages over budget but never its heartbeats, and cuts it off only past the ceiling", async () => {
    const { clock, advance } = manualClock(3_000_000);
    const server = await serverWith({ clock });
    const { metrics } = server.plane.components;
    const count = async (counter: { get(): Promise<{ values: { value: number }[] }> }) =>
      (await counter.get()).values.reduce((sum, { value }) => sum + value, 0);
    await register(server, "edge-1");
    const socket = openChannel(server, "edge-1");
    const errors: string[] = [];
    const closed = new Promise<number>((resolve) => socket.once("close", resolve));
    await new Promise<void>((resolve, reject) => {
      socket.on("message", (data) => {
        const message = JSON.parse(messageText(data)) as { type: string; message?: string };
        if (message.type === "welcome") resolve();
        if (message.type === "error") errors.push(message.message ?? "");
      });
      socket.once("error", reject);
    });
    const report = JSON.stringify({
      type: "peer-request-rejected",
      reason: "unsigned",
      claimedNodeId: null,
      remoteAddress: "10.0.0.9",
      path: "/v1/services/x/data",
      atMs: 1,
      rejectedCount: 1,
    });
    // At one instant: 150 reports with a heartbeat after every 30 (the clock does not move).
    for (let index = 1; index <= 150; index += 1) {
      socket.send(report);
      if (index % 30 === 0) socket.send(JSON.stringify({ type: "heartbeat", sequence: index }));
    }
    const { otherPerSecondMax, messagesPerSecondCeiling } = agentChannelBudgetDefaults;
    await waitFor(
      async () =>
        (await count(metrics.agentSecurityReports)) +
          (await count(metrics.agentMessagesDropped)) ===
        150,
      "the server to take or drop every report",
    );
    expect(await count(metrics.agentSecurityReports)).toBe(otherPerSecondMax);
    expect(await count(metrics.heartbeatsReceived)).toBe(5);
    await waitFor(() => errors.length > 0, "the agent to be told of the drops");
    expect(errors[0]).toMatch(/^dropped \d+ messages over the channel's budget/);
    expect(await statusOf(server, "edge-1")).toBe("HEALTHY");

    // Past the ceiling of all messages the channel is closed (4429), and that is no crash:
    // the node is alive (it was sending), so silent probes do not convict it within the grace.
    for (let index = 0; index < messagesPerSecondCeiling; index += 1) socket.send(report);
    expect(await closed).toBe(4429);
    expect(await count(metrics.agentChannelsRateLimited)).toBe(1);
    const { links } = server.plane.components;
    await waitFor(() => !links.connected("edge-1"), "the server to see the channel closed");
    advance(detectorOptionsFor("lan").rateLimitedGraceMs - 1_000);
    expect(await statusOf(server, "edge-1")).toBe("DEGRADED");
    advance(2_000);
    expect(await statusOf(server, "edge-1")).toBe("FAILED");
  });

  it("closes the channel of a node that never registered with a clear code", async () => {
    const server = await serverWith();
    const socket = openChannel(server, "ghost");
    const code = await new Promise<number>((resolve) =>
      socket.once("close", (closeCode) => resolve(closeCode)),
    );
    expect(code).toBe(4404);
  });
});
