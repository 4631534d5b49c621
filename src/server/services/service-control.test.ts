// The server's failover runtime end to end inside one process: the real server, with fake
// agents on real WebSocket channels that answer step commands as a test tells them to.

import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { FleetEvent } from "../../api/contract.ts";
import type {
  AgentCommand,
  CommandResult,
  RouteEntry,
  ServerServiceMessage,
} from "../../api/service-messages.ts";
import { failoverOptionsFor } from "../../core/failover/failover-options.ts";
import { detectorOptionsFor } from "../../core/membership/detector-options.ts";
import type { FleetSpec } from "../../core/spec/fleet-spec-schema.ts";
import { loadFleetSpecFile } from "../../runtime/fleet-spec-file.ts";
import { MemoryStore } from "../../runtime/store/memory-store.ts";
import { messageText } from "../../runtime/websocket-text.ts";
import { declaredNodesFromSpec } from "../declared-nodes.ts";
import { startServer, type RunningServer } from "../main.ts";

const primary = "factory-1-line-a-edge-1";
const firstBackup = "factory-1-line-a-edge-2";
const secondBackup = "factory-1-line-b-edge-1";

type Answer = (command: AgentCommand) => Omit<CommandResult, "id"> | undefined;

/** Answers every command as a healthy agent would; `start` listens on a made-up port. */
const healthyAgent =
  (nodeId: string): Answer =>
  (command) =>
    command.type === "start"
      ? { ok: true, endpoint: `127.0.0.1:${40_000 + nodeId.length}` }
      : command.type === "sync-data"
        ? { ok: true, dataAgeMs: 0 }
        : { ok: true };

class FakeAgent {
  readonly received: ServerServiceMessage[] = [];
  answer: Answer;
  #socket: WebSocket | undefined;
  #beat: NodeJS.Timeout | undefined;
  #incarnation = 0;

  constructor(
    readonly server: RunningServer,
    readonly nodeId: string,
  ) {
    this.answer = healthyAgent(nodeId);
  }

