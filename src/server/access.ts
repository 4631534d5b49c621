// Every route declares which resource it touches and how; one hook decides. The security
// issue replaces the permissive decision with tokens and RBAC without touching the routes.

import type { FastifyInstance, FastifyRequest } from "fastify";

export type AccessAction = "read" | "write" | "admin";

export interface RouteAccess {
  readonly resource: string;
  readonly action: AccessAction;
}

declare module "fastify" {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

export type AccessDecider = (request: FastifyRequest, access: RouteAccess) => boolean;

/** Until enrolment and tokens land, every declared access is allowed. */
export const allowAll: AccessDecider = () => true;

/** Installs the one auth hook and refuses to register a route that declares no access. */
export function installAccessControl(app: FastifyInstance, decide: AccessDecider): void {
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
    if (!decide(request, access)) {
      await reply.code(403).send({
        error: "forbidden",
        message: `not allowed to ${access.action} ${access.resource}`,
        statusCode: 403,
      });
    }
  });
}
