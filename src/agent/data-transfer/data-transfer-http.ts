// Moving a service's data directory between agents over HTTP: the route the agent serves
// (GET /v1/services/:name/data) and the client the receiving agent pulls with. Both stream:
// neither side holds more than a piece of a file in memory.

import { request, type IncomingMessage, type ServerResponse } from "node:http";
import { request as secureRequest } from "node:https";
import { lstat } from "node:fs/promises";
import type { Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import { isServiceName } from "../../runtime/proxy/proxy-ports-file.ts";
import { systemClock } from "../../runtime/system-clock.ts";
import { closeIfBodyUnread } from "../../runtime/unread-request-body.ts";
import {
  dataArchiveLimitsDefaults,
  extractArchive,
  writeArchive,
  type DataArchiveLimits,
} from "./data-archive.ts";

export const dataArchiveContentType = "application/vnd.edgeward.data-archive";
/** An error answer's body is read up to this size; the rest is ignored. */
export const errorBodyBytesMax = 64 * 1024;

const dataRoutePattern = /^\/v1\/services\/([^/]+)\/data$/;

export interface DataTransferHandlerComponents {
  /** The data directory of a service this agent knows, or undefined for an unknown service. */
  dataDirOf(service: string): string | undefined;
  /** Stops the local instance so the copy is exact; resolves once it has stopped. */
  quiesce(service: string): Promise<void>;
  logger: Logger;
  limits?: DataArchiveLimits;
  /**
   * Decides who may copy data (signed peer requests, ADR 0006); absent: everyone (tests and
   * callers that check elsewhere).
   */
  authorize?: (
    request: IncomingMessage,
  ) => { ok: true } | { ok: false; statusCode: 401 | 403; message: string };
}

/**
 * A handler for the agent's node:http server. It answers GET /v1/services/:name/data[?quiesce=1]
 * with the archive of that service's data directory, and returns false (touching nothing) for
 * every other path so the caller's own routes and 404 apply.
 */
export function createDataTransferHandler(
  components: DataTransferHandlerComponents,
): (request: IncomingMessage, response: ServerResponse) => boolean {
  return (incoming, response) => {
    const url = new URL(incoming.url ?? "/", "http://agent.invalid");
    const match = dataRoutePattern.exec(url.pathname);
    if (match === null) return false;
    if (incoming.method !== "GET") {
      response.setHeader("allow", "GET");
      sendError(
        response,
        405,
        "method_not_allowed",
        `${incoming.method ?? ""} is not allowed here`,
      );
      return true;
    }
    let service: string;
    try {
      service = decodeURIComponent(match[1] ?? "");
    } catch {
      sendError(response, 400, "bad_request", "the service name is not valid URL encoding");
      return true;
    }
    if (!isServiceName(service)) {
      sendError(response, 400, "bad_request", `${JSON.stringify(service)} is not a service name`);
      return true;
    }
    const quiesce = parseQuiesce(url.searchParams);
    if (typeof quiesce === "string") {
      sendError(response, 400, "bad_request", quiesce);
      return true;
    }
    const authorization = components.authorize?.(incoming) ?? { ok: true };
    if (!authorization.ok) {
      sendError(
        response,
        authorization.statusCode,
        authorization.statusCode === 401 ? "unauthorized" : "forbidden",
        authorization.message,
      );
      return true;
    }
    const dataDir = components.dataDirOf(service);
    if (dataDir === undefined) {
      sendError(response, 404, "not_found", `this agent has no data for service ${service}`);
      return true;
    }
    void serveArchive(components, service, dataDir, quiesce, response);
    return true;
  };
}

/** quiesce=1 or 0 (absent: 0); anything else is a bad request, described by the string. */
function parseQuiesce(query: URLSearchParams): boolean | string {
  for (const key of query.keys()) {
    if (key !== "quiesce") return `unknown query parameter ${key}`;
  }
  const values = query.getAll("quiesce");
  if (values.length === 0) return false;
  if (values.length > 1) return "quiesce is given more than once";
  if (values[0] === "1") return true;
  if (values[0] === "0") return false;
  return "quiesce must be 0 or 1";
}

async function serveArchive(
  components: DataTransferHandlerComponents,
  service: string,
  dataDir: string,
  quiesce: boolean,
  response: ServerResponse,
): Promise<void> {
  const { logger } = components;
  if (quiesce) {
    try {
      await components.quiesce(service);
    } catch (error) {
      logger.warn({ service, err: (error as Error).message }, "could not quiesce for a data copy");
      sendError(
        response,
        503,
        "quiesce_failed",
        `could not stop ${service}: ${(error as Error).message}`,
      );
      return;
    }
  }
  try {
    if (!(await lstat(dataDir)).isDirectory()) {
      sendError(response, 500, "internal", `the data directory of ${service} is not a directory`);
      return;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      sendError(response, 404, "no_data", `service ${service} has no data directory here yet`);
    } else {
      sendError(
        response,
        500,
        "internal",
        `cannot read the data of ${service}: ${(error as Error).message}`,
      );
    }
    return;
  }
  response.writeHead(200, { "content-type": dataArchiveContentType, "cache-control": "no-store" });
  try {
    const summary = await writeArchive(
      dataDir,
      response,
      components.limits ?? dataArchiveLimitsDefaults,
    );
    logger.info({ service, quiesce, ...summary }, "sent a copy of a service's data");
  } catch (error) {
    // The peer sees a truncated archive and rejects it; nothing more can be said over HTTP.
    response.destroy();
    logger.warn({ service, err: (error as Error).message }, "sending a service's data failed");
  }
}

function sendError(
  response: ServerResponse,
  statusCode: number,
  error: string,
  message: string,
): void {
  closeIfBodyUnread(response);
  response
    .writeHead(statusCode, { "content-type": "application/json" })
    .end(JSON.stringify({ error, message, statusCode }));
}

export class DataTransferError extends Error {
  override readonly name = "DataTransferError";
  constructor(
    /** The peer's HTTP status, when it answered with an error. */
    readonly statusCode: number | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface PullServiceDataOptions {
  /** Base URL of the agent that has the data, e.g. http://10.0.0.5:7400. */
  fromUrl: string;
  service: string;
  /** Ask that agent to stop its instance first, so the copy is exact. */
  quiesce: boolean;
  /** Replaced as a whole, and only once the whole archive verified. */
  targetDir: string;
  /** Gives up when the peer sends nothing for this long (including while it quiesces). */
  timeoutMs: number;
  limits?: DataArchiveLimits;
  clock?: Clock;
  /** The node id of the agent at `fromUrl`: the request is signed for it alone. */
  fromNode: string;
  /** Signature headers for the request (this node's enrolled key); absent: unsigned. */
  sign?: (request: {
    receiver: string;
    method: string;
    pathAndQuery: string;
  }) => Record<string, string>;
}

export interface PullSummary {
  /** Bytes of the archive received. */
  bytes: number;
  /** Bytes of file content installed. */
  contentBytes: number;
  files: number;
  durationMs: number;
}

/**
 * Copies a service's data directory from another agent into `targetDir`. Throws
 * DataTransferError when the peer refuses or stalls, DataArchiveError when what it sent is
 * broken; either way `targetDir` is left as it was.
 */
export async function pullServiceData(options: PullServiceDataOptions): Promise<PullSummary> {
  const clock = options.clock ?? systemClock;
  const startedAtMs = clock.nowMs();
  const url = new URL(`/v1/services/${encodeURIComponent(options.service)}/data`, options.fromUrl);
  url.search = options.quiesce ? "quiesce=1" : "";
  let timedOut = false;
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const send = url.protocol === "https:" ? secureRequest : request;
    const headers =
      options.sign?.({
        receiver: options.fromNode,
        method: "GET",
        pathAndQuery: url.pathname + url.search,
      }) ?? {};
    const outgoing = send(url, { method: "GET", timeout: options.timeoutMs, headers }, resolve);
    outgoing.on("timeout", () => {
      timedOut = true;
      outgoing.destroy(
        new DataTransferError(undefined, `${url.host} sent nothing for ${options.timeoutMs} ms`),
      );
    });
    outgoing.on("error", (error) =>
      reject(
        error instanceof DataTransferError
          ? error
          : new DataTransferError(undefined, `cannot reach ${url.host}: ${error.message}`, {
              cause: error,
            }),
      ),
    );
    outgoing.end();
  });
  if (response.statusCode !== 200) {
    const message = await errorMessage(response);
    throw new DataTransferError(
      response.statusCode,
      `${url.host} refused the data of ${options.service} (HTTP ${response.statusCode ?? 0}): ${message}`,
    );
  }
  try {
    const summary = await extractArchive(
      response,
      options.targetDir,
      options.limits ?? dataArchiveLimitsDefaults,
    );
    return {
      bytes: summary.archiveBytes,
      contentBytes: summary.contentBytes,
      files: summary.files,
      durationMs: clock.nowMs() - startedAtMs,
    };
  } catch (error) {
    if (timedOut) {
      throw new DataTransferError(
        undefined,
        `${url.host} stopped sending the data of ${options.service} for ${options.timeoutMs} ms`,
        { cause: error },
      );
    }
    throw error;
  }
}

async function errorMessage(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of response) {
      const piece = chunk as Buffer;
      if (length + piece.length > errorBodyBytesMax) break;
      chunks.push(piece);
      length += piece.length;
    }
  } catch {
    // Whatever arrived is all the explanation there is.
  }
  response.destroy();
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // Not JSON: show the text itself.
  }
  return text === "" ? "no explanation" : text.slice(0, 200);
}
