// Helpers shared by the server's multi-agent tests: a real server on loopback with real agents
// (enrolled with join tokens when the server enforces credentials), bounded polling (tests
// never sleep for a fixed time), plain HTTP GETs from a chosen address, and agents' sealed files.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { FleetEvent } from "../api/contract.ts";
import { startAgent, type AgentOptions, type RunningAgent } from "../agent/main.ts";
import type { TestResources } from "../agent/agent-test-support.ts";
import { detectorOptionsFor } from "../core/membership/detector-options.ts";
import { openDataDirKeys } from "../runtime/security/data-dir-keys.ts";
import { MemoryStore } from "../runtime/store/memory-store.ts";
import { startServer, type RunningServer, type ServerOptions } from "./main.ts";

/** Polls `condition` every 20 ms; rejects after `timeoutMs` naming what it waited for. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The status of a GET on a fresh connection from `localAddress` (a loopback address). */
export function rawGet(
  url: string,
  headers: Record<string, string> = {},
  localAddress = "127.0.0.1",
): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      url,
      { method: "GET", headers, agent: false, localAddress },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/** A secret file of a server's or agent's data dir, opened with the root key beside it. */
export function sealedFile(dataDir: string, name: string): string | undefined {
  return openDataDirKeys({
    dataDir,
    environment: {},
    nowMs: Date.now(),
    secretFileNames: [],
    create: false,
  }).files.readText(name);
}

export interface TestFleetOptions {
  /** Names the temporary directory: `edgeward-<prefix>-…`. */
  prefix: string;
  nodeIds: readonly string[];
  /** The server's logger (pino, as `edgeward server` makes it); agents log through it too. */
  logger: Logger;
  /** Run in reverse order after the test: the fleet stops and its directory goes. */
  cleanups: TestResources["cleanups"];
  /** Server options beyond the defaults (loopback, port 0, `lan`, memory store, no TLS, credentials enforced). */
  server?: Partial<ServerOptions>;
  /** Serve the REGIONAL blob API from `<root>/regional` (`--blob-dir`). */
  regionalBlobDir?: boolean;
  /** Agent options beyond node, server, data dir, listener and join token (e.g. `backups`). */
  agent?: Partial<AgentOptions>;
  /** Called with each node's data dir before its agent starts (seed data there). */
  prepareNode?: (nodeId: string, dataDir: string) => void;
}

export interface TestFleet {
  root: string;
  server: RunningServer;
  /** The bootstrap admin's Authorization header. */
  admin: { authorization: string };
  agents: Map<string, RunningAgent & { dataDir: string }>;
  /** Every event the server published since the fleet started. */
  events: FleetEvent[];
}

/** Starts a server and one agent per node, and waits until every agent's channel is open. */
export async function startTestFleet(options: TestFleetOptions): Promise<TestFleet> {
  const root = mkdtempSync(join(tmpdir(), `edgeward-${options.prefix}-`));
  options.cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir: join(root, "server"),
    detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
    logger: options.logger,
    store: new MemoryStore(),
    security: { tls: false, enforce: true },
    ...(options.regionalBlobDir === true ? { blobDir: join(root, "regional") } : {}),
    ...options.server,
  });
  options.cleanups.push(() => server.close());
  const admin = { authorization: `Bearer ${server.adminToken}` };
  const enforced = options.server?.security?.enforce ?? true;
  const agents = new Map<string, RunningAgent & { dataDir: string }>();
  for (const nodeId of options.nodeIds) {
    const dataDir = join(root, nodeId);
    mkdirSync(dataDir, { recursive: true });
    options.prepareNode?.(nodeId, dataDir);
    let joinToken: string | undefined;
    if (enforced) {
      const joined = await server.app.inject({
        method: "POST",
        url: "/v1/tokens/join",
        headers: admin,
        payload: { nodeId },
      });
      if (joined.statusCode !== 200) throw new Error(`join token for ${nodeId}: ${joined.body}`);
      joinToken = joined.json<{ token: string }>().token;
    }
    const agent = await startAgent({
      ...options.agent,
      nodeId,
      serverUrl: server.url,
      dataDir,
      listenHost: "127.0.0.1",
      listenPort: 0,
      logger: options.logger,
      ...(joinToken === undefined ? {} : { joinToken }),
    });
    agents.set(nodeId, { ...agent, dataDir });
    options.cleanups.push(() => agent.stop(false));
  }
  const { links } = server.plane.components;
  await waitFor(
    () => options.nodeIds.every((nodeId) => links.connected(nodeId)),
    "agents to connect",
  );
  const events: FleetEvent[] = [];
  options.cleanups.push(server.plane.components.events.subscribe((event) => events.push(event)));
  return { root, server, admin, agents, events };
}
