// Every route declares which resource it touches and how; one hook decides (authentication,
// rate limit, role check). Routes that act on one node add a per-object check with
// `assertObjectAccess`, so a node credential can only act as its own node.

import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  decideObjectAccess,
  type AccessAction,
  type AccessObject,
  type Principal,
} from "../core/security/access-policy.ts";
import { HttpError } from "./http-error.ts";

export type { AccessAction };

export interface RouteAccess {
  readonly resource: string;
  readonly action: AccessAction;
  /** Reachable without a credential (health check, CA certificate, enrolment by join token). */
  readonly public?: boolean;
}

declare module "fastify" {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** Who sent the request; undefined on public routes and on a server with open access. */
    principal?: Principal;
  }
  interface FastifyInstance {
    accessGuard: AccessGuard;
  }
}

export type AccessOutcome =
  | { readonly allowed: true; readonly principal?: Principal }
  | {
      readonly allowed: false;
      readonly statusCode: 401 | 403 | 429;
      readonly code: string;
      readonly message: string;
      readonly retryAfterMs?: number;
    };

export interface AccessGuard {
  decide(request: FastifyRequest, access: RouteAccess): AccessOutcome | Promise<AccessOutcome>;
  /** Told when a per-object check fails (an impersonation attempt). */
  objectDenied(request: FastifyRequest, principal: Principal, reason: string): void;
  /**
   * Holds a long-lived connection opened with `principal`'s credential (a WebSocket, an event
   * stream): `close` ends it the moment that credential is revoked. Returns the release to call
   * when the connection ends by itself.
   */
  holdSession(principal: Principal, close: () => void): () => void;
}

/** Every declared access is allowed: a server started with open access (never the default). */
export const openAccess: AccessGuard = {
  decide: () => ({ allowed: true }),
  objectDenied: () => {},
  holdSession: () => () => {},
};

/** Installs the one auth hook and refuses to register a route that declares no access. */
export function installAccessControl(app: FastifyInstance, guard: AccessGuard): void {
  app.decorate("accessGuard", guard);
  app.decorateRequest("principal", undefined);
  app.addHook("onRoute", (route) => {
    const declared = route.config?.access;
    if (declared === undefined && route.method !== "HEAD") {
      throw new Error(
        `route ${String(route.method)} ${route.url} declares no access; add config.access`,
      );
    }
  });
  app.addHook("onRequest", async (request, reply) => {
    const access = request.routeOptions.config.access;
    if (access === undefined) return; // unmatched routes fall through to the 404 handler
    const outcome = await guard.decide(request, access);
    if (outcome.allowed) {
      request.principal = outcome.principal;
      return;
    }
    // A refused WebSocket upgrade owns its socket; end it, or it lingers until the server stops.
    if (request.headers.upgrade !== undefined)
      reply.raw.once("finish", () => request.raw.socket.destroy());
    if (outcome.statusCode === 401)
      void reply.header("www-authenticate", 'Bearer realm="edgeward"');
    if (outcome.retryAfterMs !== undefined)
      void reply.header(
        "retry-after",
        String(Math.max(1, Math.ceil(outcome.retryAfterMs / 1_000))),
      );
    await reply.code(outcome.statusCode).send({
      error: outcome.code,
      message: outcome.message,
      statusCode: outcome.statusCode,
    });
  });
}

/** Throws a 403 unless the request's principal may act on `object` (a node: only itself). */
export function assertObjectAccess(request: FastifyRequest, object: AccessObject): void {
  const principal = request.principal;
  if (principal === undefined) return;
  const decision = decideObjectAccess(principal, object);
  if (decision.allowed) return;
  request.server.accessGuard.objectDenied(request, principal, decision.reason);
  throw new HttpError(403, "forbidden", decision.reason);
}
