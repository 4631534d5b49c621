// Fleet backups over HTTP: the catalogue, on-demand runs, restores and verification. Thin
// routes over BackupControl; each declares its access for the one auth hook.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import {
  backupRestoreRequestSchema,
  backupRunRequestSchema,
  backupVerifyRequestSchema,
  nodeIdSchema,
  type BackupListResponse,
  type BackupRestoreResponse,
  type BackupRunResponse,
  type BackupVerifyResponse,
} from "../../api/contract.ts";
import type { BackupControl } from "../backup/backup-control.ts";
import { parseOrReject } from "../http-error.ts";

const listQuerySchema = z.strictObject({
  service: z.string().min(1).max(128).optional(),
  policy: z.string().min(1).max(128).optional(),
  node: nodeIdSchema.optional(),
});
const snapshotParamsSchema = z.strictObject({ id: z.string().min(1).max(64) });

export function registerBackupRoutes(app: FastifyInstance, backups: BackupControl): void {
  app.get(
    "/v1/backups",
    { config: { access: { resource: "backups", action: "read" } } },
    (request): BackupListResponse => {
      const query = parseOrReject(listQuerySchema, request.query, "query");
      return backups.list({
        ...(query.service === undefined ? {} : { service: query.service }),
        ...(query.policy === undefined ? {} : { policy: query.policy }),
        ...(query.node === undefined ? {} : { node: query.node }),
      });
    },
  );

  app.post(
    "/v1/backups/run",
    { config: { access: { resource: "backups", action: "write" } } },
    (request): Promise<BackupRunResponse> =>
      backups.run(parseOrReject(backupRunRequestSchema, request.body, "backup run request")),
  );

  app.post(
    "/v1/backups/verify",
    { config: { access: { resource: "backups", action: "read" } } },
    (request): Promise<BackupVerifyResponse> =>
      backups.verify(
        parseOrReject(backupVerifyRequestSchema, request.body, "verify request").readData,
      ),
  );

  app.post(
    "/v1/backups/:id/restore",
    { config: { access: { resource: "backups", action: "write" } } },
    (request): Promise<BackupRestoreResponse> =>
      backups.restore(
        parseOrReject(snapshotParamsSchema, request.params, "snapshot id").id,
        parseOrReject(backupRestoreRequestSchema, request.body, "restore request"),
      ),
  );
}

type BlobApiHandler = ((request: IncomingMessage, response: ServerResponse) => void) & {
  handles: (url: string) => boolean;
};

/**
 * The REGIONAL tier's blob API (`--blob-dir`) under /v1/blobs on the server's own port. Bodies
 * are streamed by the blob handler, so this scope parses none (its own limit, blobBytesMax,
 * applies instead of the API's body limit).
 */
export async function registerBlobRoutes(
  app: FastifyInstance,
  blobApi: BlobApiHandler,
): Promise<void> {
  await app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_request, _payload, parsed) => parsed(null));
    const handler = (request: FastifyRequest, reply: FastifyReply) => {
      reply.hijack();
      blobApi(request.raw, reply.raw);
    };
    for (const url of ["/v1/blobs", "/v1/blobs/*"]) {
      scope.route({
        method: ["GET", "HEAD", "PUT", "DELETE"],
        url,
        // Public to the Bearer-token hook (rate limits still apply): agents prove who they
        // are with signed peer requests, which the blob handler's authorize hook verifies
        // against the enrolled node keys (ADR 0006, "Peer requests").
        config: { access: { resource: "backups", action: "write", public: true } },
        handler,
      });
    }
    done();
  });
}
