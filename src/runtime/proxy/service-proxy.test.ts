import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { LogFields, Logger } from "../../ports/logger.ts";
import { silentLogger } from "../../ports/logger.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import {
  ProxyPortsFileError,
  proxyPortsFilePath,
  readProxyPortsFile,
  writeProxyPortsFile,
} from "./proxy-ports-file.ts";
import { ServiceProxies } from "./service-proxies.ts";
import { parseEndpoint, ServiceProxy, ServiceProxyError } from "./service-proxy.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls `condition` until it holds; fails after `boundMs` instead of hanging. */
async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  boundMs = 5_000,
): Promise<void> {
  const startedAt = Date.now();
  while (!(await condition())) {
    if (Date.now() - startedAt > boundMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

interface TestUpstream {
  endpoint: string;
  port: number;
  sockets: Set<Socket>;
  server: Server;
}

/** Answers every chunk with `<tag>:<chunk>`, or echoes raw bytes when tag is undefined. */
async function startUpstream(tag: string | undefined): Promise<TestUpstream> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    if (tag === undefined) socket.pipe(socket);
    else {
      socket.on("data", (chunk: Buffer) => socket.write(`${tag}:${chunk.toString("utf8")}`));
      socket.on("end", () => socket.end());
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  cleanups.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { endpoint: `127.0.0.1:${port}`, port, sockets, server };
}

interface TestClient {
  socket: Socket;
  received: () => string;
  closed: () => boolean;
}

async function connectClient(port: number): Promise<TestClient> {
  const socket = connect({ host: "127.0.0.1", port });
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => undefined);
  socket.on("close", () => {
    closed = true;
  });
  cleanups.push(() => void socket.destroy());
  await once(socket, "connect");
  return {
    socket,
    received: () => Buffer.concat(chunks).toString("utf8"),
    closed: () => closed,
  };
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    ...silentLogger,
    warnings,
    warn: (_fields: LogFields, message: string) => warnings.push(message),
  };
}

/** A clock the test moves by hand, so holds and retries happen exactly when it says. */
class ManualClock implements Clock {
  #nowMs = 1_000_000;
  #timers: { atMs: number; callback: () => void; cancelled: boolean }[] = [];

  nowMs(): number {
    return this.#nowMs;
  }

  schedule(delayMs: number, callback: () => void): CancelTimer {
    const timer = { atMs: this.#nowMs + delayMs, callback, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  advance(byMs: number): void {
    const endMs = this.#nowMs + byMs;
    for (;;) {
      const due = this.#timers
        .filter((timer) => !timer.cancelled && timer.atMs <= endMs)
        .sort((left, right) => left.atMs - right.atMs)[0];
      if (due === undefined) break;
      due.cancelled = true;
      this.#nowMs = due.atMs;
      due.callback();
    }
    this.#timers = this.#timers.filter((timer) => !timer.cancelled);
    this.#nowMs = endMs;
  }
}

async function startProxy(
  options: Partial<ConstructorParameters<typeof ServiceProxy>[0]> = {},
): Promise<{ proxy: ServiceProxy; port: number; clock: ManualClock }> {
  const clock = new ManualClock();
  const proxy = new ServiceProxy({
    service: "web",
    listenHost: "127.0.0.1",
    listenPort: 0,
    logger: silentLogger,
    clock,
    ...options,
  });
  cleanups.push(() => proxy.close());
  const port = await proxy.listen();
  return { proxy, port, clock };
}

describe("ServiceProxy", () => {
  it("forwards bytes both ways and counts them", async () => {
    const upstream = await startUpstream(undefined);
    const { proxy, port } = await startProxy();
    proxy.setUpstream(upstream.endpoint, 1);
    const client = await connectClient(port);
    const payload = Buffer.alloc(1024 * 1024, "x").toString("utf8") + "end";
    client.socket.end(payload);
    await waitFor(() => client.closed(), "the echo to finish");
    expect(client.received()).toBe(payload);
    expect(proxy.stats()).toMatchObject({
      connectionsAccepted: 1,
      connectionsForwarded: 1,
      connectionsHeld: 0,
      bytesFromClients: payload.length,
      bytesFromUpstreams: payload.length,
    });
    await waitFor(() => proxy.stats().connectionsOpen === 0, "the connection to be forgotten");
  });

  it("sends new clients to a new upstream after a switch", async () => {
    const first = await startUpstream("A");
    const second = await startUpstream("B");
    const { proxy, port } = await startProxy();
    proxy.setUpstream(first.endpoint, 1);
    const before = await connectClient(port);
    before.socket.write("one");
    await waitFor(() => before.received() === "A:one", "A to answer");
    proxy.setUpstream(second.endpoint, 1);
    const after = await connectClient(port);
    after.socket.write("two");
    await waitFor(() => after.received() === "B:two", "B to answer");
    // Same generation: the established connection to A is left alone.
    before.socket.write("three");
    await waitFor(() => before.received() === "A:oneA:three", "A to answer again");
  });

  it("holds a client that arrives with no upstream and serves it once one is set", async () => {
    const upstream = await startUpstream("A");
    const { proxy, port } = await startProxy();
    const client = await connectClient(port);
    client.socket.write("early");
    await waitFor(() => proxy.stats().connectionsHeld === 1, "the client to be held");
    expect(client.received()).toBe("");
    expect(client.closed()).toBe(false);
    proxy.setUpstream(upstream.endpoint, 1);
    await waitFor(() => client.received() === "A:early", "the held client to be served");
    expect(proxy.stats().connectionsForwarded).toBe(1);
  });

  it("closes a client held longer than holdMs", async () => {
    const { proxy, port, clock } = await startProxy({ holdMs: 2_000 });
    const client = await connectClient(port);
    await waitFor(() => proxy.stats().connectionsHeld === 1, "the client to be held");
    clock.advance(1_999);
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.closed()).toBe(false);
    clock.advance(1);
    await waitFor(() => client.closed(), "the held client to be closed");
    expect(proxy.stats()).toMatchObject({ connectionsTimedOut: 1, connectionsOpen: 0 });
  });

  it("retries a refusing upstream until holdMs, and takes a new upstream at once", async () => {
    const gone = await startUpstream("gone");
    await new Promise<void>((resolve) => gone.server.close(() => resolve()));
    const upstream = await startUpstream("A");
    const { proxy, port, clock } = await startProxy({ holdMs: 1_000, retryIntervalMs: 50 });
    proxy.setUpstream(gone.endpoint, 1);
    const first = await connectClient(port);
    await waitFor(() => proxy.stats().connectionsHeld === 1, "the first client to be held");
    for (let step = 0; step < 40 && !first.closed(); step += 1) {
      clock.advance(50);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => first.closed(), "the first client to be given up");
    expect(proxy.stats().connectionsTimedOut).toBe(1);

    const second = await connectClient(port);
    second.socket.write("hi");
    await waitFor(() => proxy.stats().connectionsHeld === 2, "the second client to be held");
    proxy.setUpstream(upstream.endpoint, 2);
    await waitFor(() => second.received() === "A:hi", "the new upstream to serve");
  });

  it("cuts connections to an older generation when the generation changes", async () => {
    const old = await startUpstream("A");
    const replacement = await startUpstream("B");
    const { proxy, port } = await startProxy();
    proxy.setUpstream(old.endpoint, 1);
    const client = await connectClient(port);
    client.socket.write("x");
    await waitFor(() => client.received() === "A:x", "A to answer");
    expect(old.sockets.size).toBe(1);
    proxy.setUpstream(replacement.endpoint, 2);
    await waitFor(() => client.closed(), "the old connection to be cut");
    await waitFor(() => old.sockets.size === 0, "the old instance to lose its connection");
    expect(proxy.stats().connectionsFenced).toBe(1);
    const next = await connectClient(port);
    next.socket.write("y");
    await waitFor(() => next.received() === "B:y", "B to answer");
  });

  it("ignores a route older than the current generation", async () => {
    const current = await startUpstream("new");
    const stale = await startUpstream("old");
    const logger = recordingLogger();
    const { proxy, port } = await startProxy({ logger });
    expect(proxy.setUpstream(current.endpoint, 5)).toBe(true);
    expect(proxy.setUpstream(stale.endpoint, 4)).toBe(false);
    expect(logger.warnings).toContain("ignoring a route older than the proxy's current one");
    const client = await connectClient(port);
    client.socket.write("z");
    await waitFor(() => client.received() === "new:z", "the current upstream to answer");
  });

  it("refuses clients beyond connectionsMax", async () => {
    const { proxy, port } = await startProxy({ connectionsMax: 2 });
    const first = await connectClient(port);
    const second = await connectClient(port);
    await waitFor(() => proxy.stats().connectionsHeld === 2, "two held clients");
    const third = await connectClient(port);
    await waitFor(() => third.closed(), "the third client to be refused");
    expect(first.closed()).toBe(false);
    expect(second.closed()).toBe(false);
    expect(proxy.stats()).toMatchObject({
      connectionsAccepted: 2,
      connectionsRefused: 1,
      connectionsOpen: 2,
    });
  });

  it("rejects an endpoint that is not host:port", async () => {
    const { proxy } = await startProxy();
    expect(() => proxy.setUpstream("no-port", 1)).toThrow(ServiceProxyError);
    expect(parseEndpoint("[::1]:8080")).toEqual({ host: "::1", port: 8080 });
    expect(parseEndpoint("10.0.0.1:0")).toBeUndefined();
    expect(parseEndpoint("10.0.0.1:65536")).toBeUndefined();
  });

  it("listens on a new port when its saved one is taken, if allowed", async () => {
    const squatter = await startUpstream("squatter");
    const logger = recordingLogger();
    await expect(startProxy({ listenPort: squatter.port })).rejects.toThrow(/cannot listen/);
    const { port } = await startProxy({
      listenPort: squatter.port,
      fallbackToFreePort: true,
      logger,
    });
    expect(port).not.toBe(squatter.port);
    expect(logger.warnings).toEqual([
      "proxy port is taken; listening on a new one (clients must learn the new address)",
    ]);
  });
});

function dataDir(): string {
  const directory = mkdtempSync(join(tmpdir(), "edgeward-proxy-ports-"));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

describe("ServiceProxies", () => {
  function openProxies(directory: string, logger: Logger = silentLogger): ServiceProxies {
    const proxies = new ServiceProxies({
      dataDir: directory,
      listenHost: "127.0.0.1",
      logger,
      clock: new ManualClock(),
    });
    cleanups.push(() => proxies.close());
    return proxies;
  }

  it("follows the routing table and listens on the same ports after a restart", async () => {
    const upstream = await startUpstream("A");
    const directory = dataDir();
    const first = openProxies(directory);
    const ports = await first.applyRoutes({
      web: { endpoint: upstream.endpoint, generation: 3 },
      historian: null,
    });
    expect(Object.keys(ports).sort()).toEqual(["historian", "web"]);
    expect(readProxyPortsFile(directory)).toEqual(ports);
    const client = await connectClient(ports.web ?? 0);
    client.socket.write("q");
    await waitFor(() => client.received() === "A:q", "the route to be followed");
    const held = await connectClient(ports.historian ?? 0);
    await waitFor(
      async () => (await first.stats()).historian?.connectionsHeld === 1,
      "the unrouted service to hold its client",
    );
    expect(held.closed()).toBe(false);
    await first.close();

    const second = openProxies(directory);
    expect(await second.applyRoutes({ web: null, historian: null })).toEqual(ports);
  });

  it("moves to a new port when the saved one is taken, and saves it", async () => {
    const squatter = await startUpstream("squatter");
    const directory = dataDir();
    writeProxyPortsFile(directory, { web: squatter.port });
    const logger = recordingLogger();
    const ports = await openProxies(directory, logger).applyRoutes({ web: null });
    expect(ports.web).not.toBe(squatter.port);
    expect(readProxyPortsFile(directory)).toEqual(ports);
    expect(logger.warnings).toContain(
      "proxy port is taken; listening on a new one (clients must learn the new address)",
    );
  });

  it("logs a route it cannot follow instead of throwing", async () => {
    const logger = recordingLogger();
    const proxies = openProxies(dataDir(), logger);
    const ports = await proxies.applyRoutes({
      web: { endpoint: "not an endpoint", generation: 1 },
      "Bad Name": null,
    });
    expect(Object.keys(ports)).toEqual(["web"]);
    expect(logger.warnings).toEqual([
      "cannot follow the route of a service",
      "cannot follow the route of a service",
    ]);
  });

  it("refuses a damaged proxies.json", () => {
    const directory = dataDir();
    writeFileSync(proxyPortsFilePath(directory), "{");
    expect(() => openProxies(directory)).toThrow(ProxyPortsFileError);
  });
});

describe("proxies.json", () => {
  it("round-trips the ports and reads a missing file as empty", () => {
    const directory = dataDir();
    expect(readProxyPortsFile(directory)).toEqual({});
    writeProxyPortsFile(directory, { web: 41_000, "line_3-db": 41_001 });
    expect(readProxyPortsFile(directory)).toEqual({ web: 41_000, "line_3-db": 41_001 });
  });

  it.each([
    ["not JSON", "{", /damaged \(not JSON/],
    ["an array", "[]", /damaged \(not a JSON object\)/],
    ["a port out of range", JSON.stringify({ web: 70_000 }), /port of web is not a whole number/],
    ["a bad service name", JSON.stringify({ "../x": 1 }), /"..\/x" is not a service name/],
  ])("refuses a damaged file (%s) with a clear error", (_name, content, message) => {
    const directory = dataDir();
    writeFileSync(proxyPortsFilePath(directory), content);
    expect(() => readProxyPortsFile(directory)).toThrow(ProxyPortsFileError);
    expect(() => readProxyPortsFile(directory)).toThrow(message);
  });

  it("refuses to write ports that would not read back", () => {
    expect(() => writeProxyPortsFile(dataDir(), { web: 0 })).toThrow(ProxyPortsFileError);
  });
});
