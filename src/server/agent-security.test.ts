// A secure fleet in one process, for what the server decides about agents' security: the
// firewall rules it pushes each agent (and the denials they report), revocation closing live
// sessions at once, and a quarantined node's key leaving every other agent's list.

import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { testResources } from "../agent/agent-test-support.ts";
import { WebSocket } from "ws";
import type { FirewallRulesMessage } from "../api/service-messages.ts";
import { firewallRulesFileName } from "../agent/agent-firewall.ts";
import { peerIdentitiesFileName } from "../agent/peer-security.ts";
import { securitySchema, type SecuritySpec } from "../core/spec/security-schema.ts";
import { createPeerRequestSigner } from "../runtime/security/peer-signing.ts";
import { messageText } from "../runtime/websocket-text.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { rawGet, sealedFile, startTestFleet, waitFor } from "./fleet-test-support.ts";
import { credentialRevokedClose } from "./live-sessions.ts";
import type { RunningServer } from "./main.ts";

const { cleanups } = testResources("agent-security");

const logger = pino({
  level: process.env["DEBUG_AGENT_SECURITY_TEST"] === undefined ? "silent" : "info",
});

async function secureFleet(nodeIds: readonly string[], spec?: SecuritySpec) {
  const { server, admin, agents, events } = await startTestFleet({
    prefix: "agent-security",
    nodeIds,
    logger,
    cleanups,
    server: { security: { tls: false, enforce: true, ...(spec === undefined ? {} : { spec }) } },
  });
  const agent = (nodeId: string) => {
    const found = agents.get(nodeId);
    if (found === undefined) throw new Error(`no agent ${nodeId}`);
    return found;
  };
  /**
   * Signature headers of a GET by `nodeId` for `receiver` with its own enrolled key (from its
   * data dir).
   */
  const signedBy = (nodeId: string, receiver: string, pathAndQuery: string) =>
    createPeerRequestSigner(
      nodeId,
      createPrivateKey(sealedFile(agent(nodeId).dataDir, "node.key") ?? ""),
      systemClock,
    )({ receiver, method: "GET", pathAndQuery });
  return { server, admin, agent, events, signedBy };
}

function cachedFile<Value>(path: string): Value | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Value) : undefined;
}

describe("firewall rules pushed to agents", () => {
  it("gives each agent its rules; a denied node gets 403 and a firewall.denied event", async () => {
    const spec = securitySchema.parse({
      network: {
        firewall: [
          { action: "deny", from: { node: "edge-b" }, nodes: ["edge-a"] },
          { action: "allow", from: { cidr: "127.0.0.0/8" } },
          { action: "allow", from: { cidr: "::1/128" } },
          { action: "deny" },
        ],
      },
    });
    const { server, admin, agent, events, signedBy } = await secureFleet(
      ["edge-a", "edge-b", "edge-c"],
      spec,
    );
    const rulesOf = (nodeId: string) =>
      cachedFile<FirewallRulesMessage>(join(agent(nodeId).dataDir, firewallRulesFileName))?.rules;
    await waitFor(
      () => rulesOf("edge-a")?.length === 4 && rulesOf("edge-b")?.length === 3,
      "the rules on disk",
    );
    expect(rulesOf("edge-a")?.[0]).toEqual({
      index: 0,
      action: "deny",
      from: { node: "edge-b" },
      to: {},
    });
    expect(rulesOf("edge-b")?.map((rule) => rule.index)).toEqual([1, 2, 3]);

    // edge-c may copy from edge-a (404: edge-a runs no such service), edge-b may not.
    const path = "/v1/services/historian/data";
    expect(await rawGet(`${agent("edge-a").url}${path}`, signedBy("edge-c", "edge-a", path))).toBe(
      404,
    );
    expect(await rawGet(`${agent("edge-a").url}${path}`, signedBy("edge-b", "edge-a", path))).toBe(
      403,
    );
    // The rule guards edge-a only: edge-b's own data route still answers edge-c.
    expect(await rawGet(`${agent("edge-b").url}${path}`, signedBy("edge-c", "edge-b", path))).toBe(
      404,
    );
    // Probes from the server's loopback address pass: the fleet stays healthy.
    expect(await rawGet(`${agent("edge-a").url}/healthz`)).toBe(200);

    await waitFor(
      () => events.some((event) => event.type === "firewall.denied"),
      "the denial to become an event",
    );
    expect(events.find((event) => event.type === "firewall.denied")).toMatchObject({
      type: "firewall.denied",
      node: "edge-a",
      source: "node:edge-b",
      severity: "medium",
      count: 1,
    });
    const recorded = (server.plane.components.ledger?.store.entries(0, 1_000) ?? []).map(
      (entry) => JSON.parse(entry.encoded) as { kind: string; data: { type?: string } },
    );
    expect(recorded.find((entry) => entry.data.type === "firewall.denied")).toMatchObject({
      kind: "security.event",
      data: { source: "node:edge-b", details: { node: "edge-a", count: 1 } },
    });
    const metrics = await server.app.inject({ method: "GET", url: "/metrics", headers: admin });
    expect(metrics.body).toContain(
      'edgeward_firewall_denials_total{node="edge-a",listener="agent-api"} 1',
    );
  }, 60_000);
});

