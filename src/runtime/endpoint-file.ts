// endpoint.json: how a process started on port 0 tells others where it listens.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Endpoint {
  url: string;
  pid: number;
}

/** Checked by hand: agents write this file and keep zod out of their memory. */
function asEndpoint(value: unknown): Endpoint | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { url, pid } = value as Record<string, unknown>;
  if (typeof url !== "string" || !URL.canParse(url)) return undefined;
  if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { url, pid };
}

export function endpointFilePath(directory: string): string {
  return join(directory, "endpoint.json");
}

/** Written atomically (temp file, rename), so a reader never sees half a file. */
export function writeEndpointFile(directory: string, endpoint: Endpoint): void {
  const path = endpointFilePath(directory);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(endpoint)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** The endpoint, or undefined while the file is not there yet. */
export function readEndpointFile(directory: string): Endpoint | undefined {
  try {
    return asEndpoint(JSON.parse(readFileSync(endpointFilePath(directory), "utf8")));
  } catch {
    return undefined;
  }
}
