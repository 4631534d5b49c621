// Attacks on the real server's authentication paths: forged, altered, algorithm-confused,
// expired, not-yet-valid, wrong-audience, wrong-kind and revoked Bearer tokens; join tokens
// used twice; node credentials acting as another node; renewal proofs replayed, forged or
// stale; signed peer requests to the REGIONAL blob API with bad signatures, another node's
// name, tampered paths, replayed nonces, stale timestamps, unknown or revoked nodes. Every
// attempt that gets a 2xx is an accepted forgery.

import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
  type KeyObject,
} from "node:crypto";
import { performance } from "node:perf_hooks";
import { SignJWT, exportJWK } from "jose";
import type { FleetEvent } from "../../src/api/contract.ts";
import type { Clock } from "../../src/ports/clock.ts";
import { contentSha256Header } from "../../src/runtime/backup/blob-store-http-handler.ts";
import { serverPeerReceiver } from "../../src/core/security/peer-request.ts";
import { createPeerRequestSigner } from "../../src/runtime/security/peer-signing.ts";
import { renewProofText } from "../../src/server/routes/security.ts";
import type { BenchRequest, BenchServer } from "./bench-server.ts";

export interface AttackCategory {
  category: string;
  /** The layer expected to refuse it. */
  what: string;
  attempts: number;
  accepted: number;
  byStatus: Record<string, number>;
  /** An accepted attempt, to reproduce (never a whole token). */
  example?: string;
}

export interface ForgeryResult {
  attempts: number;
  accepted: number;
  seconds: number;
  categories: AttackCategory[];
  byStatus: Record<string, number>;
  /** Security events the server published during the attacks, by activity. */
  securityEvents: Record<string, number>;
  serverAlive: boolean;
}

type Attempt = () => BenchRequest;

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const clockAt = (offsetMs: number): Clock => ({
  nowMs: () => Date.now() + offsetMs,
  schedule: () => () => {},
});

/** Enrols a node with a fresh Ed25519 key through the API, as an agent does. */
async function enrol(server: BenchServer, admin: string, nodeId: string) {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const join = await call(server, admin, "POST", "/v1/tokens/join", { nodeId });
  const joinToken = (JSON.parse(join.body) as { token: string }).token;
  const enrolled = await call(server, undefined, "POST", "/v1/nodes/enrol", {
    joinToken,
    publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
  });
  if (enrolled.statusCode !== 200) throw new Error(`enrolment of ${nodeId}: ${enrolled.body}`);
  return {
    nodeId,
    privateKey,
    joinToken,
    credential: (JSON.parse(enrolled.body) as { credential: string }).credential,
  };
}

/** Set-up and bookkeeping requests wait out the rate limit (a server with a strict one). */
const rateLimitedRetriesMax = 30;