describe("revocation closes live sessions", () => {
  async function enrolledChannel(server: RunningServer, nodeId: string) {
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const joined = await server.app.inject({
      method: "POST",
      url: "/v1/tokens/join",
      headers: admin,
      payload: { nodeId },
    });
    const { publicKey } = generateKeyPairSync("ed25519");
    const enrolled = await server.app.inject({
      method: "POST",
      url: "/v1/nodes/enrol",
      payload: {
        joinToken: joined.json<{ token: string }>().token,
        publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
      },
    });
    expect(enrolled.statusCode, enrolled.body).toBe(200);
    const credential = enrolled.json<{ credential: string }>().credential;
    const headers = { authorization: `Bearer ${credential}` };
    const registered = await server.app.inject({
      method: "POST",
      url: "/v1/nodes/register",
      headers,
      payload: { nodeId, incarnation: 1, agentUrl: "http://127.0.0.1:1" },
    });
    expect(registered.statusCode, registered.body).toBe(200);
    const socket = new WebSocket(
      `${server.url.replace("http", "ws")}/v1/agents/connect?nodeId=${nodeId}&incarnation=1`,
      { headers },
    );
    cleanups.push(() => socket.terminate());
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
    );
    await new Promise<void>((resolve, reject) => {
      socket.on("message", (data) => {
        if ((JSON.parse(messageText(data)) as { type: string }).type === "welcome") resolve();
      });
      socket.once("error", reject);
    });
    const tokenId = (
      JSON.parse(Buffer.from(credential.split(".")[1] ?? "", "base64url").toString("utf8")) as {
        jti: string;
      }
    ).jti;
    return { socket, closed, tokenId };
  }

  it("closes a node's channel with 4401 when its token or its subject is revoked", async () => {
    const { server } = await secureFleet([]);
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const one = await enrolledChannel(server, "edge-1");
    const two = await enrolledChannel(server, "edge-2");
    const three = await enrolledChannel(server, "edge-3");
    expect(server.security.sessions.size).toBe(3);

    const byId = await server.app.inject({
      method: "POST",
      url: "/v1/tokens/revoke",
      headers: admin,
      payload: { id: one.tokenId },
    });
    expect(byId.statusCode, byId.body).toBe(200);
    expect(await one.closed).toEqual({
      code: credentialRevokedClose.code,
      reason: credentialRevokedClose.reason,
    });

    const bySubject = await server.app.inject({
      method: "POST",
      url: "/v1/tokens/revoke",
      headers: admin,
      payload: { subject: "edge-2" },
    });
    expect(bySubject.statusCode, bySubject.body).toBe(200);
    expect((await two.closed).code).toBe(credentialRevokedClose.code);

    // Someone else's revocation leaves a channel open.
    expect(three.socket.readyState).toBe(WebSocket.OPEN);
    expect(server.security.sessions.size).toBe(1);
  });

  it("closes a quarantined node's channel at once", async () => {
    const { server } = await secureFleet([]);
    const node = await enrolledChannel(server, "edge-q");
    const principal = { kind: "node", subject: "edge-q", roles: ["node"] } as const;
    for (const activity of ["replay", "bad_signature", "impersonation"] as const)
      server.security.reportActivity(principal, activity, `test: ${activity}`);
    expect((await node.closed).code).toBe(credentialRevokedClose.code);
  });
});

describe("quarantine", () => {
  it("drops the node's key from every other agent, which then refuses its signed requests", async () => {
    const { server, agent, signedBy } = await secureFleet(["edge-a", "edge-b"]);
    const keysOn = (nodeId: string) =>
      (
        JSON.parse(sealedFile(agent(nodeId).dataDir, peerIdentitiesFileName) ?? "{}") as {
          keys?: Record<string, string>;
        }
      ).keys ?? {};
    await waitFor(() => "edge-b" in keysOn("edge-a"), "edge-a to know edge-b's key");
    const path = "/v1/services/historian/data";
    expect(await rawGet(`${agent("edge-a").url}${path}`, signedBy("edge-b", "edge-a", path))).toBe(
      404,
    );

    const principal = { kind: "node", subject: "edge-b", roles: ["node"] } as const;
    for (const activity of ["replay", "bad_signature", "impersonation"] as const)
      server.security.reportActivity(principal, activity, `test: ${activity}`);

    await waitFor(() => !("edge-b" in keysOn("edge-a")), "edge-b's key to leave edge-a");
    expect(Object.keys(keysOn("edge-a"))).toEqual(["edge-a"]);
    // Signed with its genuine key, edge-b is now an unknown node to edge-a.
    expect(await rawGet(`${agent("edge-a").url}${path}`, signedBy("edge-b", "edge-a", path))).toBe(
      401,
    );
    await waitFor(
      () => !server.plane.components.links.connected("edge-b"),
      "edge-b's channel to close",
    );
  }, 60_000);
});
