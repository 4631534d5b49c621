// The CLI's view of the server: typed calls over the API contract, and errors that say what
// to do when the server is not there.

import type { EventListResponse, FleetEvent, NodeListResponse } from "../api/contract.ts";
import { defaultFleetDir, readFleetFile } from "./local-fleet/fleet-file.ts";

/** Requests to the server give up after this long. */
export const apiRequestTimeoutMs = 10_000;

export class ApiClientError extends Error {
  override readonly name = "ApiClientError";
}

export interface ServerSelection {
  server?: string;
  dir?: string;
}

/** The server URL from --server, else the local fleet in --dir, else $EDGEWARD_SERVER. */
export function resolveServerUrl(selection: ServerSelection): string {
  if (selection.server !== undefined) return selection.server;
  const directory = selection.dir ?? defaultFleetDir;
  const fleet = readFleetFile(directory);
  if (fleet !== undefined) return fleet.server.url;
  const fromEnvironment = process.env["EDGEWARD_SERVER"];
  if (fromEnvironment !== undefined && fromEnvironment !== "") return fromEnvironment;
  throw new ApiClientError(
    `no running fleet in ${directory}/ (no fleet.json); start one with \`edgeward up <spec.yaml>\`, or pass --server URL`,
  );
}

export class ApiClient {
  readonly baseUrl: string;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl;
  }

  listNodes(): Promise<NodeListResponse> {
    return this.#get<NodeListResponse>("/v1/nodes");
  }

  listEvents(afterId: number, limit: number): Promise<EventListResponse> {
    return this.#get<EventListResponse>(`/v1/events?afterId=${afterId}&limit=${limit}`);
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

  async #get<Body>(path: string): Promise<Body> {
    const response = await this.#fetch(path, { signal: AbortSignal.timeout(apiRequestTimeoutMs) });
    return (await response.json()) as Body;
  }

  async #fetch(path: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), init);
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      throw new ApiClientError(
        `cannot reach the edgeward server at ${this.baseUrl} (${(error as Error).message}); is the fleet running?`,
      );
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => ({}))) as { message?: string };
      throw new ApiClientError(
        `${path}: HTTP ${response.status}: ${body.message ?? response.statusText}`,
      );
    }
    return response;
  }
}
