// The server's security runtime: authenticates requests (Bearer tokens), applies rate limits
// and the RBAC policy, and turns failed-auth bursts, bad signatures, replays, impersonation and
// floods into security events; a node reaching the threshold is quarantined (its credentials
// revoked).

import type { FastifyRequest } from "fastify";
import {
  builtinAccessRules,
  createAccessPolicy,
  decideAccess,
  type AccessPolicy,
  type Principal,
} from "../core/security/access-policy.ts";
import {
  IntrusionDetector,
  intrusionDetectorOptionsFrom,
  type IntrusionVerdict,
  type SuspiciousActivity,
} from "../core/security/intrusion-detector.ts";
import { NonceCache, nonceCacheDefaults } from "../core/security/nonce-cache.ts";
import { RateLimiter } from "../core/security/rate-limit.ts";
import { securitySchema, type SecuritySpec } from "../core/spec/security-schema.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { TlsMaterial } from "../runtime/security/certificate-authority.ts";
import type { TokenService } from "../runtime/security/token-service.ts";
import type { AccessGuard, AccessOutcome, RouteAccess } from "./access.ts";
import type { EventLog } from "./event-log.ts";
import { LiveSessions } from "./live-sessions.ts";

/** Clients whose request rates are tracked at once. */
export const rateLimitedClientsMax = 10_000;

export interface ServerSecurityComponents {
  tokens: TokenService;
  events: EventLog;
  clock: Clock;
  logger: Logger;
  /** Undefined when the server speaks plain HTTP (--insecure). */
  tls: TlsMaterial | undefined;
  spec: SecuritySpec | undefined;
  /** Enforce tokens and RBAC; false only for an explicitly open server. */
  enforce: boolean;
}

export class ServerSecurity implements AccessGuard {
  readonly tokens: TokenService;
  readonly policy: AccessPolicy;
  readonly detector: IntrusionDetector;
  readonly nonces: NonceCache;
  readonly tls: TlsMaterial | undefined;
  readonly enforce: boolean;
  readonly #limiter: RateLimiter;
  readonly #events: EventLog;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #onNodeQuarantined: (nodeId: string, reason: string) => void = () => {};
  /** Agent channels and event streams, closed when their credential is revoked. */
  readonly sessions: LiveSessions;

