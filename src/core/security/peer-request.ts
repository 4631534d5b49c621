// Signed agent-to-agent (peer) requests: the canonical text a node signs with its enrolled
// Ed25519 key, and the decision whether a received request is genuine, meant for this
// receiver, fresh and new. Pure: the caller hands in the time, its own identity, the fleet's
// enrolled public keys and the signature check.

import type { NonceCache } from "./nonce-cache.ts";

/** The headers a signed peer request carries. */
export const peerHeaders = {
  node: "x-edgeward-node",
  timestamp: "x-edgeward-timestamp",
  nonce: "x-edgeward-nonce",
  /** Whom the sender meant (a node id, or `serverPeerReceiver`); signed, see `canonicalPeerRequest`. */
  receiver: "x-edgeward-receiver",
  signature: "x-edgeward-signature",
} as const;

/**
 * The receiver name of the server's REGIONAL blob API. The `@` keeps it apart from every node
 * id (`[a-z0-9-]`), so a request signed for the server cannot be replayed to a node named
 * "server", nor the other way round.
 */
export const serverPeerReceiver = "@server";

/** Requests whose timestamp is further than this from the receiver's clock are stale. */
export const peerSkewMsDefault = 30_000;
/** Longest node id, nonce and signature accepted in the headers (base64 Ed25519 is 88). */
export const peerHeaderCharactersMax = 256;

/** What is signed; the body is represented by its SHA-256 (hex), or "-" when there is none. */
export interface PeerRequestParts {
  method: string;
  /** Path and query exactly as sent, e.g. `/v1/services/db/data?quiesce=1`. */
  pathAndQuery: string;
  timestampMs: number;
  nonce: string;
  nodeId: string;
  /** The node the request is for (its node id), or `serverPeerReceiver`. */
  receiver: string;
  bodySha256: string | undefined;
}

/**
 * The text a node signs: one field per line, after a version tag so formats never mix. v2
 * names the receiver, so a request captured on its way to one node cannot be replayed to
 * another node or to the server (each receiver has its own nonce cache). v1 (no receiver)
 * is refused: its signatures never verify against a v2 text.
 */
export function canonicalPeerRequest(parts: PeerRequestParts): string {
  return [
    "edgeward-peer-v2",
    parts.method.toUpperCase(),
    parts.pathAndQuery,
    String(parts.timestampMs),
    parts.nonce,
    parts.nodeId,
    parts.receiver,
    parts.bodySha256 === undefined || parts.bodySha256 === "" ? "-" : parts.bodySha256,
  ].join("\n");
}

/** Why a peer request is refused; the order is the order in which they are checked. */
export const peerRejections = [
  "unsigned",
  "malformed",
  "unknown-node",
  "bad-signature",
  "wrong-receiver",
  "stale",
  "replayed",
] as const;

export type PeerRejection = (typeof peerRejections)[number];

export type PeerVerdict =
  | { readonly ok: true; readonly nodeId: string }
  | {
      readonly ok: false;
      readonly reason: PeerRejection;
      /** The claimed node, when the request named one. */
      readonly nodeId: string | undefined;
      readonly message: string;
    };

/** HTTP status for a rejection: 401 when the sender is not proven, 403 when it is refused anyway. */
export function statusOfPeerRejection(reason: PeerRejection): 401 | 403 {
  return reason === "replayed" || reason === "stale" || reason === "wrong-receiver" ? 403 : 401;
}

/**
 * In an open fleet (a server with --open-access) signatures are not required: unsigned
 * requests and requests of nodes that never enrolled pass. A request that names an enrolled
 * node is still checked, so a forged or replayed one is refused even there.
 */
export function passesInOpenFleet(reason: PeerRejection): boolean {
  return reason === "unsigned" || reason === "unknown-node";
}

