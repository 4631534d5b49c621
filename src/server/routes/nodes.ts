import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { nodeIdSchema, registerRequestSchema, type NodeListResponse } from "../../api/contract.ts";
import { assertObjectAccess } from "../access.ts";
import type { ControlPlane } from "../control-plane.ts";
import { parseOrReject } from "../http-error.ts";

const nodeParamsSchema = z.strictObject({ id: nodeIdSchema });

export function registerNodeRoutes(app: FastifyInstance, plane: ControlPlane): void {
  app.post(
    "/v1/nodes/register",
    { config: { access: { resource: "nodes", action: "write" } } },
    async (request) => {
      const registration = parseOrReject(registerRequestSchema, request.body, "registration");
      assertObjectAccess(request, { kind: "node", nodeId: registration.nodeId });
      return plane.register(registration);
    },
  );

  app.get(
    "/v1/nodes",
    { config: { access: { resource: "nodes", action: "read" } } },
    (): NodeListResponse => ({
      nodes: plane.listNodes(),
      detectionPreset: plane.components.detection.options.presetName,
      serverTimeMs: plane.components.clock.nowMs(),
    }),
  );

  app.get(
    "/v1/nodes/:id",
    { config: { access: { resource: "nodes", action: "read" } } },
    (request) => plane.getNode(parseOrReject(nodeParamsSchema, request.params, "node id").id),
  );

  app.delete(
    "/v1/nodes/:id",
    { config: { access: { resource: "nodes", action: "admin" } } },
    async (request, reply) => {
      await plane.removeNode(parseOrReject(nodeParamsSchema, request.params, "node id").id);
      return reply.code(204).send();
    },
  );

  app.post(
    "/v1/nodes/:id/goodbye",
    { config: { access: { resource: "nodes", action: "write" } } },
    async (request, reply) => {
      const nodeId = parseOrReject(nodeParamsSchema, request.params, "node id").id;
      assertObjectAccess(request, { kind: "node", nodeId });
      plane.goodbye(nodeId);
      return reply.code(204).send();
    },
  );
}