  constructor(components: ServerSecurityComponents) {
    const spec = components.spec ?? securitySchema.parse({});
    this.tokens = components.tokens;
    this.nonces = new NonceCache(nonceCacheDefaults, components.clock.nowMs());
    this.tls = components.tls;
    this.enforce = components.enforce;
    this.#events = components.events;
    this.#clock = components.clock;
    this.#logger = components.logger;
    this.sessions = new LiveSessions((claims) => components.tokens.isRevoked(claims));
    components.tokens.onFact((fact) => {
      if (fact.type === "issued") return;
      const closed = this.sessions.closeRevoked();
      if (closed > 0) this.#logger.info({ closed }, "closed sessions of revoked credentials");
    });
    this.policy = createAccessPolicy(
      [...builtinAccessRules, ...spec.accessControl],
      spec.roles.map((role) => role.name),
    );
    this.detector = new IntrusionDetector(
      intrusionDetectorOptionsFrom(spec.network.intrusionDetection),
    );
    const requestsPerSecond = spec.network.intrusionDetection.requestsPerSecondMax;
    this.#limiter = new RateLimiter({
      requestsPerSecond,
      burst: requestsPerSecond,
      clientsMax: rateLimitedClientsMax,
    });
  }

  get caFingerprint(): string | undefined {
    return this.tls?.caFingerprint;
  }

  async decide(request: FastifyRequest, access: RouteAccess): Promise<AccessOutcome> {
    const nowMs = this.#clock.nowMs();
    const ipSource = `ip:${request.ip}`;
    const rate = this.#limiter.take(request.ip, nowMs);
    if (!rate.allowed) {
      this.observe(ipSource, this.detector.suspicious(ipSource, "flood", nowMs), "rate limited");
      return {
        allowed: false,
        statusCode: 429,
        code: "rate_limited",
        message: "too many requests from this client; slow down and retry",
        retryAfterMs: rate.retryAfterMs,
      };
    }
    if (access.public === true || !this.enforce) return { allowed: true };
    const header = request.headers.authorization;
    const token = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header)?.[1] : undefined;
    if (token === undefined) {
      this.observe(ipSource, this.detector.failedAuthentication(ipSource, nowMs), "no credential");
      return {
        allowed: false,
        statusCode: 401,
        code: "unauthenticated",
        message:
          "no credential: send Authorization: Bearer <token> (edgeward token create, or the fleet's admin.token)",
      };
    }
    const checked = await this.tokens.verify(token, ["user", "node"]);
    if (!checked.ok) {
      const verdict =
        checked.rejection === "bad_signature"
          ? this.detector.suspicious(ipSource, "bad_signature", nowMs)
          : this.detector.failedAuthentication(ipSource, nowMs);
      this.observe(ipSource, verdict, checked.message);
      return {
        allowed: false,
        statusCode: 401,
        code: checked.rejection === "expired" ? "credential_expired" : "invalid_credential",
        message: `${checked.message}; get a new credential`,
      };
    }
    const principal: Principal = {
      kind: checked.claims.kind === "node" ? "node" : "user",
      subject: checked.claims.sub,
      roles: checked.claims.roles,
      claims: checked.claims,
    };
    const decision = decideAccess(this.policy, principal, access.resource, access.action);
    if (!decision.allowed)
      return { allowed: false, statusCode: 403, code: "forbidden", message: decision.reason };
    return { allowed: true, principal };
  }

  objectDenied(_request: FastifyRequest, principal: Principal, reason: string): void {
    this.reportActivity(principal, "impersonation", reason);
  }

  holdSession(principal: Principal, close: () => void): () => void {
    // Without claims the principal was not authenticated by a token: nothing can revoke it.
    if (principal.claims === undefined) return () => {};
    return this.sessions.hold(principal.claims, close);
  }

  /** Sets the one listener told when a node is quarantined (the failover runtime moves its services). */
  onNodeQuarantined(listener: (nodeId: string, reason: string) => void): void {
    this.#onNodeQuarantined = listener;
  }

  /** Lifts a node's quarantine: its suspicious-activity history starts over. */
  releaseNode(nodeId: string): void {
    this.detector.clear(`node:${nodeId}`);
  }

  /** Reports a suspicious activity of an authenticated principal (replayed or forged proof). */
  reportActivity(principal: Principal, activity: SuspiciousActivity, details: string): void {
    const source = `${principal.kind}:${principal.subject}`;
    this.observe(source, this.detector.suspicious(source, activity, this.#clock.nowMs()), details);
  }

  /** Reports a suspicious activity of an unauthenticated client. */
  reportClient(request: FastifyRequest, activity: SuspiciousActivity, details: string): void {
    const source = `ip:${request.ip}`;
    this.observe(source, this.detector.suspicious(source, activity, this.#clock.nowMs()), details);
  }

  observe(source: string, verdict: IntrusionVerdict, details: string): void {
    if (!verdict.report) return;
    const atMs = this.#clock.nowMs();
    this.#logger.warn(
      { source, activity: verdict.activity, severity: verdict.severity, count: verdict.count },
      "security event",
    );
    this.#events.publish({
      type: "security.event",
      source,
      atMs,
      severity: verdict.severity,
      activity: verdict.activity,
      details: `${details} (suspicious activity ${verdict.count} of this source)`,
    });
    if (!verdict.quarantine) return;
    this.#events.publish({
      type: "security.event",
      source,
      atMs,
      severity: "high",
      activity: "quarantine",
      details: `${verdict.count} suspicious activities: quarantined${source.startsWith("node:") ? "; its credentials are revoked" : ""}`,
    });
    if (source.startsWith("node:")) {
      this.#onNodeQuarantined(source.slice("node:".length), details);
      this.tokens
        .revokeSubject(source.slice("node:".length), `quarantined: ${details}`)
        .catch((error: unknown) =>
          this.#logger.error({ err: error, source }, "could not revoke a quarantined node"),
        );
    }
  }
}
