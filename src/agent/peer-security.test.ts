import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PeerRequestRejectedMessage } from "../api/service-messages.ts";
import type { Clock } from "../ports/clock.ts";
import { silentLogger } from "../ports/logger.ts";
import {
  contentSha256Header,
  createBlobStoreHttpHandler,
} from "../runtime/backup/blob-store-http-handler.ts";
import { DirectoryBlobStore } from "../runtime/backup/directory-blob-store.ts";
import { HttpBlobStore } from "../runtime/backup/http-blob-store.ts";
import { createPeerRequestSigner } from "../runtime/security/peer-signing.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { testSecretFiles } from "../runtime/security/testing.ts";
import {
  createDataTransferHandler,
  DataTransferError,
  pullServiceData,
} from "./data-transfer/data-transfer-http.ts";
import { peerIdentitiesFileName, PeerSecurity } from "./peer-security.ts";
import { testNodeKeys, testResources, type TestNodeKeys } from "./agent-test-support.ts";

const { cleanups, scratch, listen } = testResources("peer");

const offsetClock = (offsetMs: number): Clock => ({
  nowMs: () => Date.now() + offsetMs,
  schedule: (delayMs, callback) => systemClock.schedule(delayMs, callback),
});

const alpha = testNodeKeys("alpha");
const beta = testNodeKeys("beta");
const mallory = testNodeKeys("mallory"); // not enrolled

/** An agent serving the data route and its shard API behind PeerSecurity. */
async function startAgent(
  self: TestNodeKeys,
  options: { required: boolean; enrolled: TestNodeKeys[] },
) {
  const dataDir = scratch();
  const servicesDir = join(dataDir, "services");
  const reports: PeerRequestRejectedMessage[] = [];
  const security = new PeerSecurity(
    { nodeId: self.nodeId, secrets: testSecretFiles(dataDir), requiredUntilTold: true },
    {
      clock: systemClock,
      logger: silentLogger,
      sign: createPeerRequestSigner(self.nodeId, self.privateKey, systemClock),
      report: (message) => {
        reports.push(message);
        return true;
      },
    },
  );
  security.update({
    type: "peer-identities",
    required: options.required,
    keys: Object.fromEntries(options.enrolled.map((known) => [known.nodeId, known.publicKey])),
  });
  const data = createDataTransferHandler({
    dataDirOf: (service) => join(servicesDir, service),
    quiesce: () => Promise.resolve(),
    logger: silentLogger,
    authorize: (request) => security.authorize(request),
  });
  const blobs = createBlobStoreHttpHandler(new DirectoryBlobStore(join(dataDir, "shards")), {
    authorize: (request) => security.authorize(request, contentSha256Header).ok,
  });
  const server = createServer((request, response) => {
    if (data(request, response)) return;
    if (blobs.handles(request.url ?? "")) return blobs(request, response);
    response.writeHead(404).end();
  });
  const url = await listen(server);
  mkdirSync(join(servicesDir, "historian"), { recursive: true });
  writeFileSync(join(servicesDir, "historian", "db.sqlite"), "rows");
  return { url, dataDir, security, reports };
}

function pull(
  fromUrl: string,
  signer: TestNodeKeys | undefined,
  clock: Clock = systemClock,
  fromNode = "alpha",
) {
  const targetDir = join(scratch(), "historian");
  return pullServiceData({
    fromUrl,
    fromNode,
    service: "historian",
    quiesce: true,
    targetDir,
    timeoutMs: 5_000,
    ...(signer === undefined
      ? {}
      : { sign: createPeerRequestSigner(signer.nodeId, signer.privateKey, clock) }),
  }).then(() => readFileSync(join(targetDir, "db.sqlite"), "utf8"));
}

async function refusal(promise: Promise<unknown>): Promise<number | undefined> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DataTransferError);
  return (error as DataTransferError).statusCode;
}

/** Sends a GET with exactly these headers (to replay a captured signature). */
function rawGet(url: string, headers: Record<string, string>): Promise<number> {
  return rawRequest("GET", url, headers);
}

