// The CLI's view of the server: typed calls over the API contract, and errors that say what
// to do when the server is not there.

import type {
  DrillListResponse,
  DrillResult,
  EventListResponse,
  FailoverListResponse,
  FailoverResponse,
  FleetEvent,
  NodeListResponse,
  ServiceListResponse,
  ServiceView,
} from "../api/contract.ts";
import type {
  JoinTokenResponse,
  RevokeRequest,
  RevokeResponse,
  UserTokenResponse,
} from "../api/security-contract.ts";
import type { RouteEntry } from "../api/service-messages.ts";
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { Readable } from "node:stream";
import { defaultFleetDir, readFleetFile } from "./local-fleet/fleet-file.ts";
import { readAdminTokenFile } from "../runtime/security/admin-token-file.ts";

/** Requests to the server give up after this long. */
export const apiRequestTimeoutMs = 10_000;
/** A drill fails over and back while probing, so its request may take minutes. */
export const drillRequestTimeoutMs = 300_000;
/** Request bodies the CLI sends are small; a bigger one is a programming error. */
export const requestBodyBytesMax = 64 * 1_024;

export class ApiClientError extends Error {
  override readonly name = "ApiClientError";
  /** The HTTP status when the server answered with an error; undefined when it was unreachable. */
  readonly statusCode: number | undefined;

  constructor(message: string, statusCode?: number) {
    super(message);
    this.statusCode = statusCode;
  }
}

export interface ServerSelection {
  server?: string;
  dir?: string;
}

/** How the CLI proves who it is and which server certificate it trusts. */
export interface ServerAccess {
  /** Bearer token sent with every request. */
  token?: string;
  /** PEM of the fleet's CA (the server's certificate is signed by it); default: the system's. */
  caPem?: string;
}

/** Fleet directories whose server URL resolveServerUrl handed out, for their credentials. */
const fleetDirByUrl = new Map<string, string>();

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The credential and CA to use: $EDGEWARD_TOKEN, else the local fleet's sealed
 * <dir>/server/admin.token (opened with its root key, as the server finds it); $EDGEWARD_CA_FILE, else the local fleet's <dir>/server/tls/ca.crt.
 */
export function resolveServerAccess(dir: string | undefined, token?: string): ServerAccess {
  const directory = dir ?? defaultFleetDir;
  const fromEnvironment = process.env["EDGEWARD_TOKEN"];
  const chosenToken =
    token ??
    (fromEnvironment !== undefined && fromEnvironment !== ""
      ? fromEnvironment
      : readAdminTokenFile(join(directory, "server"), process.env));
  const caFile = process.env["EDGEWARD_CA_FILE"];
  const caPem = readIfPresent(
    caFile !== undefined && caFile !== "" ? caFile : join(directory, "server", "tls", "ca.crt"),
  );
  return {
    ...(chosenToken === undefined || chosenToken === "" ? {} : { token: chosenToken }),
    ...(caPem === undefined ? {} : { caPem }),
  };
}

