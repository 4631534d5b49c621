// The agent's firewall on real sockets (127.0.0.1, port 0): the agent API with signed data
// copies behind PeerSecurity, and service proxies. A fake channel collects the reports.

import { testSecretFiles } from "../runtime/security/testing.ts";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { Agent, get, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { FirewallDeniedMessage } from "../api/service-messages.ts";
import type { FirewallRule } from "../core/security/firewall.ts";
import { silentLogger } from "../ports/logger.ts";
import { ServiceProxy } from "../runtime/proxy/service-proxy.ts";
import { createPeerRequestSigner } from "../runtime/security/peer-signing.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { VirtualClock } from "../sim/virtual-clock.ts";
import { AgentFirewall, firewallRulesFileName, FirewallRulesFileError } from "./agent-firewall.ts";
import { createAgentHttpServer } from "./agent-http.ts";
import {
  createDataTransferHandler,
  DataTransferError,
  pullServiceData,
} from "./data-transfer/data-transfer-http.ts";
import { PeerSecurity } from "./peer-security.ts";
import {
  securityReportDefaults,
  type SecurityReportOptions,
} from "./security-report-aggregator.ts";
import { testNodeKeys, testResources, type TestNodeKeys } from "./agent-test-support.ts";

const { cleanups, scratch } = testResources("firewall");

const noEvents = { handleEvent: () => {} };

const alpha = testNodeKeys("alpha");
const beta = testNodeKeys("beta");

function firewallOn(dataDir: string, reportOptions: Partial<SecurityReportOptions> = {}) {
  const clock = new VirtualClock(1_000_000);
  const reports: FirewallDeniedMessage[] = [];
  const channel = { up: true };
  const firewall = new AgentFirewall(
    { dataDir, reports: { ...securityReportDefaults, windowMs: 10_000, ...reportOptions } },
    {
      clock,
      logger: silentLogger,
      report: (message) => {
        if (!channel.up) return false;
        reports.push(message);
        return true;
      },
    },
  );
  cleanups.push(() => firewall.close());
  return { firewall, clock, reports, channel };
}

function rules(...list: Omit<FirewallRule, "index">[]): FirewallRule[] {
  return list.map((rule, index) => ({ ...rule, index }));
}

/** An agent API as startAgent wires it: the probe route and signed data copies. */
async function startAgentApi(firewall: AgentFirewall) {
  const dataDir = scratch();
  const servicesDir = join(dataDir, "services");
  mkdirSync(join(servicesDir, "historian"), { recursive: true });
  writeFileSync(join(servicesDir, "historian", "db.sqlite"), "rows");
  const security = new PeerSecurity(
    { nodeId: "self", secrets: testSecretFiles(dataDir), requiredUntilTold: true },
    {
      clock: systemClock,
      logger: silentLogger,
      sign: createPeerRequestSigner("self", generateKeyPairSync("ed25519").privateKey, systemClock),
      report: () => true,
    },
  );
  security.update({
    type: "peer-identities",
    required: true,
    keys: { alpha: alpha.publicKey, beta: beta.publicKey },
  });
  let requestsSeen = 0;
  const data = createDataTransferHandler({
    dataDirOf: (service) => join(servicesDir, service),
    quiesce: () => Promise.resolve(),
    logger: silentLogger,
    authorize: (request) => firewall.afterSignature(request, security.authorize(request)),
  });
  const server: Server = createAgentHttpServer(
    { nodeId: "self", incarnation: 1 },
    [
      (request, response) => {
        requestsSeen += 1;
        return data(request, response);
      },
    ],
    firewall,
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, requestsSeen: () => requestsSeen };
}

/** GET /healthz, on a new connection unless a keep-alive agent is given. */
function probe(url: string, agent: Agent | false = false): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/healthz`, { agent }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    }).on("error", reject);
  });
}

function pullAs(url: string, signer: TestNodeKeys) {
  return pullServiceData({
    fromUrl: url,
    fromNode: "self",
    service: "historian",
    quiesce: false,
    targetDir: join(scratch(), "historian"),
    timeoutMs: 5_000,
    sign: createPeerRequestSigner(signer.nodeId, signer.privateKey, systemClock),
  });
}

/** Connects, sends bytes, and resolves with what came back before the socket closed. */
function rawExchange(port: number): Promise<{ received: string; error: string | undefined }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    let error: string | undefined;
    socket.on("connect", () => socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"));
    socket.on("data", (chunk) => {
      received += chunk.toString();
      socket.end();
    });
    socket.on("error", (problem: NodeJS.ErrnoException) => {
      error = problem.code ?? problem.message;
    });
    socket.on("close", () => resolve({ received, error }));
  });
}

describe("AgentFirewall on the agent API", () => {
  it("drops a connection from a denied CIDR at accept, before its request is read", async () => {
    const { firewall, reports } = firewallOn(scratch());
    const api = await startAgentApi(firewall);
    const keptAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => keptAlive.destroy());
    expect(await probe(api.url, keptAlive)).toBe(200);

    firewall.update({
      type: "firewall-rules",
      rules: rules({ action: "deny", from: { cidr: "127.0.0.0/8" }, to: {} }),
    });
    const seenBefore = api.requestsSeen();
    const exchange = await rawExchange(api.port);
    expect(exchange.received).toBe("");
    await expect(probe(api.url)).rejects.toThrow();
    await expect(pullAs(api.url, alpha)).rejects.toBeInstanceOf(DataTransferError);
    expect(api.requestsSeen()).toBe(seenBefore);
    // A connection accepted before the rule came is held to it request by request.
    expect(await probe(api.url, keptAlive)).toBe(403);
    expect(firewall.denials["agent-api"]).toBe(4);
    expect(reports).toHaveLength(4);
    expect(reports[0]).toMatchObject({
      type: "firewall-denied",
      ruleIndex: 0,
      listener: "agent-api",
      service: null,
      localPort: api.port,
      remoteAddress: "127.0.0.1",
      peerNodeId: null,
      path: null,
      deniedCount: 1,
    });
  });

  it("answers 403 to a signed request of a denied node, after its signature is verified", async () => {
    const { firewall, reports } = firewallOn(scratch());
    firewall.update({
      type: "firewall-rules",
      rules: rules(
        { action: "deny", from: { node: "beta" }, to: {} },
        { action: "allow", from: { cidr: "127.0.0.0/8" }, to: {} },
        { action: "deny", from: {}, to: {} },
      ),
    });
    const api = await startAgentApi(firewall);

    await expect(pullAs(api.url, alpha)).resolves.toMatchObject({ files: 1 });
    const refused = await pullAs(api.url, beta).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DataTransferError);
    expect((refused as DataTransferError).statusCode).toBe(403);
    expect((refused as DataTransferError).message).toContain("firewall rule 0 denies");
    // The unsigned probe matches no node rule and falls to the loopback allow.
    expect(await probe(api.url)).toBe(200);
    expect(reports).toEqual([
      expect.objectContaining({
        ruleIndex: 0,
        listener: "agent-api",
        peerNodeId: "beta",
        path: "/v1/services/historian/data",
        deniedCount: 1,
      }),
    ]);
  });

  it("lets only the named node in when an allow rule for it precedes deny-all", async () => {
    const { firewall } = firewallOn(scratch());
    firewall.update({
      type: "firewall-rules",
      rules: rules(
        { action: "allow", from: { node: "alpha" }, to: {} },
        { action: "deny", from: {}, to: {} },
      ),
    });
    const api = await startAgentApi(firewall);
    await expect(pullAs(api.url, alpha)).resolves.toMatchObject({ files: 1 });
    await expect(pullAs(api.url, beta)).rejects.toMatchObject({ statusCode: 403 });
    // Unsigned: no node rule matches, deny-all does; the connection was accepted (per-request).
    expect(await probe(api.url)).toBe(403);
  });
});

describe("AgentFirewall on the service proxies", () => {
  it("drops connections to a denied service's proxy and leaves the others alone", async () => {
    const { firewall, reports } = firewallOn(scratch());
    firewall.update({
      type: "firewall-rules",
      rules: rules({ action: "deny", from: { cidr: "127.0.0.1/32" }, to: { service: "db" } }),
    });
    const proxies = ["db", "web"].map(
      (service) =>
        new ServiceProxy({
          service,
          listenHost: "127.0.0.1",
          listenPort: 0,
          logger: silentLogger,
          clock: systemClock,
          holdMs: 5_000,
          admit: (socket, name) => firewall.admitProxyConnection(socket, name),
        }),
    );
    const [db, web] = proxies;
    if (db === undefined || web === undefined) throw new Error("two proxies expected");
    for (const proxy of proxies) cleanups.push(() => proxy.close());
    const dbPort = await db.listen();
    await web.listen();

    const exchange = await rawExchange(dbPort);
    expect(exchange.received).toBe("");
    expect(db.stats().connectionsDenied).toBe(1);
    expect(db.stats().connectionsAccepted).toBe(0);

    const client = connect(web.port ?? 0, "127.0.0.1");
    cleanups.push(() => void client.destroy());
    await once(client, "connect");
    const deadlineMs = Date.now() + 5_000;
    while (web.stats().connectionsAccepted === 0 && Date.now() < deadlineMs)
      await new Promise((resolve) => setImmediate(resolve));
    expect(web.stats()).toMatchObject({ connectionsAccepted: 1, connectionsDenied: 0 });
    expect(reports).toEqual([
      expect.objectContaining({
        listener: "service-proxy",
        service: "db",
        localPort: dbPort,
        peerNodeId: null,
      }),
    ]);
    expect(firewall.denials).toEqual({ "agent-api": 0, "service-proxy": 1 });

    // A node rule cannot let a proxy's unsigned client past a later deny.
    firewall.update({
      type: "firewall-rules",
      rules: rules(
        { action: "allow", from: { node: "alpha" }, to: {} },
        { action: "deny", from: {}, to: {} },
      ),
    });
    expect((await rawExchange(web.port ?? 0)).received).toBe("");
    expect(web.stats().connectionsDenied).toBe(1);
  });
});

describe("AgentFirewall rules and reports", () => {
  it("keeps the last pushed rules on disk (0600) for the next start", () => {
    const dataDir = scratch();
    const pushed = rules(
      { action: "allow", from: { cidr: "::1/128" }, to: { port: 7400 } },
      { action: "deny", from: { node: "beta", role: "node" }, to: {} },
    );
    firewallOn(dataDir).firewall.update({ type: "firewall-rules", rules: pushed });
    expect(statSync(join(dataDir, firewallRulesFileName)).mode & 0o777).toBe(0o600);
    expect(firewallOn(dataDir).firewall.rules).toEqual(pushed);
  });

  it("refuses to start on a damaged rules file, saying what to do", () => {
    const dataDir = scratch();
    writeFileSync(join(dataDir, firewallRulesFileName), '{"type":"firewall-rules","rules":[{}]}');
    expect(() => firewallOn(dataDir)).toThrow(FirewallRulesFileError);
    expect(() => firewallOn(dataDir)).toThrow(/move it away/);
  });

  it("reports at most reportsPerWindowMax denials per window and sums the rest", async () => {
    const { firewall, clock, reports, channel } = firewallOn(scratch(), {
      reportsPerWindowMax: 3,
    });
    firewall.update({
      type: "firewall-rules",
      rules: rules({ action: "deny", from: {}, to: {} }),
    });
    const api = await startAgentApi(firewall);
    for (let attempt = 0; attempt < 10; attempt += 1) await rawExchange(api.port);
    expect(firewall.denials["agent-api"]).toBe(10);
    expect(reports.map((report) => report.deniedCount)).toEqual([1, 1, 1]);

    clock.runUntil(clock.nowMs() + 10_000, noEvents);
    expect(reports.map((report) => report.deniedCount)).toEqual([1, 1, 1, 7]);

    // With the channel down nothing is lost: the count waits for the next report that goes out.
    channel.up = false;
    for (let attempt = 0; attempt < 2; attempt += 1) await rawExchange(api.port);
    clock.runUntil(clock.nowMs() + 10_000, noEvents);
    channel.up = true;
    clock.runUntil(clock.nowMs() + 10_000, noEvents);
    expect(reports.map((report) => report.deniedCount)).toEqual([1, 1, 1, 7, 2]);
    const reported = reports.reduce((sum, report) => sum + report.deniedCount, 0);
    expect(reported).toBe(firewall.denials["agent-api"]);
  });
});
