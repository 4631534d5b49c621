// Quarantined nodes over HTTP: list them, and lift a quarantine (admin). A node is quarantined
// by the intrusion detector (src/server/server-security.ts) after repeated suspicious activity.

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { nodeIdSchema, type QuarantineListResponse } from "../../api/contract.ts";
import type { Clock } from "../../ports/clock.ts";
import { HttpError, parseOrReject } from "../http-error.ts";
import type { ServerLedger } from "../ledger/server-ledger.ts";
import type { ServerSecurity } from "../server-security.ts";
import type { ServiceControl } from "../services/service-control.ts";

const nodeParamsSchema = z.strictObject({ id: nodeIdSchema });

export interface QuarantineRouteComponents {
  services: ServiceControl;
  security: ServerSecurity;
  ledger: ServerLedger;
  clock: Clock;
}

export function registerQuarantineRoutes(
  app: FastifyInstance,
  { services, security, ledger, clock }: QuarantineRouteComponents,
): void {
  app.get(
    "/v1/quarantine",
    { config: { access: { resource: "nodes", action: "read" } } },
    (): QuarantineListResponse => ({ nodes: services.quarantined() }),
  );

  app.post(
    "/v1/nodes/:id/unquarantine",
    { config: { access: { resource: "nodes", action: "admin" } } },
    async (request): Promise<{ node: string; released: true }> => {
      const { id } = parseOrReject(nodeParamsSchema, request.params, "node id");
      if (!(await services.release(id))) {
        throw new HttpError(404, "not_quarantined", `node ${id} is not quarantined`);
      }
      security.releaseNode(id);
      const by = request.principal?.subject;
      ledger.record({
        kind: "quarantine",
        atMs: clock.nowMs(),
        data: {
          node: id,
          action: "released",
          reason: "released by an operator",
          ...(by === undefined ? {} : { by }),
        },
      });
      return { node: id, released: true };
    },
  );
}