/** The server URL from --server, else the local fleet in --dir, else $EDGEWARD_SERVER. */
export function resolveServerUrl(selection: ServerSelection): string {
  const directory = selection.dir ?? defaultFleetDir;
  if (selection.server !== undefined) {
    fleetDirByUrl.set(selection.server, directory);
    return selection.server;
  }
  const fleet = readFleetFile(directory);
  if (fleet !== undefined) {
    fleetDirByUrl.set(fleet.server.url, directory);
    return fleet.server.url;
  }
  const fromEnvironment = process.env["EDGEWARD_SERVER"];
  if (fromEnvironment !== undefined && fromEnvironment !== "") return fromEnvironment;
  throw new ApiClientError(
    `no running fleet in ${directory}/ (no fleet.json); start one with \`edgeward up <spec.yaml>\`, or pass --server URL`,
  );
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #access: ServerAccess;

  /** Without `access`, the credentials of the fleet the URL was resolved from (or the environment's). */
  constructor(baseUrl: string, access?: ServerAccess) {
    this.baseUrl = baseUrl;
    this.#access = access ?? resolveServerAccess(fleetDirByUrl.get(baseUrl));
  }

  listNodes(): Promise<NodeListResponse> {
    return this.#get<NodeListResponse>("/v1/nodes");
  }

  listEvents(afterId: number, limit: number): Promise<EventListResponse> {
    return this.#get<EventListResponse>(`/v1/events?afterId=${afterId}&limit=${limit}`);
  }

  listServices(): Promise<ServiceListResponse> {
    return this.#get<ServiceListResponse>("/v1/services");
  }

  getService(name: string): Promise<ServiceView> {
    return this.#get<ServiceView>(`/v1/services/${encodeURIComponent(name)}`);
  }

  /** Where the service is served now; an HTTP 503 error when nothing serves it. */
  resolveService(name: string): Promise<RouteEntry> {
    return this.#get<RouteEntry>(`/v1/services/${encodeURIComponent(name)}/resolve`);
  }

  /**
   * Starts a planned failover. The server answers 202 (started, queued) or 409 with an outcome
   * (ignored, refused); both come back as the outcome. A failover already running is an error.
   */
  async triggerFailover(name: string, to: string | undefined): Promise<FailoverResponse> {
    const path = `/v1/services/${encodeURIComponent(name)}/failover`;
    const response = await this.#send(path, "POST", to === undefined ? {} : { to }, {
      timeoutMs: apiRequestTimeoutMs,
      acceptStatus: (status, body) => status === 409 && isFailoverResponse(body),
    });
    return response as FailoverResponse;
  }

  listFailovers(query: { service?: string; limit?: number } = {}): Promise<FailoverListResponse> {
    return this.#get<FailoverListResponse>(`/v1/failovers${queryString(query)}`);
  }

  /** Runs a drill and waits for its result (up to `drillRequestTimeoutMs`). */
  async runDrill(name: string): Promise<DrillResult> {
    const path = `/v1/services/${encodeURIComponent(name)}/drill`;
    return (await this.#send(path, "POST", undefined, {
      timeoutMs: drillRequestTimeoutMs,
    })) as DrillResult;
  }

  listDrills(query: { service?: string } = {}): Promise<DrillListResponse> {
    return this.#get<DrillListResponse>(`/v1/drills${queryString(query)}`);
  }

  /** Follows the event stream, calling `onEvent` for each, until `signal` aborts. */
  async followEvents(
    afterId: number,
    onEvent: (event: FleetEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const response = await this.#fetch(`/v1/events/stream?afterId=${afterId}`, { signal });
    if (response.body === null) throw new ApiClientError("the server sent an empty event stream");
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let boundary = buffered.indexOf("\n\n");
      while (boundary !== -1) {
        const frame = buffered.slice(0, boundary);
        buffered = buffered.slice(boundary + 2);
        const data = frame
          .split("\n")
          .filter((line) => line.startsWith("data: "))
          .map((line) => line.slice(6))
          .join("\n");
        if (data !== "") onEvent(JSON.parse(data) as FleetEvent);
        boundary = buffered.indexOf("\n\n");
      }
    }
  }

  /** Issues a user token with `role` (admin only). */
  async createToken(request: {
    role: string;
    ttlSeconds?: number;
    subject?: string;
  }): Promise<UserTokenResponse> {
    return (await this.#send("/v1/tokens", "POST", request, {
      timeoutMs: apiRequestTimeoutMs,
    })) as UserTokenResponse;
  }

  /** Issues a single-use join token for `nodeId` (admin only). */
  async createJoinToken(request: {
    nodeId: string;
    ttlSeconds?: number;
  }): Promise<JoinTokenResponse> {
    return (await this.#send("/v1/tokens/join", "POST", request, {
      timeoutMs: apiRequestTimeoutMs,
    })) as JoinTokenResponse;
  }

  async revokeToken(request: RevokeRequest): Promise<RevokeResponse> {
    return (await this.#send("/v1/tokens/revoke", "POST", request, {
      timeoutMs: apiRequestTimeoutMs,
    })) as RevokeResponse;
  }

  /** GETs any read route of the API (the ledger's among them) as JSON. */
  async getJson<Body>(path: string, timeoutMs = apiRequestTimeoutMs): Promise<Body> {
    const response = await this.#fetch(path, { signal: AbortSignal.timeout(timeoutMs) });
    return (await response.json()) as Body;
  }

  /** POSTs `body` as JSON to any write route (the backups' among them); the answer as JSON. */
  async postJson<Body>(path: string, body: unknown, timeoutMs: number): Promise<Body> {
    return (await this.#send(path, "POST", body, { timeoutMs })) as Body;
  }

  async #get<Body>(path: string): Promise<Body> {
    const response = await this.#fetch(path, { signal: AbortSignal.timeout(apiRequestTimeoutMs) });
    return (await response.json()) as Body;
  }

  /** Sends `body` as JSON (none when undefined) and returns the parsed answer. */
  async #send(
    path: string,
    method: "POST",
    body: unknown,
    options: { timeoutMs: number; acceptStatus?: (status: number, body: unknown) => boolean },
  ): Promise<unknown> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (text !== undefined && Buffer.byteLength(text) > requestBodyBytesMax)
      throw new Error(`request body for ${path} exceeds ${requestBodyBytesMax} bytes`);
    const init: RequestInit = {
      method,
      signal: AbortSignal.timeout(options.timeoutMs),
      ...(text === undefined
        ? {}
        : { body: text, headers: { "content-type": "application/json" } }),
    };
    const response = await this.#fetch(path, init, options.acceptStatus);
    const answer: unknown = await response.json();
    return answer;
  }

  async #fetch(
    path: string,
    init: RequestInit,
    acceptStatus?: (status: number, body: unknown) => boolean,
  ): Promise<Response> {
    let response: Response;
    const authorized: RequestInit = {
      ...init,
      headers: {
        ...(init.headers as Record<string, string> | undefined),
        ...(this.#access.token === undefined
          ? {}
          : { authorization: `Bearer ${this.#access.token}` }),
      },
    };
    try {
      const url = new URL(path, this.baseUrl);
      response =
        url.protocol === "https:" && this.#access.caPem !== undefined
          ? await fetchTrusting(url, authorized, this.#access.caPem)
          : await fetch(url, authorized);
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      if ((error as Error).name === "TimeoutError")
        throw new ApiClientError(
          `${path}: the edgeward server at ${this.baseUrl} did not answer in time; check it is not overloaded (\`edgeward status\`) and retry`,
        );
      throw new ApiClientError(
        `cannot reach the edgeward server at ${this.baseUrl} (${(error as Error).message}); is the fleet running?`,
      );
    }
    if (!response.ok) {
      const body: unknown = await response
        .clone()
        .json()
        .catch(() => ({}));
      if (acceptStatus?.(response.status, body) === true) return response;
      const message = (body as { message?: unknown }).message;
      throw new ApiClientError(
        `${path}: HTTP ${response.status}: ${typeof message === "string" ? message : response.statusText}`,
        response.status,
      );
    }
    return response;
  }
}

