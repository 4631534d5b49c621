// The server's side of signed peer requests (ADR 0006, "Peer requests"): it hands every agent
// the fleet's enrolled node keys, verifies signed requests to its own REGIONAL blob API the
// same way agents do, and turns refused peer requests (its own and those agents report) into
// security events.

import type { IncomingMessage } from "node:http";
import type {
  PeerIdentitiesMessage,
  PeerRejectionReason,
  PeerRequestRejectedMessage,
} from "../api/service-messages.ts";
import {
  passesInOpenFleet,
  serverPeerReceiver,
  type PeerVerdict,
} from "../core/security/peer-request.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import { contentSha256Header } from "../runtime/backup/blob-store-http-handler.ts";
import {
  PeerVerifier,
  peerVerifierDefaults,
  type PeerVerifierOptions,
} from "../runtime/security/peer-signing.ts";
import type { TokenService } from "../runtime/security/token-service.ts";
import type { ServerMetrics } from "./server-metrics.ts";
import type { ServerSecurity } from "./server-security.ts";
import type { AgentLinks } from "./services/agent-links.ts";

export interface ServerPeerRequestsComponents {
  tokens: TokenService;
  security: ServerSecurity;
  links: AgentLinks;
  metrics: ServerMetrics;
  clock: Clock;
  logger: Logger;
}

export class ServerPeerRequests {
  readonly #components: ServerPeerRequestsComponents;
  readonly #required: boolean;
  readonly #verifier: PeerVerifier;
  /** The keys last pushed to every agent, as JSON: a connect only re-pushes when they changed. */
  #pushedKeys = "";

  /** `required`: false on a server with open access (--open-access): unsigned requests pass. */
  constructor(
    options: { required: boolean; verifier?: PeerVerifierOptions },
    components: ServerPeerRequestsComponents,
  ) {
    this.#components = components;
    this.#required = options.required;
    this.#verifier = new PeerVerifier(options.verifier ?? peerVerifierDefaults, {
      receiver: serverPeerReceiver,
      clock: components.clock,
      publicKeyOf: (nodeId) => components.tokens.enrolledKeyOf(nodeId),
    });
  }

  identities(): PeerIdentitiesMessage {
    return {
      type: "peer-identities",
      required: this.#required,
      keys: this.#components.tokens.enrolledKeys(),
    };
  }

  /**
   * An agent connected: it gets the keys; every other agent gets them too when they changed
   * since the last push (a node enrolled or was quarantined), so a fleet of N agents does not
   * exchange N² keys on every reconnect.
   */
  agentConnected(nodeId: string): void {
    const message = this.identities();
    const json = JSON.stringify(message.keys);
    if (json === this.#pushedKeys) {
      this.#components.links.send(nodeId, message);
      return;
    }
    this.#pushedKeys = json;
    for (const node of [...this.#components.links.nodes()])
      this.#components.links.send(node, message);
  }

  /** The enrolled keys changed (a quarantine revoked a node's credentials): push them now. */
  keysChanged(): void {
    this.#pushedKeys = "";
    const message = this.identities();
    this.#pushedKeys = JSON.stringify(message.keys);
    for (const node of [...this.#components.links.nodes()])
      this.#components.links.send(node, message);
  }

  /** The REGIONAL blob API's authorize hook: a request signed by an enrolled node. */
  authorizeBlobRequest(request: IncomingMessage): boolean {
    const verdict: PeerVerdict = this.#verifier.check(request, contentSha256Header);
    if (verdict.ok) return true;
    if (!this.#required && passesInOpenFleet(verdict.reason)) return true;
    const address = request.socket.remoteAddress ?? "unknown";
    this.#components.logger.warn(
      { reason: verdict.reason, claimedNode: verdict.nodeId, remoteAddress: address },
      "refused a blob API request",
    );
    this.#observe(
      address,
      verdict.reason,
      `blob API request refused (${verdict.reason}): ${verdict.message}`,
    );
    return false;
  }

  /** An agent refused `rejectedCount` peer requests of one kind and says so. */
  agentReported(reporterNodeId: string, message: PeerRequestRejectedMessage): void {
    this.#components.metrics.peerRequestsRefused.inc(
      { node: reporterNodeId, reason: message.reason },
      message.rejectedCount,
    );
    this.#observe(
      message.remoteAddress,
      message.reason,
      `node ${reporterNodeId} refused a peer request to ${message.path} (${message.reason}` +
        `${message.claimedNodeId === null ? "" : `, claimed to be from ${message.claimedNodeId}`})` +
        (message.rejectedCount > 1
          ? `; ${message.rejectedCount} refusals of this kind since the last report`
          : ""),
      message.rejectedCount,
    );
  }

  /**
   * The source is the client address, never the claimed node: a forged or replayed request
   * names a node that did not send it, and quarantining that node would let anyone frame it.
   */
  #observe(address: string, reason: PeerRejectionReason, details: string, refusals = 1): void {
    const { security, clock } = this.#components;
    const source = `ip:${address}`;
    const nowMs = clock.nowMs();
    const verdict =
      reason === "bad-signature"
        ? security.detector.suspicious(source, "bad_signature", nowMs)
        : reason === "replayed" || reason === "wrong-receiver"
          ? security.detector.suspicious(source, "replay", nowMs)
          : security.detector.failedAuthentication(source, nowMs, refusals);
    security.observe(source, verdict, details);
  }
}
