// <dir>/fleet.json: the processes of a local fleet started by `edgeward up`, so that `down`,
// `status`, `node stop|start` and tests can find them. Format:
// {"server":{"pid","pgid","url"},"nodes":[{"id","pid","pgid","url"}],"spec","startedAtMs"}

import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

const processEntrySchema = z.strictObject({
  pid: z.number().int().positive(),
  pgid: z.number().int().positive(),
  url: z.string(),
});

const fleetFileSchema = z.strictObject({
  server: processEntrySchema,
  nodes: z.array(processEntrySchema.extend({ id: z.string() })),
  spec: z.string(),
  startedAtMs: z.number(),
});

export type FleetFile = z.infer<typeof fleetFileSchema>;
export type FleetNodeEntry = FleetFile["nodes"][number];

export const defaultFleetDir = ".edgeward";

export class FleetFileError extends Error {
  override readonly name = "FleetFileError";
}

export function fleetFilePath(directory: string): string {
  return join(directory, "fleet.json");
}

/** The running fleet's file, or undefined when there is none. */
export function readFleetFile(directory: string): FleetFile | undefined {
  const path = fleetFilePath(directory);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new FleetFileError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FleetFileError(
      `${path} is not valid JSON; stop stray processes by hand and delete it`,
    );
  }
  const parsed = fleetFileSchema.safeParse(json);
  if (!parsed.success)
    throw new FleetFileError(
      `${path} is not a fleet file: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    );
  return parsed.data;
}

export function writeFleetFile(directory: string, fleet: FleetFile): void {
  const path = fleetFilePath(directory);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(fleet, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

export function removeFleetFile(directory: string): void {
  rmSync(fleetFilePath(directory), { force: true });
}
