// Access control through the real server: credentials, roles, per-object checks, token
// lifecycle (expiry, revocation, forgery, single-use join tokens, renewal proofs), security
// events and quarantine, TLS with the fleet's CA, and fuzzing of every route.

import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { InjectOptions } from "fastify";
import { SignJWT } from "jose";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { FleetEvent } from "../api/contract.ts";
import { detectorOptionsFor } from "../core/membership/detector-options.ts";
import { securitySchema } from "../core/spec/security-schema.ts";
import type { Clock } from "../ports/clock.ts";
import { readAdminTokenFile } from "../runtime/security/admin-token-file.ts";
import { MemoryStore } from "../runtime/store/memory-store.ts";
import { startServer, type RunningServer, type ServerSecurityOptions } from "./main.ts";
import { renewProofText } from "./routes/security.ts";

const servers: RunningServer[] = [];
const directories: string[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

/** A clock the test sets; nothing scheduled ever runs (detection is not under test here). */
function frozenClock(startMs: number) {
  const state = { nowMs: startMs };
  const clock: Clock = { nowMs: () => state.nowMs, schedule: () => () => {} };
  return { clock, state };
}

async function secureServer(
  options: { clock?: Clock; security?: Partial<ServerSecurityOptions> } = {},
) {
  const dataDir = mkdtempSync(join(tmpdir(), "edgeward-security-"));
  directories.push(dataDir);
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
    logger: pino({ level: "silent" }),
    store: new MemoryStore(),
    prober: () => Promise.resolve(undefined),
    security: { tls: false, enforce: true, ...options.security },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  servers.push(server);
  return { server, dataDir };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const call = (server: RunningServer, token: string | undefined, options: InjectOptions) =>
  server.app.inject({
    ...options,
    headers: { ...(token ? bearer(token) : {}), ...options.headers },
  });

async function userToken(server: RunningServer, role: string, ttlSeconds?: number) {
  const response = await call(server, server.adminToken, {
    method: "POST",
    url: "/v1/tokens",
    payload: { role, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) },
  });
  expect(response.statusCode).toBe(200);
  return response.json<{ token: string; id: string }>();
}

interface EnrolledNode {
  nodeId: string;
  credential: string;
  privateKey: KeyObject;
}

async function joinToken(server: RunningServer, nodeId: string): Promise<string> {
  const response = await call(server, server.adminToken, {
    method: "POST",
    url: "/v1/tokens/join",
    payload: { nodeId },
  });
  expect(response.statusCode).toBe(200);
  return response.json<{ token: string }>().token;
}

function newNodeKey() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKey,
    publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
  };
}

async function enrol(server: RunningServer, nodeId: string): Promise<EnrolledNode> {
  const key = newNodeKey();
  const response = await call(server, undefined, {
    method: "POST",
    url: "/v1/nodes/enrol",
    payload: { joinToken: await joinToken(server, nodeId), publicKey: key.publicKey },
  });
  expect(response.statusCode).toBe(200);
  return {
    nodeId,
    credential: response.json<{ credential: string }>().credential,
    privateKey: key.privateKey,
  };
}

const registration = (nodeId: string) => ({
  nodeId,
  incarnation: 1,
  agentUrl: "http://127.0.0.1:1",
});

async function securityEvents(server: RunningServer) {
  await server.plane.components.events.settled();
  const response = await call(server, server.adminToken, {
    method: "GET",
    url: "/v1/events?limit=1000",
  });
  return response
    .json<{ events: FleetEvent[] }>()
    .events.filter((event) => event.type === "security.event");
}

function renewal(node: EnrolledNode, timestampMs: number, nonce = randomUUID()) {
  const signature = sign(
    null,
    Buffer.from(renewProofText(node.nodeId, timestampMs, nonce)),
    node.privateKey,
  );
  return { timestampMs, nonce, signature: signature.toString("base64") };
}

