// The CLOUD backend: blobs as objects in an S3 bucket (AWS or any S3-compatible server),
// spoken to over the S3 REST API with path-style URLs and hand-written Signature V4, so the
// engine needs no SDK. Requests are retried with exponential backoff on 5xx answers and
// broken connections; pending blobs spill to a temporary file, so memory stays bounded.
import http from "node:http";
import type { IncomingMessage } from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import type { Readable } from "node:stream";
import { BackupError, assert } from "../../core/backup/errors.ts";
import { isValidBlobName } from "../../core/backup/blob-store.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";
import { errorCode } from "./directory-blob-store.ts";
import { bytesBody, sendBody, spooledPendingBlob } from "./spooled-body.ts";
import type { Body } from "./spooled-body.ts";
import {
  amzDate,
  authorizationHeader,
  canonicalQueryString,
  emptyPayloadSha256Hex,
  encodeS3Path,
} from "./sigv4.ts";
import type { AwsCredentials } from "./sigv4.ts";

/** Where and how to reach the bucket; each field's trade-off is in its comment. */
export interface S3BlobStoreOptions {
  /** `https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`, …; path-style requests. */
  endpoint: string;
  bucket: string;
  /** Key prefix under which the repository lives, without slashes at either end; "" = root. */
  prefix: string;
  /** Signing region; S3-compatible servers mostly accept us-east-1. */
  region: string;
  credentials: AwsCredentials;
  /** A request fails (and is retried) after this long without progress on its socket. */
  requestTimeoutMs: number;
  /** Retries after the first attempt; each waits longer (full jitter, doubling). */
  retryCountMax: number;
  retryDelayMsInitial: number;
  retryDelayMsMax: number;
  /** Keys per ListObjectsV2 page (S3 caps it at 1000). */
  listPageKeysMax: number;
  /** Pages one list() may read before giving up: a bound on runaway pagination. */
  listPagesMax: number;
  /** Largest blob stored with one PUT (S3 allows 5 GiB; packs are about 16 MiB). */
  blobBytesMax: number;
  /** A pending blob stays in memory up to this size, then spills to a temporary file. */
  pendingBufferBytesMax: number;
  temporaryDirectory: string;
  /** Sockets open to the endpoint at once. */
  connectionsMax: number;
}

export const s3Defaults = {
  region: "us-east-1",
  requestTimeoutMs: 30_000,
  retryCountMax: 5,
  retryDelayMsInitial: 200,
  retryDelayMsMax: 10_000,
  listPageKeysMax: 1000,
  listPagesMax: 100_000,
  blobBytesMax: 5 * 1024 ** 3,
  pendingBufferBytesMax: 4 * 1024 * 1024,
  connectionsMax: 16,
} as const;

/** True for `s3://…`, `s3+http://…` and `s3+https://…` repository locations. */
export function isS3Url(location: string): boolean {
  return /^s3(\+https?)?:\/\//.test(location);
}

const loopbackHosts = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

/**
 * Parses `s3://host[:port]/bucket[/prefix]`. `s3://` means HTTPS, except for loopback hosts
 * (test and development servers, which rarely have TLS); `s3+http://` and `s3+https://` say
 * which explicitly.
 */
export function parseS3Url(location: string): { endpoint: string; bucket: string; prefix: string } {
  const match = /^s3(\+https?)?:\/\/([^/]+)\/([^/]+)(\/.*)?$/.exec(location);
  if (!match)
    throw new BackupError(
      "INVALID_ARGUMENT",
      `expected an S3 location like s3://host:port/bucket/prefix, got "${location}"`,
    );
  const [, explicitScheme, host = "", bucket = "", path = ""] = match;
  const hostname = host.replace(/:\d+$/, "");
  const scheme =
    explicitScheme === "+http"
      ? "http"
      : explicitScheme === "+https"
        ? "https"
        : loopbackHosts.has(hostname) || /^127\./.test(hostname)
          ? "http"
          : "https";
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new BackupError("INVALID_ARGUMENT", `"${bucket}" is not a valid S3 bucket name`);
  const prefix = path.replace(/^\/+|\/+$/g, "");
  if (prefix !== "" && !isValidBlobName(prefix))
    throw new BackupError("INVALID_ARGUMENT", `"${prefix}" is not a valid S3 key prefix`);
  return { endpoint: `${scheme}://${host}`, bucket, prefix };
}

