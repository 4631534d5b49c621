import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { heartbeatBatchSchema, heartbeatSchema } from "../../api/contract.ts";
import { assertObjectAccess } from "../access.ts";
import type { ControlPlane } from "../control-plane.ts";
import { HttpError, parseOrReject } from "../http-error.ts";

const heartbeatBodySchema = z.union([heartbeatBatchSchema, heartbeatSchema]);

interface Rejection {
  nodeId: string;
  error: string;
  message: string;
}

/** `POST /v1/heartbeats`: one heartbeat, or a batch of them (relays, load generators). */
export function registerHeartbeatRoutes(app: FastifyInstance, plane: ControlPlane): void {
  app.post(
    "/v1/heartbeats",
    { config: { access: { resource: "nodes", action: "write" } } },
    (request) => {
      const body = parseOrReject(heartbeatBodySchema, request.body, "heartbeat");
      const heartbeats = "heartbeats" in body ? body.heartbeats : [body];
      for (const heartbeat of heartbeats)
        assertObjectAccess(request, { kind: "node", nodeId: heartbeat.nodeId });
      const rejected: Rejection[] = [];
      let firstError: HttpError | undefined;
      for (const heartbeat of heartbeats) {
        try {
          plane.heartbeat(heartbeat.nodeId, heartbeat.incarnation, heartbeat.metrics, "http");
        } catch (error) {
          if (!(error instanceof HttpError)) throw error;
          firstError ??= error;
          rejected.push({ nodeId: heartbeat.nodeId, error: error.code, message: error.message });
        }
      }
      if (firstError !== undefined && rejected.length === heartbeats.length) throw firstError;
      return { accepted: heartbeats.length - rejected.length, rejected };
    },
  );
}
