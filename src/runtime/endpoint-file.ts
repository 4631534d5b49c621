// endpoint.json: how a process started on port 0 tells others where it listens.

import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

const endpointSchema = z.strictObject({ url: z.string().url(), pid: z.number().int().positive() });
export type Endpoint = z.infer<typeof endpointSchema>;

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
  let text: string;
  try {
    text = readFileSync(endpointFilePath(directory), "utf8");
  } catch {
    return undefined;
  }
  const parsed = endpointSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}