function rawRequest(method: string, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { method, headers }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

describe("signed peer requests between agents", () => {
  it("copies data between two agents when the request is signed by an enrolled node", async () => {
    const source = await startAgent(alpha, { required: true, enrolled: [alpha, beta] });
    expect(await pull(source.url, beta)).toBe("rows");
    expect(source.reports).toEqual([]);
  });

  it("rejects unsigned, forged, impersonated, unknown, stale and replayed requests", async () => {
    const source = await startAgent(alpha, { required: true, enrolled: [alpha, beta] });
    expect(await refusal(pull(source.url, undefined))).toBe(401);
    // Forged: mallory's key, claiming to be beta.
    expect(await refusal(pull(source.url, { ...mallory, nodeId: "beta" }))).toBe(401);
    // Impersonated: alpha's (enrolled) key signing as beta.
    expect(await refusal(pull(source.url, { ...alpha, nodeId: "beta" }))).toBe(401);
    // Not enrolled at all.
    expect(await refusal(pull(source.url, mallory))).toBe(401);
    // Stale: a sender whose clock is a minute behind.
    expect(await refusal(pull(source.url, beta, offsetClock(-60_000)))).toBe(403);
    // Replayed: the very same signed request, twice.
    const path = "/v1/services/historian/data?quiesce=1";
    const headers = createPeerRequestSigner(
      beta.nodeId,
      beta.privateKey,
      systemClock,
    )({
      receiver: "alpha",
      method: "GET",
      pathAndQuery: path,
    });
    expect(await rawGet(`${source.url}${path}`, headers)).toBe(200);
    expect(await rawGet(`${source.url}${path}`, headers)).toBe(403);
    // A signature for another path does not open this one.
    const other = createPeerRequestSigner(
      beta.nodeId,
      beta.privateKey,
      systemClock,
    )({
      receiver: "alpha",
      method: "GET",
      pathAndQuery: "/v1/services/other/data",
    });
    expect(await rawGet(`${source.url}${path}`, other)).toBe(401);

    expect(source.reports.map((report) => report.reason)).toEqual([
      "unsigned",
      "bad-signature",
      "bad-signature",
      "unknown-node",
      "stale",
      "replayed",
      "bad-signature",
    ]);
    expect(source.reports[1]).toMatchObject({
      type: "peer-request-rejected",
      claimedNodeId: "beta",
      path: "/v1/services/historian/data",
      remoteAddress: "127.0.0.1",
    });
    expect(source.security.rejections).toMatchObject({
      unsigned: 1,
      "bad-signature": 3,
      "unknown-node": 1,
      stale: 1,
      replayed: 1,
    });
  });

  it("refuses at agent B a request signed for agent A (a replay across receivers)", async () => {
    const gamma = testNodeKeys("gamma");
    const enrolled = [alpha, beta, gamma];
    const a = await startAgent(alpha, { required: true, enrolled });
    const b = await startAgent(gamma, { required: true, enrolled });
    const path = "/v1/services/historian/data?quiesce=1";
    // Beta signs a data copy for alpha; the request is captured on the way and sent to gamma.
    const forA = createPeerRequestSigner(
      beta.nodeId,
      beta.privateKey,
      systemClock,
    )({ receiver: "alpha", method: "GET", pathAndQuery: path });
    expect(await rawGet(`${b.url}${path}`, forA)).toBe(403);
    // Rewriting the receiver header breaks the signature.
    expect(await rawGet(`${b.url}${path}`, { ...forA, "x-edgeward-receiver": "gamma" })).toBe(401);
    // Alpha, the receiver it was signed for, still takes it once (gamma took no nonce).
    expect(await rawGet(`${a.url}${path}`, forA)).toBe(200);
    // The same through the real client: a copy signed for alpha but sent to gamma's address.
    expect(await refusal(pull(b.url, beta, systemClock, "alpha"))).toBe(403);
    expect(await pull(b.url, beta, systemClock, "gamma")).toBe("rows");

    // A signed EDGE_CLUSTER delete meant for alpha, replayed at gamma's shard API.
    const blobPath = "/v1/blobs/data/ab/abcdef";
    const deleteForA = createPeerRequestSigner(
      beta.nodeId,
      beta.privateKey,
      systemClock,
    )({ receiver: "alpha", method: "DELETE", pathAndQuery: blobPath });
    expect(await rawRequest("DELETE", `${b.url}${blobPath}`, deleteForA)).toBe(403);

    expect(b.reports.map((report) => report.reason)).toEqual([
      "wrong-receiver",
      "bad-signature",
      "wrong-receiver",
      "wrong-receiver",
    ]);
    expect(b.reports[0]).toMatchObject({
      type: "peer-request-rejected",
      claimedNodeId: "beta",
      remoteAddress: "127.0.0.1",
      path: "/v1/services/historian/data",
    });
    expect(b.security.rejections["wrong-receiver"]).toBe(3);
    expect(a.reports).toEqual([]);
  });

  it("in an open fleet (--open-access) takes unsigned requests, but not wrong signatures", async () => {
    const source = await startAgent(alpha, { required: false, enrolled: [alpha, beta] });
    expect(await pull(source.url, undefined)).toBe("rows");
    expect(await pull(source.url, beta)).toBe("rows");
    // Agents of an open fleet never enrolled: their signatures name nodes nobody knows.
    expect(await pull(source.url, mallory)).toBe("rows");
    expect(await refusal(pull(source.url, { ...mallory, nodeId: "beta" }))).toBe(401);
  });

  it("caches the fleet's keys (0600) and uses them after a restart without the server", async () => {
    const source = await startAgent(alpha, { required: true, enrolled: [alpha, beta] });
    const cache = join(source.dataDir, peerIdentitiesFileName);
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    const restarted = new PeerSecurity(
      { nodeId: "alpha", secrets: testSecretFiles(source.dataDir), requiredUntilTold: false },
      {
        clock: systemClock,
        logger: silentLogger,
        sign: createPeerRequestSigner("alpha", alpha.privateKey, systemClock),
        report: () => false,
      },
    );
    expect(restarted.required).toBe(true);
    const headers = createPeerRequestSigner(
      beta.nodeId,
      beta.privateKey,
      systemClock,
    )({
      receiver: "alpha",
      method: "GET",
      pathAndQuery: "/x",
    });
    const fake = { method: "GET", url: "/x", headers, socket: { remoteAddress: "127.0.0.1" } };
    expect(restarted.authorize(fake as never).ok).toBe(true);
  });

  it("an enrolled agent that has heard nothing yet fails closed", () => {
    const security = new PeerSecurity(
      { nodeId: "alpha", secrets: testSecretFiles(scratch()), requiredUntilTold: true },
      {
        clock: systemClock,
        logger: silentLogger,
        sign: createPeerRequestSigner("alpha", alpha.privateKey, systemClock),
        report: () => false,
      },
    );
    const fake = { method: "GET", url: "/x", headers: {}, socket: { remoteAddress: "127.0.0.1" } };
    expect(security.authorize(fake as never)).toMatchObject({ ok: false, statusCode: 401 });
  });

  it("signs the EDGE_CLUSTER blob API: signed writes and reads pass, others get 403", async () => {
    const holder = await startAgent(alpha, { required: true, enrolled: [alpha, beta] });
    const signer = createPeerRequestSigner(beta.nodeId, beta.privateKey, systemClock);
    const signed = new HttpBlobStore({
      baseUrl: holder.url,
      retryCountMax: 0,
      headers: (request) =>
        signer({
          receiver: "alpha",
          method: request.method,
          pathAndQuery: request.pathAndQuery,
          bodySha256: request.contentSha256,
        }),
    });
    cleanups.push(() => signed.close());
    await signed.put("data/ab/abcdef", new TextEncoder().encode("shard"));
    expect(new TextDecoder().decode(await signed.get("data/ab/abcdef"))).toBe("shard");
    expect(await signed.list("data/")).toEqual(["data/ab/abcdef"]);

    const unsigned = new HttpBlobStore({ baseUrl: holder.url, retryCountMax: 0 });
    cleanups.push(() => unsigned.close());
    await expect(unsigned.get("data/ab/abcdef")).rejects.toThrow(/403|not allowed/);
    await expect(unsigned.put("data/ab/other", new TextEncoder().encode("x"))).rejects.toThrow(
      /403|not allowed/,
    );
    expect(holder.reports.map((report) => report.reason)).toEqual(["unsigned", "unsigned"]);
  });
});