/** A set-up or bookkeeping request (not an attack); waits out the rate limit if it hits it. */
async function call(
  server: BenchServer,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
) {
  for (let attempt = 1; ; attempt++) {
    const response = await server.request({
      method,
      path,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (response.statusCode !== 429 || attempt >= rateLimitedRetriesMax) return response;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

const bearerGet = (token: string, path = "/v1/nodes"): BenchRequest => ({
  method: "GET",
  path,
  headers: { authorization: `Bearer ${token}` },
});
const bearerPost = (token: string, path: string, body: unknown): BenchRequest => ({
  method: "POST",
  path,
  headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  body: JSON.stringify(body),
});

export async function attackServer(
  server: BenchServer,
  options: {
    attemptsPerCategory: number;
    concurrency: number;
    /** A viewer token issued with a 60 s life before the fuzz run; expired by now. */
    expiredIssued?: { token: string; expiresAtMs: number };
  },
): Promise<ForgeryResult> {
  const perCategory = options.attemptsPerCategory;
  const admin = server.adminToken;
  const signingKey = createPrivateKey(server.secretFile("signing.key"));
  const serverPublicKey = createPublicKey(signingKey);
  const attacker = generateKeyPairSync("ed25519");
  const nowS = () => Math.floor(Date.now() / 1_000);
  const claims = (overrides: Record<string, unknown> = {}) => ({
    kind: "user",
    roles: ["admin"],
    sub: "mallory",
    jti: randomUUID(),
    iss: "edgeward-server",
    aud: "edgeward",
    iat: nowS(),
    nbf: nowS(),
    exp: nowS() + 3_600,
    ...overrides,
  });
  const signWith = async (key: KeyObject, payload: Record<string, unknown>, header = {}) =>
    new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", typ: "JWT", ...header }).sign(key);
  const unsignedToken = (header: object, payload: object, signature = "") =>
    `${base64url(header)}.${base64url(payload)}.${signature}`;

  // Principals and material, all obtained through the API.
  const viewer = JSON.parse(
    (await call(server, admin, "POST", "/v1/tokens", { role: "viewer" })).body,
  ) as { token: string };
  const nodes = {
    one: await enrol(server, admin, "bench-edge-1"),
    two: await enrol(server, admin, "bench-edge-2"),
    renewer: await enrol(server, admin, "bench-edge-3"),
    revoked: await enrol(server, admin, "bench-edge-4"),
  };
  for (const node of [nodes.one, nodes.two])
    await call(server, node.credential, "POST", "/v1/nodes/register", {
      nodeId: node.nodeId,
      incarnation: 1,
    });
  const revokedTokens: string[] = [];
  for (let index = 0; index < 20; index++) {
    const issued = JSON.parse(
      (
        await call(server, admin, "POST", "/v1/tokens", {
          role: "operator",
          subject: `revoked-${index}`,
        })
      ).body,
    ) as { token: string; id: string };
    await call(
      server,
      admin,
      "POST",
      "/v1/tokens/revoke",
      index % 2 === 0 ? { id: issued.id } : { subject: `revoked-${index}` },
    );
    revokedTokens.push(issued.token);
  }
  await call(server, admin, "POST", "/v1/tokens/revoke", { subject: nodes.revoked.nodeId });
  const joinTokensUsed: string[] = [];
  for (let index = 0; index < 25; index++)
    joinTokensUsed.push((await enrol(server, admin, `bench-join-${index}`)).joinToken);
  const joinIssued = JSON.parse(
    (await call(server, admin, "POST", "/v1/tokens/join", { nodeId: "bench-edge-9" })).body,
  ) as { token: string };
  const [viewerHeader, viewerPayload, viewerSignature] = viewer.token.split(".") as [
    string,
    string,
    string,
  ];
  const viewerClaims = JSON.parse(Buffer.from(viewerPayload, "base64url").toString()) as object;

  // Tokens are made ahead, so the attack loop measures the server, not jose.
  const many = async (make: (index: number) => Promise<string>) =>
    Promise.all(Array.from({ length: Math.min(perCategory, 200) }, (_, index) => make(index)));
  const cycle =
    (values: readonly string[], request: (value: string) => BenchRequest): Attempt =>
    () =>
      request(values[Math.floor(Math.random() * values.length)]!);
  const escalate = (token: string) => bearerPost(token, "/v1/tokens", { role: "admin" });

  const forgedKey = await many(() => signWith(attacker.privateKey, claims()));
  const altered = [
    { roles: ["admin"] },
    { kind: "node", roles: ["node"], sub: "bench-edge-1" },
    { sub: "bootstrap-admin" },
    { exp: nowS() + 10 * 365 * 86_400 },
    { aud: "edgeward", roles: ["admin", "viewer"] },
  ].map(
    (change) => `${viewerHeader}.${base64url({ ...viewerClaims, ...change })}.${viewerSignature}`,
  );
  const algNone = (["none", "None", "NONE", "nOnE"] as const).flatMap((alg) => [
    unsignedToken({ alg, typ: "JWT" }, claims()),
    unsignedToken({ alg }, claims(), viewerSignature),
  ]);
  const publicDer = serverPublicKey.export({ type: "spki", format: "der" });
  const publicPem = serverPublicKey.export({ type: "spki", format: "pem" }).toString();
  const hmacSecrets = [publicDer, Buffer.from(publicPem), publicDer.subarray(-32)];
  const algConfusion = (["HS256", "HS384", "HS512"] as const).flatMap((alg) =>
    hmacSecrets.map((secret) => {
      const input = `${base64url({ alg, typ: "JWT" })}.${base64url(claims())}`;
      const mac = createHmac(`sha${alg.slice(2)}`, secret)
        .update(input)
        .digest("base64url");
      return `${input}.${mac}`;
    }),
  );
  const attackerJwk = await exportJWK(attacker.publicKey);
  const headerInjection = await Promise.all([
    signWith(attacker.privateKey, claims(), { jwk: attackerJwk }),
    signWith(attacker.privateKey, claims(), { kid: "../../signing.key" }),
    signWith(attacker.privateKey, claims(), { jku: "https://127.0.0.1:1/jwks.json" }),
    signWith(attacker.privateKey, claims(), { x5u: "https://127.0.0.1:1/x5u.pem" }),
    signWith(attacker.privateKey, claims(), { crit: ["b64"], b64: false }).catch(() => "a.b.c"),
  ]);
  // Tokens the server's own key signed, with claims it must refuse: what a token the server
  // issued looks like once expired, and what a token of another system would look like.
  const expired = await many((index) =>
    signWith(
      signingKey,
      claims({
        roles: ["viewer"],
        iat: nowS() - 7_200 - index,
        nbf: nowS() - 7_200 - index,
        exp: nowS() - 31 - index * 17,
      }),
    ),
  );
  const notYetValid = await many((index) =>
    signWith(
      signingKey,
      claims({ roles: ["viewer"], nbf: nowS() + 3_600 + index, iat: nowS() + 3_600 + index }),
    ),
  );
  const wrongAudience = await many((index) =>
    signWith(
      signingKey,
      claims({
        roles: ["viewer"],
        aud: ["other-system", ["edgeward", "x"], "Edgeward", "edgeward ", ""][index % 5],
      }),
    ),
  );
  const malformedClaims = await many((index) =>
    signWith(
      signingKey,
      [
        claims({ kind: "root" }),
        claims({ roles: "admin" }),
        claims({ exp: "never" }),
        claims({ exp: nowS() - 10, iat: nowS() }),
        claims({ sub: "x".repeat(300) }),
      ][index % 5]!,
    ),
  );

  const peerPath = "/v1/blobs?prefix=data%2F";
  /** The request most peer forgeries sign: a listing of the server's blob API. */
  const peerGet = { receiver: serverPeerReceiver, method: "GET", pathAndQuery: peerPath } as const;
  const signerOne = createPeerRequestSigner(nodes.one.nodeId, nodes.one.privateKey, clockAt(0));
  const attackerAsTwo = createPeerRequestSigner(nodes.two.nodeId, attacker.privateKey, clockAt(0));
  const oneAsTwo = createPeerRequestSigner(nodes.two.nodeId, nodes.one.privateKey, clockAt(0));
  const unknownNodeKey = generateKeyPairSync("ed25519").privateKey;
  const unknownNode = createPeerRequestSigner("bench-stranger", unknownNodeKey, clockAt(0));
  const revokedNode = createPeerRequestSigner(
    nodes.revoked.nodeId,
    nodes.revoked.privateKey,
    clockAt(0),
  );
  const staleSigners = [-31_000, -3_600_000, 31_000, 86_400_000].map((offsetMs) =>
    createPeerRequestSigner(nodes.one.nodeId, nodes.one.privateKey, clockAt(offsetMs)),
  );
  const signedGet = (headers: Record<string, string>, path = peerPath): BenchRequest => ({
    method: "GET",
    path,
    headers,
  });
  const genuineSigned: Record<string, string>[] = [];
  for (let index = 0; index < 10; index++) {
    let headers = signerOne(peerGet);
    let first = await server.request(signedGet(headers));
    for (let attempt = 1; first.statusCode === 429 && attempt < rateLimitedRetriesMax; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      headers = signerOne(peerGet);
      first = await server.request(signedGet(headers));
    }
    if (first.statusCode !== 200)
      throw new Error(`a genuine signed request was refused: ${first.statusCode} ${first.body}`);
    genuineSigned.push(headers);
  }
  // A genuine renewal, so its proof can be replayed.
  const genuineRenewal = { timestampMs: Date.now(), nonce: randomUUID() };
  const renewed = await call(
    server,
    nodes.renewer.credential,
    "POST",
    "/v1/nodes/credential/renew",
    {
      ...genuineRenewal,
      signature: sign(
        null,
        Buffer.from(
          renewProofText(nodes.renewer.nodeId, genuineRenewal.timestampMs, genuineRenewal.nonce),
        ),
        nodes.renewer.privateKey,
      ).toString("base64"),
    },
  );
  if (renewed.statusCode !== 200) throw new Error(`a genuine renewal was refused: ${renewed.body}`);
  const bodyA = Buffer.from("genuine blob");
  const bodyB = Buffer.from("swapped blob");
  const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

  const categories: {
    category: string;
    what: string;
    attempt: Attempt;
    attempts?: number;
  }[] = [
    {
      category: "bearer: signed by another key",
      what: "signature",
      attempt: cycle(forgedKey, escalate),
    },
    {
      category: "bearer: genuine token, altered claims",
      what: "signature",
      attempt: cycle(altered, escalate),
    },
    { category: "bearer: alg none", what: "algorithm", attempt: cycle(algNone, escalate) },
    {
      category: "bearer: alg confusion (HMAC with the server's public key)",
      what: "algorithm",
      attempt: cycle(algConfusion, escalate),
    },
    {
      category: "bearer: injected jwk / kid / jku / x5u / crit headers",
      what: "signature",
      attempt: cycle(headerInjection, escalate),
    },
    {
      category: "bearer: expired (server-signed)",
      what: "claims",
      attempt: cycle(expired, (token) => bearerGet(token)),
    },
    {
      category: "bearer: not yet valid (server-signed)",
      what: "claims",
      attempt: cycle(notYetValid, (token) => bearerGet(token)),
    },
    {
      category: "bearer: wrong audience (server-signed)",
      what: "claims",
      attempt: cycle(wrongAudience, (token) => bearerGet(token)),
    },
    {
      category: "bearer: malformed claims (server-signed)",
      what: "claims",
      attempt: cycle(malformedClaims, (token) => bearerGet(token)),
    },
    {
      category: "bearer: revoked (by id and by subject)",
      what: "revocation",
      attempt: cycle(revokedTokens, (token) => bearerGet(token)),
    },
    {
      category: "bearer: join token used as a credential",
      what: "token kind",
      attempt: cycle([joinIssued.token, ...joinTokensUsed], (token) => bearerGet(token)),
    },
    {
      category: "bearer: viewer asks for admin",
      what: "RBAC",
      attempt: () => escalate(viewer.token),
    },
    {
      category: "join token used twice",
      what: "single use",
      attempt: cycle(joinTokensUsed, (joinToken) => ({
        method: "POST",
        path: "/v1/nodes/enrol",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          joinToken,
          publicKey: generateKeyPairSync("ed25519")
            .publicKey.export({ type: "spki", format: "der" })
            .toString("base64"),
        }),
      })),
    },
    {
      category: "node credential acting as another node",
      what: "per-object check",
      attempt: (() => {
        const targets = [
          () =>
            bearerPost(nodes.one.credential, "/v1/nodes/register", {
              nodeId: nodes.two.nodeId,
              incarnation: 2,
            }),
          () =>
            bearerPost(nodes.one.credential, "/v1/heartbeats", {
              nodeId: nodes.two.nodeId,
              incarnation: 1,
              sequence: 1,
            }),
          () =>
            bearerPost(nodes.one.credential, "/v1/heartbeats", {
              heartbeats: [
                { nodeId: nodes.one.nodeId, incarnation: 1, sequence: 1 },
                { nodeId: nodes.two.nodeId, incarnation: 1, sequence: 1 },
              ],
            }),
          () => bearerPost(nodes.one.credential, `/v1/nodes/${nodes.two.nodeId}/goodbye`, {}),
          () => bearerPost(nodes.one.credential, "/v1/tokens", { role: "admin" }),
          () => bearerGet(nodes.one.credential, "/v1/services"),
        ];
        let next = 0;
        return () => targets[next++ % targets.length]!();
      })(),
    },
    {
      category: "renewal proof: replayed, forged or stale",
      what: "proof of key",
      attempt: (() => {
        const replayedNonce = genuineRenewal.nonce;
        const replayedAtMs = genuineRenewal.timestampMs;
        const proof = (key: KeyObject, timestampMs: number, nonce: string) => ({
          timestampMs,
          nonce,
          signature: sign(
            null,
            Buffer.from(renewProofText(nodes.renewer.nodeId, timestampMs, nonce)),
            key,
          ).toString("base64"),
        });
        const replayed = proof(nodes.renewer.privateKey, replayedAtMs, replayedNonce);
        let next = 0;
        return () => {
          const kind = next++ % 3;
          const body =
            kind === 0
              ? replayed
              : kind === 1
                ? proof(attacker.privateKey, Date.now(), randomUUID())
                : proof(nodes.renewer.privateKey, Date.now() - 3_600_000, randomUUID());
          return bearerPost(nodes.renewer.credential, "/v1/nodes/credential/renew", body);
        };
      })(),
    },
    {
      category: "peer: signed by another key",
      what: "peer signature",
      attempt: () => signedGet(attackerAsTwo(peerGet)),
    },
    {
      category: "peer: node A signs as node B",
      what: "peer signature",
      attempt: () => signedGet(oneAsTwo(peerGet)),
    },
    {
      category: "peer: genuine signature, other method or path",
      what: "peer signature",
      attempt: (() => {
        let next = 0;
        return () => {
          const headers = signerOne(peerGet);
          return next++ % 2 === 0
            ? { method: "DELETE", path: "/v1/blobs/data/x", headers }
            : signedGet(headers, "/v1/blobs?prefix=");
        };
      })(),
    },
    {
      category: "peer: genuine signature for another receiver",
      what: "receiver",
      attempt: (() => {
        let next = 0;
        // Signed for an agent (as captured on the link between agents) or for a node named
        // like the server: both replayed to the server's blob API.
        const receivers = [nodes.two.nodeId, "server"];
        return () =>
          signedGet(
            signerOne({
              receiver: receivers[next++ % receivers.length]!,
              method: "GET",
              pathAndQuery: peerPath,
            }),
          );
      })(),
    },
    {
      category: "peer: genuine PUT, body swapped",
      what: "content digest",
      attempt: () => {
        const path = `/v1/blobs/data/${randomUUID()}`;
        const headers = {
          ...signerOne({
            receiver: serverPeerReceiver,
            method: "PUT",
            pathAndQuery: path,
            bodySha256: sha(bodyA),
          }),
          [contentSha256Header]: sha(bodyA),
        };
        return { method: "PUT", path, headers, body: bodyB };
      },
    },
    {
      category: "peer: replayed nonce",
      what: "nonce cache",
      attempt: cycle(
        genuineSigned.map((headers) => JSON.stringify(headers)),
        (headers) => signedGet(JSON.parse(headers) as Record<string, string>),
      ),
    },
    {
      category: "peer: stale or future timestamp",
      what: "freshness",
      attempt: (() => {
        let next = 0;
        return () => signedGet(staleSigners[next++ % staleSigners.length]!(peerGet));
      })(),
    },
    {
      category: "peer: node never enrolled",
      what: "enrolment",
      attempt: () => signedGet(unknownNode(peerGet)),
    },
    {
      category: "peer: node whose credentials were revoked",
      what: "revocation",
      attempt: () => signedGet(revokedNode(peerGet)),
    },
    {
      category: "peer: unsigned, partial or garbage headers, or a Bearer token",
      what: "peer signature",
      attempt: (() => {
        let next = 0;
        return () => {
          const genuine = signerOne(peerGet);
          const variants: Record<string, string>[] = [
            {},
            { authorization: `Bearer ${admin}` },
            { "x-edgeward-node": nodes.one.nodeId },
            { ...genuine, "x-edgeward-signature": "AAAA" },
            { ...genuine, "x-edgeward-timestamp": "1e99" },
            { ...genuine, "x-edgeward-nonce": "" },
            { ...genuine, "x-edgeward-node": nodes.one.nodeId.toUpperCase() },
          ];
          return signedGet(variants[next++ % variants.length]!);
        };
      })(),
    },
  ];
  if (options.expiredIssued !== undefined) {
    const waitMs = options.expiredIssued.expiresAtMs + 31_000 - Date.now();
    if (waitMs > 0) {
      process.stderr.write(
        `forgery: waiting ${Math.ceil(waitMs / 1_000)} s for the issued token to expire\n`,
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
    const token = options.expiredIssued.token;
    categories.push({
      category: "bearer: issued with a 60 s life, used after it expired",
      what: "claims",
      attempt: () => bearerGet(token),
    });
  }

  const eventsBefore = await lastEventId(server, admin);
  const started = performance.now();
  const results: AttackCategory[] = [];
  for (const category of categories) {
    const total = category.attempts ?? perCategory;
    const result: AttackCategory = {
      category: category.category,
      what: category.what,
      attempts: 0,
      accepted: 0,
      byStatus: {},
    };
    let issued = 0;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (issued < total) {
          issued += 1;
          const request = category.attempt();
          const response = await server.request(request);
          result.attempts += 1;
          const key = String(response.statusCode);
          result.byStatus[key] = (result.byStatus[key] ?? 0) + 1;
          if (response.statusCode >= 200 && response.statusCode < 300) {
            result.accepted += 1;
            result.example ??= `${request.method} ${request.path} -> ${response.statusCode} ${response.body.slice(0, 200)}`;
          }
        }
      }),
    );
    results.push(result);
    process.stderr.write(
      `forgery: ${category.category}: ${result.accepted}/${result.attempts} accepted ${JSON.stringify(result.byStatus)}\n`,
    );
  }
  const seconds = (performance.now() - started) / 1_000;
  const byStatus: Record<string, number> = {};
  for (const result of results)
    for (const [status, count] of Object.entries(result.byStatus))
      byStatus[status] = (byStatus[status] ?? 0) + count;
  return {
    attempts: results.reduce((sum, result) => sum + result.attempts, 0),
    accepted: results.reduce((sum, result) => sum + result.accepted, 0),
    seconds,
    categories: results,
    byStatus,
    securityEvents: await securityEventsSince(server, admin, eventsBefore),
    serverAlive: server.exit === undefined && (await server.healthy()),
  };
}

/** Id of the newest event in the server's stream. */
async function lastEventId(server: BenchServer, admin: string): Promise<number> {
  let afterId = 0;
  for (;;) {
    const page = await eventsPage(server, admin, afterId);
    if (page.length === 0) return afterId;
    afterId = page.at(-1)!.id;
  }
}

async function eventsPage(server: BenchServer, admin: string, afterId: number) {
  const response = await call(server, admin, "GET", `/v1/events?afterId=${afterId}&limit=1000`);
  if (response.statusCode !== 200)
    throw new Error(`GET /v1/events answered ${response.statusCode}: ${response.body}`);
  return (JSON.parse(response.body) as { events: (FleetEvent & { id: number })[] }).events;
}

/** Security events since `afterId`, counted by activity. */
export async function securityEventsSince(
  server: BenchServer,
  admin: string,
  afterId: number,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let cursor = afterId;
  for (;;) {
    const page = await eventsPage(server, admin, cursor);
    if (page.length === 0) return counts;
    for (const event of page)
      if (event.type === "security.event")
        counts[event.activity] = (counts[event.activity] ?? 0) + 1;
    cursor = page.at(-1)!.id;
  }
}
