import { describe, expect, it } from "vitest";
import { NonceCache } from "./nonce-cache.ts";
import {
  canonicalPeerRequest,
  passesInOpenFleet,
  peerHeaders,
  peerRejections,
  serverPeerReceiver,
  statusOfPeerRejection,
  verifyPeerRequest,
  type PeerRejection,
  type PeerVerification,
} from "./peer-request.ts";

// A fake signature scheme: the "signature" of a text with key K is `K:` + the text, base64.
// The decision logic is what is under test here; real Ed25519 runs in the runtime's tests.
const fakeSign = (text: string, key: string) => btoa(`${key}:${text}`);
const fakeVerify = (text: string, signature: Uint8Array, key: string) =>
  new TextDecoder().decode(signature) === `${key}:${text}`;

const nowMs = 1_000_000;
const keys: Record<string, string> = { "node-a": "key-a", "node-b": "key-b" };

function verification(
  nonces = new NonceCache({ windowMs: 30_000, noncesMax: 100 }, 0),
  receiver = "node-b",
) {
  return {
    nowMs,
    skewMs: 30_000,
    receiver,
    publicKeyOf: (nodeId: string) => keys[nodeId],
    verify: fakeVerify,
    nonces,
  } satisfies PeerVerification<string>;
}

interface Signed {
  nodeId: string;
  signingKey: string;
  /** The receiver in the signed text. */
  receiver: string;
  /** The receiver header sent (default: the signed one). */
  receiverHeader: string;
  timestampMs: number;
  nonce: string;
  method: string;
  path: string;
  bodySha256: string | undefined;
}

function signedHeaders(overrides: Partial<Signed> = {}): Record<string, string> {
  const request: Signed = {
    nodeId: "node-a",
    signingKey: "key-a",
    receiver: "node-b",
    receiverHeader: overrides.receiver ?? "node-b",
    timestampMs: nowMs,
    nonce: "nonce-1",
    method: "GET",
    path: "/v1/services/db/data?quiesce=1",
    bodySha256: undefined,
    ...overrides,
  };
  return {
    [peerHeaders.node]: request.nodeId,
    [peerHeaders.timestamp]: String(request.timestampMs),
    [peerHeaders.nonce]: request.nonce,
    [peerHeaders.receiver]: request.receiverHeader,
    [peerHeaders.signature]: fakeSign(
      canonicalPeerRequest({
        method: request.method,
        pathAndQuery: request.path,
        timestampMs: request.timestampMs,
        nonce: request.nonce,
        nodeId: request.nodeId,
        receiver: request.receiver,
        bodySha256: request.bodySha256,
      }),
      request.signingKey,
    ),
  };
}

const received = (
  headers: Record<string, string | undefined>,
  overrides: { method?: string; path?: string; bodySha256?: string } = {},
) => ({
  method: overrides.method ?? "GET",
  pathAndQuery: overrides.path ?? "/v1/services/db/data?quiesce=1",
  headers,
  bodySha256: overrides.bodySha256,
});

describe("canonical peer request", () => {
  it("is one field per line, version first, the receiver named, '-' for no body", () => {
    expect(
      canonicalPeerRequest({
        method: "get",
        pathAndQuery: "/v1/blobs/a?x=1",
        timestampMs: 5,
        nonce: "n",
        nodeId: "node-a",
        receiver: serverPeerReceiver,
        bodySha256: undefined,
      }),
    ).toBe("edgeward-peer-v2\nGET\n/v1/blobs/a?x=1\n5\nn\nnode-a\n@server\n-");
    expect(
      canonicalPeerRequest({
        method: "PUT",
        pathAndQuery: "/v1/blobs/a",
        timestampMs: 5,
        nonce: "n",
        nodeId: "node-a",
        receiver: "node-b",
        bodySha256: "ab12",
      }).endsWith("\nab12"),
    ).toBe(true);
  });
});

