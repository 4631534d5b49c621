// Key rotation over HTTP (admin): what `edgeward keys rotate` asks of a running server, which
// holds its data dir's keys (docs/adr/0007-secrets-at-rest.md).

import type { FastifyInstance } from "fastify";
import type { KeysRotateResponse } from "../../api/security-contract.ts";
import type { ServerKeyRotation } from "../server-keys.ts";

export function registerKeyRoutes(app: FastifyInstance, rotation: ServerKeyRotation): void {
  app.post(
    "/v1/keys/rotate",
    { config: { access: { resource: "keys", action: "admin" } } },
    (): KeysRotateResponse => ({ rotations: rotation.rotateNow() }),
  );
}