describe("authentication", () => {
  it("answers GET /v1/nodes without a credential with 401, and /healthz without one with 200", async () => {
    const { server } = await secureServer();
    const response = await call(server, undefined, { method: "GET", url: "/v1/nodes" });
    expect(response.statusCode).toBe(401);
    expect(response.headers["www-authenticate"]).toMatch(/Bearer/);
    expect(response.json()).toMatchObject({ error: "unauthenticated" });
    expect((await call(server, undefined, { method: "GET", url: "/healthz" })).statusCode).toBe(
      200,
    );
    expect(
      (await call(server, server.adminToken, { method: "GET", url: "/v1/nodes" })).statusCode,
    ).toBe(200);
  });

  it("writes the bootstrap admin credential to a sealed 0600 file the CLI can open", async () => {
    const { server, dataDir } = await secureServer();
    const path = join(dataDir, "admin.token");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).not.toContain(server.adminToken);
    expect(readAdminTokenFile(dataDir, {})).toBe(server.adminToken);
  });

  it("rejects expired, revoked, forged, tampered and wrong-kind tokens", async () => {
    const { clock, state } = frozenClock(1_800_000_000_000);
    const { server } = await secureServer({ clock });
    const get = (token: string) => call(server, token, { method: "GET", url: "/v1/nodes" });

    const shortLived = await userToken(server, "viewer", 60);
    expect((await get(shortLived.token)).statusCode).toBe(200);
    state.nowMs += 120_000;
    const expired = await get(shortLived.token);
    expect(expired.statusCode).toBe(401);
    expect(expired.json()).toMatchObject({ error: "credential_expired" });

    const revoked = await userToken(server, "viewer");
    // Used once (its signature is then remembered), so the revocation must beat the cache.
    expect((await get(revoked.token)).statusCode).toBe(200);
    const revocation = await call(server, server.adminToken, {
      method: "POST",
      url: "/v1/tokens/revoke",
      payload: { id: revoked.id },
    });
    expect(revocation.statusCode).toBe(200);
    expect((await get(revoked.token)).json()).toMatchObject({ message: /revoked/ });
    const tokenFacts = ledgerData(server).filter((entry) => entry.data.tokenId === revoked.id);
    expect(tokenFacts.map((entry) => entry.kind)).toEqual(["token.issued", "token.revoked"]);
    expect(tokenFacts[1]?.data.reason).toMatch(/^revoked by /);

    const { privateKey } = generateKeyPairSync("ed25519");
    const nowS = Math.floor(state.nowMs / 1_000);
    const forged = await new SignJWT({ kind: "user", roles: ["admin"] })
      .setProtectedHeader({ alg: "EdDSA" })
      .setSubject("mallory")
      .setJti(randomUUID())
      .setIssuer("edgeward-server")
      .setAudience("edgeward")
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setExpirationTime(nowS + 3_600)
      .sign(privateKey);
    expect((await get(forged)).statusCode).toBe(401);

    const viewer = await userToken(server, "viewer");
    const [header, payload, signature] = viewer.token.split(".");
    const elevated = Buffer.from(
      JSON.stringify({
        ...(JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as object),
        roles: ["admin"],
      }),
    ).toString("base64url");
    expect((await get(`${header}.${elevated}.${signature}`)).statusCode).toBe(401);

    const join = await joinToken(server, "edge-1");
    expect((await get(join)).json()).toMatchObject({ statusCode: 401, message: /join token/ });
    expect((await get("not-a-token")).statusCode).toBe(401);

    const events = await securityEvents(server);
    expect(
      events.some((event) => event.type === "security.event" && event.activity === "bad_signature"),
    ).toBe(true);
  });

  it("turns a burst of failed authentications into a security event", async () => {
    const { server } = await secureServer();
    for (let attempt = 0; attempt < 12; attempt += 1)
      await call(server, "garbage", { method: "GET", url: "/v1/nodes" });
    const events = await securityEvents(server);
    expect(events).toEqual([
      expect.objectContaining({
        type: "security.event",
        activity: "failed_auth_burst",
        source: "ip:127.0.0.1",
        severity: "medium",
      }),
    ]);
  });
});

