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
import {
  SecurityReportAggregator,
  securityReportDefaults,
  type SecurityReportOptions,
} from "./security-report-aggregator.ts";

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
  /**
   * Reports refused requests to the server (summed per reason, address and claimed node, at
   * most `reports.reportsPerWindowMax` messages per window); false when the channel is down
   * (they are counted anyway and go with the next report).
   */
  report: (message: PeerRequestRejectedMessage) => boolean;
}

type RefusalDraft = Omit<PeerRequestRejectedMessage, "type" | "rejectedCount">;

export class PeerSecurity {
  readonly #secrets: SecretFiles;
  readonly #components: PeerSecurityComponents;
  readonly #verifier: PeerVerifier;
  readonly #reports: SecurityReportAggregator<RefusalDraft>;
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
      reports?: SecurityReportOptions;
    },
    components: PeerSecurityComponents,
  ) {
    this.#secrets = options.secrets;
    this.#components = components;
    this.#reports = new SecurityReportAggregator(options.reports ?? securityReportDefaults, {
      clock: components.clock,
      keyOf: (draft) => `${draft.reason} ${draft.remoteAddress} ${draft.claimedNodeId}`,
      send: (draft, rejectedCount) => this.#report(draft, rejectedCount),
    });
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

  /** Stops the report timer; refusals not reported yet stay counted in `rejections`. */
  close(): void {
    this.#reports.close();
  }

  /**
   * Counts a refusal; the log line and the report to the server come per summed report, not
   * per request: a flood must cost neither the disk nor the channel a line per request.
   */
  #refused(request: IncomingMessage, verdict: Extract<PeerVerdict, { ok: false }>): void {
    this.rejections[verdict.reason] += 1;
    this.#reports.add({
      reason: verdict.reason,
      claimedNodeId: verdict.nodeId?.slice(0, 253) ?? null,
      remoteAddress: (request.socket.remoteAddress ?? "unknown").slice(0, 64),
      path: (request.url ?? "/").split("?")[0]?.slice(0, 512) ?? "/",
      atMs: Math.max(0, Math.round(this.#components.clock.nowMs())),
    });
  }

  #report(draft: RefusalDraft, rejectedCount: number): boolean {
    if (!this.#components.report({ type: "peer-request-rejected", ...draft, rejectedCount }))
      return false;
    this.#components.logger.warn(
      {
        reason: draft.reason,
        claimedNode: draft.claimedNodeId,
        remoteAddress: draft.remoteAddress,
        path: draft.path,
        refused: rejectedCount,
      },
      "refused peer requests",
    );
    return true;
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