/** An S3 store for `location`, with credentials and region from the environment. */
export function s3BlobStoreFromUrl(
  location: string,
  environment: Readonly<Record<string, string | undefined>>,
): S3BlobStore {
  const accessKeyId = environment.AWS_ACCESS_KEY_ID;
  const secretAccessKey = environment.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId === undefined || secretAccessKey === undefined)
    throw new BackupError(
      "INVALID_ARGUMENT",
      "an s3:// repository needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
  const sessionToken = environment.AWS_SESSION_TOKEN;
  return new S3BlobStore({
    ...parseS3Url(location),
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
    region: environment.AWS_REGION ?? environment.AWS_DEFAULT_REGION ?? s3Defaults.region,
  });
}

type RequestBody = { kind: "none" } | Body;

interface S3Request {
  method: "GET" | "PUT" | "HEAD" | "DELETE";
  /** Object key relative to the bucket; undefined addresses the bucket itself. */
  key?: string;
  query?: [string, string][];
  headers?: Record<string, string>;
  body?: RequestBody;
  /** What the request is for, in messages: "reading data/ab/…". */
  doing: string;
}

/** A failure worth another attempt: a 5xx, a throttle, a broken or silent connection. */
class TransientError extends Error {}

/** A non-retryable HTTP answer with S3's error code, if the body had one. */
class S3ResponseError extends Error {
  constructor(
    readonly statusCode: number,
    readonly s3Code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const errorBodyBytesMax = 64 * 1024;
/** A page of 1000 keys is about 300 KiB of XML; anything far larger is not S3. */
const listPageBytesMax = 16 * 1024 * 1024;
const retryableNetworkCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

export class S3BlobStore implements BlobStore {
  readonly location: string;
  private readonly options: S3BlobStoreOptions;
  private readonly endpoint: URL;
  private readonly agent: http.Agent;
  private readonly keyPrefix: string;

  constructor(
    options: Pick<S3BlobStoreOptions, "endpoint" | "bucket" | "prefix" | "credentials"> &
      Partial<S3BlobStoreOptions>,
  ) {
    this.options = { ...s3Defaults, temporaryDirectory: tmpdir(), ...options };
    this.endpoint = new URL(this.options.endpoint);
    assert(
      this.endpoint.protocol === "http:" || this.endpoint.protocol === "https:",
      `S3 endpoint must be http(s): ${this.options.endpoint}`,
    );
    assert(
      this.options.listPageKeysMax >= 1 && this.options.listPageKeysMax <= 1000,
      "listPageKeysMax in 1..1000",
    );
    this.keyPrefix = this.options.prefix === "" ? "" : `${this.options.prefix}/`;
    const agentOptions = { keepAlive: true, maxSockets: this.options.connectionsMax };
    this.agent =
      this.endpoint.protocol === "https:"
        ? new https.Agent(agentOptions)
        : new http.Agent(agentOptions);
    this.location = `s3://${this.endpoint.host}/${this.options.bucket}${this.options.prefix === "" ? "" : `/${this.options.prefix}`}`;
  }

  /** Closes idle keep-alive sockets (tests and short-lived commands). */
  close(): void {
    this.agent.destroy();
  }

  private keyOf(name: string): string {
    assert(isValidBlobName(name), `invalid blob name "${name}"`);
    return this.keyPrefix + name;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    await this.putBody(name, bytesBody(data));
  }

  private async putBody(name: string, body: Body): Promise<void> {
    if (body.lengthBytes > this.options.blobBytesMax)
      throw new BackupError(
        "STORAGE_FAILED",
        `${name} is ${body.lengthBytes} bytes, more than the S3 store's limit of ${this.options.blobBytesMax}`,
      );
    await this.request(
      { method: "PUT", key: this.keyOf(name), body, doing: `writing ${name}` },
      (response) => drain(response),
    ).catch((error: unknown) => Promise.reject(this.toBackupError(error, `writing ${name}`)));
  }

  /** Appends are hashed as they come and kept in memory, or in a temporary file once large. */
  begin(): Promise<PendingBlob> {
    return Promise.resolve(
      spooledPendingBlob(
        {
          memoryBytesMax: this.options.pendingBufferBytesMax,
          lengthBytesMax: this.options.blobBytesMax,
          temporaryDirectory: this.options.temporaryDirectory,
        },
        (name, body) => this.putBody(name, body),
      ),
    );
  }

  async get(name: string): Promise<Uint8Array> {
    return this.request(
      { method: "GET", key: this.keyOf(name), doing: `reading ${name}` },
      (response) => readBody(response, this.options.blobBytesMax),
    ).catch((error: unknown) => Promise.reject(this.notFound(error, name)));
  }

  /**
   * The blob (or a range of it) as a stream, for copying large blobs with bounded memory. A
   * failure before the first byte is retried; one mid-stream surfaces as a stream error.
   */
  async openReadStream(name: string): Promise<Readable> {
    return this.request(
      { method: "GET", key: this.keyOf(name), doing: `reading ${name}` },
      (response) => Promise.resolve(response),
    ).catch((error: unknown) => Promise.reject(this.notFound(error, name)));
  }

  async getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    assert(offsetBytes >= 0 && lengthBytes >= 0, "range must not be negative");
    if (lengthBytes === 0) {
      await this.sizeBytes(name);
      return new Uint8Array(0);
    }
    try {
      return await this.request(
        {
          method: "GET",
          key: this.keyOf(name),
          headers: { range: `bytes=${offsetBytes}-${offsetBytes + lengthBytes - 1}` },
          doing: `reading ${name}`,
        },
        async (response) => {
          const body = await readBody(response, lengthBytes + errorBodyBytesMax);
          // A server that ignores Range answers 200 with the whole object.
          return response.statusCode === 206
            ? body.subarray(0, lengthBytes)
            : body.subarray(offsetBytes, offsetBytes + lengthBytes);
        },
      );
    } catch (error) {
      // Past the end: S3 answers 416 for an object that exists.
      if (error instanceof S3ResponseError && error.statusCode === 416) return new Uint8Array(0);
      throw this.notFound(error, name);
    }
  }

  async sizeBytes(name: string): Promise<number> {
    try {
      return await this.request(
        { method: "HEAD", key: this.keyOf(name), doing: `reading ${name}` },
        async (response) => {
          await drain(response);
          const length = Number(response.headers["content-length"]);
          if (!Number.isSafeInteger(length) || length < 0)
            throw new BackupError("STORAGE_FAILED", `the S3 server gave no size for ${name}`);
          return length;
        },
      );
    } catch (error) {
      throw this.notFound(error, name);
    }
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
    let continuationToken: string | undefined;
    for (let page = 0; ; page++) {
      if (page >= this.options.listPagesMax)
        throw new BackupError(
          "STORAGE_FAILED",
          `listing ${prefix} in ${this.location} took more than ${this.options.listPagesMax} pages`,
        );
      const query: [string, string][] = [
        ["list-type", "2"],
        ["prefix", this.keyPrefix + prefix],
        ["max-keys", String(this.options.listPageKeysMax)],
      ];
      if (continuationToken !== undefined) query.push(["continuation-token", continuationToken]);
      const xml = await this.request(
        { method: "GET", query, doing: `listing ${prefix}` },
        async (response) => (await readBody(response, listPageBytesMax)).toString("utf8"),
      ).catch((error: unknown) => Promise.reject(this.toBackupError(error, `listing ${prefix}`)));
      const page_ = parseListObjectsV2(xml);
      for (const key of page_.keys) {
        if (!key.startsWith(this.keyPrefix)) continue;
        const name = key.slice(this.keyPrefix.length);
        if (isValidBlobName(name) && name.startsWith(prefix)) names.push(name);
      }
      if (!page_.truncated) return names;
      if (page_.nextContinuationToken === undefined)
        throw new BackupError(
          "STORAGE_FAILED",
          `the S3 server truncated a listing of ${this.location} without a continuation token`,
        );
      continuationToken = page_.nextContinuationToken;
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.request(
        { method: "DELETE", key: this.keyOf(name), doing: `deleting ${name}` },
        (response) => drain(response),
      );
    } catch (error) {
      if (error instanceof S3ResponseError && error.statusCode === 404) return;
      throw this.toBackupError(error, `deleting ${name}`);
    }
  }

  private notFound(error: unknown, name: string): BackupError {
    if (
      error instanceof S3ResponseError &&
      error.statusCode === 404 &&
      error.s3Code !== "NoSuchBucket"
    )
      return new BackupError("BLOB_NOT_FOUND", `${name} does not exist in ${this.location}`);
    return this.toBackupError(error, `reading ${name}`);
  }

  private toBackupError(error: unknown, doing: string): BackupError {
    if (error instanceof BackupError) return error;
    if (error instanceof S3ResponseError) {
      if (error.s3Code === "NoSuchBucket")
        return new BackupError(
          "STORAGE_FAILED",
          `bucket ${this.options.bucket} does not exist at ${this.endpoint.origin}; create it first`,
        );
      const hint =
        error.statusCode === 403
          ? "; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, the region and the clock"
          : "";
      return new BackupError(
        "STORAGE_FAILED",
        `${doing} in ${this.location} failed: ${error.message}${hint}`,
        { cause: error },
      );
    }
    return new BackupError(
      "STORAGE_FAILED",
      `${doing} in ${this.location} failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }

  /** Sends a signed request, retrying transient failures; `consume` reads a 2xx response. */
  private async request<Result>(
    request: S3Request,
    consume: (response: IncomingMessage) => Promise<Result>,
  ): Promise<Result> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.options.retryCountMax; attempt++) {
      if (attempt > 0) {
        const ceilingMs = Math.min(
          this.options.retryDelayMsMax,
          this.options.retryDelayMsInitial * 2 ** (attempt - 1),
        );
        await new Promise((resolve) => setTimeout(resolve, Math.random() * ceilingMs));
      }
      try {
        return await this.attempt(request, consume);
      } catch (error) {
        if (!(error instanceof TransientError)) {
          if (error instanceof S3ResponseError) throw error;
          const code = errorCode(error);
          if (code === undefined || !retryableNetworkCodes.has(code))
            throw this.toBackupError(error, request.doing);
        }
        lastError = error;
      }
    }
    throw new BackupError(
      "STORAGE_FAILED",
      `${request.doing} in ${this.location} failed after ${this.options.retryCountMax + 1} attempts: ${
        lastError instanceof Error ? lastError.message : String(lastError)
      }`,
      { cause: lastError },
    );
  }

  private attempt<Result>(
    request: S3Request,
    consume: (response: IncomingMessage) => Promise<Result>,
  ): Promise<Result> {
    const body = request.body ?? { kind: "none" };
    const path = encodeS3Path(
      `/${this.options.bucket}${request.key === undefined ? "" : `/${request.key}`}`,
    );
    const query = request.query ?? [];
    const payloadSha256Hex = body.kind === "none" ? emptyPayloadSha256Hex : body.sha256Hex;
    const headers: Record<string, string> = {
      host: this.endpoint.host,
      "x-amz-date": amzDate(new Date()),
      "x-amz-content-sha256": payloadSha256Hex,
      ...(this.options.credentials.sessionToken === undefined
        ? {}
        : { "x-amz-security-token": this.options.credentials.sessionToken }),
      ...request.headers,
    };
    if (body.kind !== "none") headers["content-length"] = String(body.lengthBytes);
    const authorization = authorizationHeader(
      { method: request.method, path, query, headers, payloadSha256Hex },
      this.options.credentials,
      { region: this.options.region, service: "s3" },
    );
    const queryString = canonicalQueryString(query);
    const transport = this.endpoint.protocol === "https:" ? https : http;
    return new Promise<Result>((resolve, reject) => {
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
          protocol: this.endpoint.protocol,
          hostname: this.endpoint.hostname.replace(/^\[|\]$/g, ""),
          port: this.endpoint.port === "" ? undefined : Number(this.endpoint.port),
          method: request.method,
          path: queryString === "" ? path : `${path}?${queryString}`,
          headers: { ...headers, authorization },
        },
        (response) => {
          const status = response.statusCode ?? 0;
          response.on("error", fail);
          if (status >= 200 && status < 300) {
            consume(response).then(
              (result) => {
                settled = true;
                resolve(result);
              },
              (error: unknown) =>
                fail(
                  error instanceof BackupError
                    ? error
                    : new TransientError(
                        `the response broke off: ${error instanceof Error ? error.message : String(error)}`,
                      ),
                ),
            );
            return;
          }
          readBody(response, errorBodyBytesMax, true).then(
            (errorBody) => fail(classifyFailure(status, errorBody.toString("utf8"))),
            () => fail(classifyFailure(status, "")),
          );
        },
      );
      outgoing.setTimeout(this.options.requestTimeoutMs, () =>
        fail(
          new TransientError(
            `no progress for ${this.options.requestTimeoutMs} ms talking to ${this.endpoint.host}`,
          ),
        ),
      );
      outgoing.on("error", fail);
      if (body.kind === "none") outgoing.end();
      else sendBody(body, outgoing)?.on("error", fail);
    });
  }
}

function classifyFailure(status: number, body: string): Error {
  const s3Code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const s3Message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  const message = `HTTP ${status}${s3Code === undefined ? "" : ` ${s3Code}`}${
    s3Message === undefined ? "" : `: ${decodeXml(s3Message)}`
  }`;
  if (status >= 500 || status === 429 || s3Code === "RequestTimeout" || s3Code === "SlowDown")
    return new TransientError(message);
  return new S3ResponseError(status, s3Code, message);
}

async function drain(response: IncomingMessage): Promise<void> {
  for await (const chunk of response) void chunk;
}

/**
 * Reads a response body into one buffer sized from Content-Length (no chunk list plus copy);
 * a body shorter than announced is a broken connection, worth a retry.
 */
async function readBody(
  response: IncomingMessage,
  lengthBytesMax: number,
  truncateAtMax = false,
): Promise<Buffer> {
  const declared = Number(response.headers["content-length"]);
  if (Number.isSafeInteger(declared) && declared >= 0 && !truncateAtMax) {
    if (declared > lengthBytesMax)
      throw new BackupError(
        "STORAGE_FAILED",
        `the S3 server announced ${declared} bytes, more than the limit of ${lengthBytesMax}`,
      );
    const buffer = Buffer.allocUnsafe(declared);
    let filled = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      if (filled + chunk.length > declared)
        throw new TransientError("the S3 server sent more bytes than it announced");
      chunk.copy(buffer, filled);
      filled += chunk.length;
    }
    if (filled !== declared)
      throw new TransientError(`the response ended after ${filled} of ${declared} bytes`);
    return buffer;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > lengthBytesMax) {
      if (truncateAtMax) {
        response.destroy();
        break;
      }
      throw new BackupError(
        "STORAGE_FAILED",
        `an S3 response exceeded the limit of ${lengthBytesMax} bytes`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function decodeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_entity, body: string) => {
    switch (body) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "amp":
        return "&";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default:
        return String.fromCodePoint(
          body.startsWith("#x") ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10),
        );
    }
  });
}

/** The keys and continuation of one ListObjectsV2 page. */
export function parseListObjectsV2(xml: string): {
  keys: string[];
  truncated: boolean;
  nextContinuationToken: string | undefined;
} {
  const keys: string[] = [];
  for (const contents of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const key = /<Key>([^<]*)<\/Key>/.exec(contents[1] ?? "")?.[1];
    if (key !== undefined) keys.push(decodeXml(key));
  }
  const token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
  return {
    keys,
    truncated: /<IsTruncated>\s*true\s*<\/IsTruncated>/.test(xml),
    nextContinuationToken: token === undefined ? undefined : decodeXml(token),
  };
}
