// A BlobStore on the other end of HTTP: the client of blob-store-http-handler.ts (a server's
// `--blob-dir`, or a peer agent's shard API). Retries transient failures with backoff;
// uploads are sent with their length and SHA-256, and large pending blobs spill to disk.
import http from "node:http";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { BackupError, assert } from "../../core/backup/errors.ts";
import type { BackupErrorCode } from "../../core/backup/errors.ts";
import { isValidBlobName } from "../../core/backup/blob-store.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";
import { blobApiPathPrefix, contentSha256Header } from "./blob-store-http-handler.ts";
import type { BlobApiError, BlobListPage } from "./blob-store-http-handler.ts";
import { errorCode } from "./directory-blob-store.ts";
import { bytesBody, sendBody, spooledPendingBlob } from "./spooled-body.ts";
import type { Body } from "./spooled-body.ts";

export interface HttpBlobStoreOptions {
  /** `http://host:port` or `https://…`; the API lives under /v1/blobs. */
  baseUrl: string;
  /**
   * Extra headers per request, made for each attempt: agents sign peer requests here (ADR 0006,
   * "Peer requests"; `contentSha256` is the body's hash a PUT sends, which the signature covers).
   */
  headers: (request: {
    method: string;
    pathAndQuery: string;
    contentSha256: string | undefined;
  }) => Record<string, string>;
  /** A request fails (and is retried) after this long without progress on its socket. */
  requestTimeoutMs: number;
  retryCountMax: number;
  retryDelayMsInitial: number;
  retryDelayMsMax: number;
  /** Largest blob sent or accepted. */
  blobBytesMax: number;
  /** A pending blob stays in memory up to this size, then spills to a temporary file. */
  pendingBufferBytesMax: number;
  temporaryDirectory: string;
  /** Pages one list() may read: a bound on a server that never stops paginating. */
  listPagesMax: number;
  connectionsMax: number;
  /** For https: trust only this CA (PEM), e.g. the fleet CA of the server's blob API. */
  caCertificatePem: string | undefined;
}

export const httpBlobStoreDefaults = {
  headers: () => ({}),
  requestTimeoutMs: 30_000,
  retryCountMax: 4,
  retryDelayMsInitial: 100,
  retryDelayMsMax: 5_000,
  blobBytesMax: 256 * 1024 * 1024,
  pendingBufferBytesMax: 4 * 1024 * 1024,
  listPagesMax: 10_000,
  connectionsMax: 8,
  caCertificatePem: undefined,
} as const;

const retryableNetworkCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
const errorBodyBytesMax = 64 * 1024;

class TransientError extends Error {}

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

export class HttpBlobStore implements BlobStore {
  readonly location: string;
  private readonly options: HttpBlobStoreOptions;
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(options: Pick<HttpBlobStoreOptions, "baseUrl"> & Partial<HttpBlobStoreOptions>) {
    this.options = { ...httpBlobStoreDefaults, temporaryDirectory: tmpdir(), ...options };
    this.base = new URL(this.options.baseUrl);
    assert(
      this.base.protocol === "http:" || this.base.protocol === "https:",
      `blob API URL must be http(s): ${this.options.baseUrl}`,
    );
    const agentOptions = { keepAlive: true, maxSockets: this.options.connectionsMax };
    this.agent =
      this.base.protocol === "https:"
        ? new https.Agent({
            ...agentOptions,
            ...(this.options.caCertificatePem === undefined
              ? {}
              : { ca: this.options.caCertificatePem }),
          })
        : new http.Agent(agentOptions);
    this.location = `${this.base.origin}${blobApiPathPrefix}`;
  }

  close(): void {
    this.agent.destroy();
  }

  private pathOf(name: string): string {
    assert(isValidBlobName(name), `invalid blob name "${name}"`);
    return `${blobApiPathPrefix}/${name}`;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    await this.upload(name, bytesBody(data));
  }

