// Serves a BlobStore over HTTP under /v1/blobs/… (the REGIONAL tier's `--blob-dir`, and each
// agent's shard API for the EDGE_CLUSTER tier). A plain node:http handler, so any server can
// mount it; who may do what is decided by the `authorize` hook the caller supplies.
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { BackupError } from "../../core/backup/errors.ts";
import type { BackupErrorCode } from "../../core/backup/errors.ts";
import { isValidBlobName } from "../../core/backup/blob-store.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { closeIfBodyUnread } from "../unread-request-body.ts";

export const blobApiPathPrefix = "/v1/blobs";
/** Header carrying the hex SHA-256 of a PUT body; the server refuses a body that differs. */
export const contentSha256Header = "x-edgeward-content-sha256";

export type BlobOperation = "read" | "write" | "delete" | "list";

export interface BlobAccess {
  operation: BlobOperation;
  /** The blob, or the list prefix. */
  name: string;
}

export interface BlobStoreHttpHandlerOptions {
  /**
   * Decides each request before anything is read or written: the security issue plugs token
   * checks in here. Use `allowEveryRequest` only on loopback or in tests.
   */
  authorize: (request: IncomingMessage, access: BlobAccess) => boolean | Promise<boolean>;
  /** Largest blob a PUT may carry; larger ones get 413 before any byte is stored. */
  blobBytesMax: number;
  /** Names per list page (a client asks for fewer with `limit`). */
  listPageNamesMax: number;
}

export const allowEveryRequest = (): boolean => true;

export const blobStoreHttpDefaults = {
  blobBytesMax: 256 * 1024 * 1024,
  listPageNamesMax: 10_000,
} as const;

/** The JSON body of every error answer. */
export interface BlobApiError {
  error: { code: BackupErrorCode | "UNAUTHORIZED" | "TOO_LARGE" | "NOT_FOUND"; message: string };
}

/** The JSON body of `GET /v1/blobs?prefix=…&after=…&limit=…`. */
export interface BlobListPage {
  names: string[];
  /** Pass as `after` for the next page; null on the last one. */
  next: string | null;
}

const statusOfCode: Record<BackupErrorCode, number> = {
  BLOB_NOT_FOUND: 404,
  INVALID_ARGUMENT: 400,
  STORAGE_FULL: 507,
  STORAGE_FAILED: 500,
  CORRUPT_OBJECT: 500,
  WRONG_PASSWORD: 500,
  REPOSITORY_NOT_FOUND: 500,
  REPOSITORY_EXISTS: 500,
  LOCKED: 500,
  SNAPSHOT_NOT_FOUND: 500,
};

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  closeIfBodyUnread(response);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(body.length),
  });
  response.end(body);
}

function sendError(
  response: ServerResponse,
  status: number,
  code: BlobApiError["error"]["code"],
  message: string,
): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  sendJson(response, status, { error: { code, message } } satisfies BlobApiError);
}

/** Parses `bytes=a-b` (one range, both ends given) as offset and length. */
function parseRange(header: string): { offsetBytes: number; lengthBytes: number } | undefined {
  const match = /^bytes=(\d+)-(\d+)$/.exec(header);
  if (!match) return undefined;
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first) return undefined;
  return { offsetBytes: first, lengthBytes: last - first + 1 };
}

/**
 * A request handler for `store`. It answers every request it is given: mount it on the
 * `/v1/blobs` prefix (`handles(url)` tells whether a URL belongs to it).
 */