export interface PeerVerification<PublicKey> {
  nowMs: number;
  skewMs: number;
  /** This receiver's own identity (its node id, or `serverPeerReceiver`): never taken from the request. */
  receiver: string;
  /** The enrolled public key of a node, or undefined for a node the fleet does not know. */
  publicKeyOf: (nodeId: string) => PublicKey | undefined;
  /** True when `signature` (raw bytes) signs `message` with `publicKey`. */
  verify: (message: string, signature: Uint8Array, publicKey: PublicKey) => boolean;
  /** Remembers accepted nonces; its window should be the skew window. */
  nonces: NonceCache;
}

/** Header values as received (node:http gives string | string[] | undefined). */
export type PeerHeaderValues = Record<string, string | string[] | undefined>;

const single = (value: string | string[] | undefined): string | undefined =>
  typeof value === "string" && value.length > 0 && value.length <= peerHeaderCharactersMax
    ? value
    : undefined;

function decodeBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  try {
    const binary = atob(text);
    return binary.length === 0 ? undefined : Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Decides a received request. Checks run cheapest first and the nonce is taken last, so a
 * forged request cannot use up a genuine sender's nonce.
 */
export function verifyPeerRequest<PublicKey>(
  request: {
    method: string;
    pathAndQuery: string;
    headers: PeerHeaderValues;
    bodySha256: string | undefined;
  },
  verification: PeerVerification<PublicKey>,
): PeerVerdict {
  const raw = {
    node: request.headers[peerHeaders.node],
    timestamp: request.headers[peerHeaders.timestamp],
    nonce: request.headers[peerHeaders.nonce],
    receiver: request.headers[peerHeaders.receiver],
    signature: request.headers[peerHeaders.signature],
  };
  if (Object.values(raw).every((value) => value === undefined))
    return {
      ok: false,
      reason: "unsigned",
      nodeId: undefined,
      message: "the request is not signed",
    };
  const nodeId = single(raw.node);
  const timestampText = single(raw.timestamp);
  const nonce = single(raw.nonce);
  const receiver = single(raw.receiver);
  const signatureText = single(raw.signature);
  const reject = (reason: PeerRejection, message: string): PeerVerdict => ({
    ok: false,
    reason,
    nodeId,
    message,
  });
  if (
    nodeId === undefined ||
    timestampText === undefined ||
    nonce === undefined ||
    receiver === undefined ||
    signatureText === undefined ||
    !/^\d{1,16}$/.test(timestampText)
  )
    return reject("malformed", "the signature headers are incomplete or malformed");
  const signature = decodeBase64(signatureText);
  if (signature === undefined) return reject("malformed", "the signature is not base64");
  const timestampMs = Number(timestampText);
  if (Math.abs(verification.nowMs - timestampMs) > verification.skewMs)
    return reject(
      "stale",
      `the request was signed ${verification.nowMs - timestampMs} ms from now; at most ${verification.skewMs} ms allowed`,
    );
  const publicKey = verification.publicKeyOf(nodeId);
  if (publicKey === undefined)
    return reject("unknown-node", `node ${nodeId} is not an enrolled node of this fleet`);
  // One signature check either way: over the receiver the request names. It is accepted only
  // when that is this receiver, so what passes was signed for this receiver's own identity;
  // a genuine request signed for another receiver is told apart from a forgery.
  const text = canonicalPeerRequest({
    method: request.method,
    pathAndQuery: request.pathAndQuery,
    timestampMs,
    nonce,
    nodeId,
    receiver,
    bodySha256: request.bodySha256,
  });
  if (!verification.verify(text, signature, publicKey))
    return reject("bad-signature", `the signature is not node ${nodeId}'s`);
  if (receiver !== verification.receiver)
    return reject(
      "wrong-receiver",
      `node ${nodeId} signed this request for ${receiver}, not for ${verification.receiver}`,
    );
  const fresh = verification.nonces.check(nonce, timestampMs, verification.nowMs);
  if (!fresh.accepted)
    return fresh.reason === "stale"
      ? reject("stale", "the request is outside the skew window")
      : fresh.reason === "replay"
        ? reject("replayed", `nonce ${nonce} of node ${nodeId} was seen before`)
        : reject("replayed", `nonce not accepted (${fresh.reason}); retry later`);
  return { ok: true, nodeId };
}
