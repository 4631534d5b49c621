// Services, failovers and drills over HTTP: thin routes over ServiceControl and DrillRunner.

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import {
  nodeIdSchema,
  type DrillListResponse,
  type DrillResult,
  type FailoverListResponse,
  type FailoverResponse,
  type ServiceListResponse,
  type ServiceView,
} from "../../api/contract.ts";
import type { RouteEntry } from "../../api/service-messages.ts";
import type { ControlPlane } from "../control-plane.ts";
import { HttpError, parseOrReject } from "../http-error.ts";

const serviceParamsSchema = z.strictObject({ name: z.string().min(1).max(128) });
const failoverBodySchema = z
  .strictObject({ to: nodeIdSchema.optional() })
  .optional()
  .transform((body) => body ?? {});
const failoverQuerySchema = z.strictObject({
  service: z.string().min(1).max(128).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
});
const drillQuerySchema = z.strictObject({ service: z.string().min(1).max(128).optional() });

export function registerServiceRoutes(app: FastifyInstance, plane: ControlPlane): void {
  const { services, drills, clock } = plane.components;
  const nameOf = (params: unknown) =>
    parseOrReject(serviceParamsSchema, params, "service name").name;

  app.get(
    "/v1/services",
    { config: { access: { resource: "services", action: "read" } } },
    (): ServiceListResponse => ({ services: services.list(), serverTimeMs: clock.nowMs() }),
  );

  app.get(
    "/v1/services/:name",
    { config: { access: { resource: "services", action: "read" } } },
    (request): ServiceView => services.view(nameOf(request.params)),
  );

  app.get(
    "/v1/services/:name/resolve",
    { config: { access: { resource: "services", action: "read" } } },
    (request): RouteEntry => {
      const name = nameOf(request.params);
      const view = services.view(name);
      const route = services.resolve(name);
      if (route === undefined) {
        throw new HttpError(
          503,
          "unavailable",
          `${name} is ${view.status}; nothing serves it now. Retry shortly, or see edgeward failovers`,
        );
      }
      return route;
    },
  );

  app.post(
    "/v1/services/:name/failover",
    { config: { access: { resource: "services", action: "write" } } },
    async (request, reply): Promise<FailoverResponse> => {
      const name = nameOf(request.params);
      const body = parseOrReject(failoverBodySchema, request.body, "failover request");
      const outcome = await services.failover(name, body.to);
      if (outcome.kind === "in-progress") {
        throw new HttpError(
          409,
          "failover_in_progress",
          `${name} is already failing over (failover #${outcome.failoverId}); wait for it with edgeward failovers`,
        );
      }
      return reply
        .code(outcome.kind === "started" || outcome.kind === "queued" ? 202 : 409)
        .send(outcome);
    },
  );

  app.get(
    "/v1/failovers",
    { config: { access: { resource: "failovers", action: "read" } } },
    (request): FailoverListResponse => {
      const query = parseOrReject(failoverQuerySchema, request.query, "query");
      const records = services
        .records()
        .filter((record) => query.service === undefined || record.service === query.service);
      return { failovers: records.slice(-query.limit) };
    },
  );

  app.post(
    "/v1/services/:name/drill",
    { config: { access: { resource: "drills", action: "write" } } },
    (request): Promise<DrillResult> => drills.run(nameOf(request.params), "operator"),
  );

  app.get(
    "/v1/drills",
    { config: { access: { resource: "drills", action: "read" } } },
    (request): DrillListResponse => {
      const query = parseOrReject(drillQuerySchema, request.query, "query");
      return { drills: drills.list(query.service) };
    },
  );
}