  private async upload(name: string, body: Body): Promise<void> {
    if (body.lengthBytes > this.options.blobBytesMax)
      throw new BackupError(
        "STORAGE_FAILED",
        `${name} is ${body.lengthBytes} bytes, more than the limit of ${this.options.blobBytesMax}`,
      );
    await this.request("PUT", this.pathOf(name), `writing ${name}`, {
      body,
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(body.lengthBytes),
        [contentSha256Header]: body.sha256Hex,
      },
    });
  }

  begin(): Promise<PendingBlob> {
    return Promise.resolve(
      spooledPendingBlob(
        {
          memoryBytesMax: this.options.pendingBufferBytesMax,
          lengthBytesMax: this.options.blobBytesMax,
          temporaryDirectory: this.options.temporaryDirectory,
        },
        (name, body) => this.upload(name, body),
      ),
    );
  }

  async get(name: string): Promise<Uint8Array> {
    return (await this.request("GET", this.pathOf(name), `reading ${name}`)).body;
  }

  async getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    assert(offsetBytes >= 0 && lengthBytes >= 0, "range must not be negative");
    if (lengthBytes === 0) {
      await this.sizeBytes(name);
      return new Uint8Array(0);
    }
    const answer = await this.request("GET", this.pathOf(name), `reading ${name}`, {
      headers: { range: `bytes=${offsetBytes}-${offsetBytes + lengthBytes - 1}` },
    });
    return answer.status === 206
      ? answer.body.subarray(0, lengthBytes)
      : answer.body.subarray(offsetBytes, offsetBytes + lengthBytes);
  }

  async sizeBytes(name: string): Promise<number> {
    const answer = await this.request("HEAD", this.pathOf(name), `reading ${name}`);
    const size = Number(answer.headers["content-length"]);
    if (!Number.isSafeInteger(size) || size < 0)
      throw new BackupError("STORAGE_FAILED", `${this.location} gave no size for ${name}`);
    return size;
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.sizeBytes(name);
      return true;
    } catch (error) {
      if (error instanceof BackupError && error.code === "BLOB_NOT_FOUND") return false;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < this.options.listPagesMax; page++) {
      const query = new URLSearchParams({ prefix });
      if (after !== null) query.set("after", after);
      const answer = await this.request(
        "GET",
        `${blobApiPathPrefix}?${query.toString()}`,
        `listing ${prefix}`,
      );
      let parsed: BlobListPage;
      try {
        parsed = JSON.parse(answer.body.toString("utf8")) as BlobListPage;
      } catch {
        throw new BackupError("STORAGE_FAILED", `${this.location} sent a list that is not JSON`);
      }
      if (!Array.isArray(parsed.names))
        throw new BackupError("STORAGE_FAILED", `${this.location} sent a malformed list`);
      for (const name of parsed.names)
        if (typeof name === "string" && isValidBlobName(name) && name.startsWith(prefix))
          names.push(name);
      if (parsed.next === null || parsed.next === undefined) return names;
      if (typeof parsed.next !== "string" || (after !== null && parsed.next <= after))
        throw new BackupError("STORAGE_FAILED", `${this.location} paginated backwards`);
      after = parsed.next;
    }
    throw new BackupError(
      "STORAGE_FAILED",
      `listing ${prefix} in ${this.location} took more than ${this.options.listPagesMax} pages`,
    );
  }

  async delete(name: string): Promise<void> {
    try {
      await this.request("DELETE", this.pathOf(name), `deleting ${name}`);
    } catch (error) {
      if (!(error instanceof BackupError && error.code === "BLOB_NOT_FOUND")) throw error;
    }
  }

  private async request(
    method: "GET" | "PUT" | "HEAD" | "DELETE",
    path: string,
    doing: string,
    extra: { body?: Body; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.options.retryCountMax; attempt++) {
      if (attempt > 0) {
        const ceilingMs = Math.min(
          this.options.retryDelayMsMax,
          this.options.retryDelayMsInitial * 2 ** (attempt - 1),
        );
        await new Promise((resolve) => setTimeout(resolve, Math.random() * ceilingMs));
      }
      let answer: Answer;
      try {
        answer = await this.attempt(method, path, extra);
      } catch (error) {
        const code = errorCode(error);
        if (
          error instanceof TransientError ||
          (code !== undefined && retryableNetworkCodes.has(code))
        ) {
          lastError = error;
          continue;
        }
        throw error instanceof BackupError
          ? error
          : new BackupError(
              "STORAGE_FAILED",
              `${doing} at ${this.location} failed: ${error instanceof Error ? error.message : String(error)}`,
              { cause: error },
            );
      }
      if (answer.status >= 200 && answer.status < 300) return answer;
      const failure = this.failureOf(answer, doing);
      if (answer.status >= 500 && answer.status !== 507) {
        lastError = failure;
        continue;
      }
      if (answer.status === 429) {
        lastError = failure;
        continue;
      }
      throw failure;
    }
    throw new BackupError(
      "STORAGE_FAILED",
      `${doing} at ${this.location} failed after ${this.options.retryCountMax + 1} attempts: ${
        lastError instanceof Error ? lastError.message : String(lastError)
      }`,
      { cause: lastError },
    );
  }

  private failureOf(answer: Answer, doing: string): BackupError {
    let remote: BlobApiError["error"] | undefined;
    try {
      remote = (JSON.parse(answer.body.toString("utf8")) as BlobApiError).error;
    } catch {
      remote = undefined;
    }
    const message = remote?.message ?? `HTTP ${answer.status}`;
    if (answer.status === 404 && (remote === undefined || remote.code === "BLOB_NOT_FOUND"))
      return new BackupError("BLOB_NOT_FOUND", `${doing}: ${message}`);
    const codes: Partial<Record<number, BackupErrorCode>> = { 507: "STORAGE_FULL" };
    return new BackupError(
      codes[answer.status] ?? "STORAGE_FAILED",
      `${doing} at ${this.location} failed: ${message}${
        answer.status === 401 || answer.status === 403 ? " (not authorized)" : ""
      }`,
    );
  }

  private attempt(
    method: string,
    path: string,
    extra: { body?: Body; headers?: Record<string, string> },
  ): Promise<Answer> {
    const transport = this.base.protocol === "https:" ? https : http;
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        outgoing.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
      };
      const outgoing = transport.request(
        {
          agent: this.agent,
          hostname: this.base.hostname.replace(/^\[|\]$/g, ""),
          port: this.base.port === "" ? undefined : Number(this.base.port),
          method,
          path,
          headers: {
            ...this.options.headers({
              method,
              pathAndQuery: path,
              contentSha256: extra.headers?.[contentSha256Header],
            }),
            ...extra.headers,
          },
        },
        (response) => {
          response.on("error", fail);
          const status = response.statusCode ?? 0;
          const limit =
            status >= 200 && status < 300 ? this.options.blobBytesMax : errorBodyBytesMax;
          readAnswerBody(response, limit, method === "HEAD").then((body) => {
            settled = true;
            resolve({ status, headers: response.headers, body });
          }, fail);
        },
      );
      outgoing.setTimeout(this.options.requestTimeoutMs, () =>
        fail(new TransientError(`no progress for ${this.options.requestTimeoutMs} ms`)),
      );
      outgoing.on("error", fail);
      if (extra.body === undefined) outgoing.end();
      else sendBody(extra.body, outgoing)?.on("error", fail);
    });
  }
}

/** The body in one buffer sized from Content-Length; a short body is worth a retry. */
async function readAnswerBody(
  response: IncomingMessage,
  lengthBytesMax: number,
  headOnly: boolean,
): Promise<Buffer> {
  if (headOnly) {
    response.resume();
    return Buffer.alloc(0);
  }
  const declared = Number(response.headers["content-length"]);
  const known = Number.isSafeInteger(declared) && declared >= 0;
  if (known && declared > lengthBytesMax)
    throw new BackupError(
      "STORAGE_FAILED",
      `the blob server announced ${declared} bytes, more than the limit of ${lengthBytesMax}`,
    );
  const buffer = known ? Buffer.allocUnsafe(declared) : undefined;
  const chunks: Buffer[] = [];
  let filled = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (filled + chunk.length > (known ? declared : lengthBytesMax))
      throw new TransientError("the blob server sent more bytes than allowed");
    if (buffer === undefined) chunks.push(chunk);
    else chunk.copy(buffer, filled);
    filled += chunk.length;
  }
  if (known && filled !== declared)
    throw new TransientError(`the answer ended after ${filled} of ${declared} bytes`);
  return buffer ?? Buffer.concat(chunks);
}