  async connect(): Promise<void> {
    this.#incarnation += 1;
    const response = await this.server.app.inject({
      method: "POST",
      headers: { authorization: `Bearer ${this.server.adminToken}` },
      url: "/v1/nodes/register",
      payload: {
        nodeId: this.nodeId,
        incarnation: this.#incarnation,
        agentUrl: `http://127.0.0.1:1/${this.nodeId}`,
      },
    });
    expect(response.statusCode).toBe(200);
    const socket = new WebSocket(
      `${this.server.url.replace("http", "ws")}/v1/agents/connect?nodeId=${this.nodeId}&incarnation=${this.#incarnation}`,
      { headers: { authorization: `Bearer ${this.server.adminToken}` } },
    );
    this.#socket = socket;
    socket.on("message", (data) => {
      const message = JSON.parse(messageText(data)) as ServerServiceMessage | { type: "welcome" };
      if (message.type === "welcome") {
        let sequence = 0;
        this.#beat = setInterval(() => {
          sequence += 1;
          if (socket.readyState === WebSocket.OPEN) {
            socket.send(JSON.stringify({ type: "heartbeat", sequence }));
          }
        }, 100);
        return;
      }
      this.received.push(message);
      if (message.type !== "command") return;
      const result = this.answer(message.command);
      if (result !== undefined) {
        socket.send(JSON.stringify({ type: "command-result", id: message.id, ...result }));
      }
    });
    await new Promise((resolve) => socket.once("open", resolve));
  }

  /** Cut off: heartbeats stop reaching the server, the connection stays open. */
  silence(): void {
    clearInterval(this.#beat);
  }

  /** The process dies: the channel drops without a goodbye and heartbeats stop. */
  crash(): void {
    clearInterval(this.#beat);
    this.#socket?.terminate();
  }

  lastRoutes(): Record<string, RouteEntry | null> | undefined {
    const routes = this.received.filter((message) => message.type === "routes").at(-1);
    return routes?.type === "routes" ? routes.routes : undefined;
  }

  lastAssignments(): Record<string, number> | undefined {
    const services = this.received.filter((message) => message.type === "services").at(-1);
    return services?.type === "services" ? services.assignments : undefined;
  }
}

const asAdmin = (server: RunningServer) => ({ authorization: `Bearer ${server.adminToken}` });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function waitFor<Value>(
  read: () => Value | undefined | Promise<Value | undefined>,
  what: string,
  timeoutMs = 10_000,
): Promise<Value> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

let spec: FleetSpec | undefined;
async function industrialSpec(): Promise<FleetSpec> {
  spec ??= await loadFleetSpecFile("examples/industrial-iot.yaml");
  return spec;
}

async function fleet(options: { dataDir?: string; durable?: boolean; webhook?: URL } = {}) {
  const fleetSpec = await industrialSpec();
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "edgeward-services-"));
  if (options.dataDir === undefined) cleanups.push(() => rmSync(dataDir, { recursive: true }));
  const dead = new Set<string>();
  /** Nodes whose probes go unanswered (timed out), as behind a partition. */
  const unreachable = new Set<string>();
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
    declaredNodes: declaredNodesFromSpec(fleetSpec),
    services: fleetSpec.services,
    failover: failoverOptionsFor({ verifyCheckIntervalMs: 20 }),
    logger: pino({ level: "silent" }),
    ...(options.durable === true ? {} : { store: new MemoryStore() }),
    ...(options.webhook === undefined ? {} : { alertWebhookUrl: options.webhook }),
    prober: (agentUrl) => {
      const nodeId = new URL(agentUrl).pathname.slice(1);
      if (unreachable.has(nodeId)) return Promise.resolve(undefined);
      return Promise.resolve(dead.has(nodeId) ? "refused" : "alive");
    },
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const agent of agents.values()) agent.crash();
    await server.close();
  };
  cleanups.push(close);
  const agents = new Map(fleetSpec.nodes.map((node) => [node.id, new FakeAgent(server, node.id)]));
  const agent = (nodeId: string) => {
    const found = agents.get(nodeId);
    if (found === undefined) throw new Error(`no agent ${nodeId}`);
    return found;
  };
  const crash = (nodeId: string) => {
    dead.add(nodeId);
    agent(nodeId).crash();
  };
  const events = async () =>
    (
      await server.app.inject({
        method: "GET",
        url: "/v1/events?limit=1000",
        headers: asAdmin(server),
      })
    ).json<{
      events: FleetEvent[];
    }>().events;
  const resolve = async (service: string) => {
    const response = await server.app.inject({
      headers: asAdmin(server),
      method: "GET",
      url: `/v1/services/${service}/resolve`,
    });
    return response.statusCode === 200 ? response.json<RouteEntry>() : undefined;
  };
  /** Waits until the service serves from `nodeId` with no failover running. */
  const servingFrom = (service: string, nodeId: string) =>
    waitFor(async () => {
      const response = await server.app.inject({
        method: "GET",
        url: `/v1/services/${service}`,
        headers: asAdmin(server),
      });
      const view = response.json<{ node: string | null; status: string; generation: number }>();
      return view.status === "serving" && view.node === nodeId ? view : undefined;
    }, `${service} serving from ${nodeId}`);
  const partition = (nodeId: string) => {
    unreachable.add(nodeId);
    agent(nodeId).silence();
  };
  return { server, agents, agent, crash, partition, events, resolve, close, dead, servingFrom };
}