/** Kind and data of every ledger entry, oldest first. */
function ledgerData(server: RunningServer): { kind: string; data: Record<string, unknown> }[] {
  const ledger = server.plane.components.ledger;
  if (ledger === undefined) throw new Error("the server runs without a ledger");
  return ledger.store.entries(0, 1_000).map((entry) => {
    const { kind, data } = JSON.parse(entry.encoded) as {
      kind: string;
      data: Record<string, unknown>;
    };
    return { kind, data };
  });
}

describe("authorisation", () => {
  it("allows and denies per function by role, from built-in and spec rules", async () => {
    const spec = securitySchema.parse({
      roles: [{ name: "quality_engineer" }],
      accessControl: [{ resource: "services", roles: ["quality_engineer"], access: "read" }],
    });
    const { server } = await secureServer({ security: { spec } });
    const viewer = (await userToken(server, "viewer")).token;
    const operator = (await userToken(server, "operator")).token;
    const engineer = (await userToken(server, "quality_engineer")).token;
    const status = async (
      token: string,
      method: "GET" | "POST" | "DELETE",
      url: string,
      payload?: object,
    ) => (await call(server, token, { method, url, ...(payload ? { payload } : {}) })).statusCode;

    expect(await status(viewer, "GET", "/v1/nodes")).toBe(200);
    expect(await status(viewer, "GET", "/v1/services")).toBe(200);
    expect(await status(viewer, "POST", "/v1/services/x/failover", {})).toBe(403);
    expect(await status(viewer, "POST", "/v1/nodes/register", registration("edge-1"))).toBe(403);
    expect(await status(operator, "POST", "/v1/nodes/register", registration("edge-1"))).toBe(200);
    expect(await status(operator, "DELETE", "/v1/nodes/edge-1")).toBe(403);
    expect(await status(operator, "POST", "/v1/tokens", { role: "viewer" })).toBe(403);
    expect(await status(engineer, "GET", "/v1/services")).toBe(200);
    expect(await status(engineer, "GET", "/v1/nodes")).toBe(403);
    expect(await status(server.adminToken, "DELETE", "/v1/nodes/edge-1")).toBe(204);
    expect(await status(server.adminToken, "POST", "/v1/tokens", { role: "janitor" })).toBe(422);
    expect(await status(server.adminToken, "POST", "/v1/tokens", { role: "node" })).toBe(422);
  });

  it("lets a node act only as itself: register, heartbeat, goodbye and channel", async () => {
    const { server } = await secureServer();
    const one = await enrol(server, "edge-1");
    await enrol(server, "edge-2");
    const asOne = (options: InjectOptions) => call(server, one.credential, options);

    expect(
      (await asOne({ method: "POST", url: "/v1/nodes/register", payload: registration("edge-1") }))
        .statusCode,
    ).toBe(200);
    expect(
      (await asOne({ method: "POST", url: "/v1/nodes/register", payload: registration("edge-2") }))
        .statusCode,
    ).toBe(403);
    expect(
      (
        await asOne({
          method: "POST",
          url: "/v1/heartbeats",
          payload: { nodeId: "edge-1", incarnation: 1, sequence: 1 },
        })
      ).statusCode,
    ).toBe(200);
    const batch = {
      heartbeats: [
        { nodeId: "edge-1", incarnation: 1, sequence: 2 },
        { nodeId: "edge-2", incarnation: 1, sequence: 1 },
      ],
    };
    expect(
      (await asOne({ method: "POST", url: "/v1/heartbeats", payload: batch })).statusCode,
    ).toBe(403);
    expect((await asOne({ method: "POST", url: "/v1/nodes/edge-2/goodbye" })).statusCode).toBe(403);
    // Per function: a node credential cannot read services or issue tokens.
    expect((await asOne({ method: "GET", url: "/v1/services" })).statusCode).toBe(403);
    expect(
      (await asOne({ method: "POST", url: "/v1/tokens", payload: { role: "admin" } })).statusCode,
    ).toBe(403);

    const url = `${server.url.replace("http", "ws")}/v1/agents/connect?nodeId=edge-2&incarnation=1`;
    const socket = new WebSocket(url, { headers: bearer(one.credential) });
    const code = await new Promise<number>((resolve) =>
      socket.once("close", (closeCode) => resolve(closeCode)),
    );
    expect(code).toBe(4403);
    const unauthenticated = new WebSocket(url);
    const refused = await new Promise<string>((resolve) =>
      unauthenticated.once("error", (error) => resolve(error.message)),
    );
    expect(refused).toMatch(/401/);
    unauthenticated.terminate();
    socket.terminate();

    const events = await securityEvents(server);
    expect(
      events.filter(
        (event) => event.type === "security.event" && event.activity === "impersonation",
      ),
    ).toHaveLength(1);
  });
});

