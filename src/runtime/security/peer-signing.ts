// Signing and verifying peer requests with Ed25519 (node:crypto) around the pure decision in
// src/core/security/peer-request.ts. Agents sign what they send to other agents and to the
// server's blob API; receivers check against the fleet's enrolled node keys.

import { createPublicKey, randomUUID, sign, verify, type KeyObject } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { NonceCache } from "../../core/security/nonce-cache.ts";
import {
  canonicalPeerRequest,
  peerHeaders,
  peerSkewMsDefault,
  verifyPeerRequest,
  type PeerVerdict,
} from "../../core/security/peer-request.ts";
import type { Clock } from "../../ports/clock.ts";

/**
 * What a request to sign is: whom it is for, its method, path and query, and its body's
 * SHA-256 if any.
 */
export interface OutgoingPeerRequest {
  /** The receiving node's id, or `serverPeerReceiver` for the server's blob API. */
  receiver: string;
  method: string;
  pathAndQuery: string;
  bodySha256?: string | undefined;
}

/** Returns the signature headers for one request (a fresh nonce each call). */
export type PeerRequestSigner = (request: OutgoingPeerRequest) => Record<string, string>;

export function createPeerRequestSigner(
  nodeId: string,
  privateKey: KeyObject,
  clock: Clock,
): PeerRequestSigner {
  return (request) => {
    const timestampMs = Math.round(clock.nowMs());
    const nonce = randomUUID();
    const text = canonicalPeerRequest({
      method: request.method,
      pathAndQuery: request.pathAndQuery,
      timestampMs,
      nonce,
      nodeId,
      receiver: request.receiver,
      bodySha256: request.bodySha256,
    });
    return {
      [peerHeaders.node]: nodeId,
      [peerHeaders.timestamp]: String(timestampMs),
      [peerHeaders.nonce]: nonce,
      [peerHeaders.receiver]: request.receiver,
      [peerHeaders.signature]: sign(null, Buffer.from(text), privateKey).toString("base64"),
    };
  };
}

export interface PeerVerifierOptions {
  skewMs: number;
  noncesMax: number;
  /** Public keys remembered as KeyObjects (parsing one per request would be wasteful). */
  keyObjectsMax: number;
}

export const peerVerifierDefaults: PeerVerifierOptions = {
  skewMs: peerSkewMsDefault,
  noncesMax: 100_000,
  keyObjectsMax: 10_000,
};

/** A node's enrolled key as the server stores it: SPKI DER in base64. */
export type PublicKeyOf = (nodeId: string) => string | undefined;

/**
 * Verifies received peer requests against `publicKeyOf`, with a bounded replay cache. Only
 * requests signed for `receiver` (this node's id, or `serverPeerReceiver`) pass.
 */
export class PeerVerifier {
  readonly #options: PeerVerifierOptions;
  readonly #receiver: string;
  readonly #clock: Clock;
  readonly #publicKeyOf: PublicKeyOf;
  readonly #nonces: NonceCache;
  readonly #keyObjects = new Map<string, KeyObject>();

  constructor(
    options: PeerVerifierOptions,
    components: { receiver: string; clock: Clock; publicKeyOf: PublicKeyOf },
  ) {
    this.#options = options;
    this.#receiver = components.receiver;
    this.#clock = components.clock;
    this.#publicKeyOf = components.publicKeyOf;
    this.#nonces = new NonceCache(
      { windowMs: options.skewMs, noncesMax: options.noncesMax },
      components.clock.nowMs(),
    );
  }

  /**
   * Checks a request. A body is represented by the `x-edgeward-content-sha256` header its
   * sender signed (the blob API refuses a body that does not match it); requests that carry a
   * body must therefore send that header (`bodySha256Header`).
   */
  check(request: IncomingMessage, bodySha256Header?: string): PeerVerdict {
    const bodySha256 =
      bodySha256Header === undefined ? undefined : request.headers[bodySha256Header];
    return verifyPeerRequest(
      {
        method: request.method ?? "GET",
        pathAndQuery: request.url ?? "/",
        headers: request.headers,
        bodySha256: typeof bodySha256 === "string" ? bodySha256 : undefined,
      },
      {
        nowMs: this.#clock.nowMs(),
        skewMs: this.#options.skewMs,
        receiver: this.#receiver,
        nonces: this.#nonces,
        publicKeyOf: (nodeId) => this.#keyObject(this.#publicKeyOf(nodeId)),
        verify: (message, signature, publicKey) => {
          try {
            return verify(null, Buffer.from(message), publicKey, signature);
          } catch {
            return false;
          }
        },
      },
    );
  }

  #keyObject(spkiBase64: string | undefined): KeyObject | undefined {
    if (spkiBase64 === undefined) return undefined;
    const known = this.#keyObjects.get(spkiBase64);
    if (known !== undefined) return known;
    let key: KeyObject;
    try {
      key = createPublicKey({
        key: Buffer.from(spkiBase64, "base64"),
        format: "der",
        type: "spki",
      });
    } catch {
      return undefined;
    }
    if (key.asymmetricKeyType !== "ed25519") return undefined;
    if (this.#keyObjects.size >= this.#options.keyObjectsMax) this.#keyObjects.clear();
    this.#keyObjects.set(spkiBase64, key);
    return key;
  }
}