describe("the server's failover runtime", () => {
  it("places each service on its plan's primary once that node is healthy", async () => {
    const { agents, resolve } = await fleet();
    for (const agent of agents.values()) await agent.connect();
    const route = await waitFor(() => resolve("production_monitoring"), "placement");
    expect(route).toMatchObject({ nodeId: primary, generation: 1 });
    const routes = await waitFor(
      () => agents.get(secondBackup)?.lastRoutes()?.["production_monitoring"] ?? undefined,
      "the routes pushed to every agent",
    );
    expect(routes.nodeId).toBe(primary);
    expect(agents.get(primary)?.lastAssignments()).toMatchObject({ production_monitoring: 1 });
  });

  it("fails a crashed primary over to the first backup, then the second, and fences the old one", async () => {
    const { agent, agents, crash, events, servingFrom } = await fleet();
    for (const fake of agents.values()) await fake.connect();
    await servingFrom("production_monitoring", primary);

    crash(primary);
    const second = await servingFrom("production_monitoring", firstBackup);
    expect(second.generation).toBe(2);
    const completed = await waitFor(async () => {
      const all = await events();
      return all.find(
        (event) =>
          event.type === "service.failover" &&
          event.service === "production_monitoring" &&
          event.status === "completed" &&
          event.reason === "node_failure",
      );
    }, "the completed failover event");

    expect(completed).toMatchObject({ from: primary, to: firstBackup, reason: "node_failure" });
    if (completed.type === "service.failover") {
      expect(completed.steps.map((step) => step.name)).toEqual([
        "prepare_target",
        "sync_data",
        "start_service",
        "update_routing",
        "verify",
      ]);
    }

    crash(firstBackup);
    await servingFrom("production_monitoring", secondBackup);

    // The first node comes back: it is told to run nothing, so its old instance stops.
    const returning = agent(primary);
    returning.received.length = 0;
    await returning.connect();
    const assignments = await waitFor(
      () => returning.lastAssignments(),
      "assignments on reconnect",
    );
    expect(assignments["production_monitoring"]).toBeUndefined();
  });

  it("moves on to the next location when a step fails there", async () => {
    const { agent, agents, crash, servingFrom } = await fleet();
    for (const fake of agents.values()) await fake.connect();
    await servingFrom("production_monitoring", primary);
    agent(firstBackup).answer = (command) =>
      command.type === "start" ? { ok: false, message: "exit code 1" } : { ok: true };
    crash(primary);
    await servingFrom("production_monitoring", secondBackup);
    const stops = agent(firstBackup).received.filter(
      (message) => message.type === "command" && message.command.type === "stop",
    );
    expect(stops.length).toBeGreaterThan(0);
  });

  it("resumes a failover that was half done when the server restarted", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgeward-services-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true }));
    const first = await fleet({ dataDir, durable: true });
    for (const fake of first.agents.values()) await fake.connect();
    await first.servingFrom("production_monitoring", primary);
    // The backup never answers start: the failover stays in start_service.
    first.agent(firstBackup).answer = (command) =>
      command.type === "start" ? undefined : healthyAgent(firstBackup)(command);
    first.crash(primary);
    await waitFor(
      () =>
        first
          .agent(firstBackup)
          .received.some(
            (message) => message.type === "command" && message.command.type === "start",
          ),
      "the start command",
    );
    await first.close();

    const second = await fleet({ dataDir, durable: true });
    second.dead.add(primary);
    for (const [nodeId, fake] of second.agents) if (nodeId !== primary) await fake.connect();
    const view = await second.servingFrom("production_monitoring", firstBackup);
    expect(view.generation).toBe(2);
  });

  it("posts alerts and finished failovers to the webhook", async () => {
    const posted: { type: string; status?: string; severity?: string }[] = [];
    const receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        posted.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as (typeof posted)[number]);
        response.writeHead(204).end();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    cleanups.push(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const { port } = receiver.address() as AddressInfo;
    const { agents, crash, servingFrom } = await fleet({
      webhook: new URL(`http://127.0.0.1:${port}/alerts`),
    });
    for (const fake of agents.values()) await fake.connect();
    await servingFrom("production_monitoring", primary);
    crash(primary);
    await servingFrom("production_monitoring", firstBackup);
    await waitFor(
      () =>
        posted.some((body) => body.type === "service.failover" && body.status === "completed") &&
        posted.some((body) => body.type === "service.alert" && body.severity === "warning"),
      "the webhook posts",
    );
  });

  it("fails over a node cut off by a partition under the network_partition condition", async () => {
    const { agents, partition, events, servingFrom } = await fleet();
    for (const fake of agents.values()) await fake.connect();
    await servingFrom("production_monitoring", primary);
    partition(primary);
    await servingFrom("production_monitoring", firstBackup);
    const all = await events();
    expect(all).toContainEqual(
      expect.objectContaining({
        type: "service.failover",
        service: "production_monitoring",
        reason: "network_partition",
        status: "completed",
      }),
    );
  });

  it("moves a quarantined node's services away, keeps it out of placement until released", async () => {
    const { server, agents, servingFrom } = await fleet();
    for (const fake of agents.values()) await fake.connect();
    await servingFrom("production_monitoring", primary);

    await server.plane.components.services.quarantine(primary, "3 suspicious activities");
    await servingFrom("production_monitoring", firstBackup);
    const listed = await server.app.inject({
      method: "GET",
      url: "/v1/quarantine",
      headers: asAdmin(server),
    });
    expect(listed.json()).toEqual({ nodes: [primary] });
    // Asked to move back, the service cannot go to the quarantined node.
    await server.plane.components.services.failover("production_monitoring", primary);
    const view = await servingFrom("production_monitoring", secondBackup);
    expect(view.node).not.toBe(primary);

    const released = await server.app.inject({
      method: "POST",
      url: `/v1/nodes/${primary}/unquarantine`,
      headers: asAdmin(server),
    });
    expect(released.statusCode).toBe(200);
    const again = await server.app.inject({
      method: "POST",
      url: `/v1/nodes/${primary}/unquarantine`,
      headers: asAdmin(server),
    });
    expect(again.statusCode).toBe(404);
    await server.plane.components.services.failover("production_monitoring", primary);
    await servingFrom("production_monitoring", primary);
  });
});
