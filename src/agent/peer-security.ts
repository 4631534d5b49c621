// The agent's side of signed peer requests (ADR 0006, "Peer requests"): it signs what it sends
// to other agents and to the server's blob API with its enrolled key, and checks what peers
// send it against the fleet's enrolled keys, which the server pushes and this node caches
// (0600) so peers stay verifiable while the server is unreachable.

import type { IncomingMessage } from "node:http";
import type {
  PeerIdentitiesMessage,
  PeerRejectionReason,
  PeerRequestRejectedMessage,
} from "../api/service-messages.ts";
import {
  passesInOpenFleet,
  peerRejections,
  statusOfPeerRejection,
  type PeerVerdict,
} from "../core/security/peer-request.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { SecretFiles } from "../runtime/security/secret-files.ts";
import {
  PeerVerifier,
  peerVerifierDefaults,
  type PeerRequestSigner,
  type PeerVerifierOptions,
} from "../runtime/security/peer-signing.ts";

export const peerIdentitiesFileName = "peer-identities.json";

/** The outcome of checking one request: allowed, or the status and message to answer with. */
export type PeerAuthorization =
  | { readonly ok: true; readonly nodeId: string | undefined }
  | { readonly ok: false; readonly statusCode: 401 | 403; readonly message: string };

interface CachedIdentities {
  required: boolean;
  keys: Record<string, string>;
}

export interface PeerSecurityComponents {
  clock: Clock;
  logger: Logger;
  sign: PeerRequestSigner;
  /** Reports a refused request to the server; false when the channel is down (it is counted anyway). */
  report: (message: PeerRequestRejectedMessage) => boolean;
}

export class PeerSecurity {
  readonly #secrets: SecretFiles;
  readonly #components: PeerSecurityComponents;
  readonly #verifier: PeerVerifier;
  #identities: CachedIdentities;
  /** Refused requests since start, by reason (also reported to the server). */
  readonly rejections = Object.fromEntries(peerRejections.map((reason) => [reason, 0])) as Record<
    PeerRejectionReason,
    number
  >;

  /**
   * `requiredUntilTold`: whether signatures are required before the server has said (no cache
   * yet). An enrolled agent fails closed; an agent without a credential is in an open fleet.
   */
  constructor(
    options: {
      /** This node's id: only requests signed for it pass. */
      nodeId: string;
      secrets: SecretFiles;
      requiredUntilTold: boolean;
      verifier?: PeerVerifierOptions;
    },
    components: PeerSecurityComponents,
  ) {
    this.#secrets = options.secrets;
    this.#components = components;
    this.#identities = this.#load() ?? { required: options.requiredUntilTold, keys: {} };
    this.#verifier = new PeerVerifier(options.verifier ?? peerVerifierDefaults, {
      receiver: options.nodeId,
      clock: components.clock,
      publicKeyOf: (nodeId) =>
        Object.hasOwn(this.#identities.keys, nodeId) ? this.#identities.keys[nodeId] : undefined,
    });
  }

  /** Signs outgoing peer requests with this node's enrolled key. */
  get sign(): PeerRequestSigner {
    return this.#components.sign;
  }

  get required(): boolean {
    return this.#identities.required;
  }

  /** The server's newest list of enrolled keys: used at once and cached for offline use. */
  update(message: PeerIdentitiesMessage): void {
    this.#identities = { required: message.required, keys: { ...message.keys } };
    try {
      this.#secrets.write(peerIdentitiesFileName, JSON.stringify(this.#identities));
    } catch (error) {
      this.#components.logger.warn(
        { err: (error as Error).message },
        "could not cache the fleet's node keys",
      );
    }
  }

  /**
   * Checks a received peer request. `bodySha256Header`: the header carrying the SHA-256 of the
   * body the sender signed (requests with a body must send one).
   */
  authorize(request: IncomingMessage, bodySha256Header?: string): PeerAuthorization {
    const verdict: PeerVerdict = this.#verifier.check(request, bodySha256Header);
    if (verdict.ok) return { ok: true, nodeId: verdict.nodeId };
    if (!this.#identities.required && passesInOpenFleet(verdict.reason))
      return { ok: true, nodeId: undefined };
    this.#refused(request, verdict);
    return {
      ok: false,
      statusCode: statusOfPeerRejection(verdict.reason),
      message: verdict.message,
    };
  }

  #refused(request: IncomingMessage, verdict: Extract<PeerVerdict, { ok: false }>): void {
    this.rejections[verdict.reason] += 1;
    const path = (request.url ?? "/").split("?")[0]?.slice(0, 512) ?? "/";
    const remoteAddress = (request.socket.remoteAddress ?? "unknown").slice(0, 64);
    this.#components.logger.warn(
      { reason: verdict.reason, claimedNode: verdict.nodeId, remoteAddress, path },
      "refused a peer request",
    );
    this.#components.report({
      type: "peer-request-rejected",
      reason: verdict.reason,
      claimedNodeId: verdict.nodeId?.slice(0, 253) ?? null,
      remoteAddress,
      path,
      atMs: Math.max(0, Math.round(this.#components.clock.nowMs())),
    });
  }

  #load(): CachedIdentities | undefined {
    try {
      const text = this.#secrets.readText(peerIdentitiesFileName);
      if (text === undefined) return undefined;
      const parsed = JSON.parse(text) as Partial<CachedIdentities>;
      if (typeof parsed.required !== "boolean" || typeof parsed.keys !== "object") return undefined;
      const keys: Record<string, string> = {};
      for (const [nodeId, key] of Object.entries(parsed.keys ?? {}))
        if (typeof key === "string") keys[nodeId] = key;
      return { required: parsed.required, keys };
    } catch {
      return undefined;
    }
  }
}