describe("enrolment and renewal", () => {
  it("refuses a join token used twice, and reports the replay", async () => {
    const { server } = await secureServer();
    const token = await joinToken(server, "edge-1");
    const enrolWith = () =>
      call(server, undefined, {
        method: "POST",
        url: "/v1/nodes/enrol",
        payload: { joinToken: token, publicKey: newNodeKey().publicKey },
      });
    const first = await enrolWith();
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ nodeId: "edge-1", caFingerprint: null });
    const second = await enrolWith();
    expect(second.statusCode).toBe(401);
    expect(second.json()).toMatchObject({ error: "join_token_used" });
    const events = await securityEvents(server);
    expect(events).toEqual([expect.objectContaining({ activity: "replay", severity: "high" })]);
  });

  it("renews a node credential with a fresh signed proof; refuses replayed, forged and stale proofs", async () => {
    const { clock, state } = frozenClock(1_800_000_000_000);
    const { server } = await secureServer({ clock });
    const node = await enrol(server, "edge-1");
    const renew = (body: object, token = node.credential) =>
      call(server, token, { method: "POST", url: "/v1/nodes/credential/renew", payload: body });

    const proof = renewal(node, state.nowMs);
    const renewed = await renew(proof);
    expect(renewed.statusCode).toBe(200);
    const fresh = renewed.json<{ credential: string; expiresAtMs: number; renewAtMs: number }>();
    expect(fresh.expiresAtMs - state.nowMs).toBe(24 * 3_600_000);
    expect(fresh.renewAtMs - state.nowMs).toBe(16 * 3_600_000);

    expect((await renew(proof)).json()).toMatchObject({ statusCode: 401, error: "replay" });
    const impostor = { ...node, privateKey: generateKeyPairSync("ed25519").privateKey };
    expect((await renew(renewal(impostor, state.nowMs))).json()).toMatchObject({
      error: "bad_signature",
    });
    expect((await renew(renewal(node, state.nowMs - 3_600_000))).json()).toMatchObject({
      error: "stale_proof",
    });
    const viewer = (await userToken(server, "viewer")).token;
    expect((await renew(renewal(node, state.nowMs), viewer)).statusCode).toBe(403);

    // Three suspicious activities (replay, bad signature, impersonation): quarantined, revoked.
    await call(server, fresh.credential, { method: "POST", url: "/v1/nodes/edge-2/goodbye" });
    const events = await securityEvents(server);
    expect(events.map((event) => (event.type === "security.event" ? event.activity : ""))).toEqual([
      "replay",
      "bad_signature",
      "impersonation",
      "quarantine",
    ]);
    await server.plane.components.events.settled();
    await new Promise((resolve) => setImmediate(resolve));
    const after = await call(server, fresh.credential, {
      method: "POST",
      url: "/v1/nodes/register",
      payload: registration("edge-1"),
    });
    expect(after.statusCode).toBe(401);
    const recorded = ledgerData(server);
    expect(recorded.filter((entry) => entry.kind === "security.event")).toHaveLength(4);
    const revocation = recorded.find((entry) => entry.kind === "token.revoked");
    expect(revocation?.data).toMatchObject({ subject: "edge-1", reason: /^quarantined/ });
  });
});

