// The HTTP surface of the control plane: fastify with one access hook, JSON errors that say
// what to do, and thin routes over the ControlPlane.

import websocket from "@fastify/websocket";
import Fastify, { LogController, type FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import { installAccessControl } from "./access.ts";
import type { ControlPlane } from "./control-plane.ts";
import { HttpError } from "./http-error.ts";
import { agentMessageBytesMax, registerAgentChannel } from "./routes/agent-channel.ts";
import { registerBackupRoutes, registerBlobRoutes } from "./routes/backups.ts";
import { registerEventRoutes } from "./routes/events.ts";
import { registerHealthRoutes } from "./routes/health.ts";
import { registerHeartbeatRoutes } from "./routes/heartbeats.ts";
import { registerNodeRoutes } from "./routes/nodes.ts";
import { registerSecurityRoutes } from "./routes/security.ts";
import { registerServiceRoutes } from "./routes/services.ts";
import type { ServerSecurity } from "./server-security.ts";

/** Largest request body: a full heartbeat batch with metrics fits. */
export const requestBodyBytesMax = 1024 * 1024;

export interface AppOptions {
  logger: PinoLogger | false;
  /** Authentication, RBAC, rate limits and TLS material. */
  security: ServerSecurity;
  /** The REGIONAL tier's blob store (`--blob-dir`), served under /v1/blobs. */
  blobApi?: Parameters<typeof registerBlobRoutes>[1];
}

export async function buildApp(plane: ControlPlane, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger === false ? { logger: false } : { loggerInstance: options.logger }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: requestBodyBytesMax,
    routerOptions: { maxParamLength: 128 },
    return503OnClosing: true,
    keepAliveTimeout: 75_000,
    ...(options.security.tls === undefined
      ? {}
      : {
          https: {
            key: options.security.tls.privateKeyPem,
            cert: options.security.tls.certificateChainPem,
          },
        }),
  }) as unknown as FastifyInstance;

  installAccessControl(app, options.security);

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof HttpError) {
      return reply
        .code(error.statusCode)
        .send({ error: error.code, message: error.message, statusCode: error.statusCode });
    }
    const statusCode = error.statusCode ?? 500;
    if (statusCode >= 400 && statusCode < 500) {
      const code = (error.code ?? "bad_request").toLowerCase();
      return reply.code(statusCode).send({ error: code, message: error.message, statusCode });
    }
    request.log.error({ err: error, url: request.url }, "request failed");
    return reply
      .code(500)
      .send({ error: "internal", message: "internal error; see the server log", statusCode: 500 });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: "not_found",
      message: `no route ${request.method} ${request.url.split("?")[0] ?? ""}`,
      statusCode: 404,
    }),
  );

  await app.register(websocket, { options: { maxPayload: agentMessageBytesMax } });
  registerHealthRoutes(app, plane);
  registerNodeRoutes(app, plane);
  registerHeartbeatRoutes(app, plane);
  registerEventRoutes(app, plane);
  registerServiceRoutes(app, plane);
  registerAgentChannel(app, plane);
  if (plane.components.backups !== undefined) registerBackupRoutes(app, plane.components.backups);
  if (options.blobApi !== undefined) await registerBlobRoutes(app, options.blobApi);
  registerSecurityRoutes(app, plane, options.security);
  return app;
}