describe("verifying a peer request", () => {
  it("accepts a request signed by the node it names", () => {
    expect(verifyPeerRequest(received(signedHeaders()), verification())).toEqual({
      ok: true,
      nodeId: "node-a",
    });
  });

  it("accepts a body whose hash was signed", () => {
    const headers = signedHeaders({ method: "PUT", path: "/v1/blobs/x", bodySha256: "ff00" });
    const verdict = verifyPeerRequest(
      received(headers, { method: "PUT", path: "/v1/blobs/x", bodySha256: "ff00" }),
      verification(),
    );
    expect(verdict.ok).toBe(true);
  });

  it.each<
    [
      string,
      Record<string, string | undefined>,
      ReturnType<typeof received>["bodySha256"],
      PeerRejection,
    ]
  >([
    ["unsigned", {}, undefined, "unsigned"],
    [
      "missing the signature",
      { ...signedHeaders(), [peerHeaders.signature]: undefined },
      undefined,
      "malformed",
    ],
    [
      "timestamp not a number",
      { ...signedHeaders(), [peerHeaders.timestamp]: "soon" },
      undefined,
      "malformed",
    ],
    [
      "signature not base64",
      { ...signedHeaders(), [peerHeaders.signature]: "***" },
      undefined,
      "malformed",
    ],
    ["nonce too long", signedHeaders({ nonce: "n".repeat(300) }), undefined, "malformed"],
    [
      "unknown node",
      signedHeaders({ nodeId: "node-z", signingKey: "key-z" }),
      undefined,
      "unknown-node",
    ],
    ["forged: wrong key", signedHeaders({ signingKey: "key-evil" }), undefined, "bad-signature"],
    [
      "impersonation: node B signing as A",
      signedHeaders({ signingKey: "key-b" }),
      undefined,
      "bad-signature",
    ],
    [
      "another path than signed",
      signedHeaders({ path: "/v1/services/other/data" }),
      undefined,
      "bad-signature",
    ],
    ["another method than signed", signedHeaders({ method: "DELETE" }), undefined, "bad-signature"],
    ["another body than signed", signedHeaders({ bodySha256: "aaaa" }), "bbbb", "bad-signature"],
    [
      "without a receiver",
      { ...signedHeaders(), [peerHeaders.receiver]: undefined },
      undefined,
      "malformed",
    ],
    [
      "whose receiver header was changed (forged: the signature names another)",
      signedHeaders({ receiver: "node-c", receiverHeader: "node-b" }),
      undefined,
      "bad-signature",
    ],
    [
      "signed for another node (a replay across receivers)",
      signedHeaders({ receiver: "node-c" }),
      undefined,
      "wrong-receiver",
    ],
    [
      "signed for the server",
      signedHeaders({ receiver: serverPeerReceiver }),
      undefined,
      "wrong-receiver",
    ],
    ["31 s old", signedHeaders({ timestampMs: nowMs - 31_000 }), undefined, "stale"],
    ["31 s in the future", signedHeaders({ timestampMs: nowMs + 31_000 }), undefined, "stale"],
  ])("rejects a request %s", (_name, headers, bodySha256, reason) => {
    const verdict = verifyPeerRequest(
      received(headers, bodySha256 === undefined ? {} : { bodySha256 }),
      verification(),
    );
    expect(verdict.ok ? "ok" : verdict.reason).toBe(reason);
  });

  it("accepts 30 s of skew either way", () => {
    for (const timestampMs of [nowMs - 30_000, nowMs + 30_000])
      expect(
        verifyPeerRequest(
          received(signedHeaders({ timestampMs, nonce: `n${timestampMs}` })),
          verification(),
        ).ok,
      ).toBe(true);
  });

  it("rejects a replay, and a forgery does not use up the genuine nonce", () => {
    const nonces = new NonceCache({ windowMs: 30_000, noncesMax: 100 }, 0);
    const forged = signedHeaders({ signingKey: "key-evil", nonce: "shared" });
    const genuine = signedHeaders({ nonce: "shared" });
    expect(verifyPeerRequest(received(forged), verification(nonces)).ok).toBe(false);
    expect(verifyPeerRequest(received(genuine), verification(nonces)).ok).toBe(true);
    const replay = verifyPeerRequest(received(genuine), verification(nonces));
    expect(replay.ok ? "ok" : replay.reason).toBe("replayed");
  });

  it("refuses a request signed for A at B, and takes no nonce for it", () => {
    const nonces = new NonceCache({ windowMs: 30_000, noncesMax: 100 }, 0);
    const forA = signedHeaders({ receiver: "node-a", nonce: "for-a" });
    const atB = verifyPeerRequest(received(forA), verification(nonces, "node-b"));
    expect(atB).toMatchObject({ ok: false, reason: "wrong-receiver", nodeId: "node-a" });
    const atServer = verifyPeerRequest(received(forA), verification(nonces, serverPeerReceiver));
    expect(atServer.ok ? "ok" : atServer.reason).toBe("wrong-receiver");
    expect(verifyPeerRequest(received(forA), verification(nonces, "node-a")).ok).toBe(true);
  });

  it("accepts a request signed for the server only at the server", () => {
    const headers = signedHeaders({ receiver: serverPeerReceiver });
    expect(
      verifyPeerRequest(received(headers), verification(undefined, serverPeerReceiver)).ok,
    ).toBe(true);
    const atNodeServer = verifyPeerRequest(received(headers), verification(undefined, "server"));
    expect(atNodeServer.ok ? "ok" : atNodeServer.reason).toBe("wrong-receiver");
  });

  it("refuses a v1 signature (no receiver in the text)", () => {
    const v1Text = [
      "edgeward-peer-v1",
      "GET",
      "/v1/services/db/data?quiesce=1",
      String(nowMs),
      "nonce-1",
      "node-a",
      "-",
    ].join("\n");
    const headers = { ...signedHeaders(), [peerHeaders.signature]: fakeSign(v1Text, "key-a") };
    const verdict = verifyPeerRequest(received(headers), verification());
    expect(verdict.ok ? "ok" : verdict.reason).toBe("bad-signature");
    const v1Headers = { ...headers, [peerHeaders.receiver]: undefined };
    const withoutReceiver = verifyPeerRequest(received(v1Headers), verification());
    expect(withoutReceiver.ok ? "ok" : withoutReceiver.reason).toBe("malformed");
  });

  it("an open fleet lets only unsigned requests and never-enrolled nodes through", () => {
    expect(peerRejections.filter(passesInOpenFleet)).toEqual(["unsigned", "unknown-node"]);
  });

  it("maps rejections to 401 (not proven) or 403 (proven but refused)", () => {
    expect(statusOfPeerRejection("unsigned")).toBe(401);
    expect(statusOfPeerRejection("bad-signature")).toBe(401);
    expect(statusOfPeerRejection("unknown-node")).toBe(401);
    expect(statusOfPeerRejection("replayed")).toBe(403);
    expect(statusOfPeerRejection("stale")).toBe(403);
    expect(statusOfPeerRejection("wrong-receiver")).toBe(403);
  });
});