describe("TLS", () => {
  it("serves HTTPS with the fleet CA, publishes its fingerprint and keeps keys 0600", async () => {
    const { server, dataDir } = await secureServer({ security: { tls: true } });
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const file of ["tls/ca.key", "tls/server.key", "signing.key", "admin.token"])
      expect(statSync(join(dataDir, file)).mode & 0o777).toBe(0o600);
    const ca = readFileSync(join(dataDir, "tls", "ca.crt"), "utf8");
    const body = await new Promise<string>((resolve, reject) => {
      const outgoing = httpsRequest(`${server.url}/v1/ca`, { ca }, (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve(text));
      });
      outgoing.on("error", reject);
      outgoing.end();
    });
    const answer = JSON.parse(body) as { caFingerprint: string };
    expect(answer.caFingerprint).toBe(server.security.caFingerprint);
    const joined = await call(server, server.adminToken, {
      method: "POST",
      url: "/v1/tokens/join",
      payload: { nodeId: "edge-1" },
    });
    const claims = JSON.parse(
      Buffer.from(
        joined.json<{ token: string }>().token.split(".")[1] ?? "",
        "base64url",
      ).toString(),
    ) as { caFingerprint: string };
    expect(claims.caFingerprint).toBe(answer.caFingerprint);
  });
});

describe("fuzzing every route", () => {
  it("never answers with a 5xx, whatever the credential, method, path or body", async () => {
    const { server } = await secureServer();
    await call(server, server.adminToken, {
      method: "POST",
      url: "/v1/nodes/register",
      payload: registration("edge-1"),
    });
    const node = await enrol(server, "edge-1");
    const viewer = (await userToken(server, "viewer")).token;
    const routes = [
      "/healthz",
      "/metrics",
      "/v1/ca",
      "/v1/nodes",
      "/v1/nodes/register",
      "/v1/nodes/edge-1",
      "/v1/nodes/edge-2",
      "/v1/nodes/edge-1/goodbye",
      "/v1/nodes/enrol",
      "/v1/nodes/credential/renew",
      "/v1/heartbeats",
      "/v1/events",
      "/v1/services",
      "/v1/services/production_monitoring",
      "/v1/services/production_monitoring/resolve",
      "/v1/services/production_monitoring/failover",
      "/v1/services/production_monitoring/drill",
      "/v1/failovers",
      "/v1/drills",
      "/v1/tokens",
      "/v1/tokens/join",
      "/v1/tokens/revoke",
    ];
    const credentials = [
      undefined,
      server.adminToken,
      viewer,
      node.credential,
      "x.y.z",
      `${viewer}x`,
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.constantFrom("GET", "POST", "DELETE", "PUT"),
        fc.constantFrom(...credentials),
        fc.oneof(
          fc.json(),
          fc.string(),
          fc
            .record({
              role: fc.oneof(fc.constantFrom("viewer", "admin", "node"), fc.string()),
              ttlSeconds: fc.oneof(fc.integer(), fc.double()),
            })
            .map((value) => JSON.stringify(value)),
          fc
            .record({
              nodeId: fc.constantFrom("edge-1", "edge-2", ""),
              joinToken: fc.string(),
              publicKey: fc.base64String(),
              timestampMs: fc.integer(),
              nonce: fc.string(),
              signature: fc.base64String(),
            })
            .map((value) => JSON.stringify(value)),
        ),
        async (url, method, token, payload) => {
          const response = await call(server, token, {
            method,
            url,
            headers: { "content-type": "application/json" },
            ...(method === "GET" ? {} : { payload }),
          });
          expect(response.statusCode).toBeLessThan(500);
        },
      ),
      { seed: 20261123, numRuns: 600 },
    );
  });
});
