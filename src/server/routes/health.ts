import type { FastifyInstance } from "fastify";
import type { ControlPlane } from "../control-plane.ts";

export function registerHealthRoutes(app: FastifyInstance, plane: ControlPlane): void {
  app.get(
    "/healthz",
    { config: { access: { resource: "health", action: "read", public: true } } },
    () => ({
      status: "ok",
    }),
  );

  app.get(
    "/metrics",
    { config: { access: { resource: "metrics", action: "read" } } },
    async (_request, reply) => {
      const registry = plane.components.metrics.registry;
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );
}