export function createBlobStoreHttpHandler(
  store: BlobStore,
  options: Pick<BlobStoreHttpHandlerOptions, "authorize"> & Partial<BlobStoreHttpHandlerOptions>,
): ((request: IncomingMessage, response: ServerResponse) => void) & {
  handles: (url: string) => boolean;
} {
  const settings: BlobStoreHttpHandlerOptions = { ...blobStoreHttpDefaults, ...options };

  const serve = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://blob-api");
    if (url.pathname === blobApiPathPrefix || url.pathname === `${blobApiPathPrefix}/`) {
      if (request.method !== "GET")
        return sendError(response, 405, "INVALID_ARGUMENT", "only GET lists blobs");
      const prefix = url.searchParams.get("prefix") ?? "";
      const after = url.searchParams.get("after");
      const limit = Math.min(
        settings.listPageNamesMax,
        Number(url.searchParams.get("limit") ?? settings.listPageNamesMax),
      );
      if (!/^[A-Za-z0-9._/-]*$/.test(prefix) || !Number.isSafeInteger(limit) || limit < 1)
        return sendError(response, 400, "INVALID_ARGUMENT", "bad prefix or limit");
      if (!(await settings.authorize(request, { operation: "list", name: prefix })))
        return sendError(response, 403, "UNAUTHORIZED", `not allowed to list ${prefix}`);
      const names = (await store.list(prefix)).sort();
      const start = after === null ? 0 : names.findIndex((name) => name > after);
      const page = start === -1 ? [] : names.slice(start, start + limit);
      const more = start !== -1 && start + limit < names.length;
      return sendJson(response, 200, {
        names: page,
        next: more ? (page[page.length - 1] ?? null) : null,
      } satisfies BlobListPage);
    }
    if (!url.pathname.startsWith(`${blobApiPathPrefix}/`))
      return sendError(response, 404, "NOT_FOUND", `no such endpoint: ${url.pathname}`);
    let name: string;
    try {
      name = decodeURIComponent(url.pathname.slice(blobApiPathPrefix.length + 1));
    } catch {
      return sendError(response, 400, "INVALID_ARGUMENT", "badly encoded blob name");
    }
    if (!isValidBlobName(name))
      return sendError(response, 400, "INVALID_ARGUMENT", `"${name}" is not a valid blob name`);
    const operation: BlobOperation | undefined =
      request.method === "GET" || request.method === "HEAD"
        ? "read"
        : request.method === "PUT"
          ? "write"
          : request.method === "DELETE"
            ? "delete"
            : undefined;
    if (operation === undefined)
      return sendError(response, 405, "INVALID_ARGUMENT", `${request.method} is not supported`);
    if (!(await settings.authorize(request, { operation, name })))
      return sendError(response, 403, "UNAUTHORIZED", `not allowed to ${operation} ${name}`);

    switch (operation) {
      case "read": {
        if (request.method === "HEAD") {
          const size = await store.sizeBytes(name);
          response.writeHead(200, { "content-length": String(size) });
          return void response.end();
        }
        const rangeHeader = request.headers.range;
        if (rangeHeader !== undefined) {
          const range = parseRange(rangeHeader);
          if (range === undefined)
            return sendError(response, 400, "INVALID_ARGUMENT", `unsupported range ${rangeHeader}`);
          const bytes = await store.getRange(name, range.offsetBytes, range.lengthBytes);
          response.writeHead(206, {
            "content-type": "application/octet-stream",
            "content-length": String(bytes.length),
          });
          return void response.end(bytes);
        }
        const bytes = await store.get(name);
        response.writeHead(200, {
          "content-type": "application/octet-stream",
          "content-length": String(bytes.length),
        });
        return void response.end(bytes);
      }
      case "write":
        return receive(store, settings, name, request, response);
      case "delete":
        await store.delete(name);
        response.writeHead(204);
        return void response.end();
    }
  };

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    serve(request, response).catch((error: unknown) => {
      if (error instanceof BackupError)
        sendError(response, statusOfCode[error.code], error.code, error.message);
      else sendError(response, 500, "STORAGE_FAILED", "internal error");
    });
  };
  return Object.assign(handler, {
    handles: (url: string) =>
      url === blobApiPathPrefix ||
      url.startsWith(`${blobApiPathPrefix}/`) ||
      url.startsWith(`${blobApiPathPrefix}?`),
  });
}

/** Streams a PUT body into a pending blob, checking its length and hash before committing. */
async function receive(
  store: BlobStore,
  settings: BlobStoreHttpHandlerOptions,
  name: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const declared = Number(request.headers["content-length"]);
  if (!Number.isSafeInteger(declared) || declared < 0)
    return sendError(response, 411, "INVALID_ARGUMENT", "a PUT needs a Content-Length");
  if (declared > settings.blobBytesMax)
    return sendError(
      response,
      413,
      "TOO_LARGE",
      `${declared} bytes is more than the limit of ${settings.blobBytesMax}`,
    );
  const expectedSha256 = request.headers[contentSha256Header];
  const pending = await store.begin();
  const hash = createHash("sha256");
  let received = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > declared)
        throw new BackupError("INVALID_ARGUMENT", "the body is longer than its Content-Length");
      hash.update(chunk);
      await pending.append(chunk);
    }
    if (received !== declared)
      throw new BackupError(
        "INVALID_ARGUMENT",
        `the body ended after ${received} of ${declared} bytes`,
      );
    if (typeof expectedSha256 === "string" && hash.digest("hex") !== expectedSha256)
      throw new BackupError("INVALID_ARGUMENT", "the body does not match its SHA-256");
    await pending.commit(name);
  } catch (error) {
    await pending.abort();
    throw error;
  }
  response.writeHead(204);
  response.end();
}