function isFailoverResponse(body: unknown): boolean {
  return typeof body === "object" && body !== null && "kind" in body;
}

function queryString(query: Record<string, string | number | undefined>): string {
  const parameters = new URLSearchParams();
  for (const [key, value] of Object.entries(query))
    if (value !== undefined) parameters.set(key, String(value));
  const text = parameters.toString();
  return text === "" ? "" : `?${text}`;
}

/**
 * fetch over https trusting one CA: Node 20's fetch cannot take a CA, so this sends the request
 * with node:https and wraps the answer in a standard Response.
 */
function fetchTrusting(url: URL, init: RequestInit, caPem: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const outgoing = httpsRequest(
      url,
      {
        method: init.method ?? "GET",
        headers: init.headers as Record<string, string>,
        ca: caPem,
        ...(init.signal === null || init.signal === undefined ? {} : { signal: init.signal }),
      },
      (incoming) => {
        const status = incoming.statusCode ?? 0;
        const headers = new Headers();
        for (const [name, value] of Object.entries(incoming.headers))
          if (typeof value === "string") headers.set(name, value);
        const body =
          status === 204 || status === 304
            ? null
            : (Readable.toWeb(incoming) as unknown as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, statusText: incoming.statusMessage ?? "", headers }));
      },
    );
    outgoing.on("error", (error: Error) => {
      const reason: unknown = init.signal?.reason;
      reject(error.name === "AbortError" && reason instanceof Error ? reason : error);
    });
    outgoing.end(typeof init.body === "string" ? init.body : undefined);
  });
}
