// The fencing state an agent keeps across restarts, `<dataDir>/generations.json`: the newest
// generation it has seen per service. A restarted agent must still refuse to start a stale
// generation, or a delayed command could bring back an instance the fleet failed over from.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SupervisorError } from "./supervisor-error.ts";

/** Services remembered; far above any fleet spec, low enough to bound the file. */
export const generationsEntriesMax = 10_000;
/** Longest service name accepted (the fleet spec's identifier rule). */
const serviceNameCharactersMax = 63;

/** Newest generation per service; a Map, so no service name can collide with Object's keys. */
export type Generations = Map<string, number>;

interface GenerationsFileContent {
  formatVersion: 1;
  newestGenerations: Record<string, number>;
}

export function generationsFilePath(dataDir: string): string {
  return join(dataDir, "generations.json");
}

/** Checks the file by hand: the agent keeps zod out of its memory. */
function parseGenerations(value: unknown): Generations | string {
  if (typeof value !== "object" || value === null) return "not a JSON object";
  const { formatVersion, newestGenerations, ...unknown } = value as Record<string, unknown>;
  if (formatVersion !== 1) return `unknown formatVersion ${String(formatVersion)}`;
  const extra = Object.keys(unknown);
  if (extra.length > 0) return `unknown field ${extra[0] ?? ""}`;
  if (
    typeof newestGenerations !== "object" ||
    newestGenerations === null ||
    Array.isArray(newestGenerations)
  ) {
    return "newestGenerations is not an object";
  }
  const entries = Object.entries(newestGenerations);
  if (entries.length > generationsEntriesMax) {
    return `more than ${generationsEntriesMax} services`;
  }
  const generations: Generations = new Map();
  for (const [service, generation] of entries) {
    if (service.length === 0 || service.length > serviceNameCharactersMax) {
      return `service name ${JSON.stringify(service.slice(0, 80))} has a bad length`;
    }
    if (typeof generation !== "number" || !Number.isSafeInteger(generation) || generation < 0) {
      return `generation of ${service} is not a whole number >= 0`;
    }
    generations.set(service, generation);
  }
  return generations;
}

/** The newest generations seen, or none when the file does not exist yet. */
export function readGenerations(dataDir: string): Generations {
  const path = generationsFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw new SupervisorError(
      "generations-file-damaged",
      `cannot read ${path}: ${(error as Error).message}`,
    );
  }
  let parsed: Generations | string;
  try {
    parsed = parseGenerations(JSON.parse(text));
  } catch {
    parsed = "not JSON";
  }
  if (typeof parsed === "string") {
    throw new SupervisorError(
      "generations-file-damaged",
      `${path} is damaged (${parsed}); move it away only if no stale instance can come back`,
    );
  }
  return parsed;
}

/** Replaces the file so that a crash leaves the old or the new content, never a torn one. */
export function writeGenerations(dataDir: string, generations: ReadonlyMap<string, number>): void {
  const count = generations.size;
  if (count > generationsEntriesMax) {
    throw new SupervisorError(
      "too-many-instances",
      `cannot remember ${count} services' generations (at most ${generationsEntriesMax})`,
    );
  }
  const path = generationsFilePath(dataDir);
  const content: GenerationsFileContent = {
    formatVersion: 1,
    newestGenerations: Object.fromEntries(generations),
  };
  const temporaryPath = `${path}.tmp`;
  writeFileSync(temporaryPath, `${JSON.stringify(content)}\n`);
  syncPath(temporaryPath);
  renameSync(temporaryPath, path);
  syncPath(dataDir);
}

function syncPath(path: string): void {
  const descriptor = openSync(path, "r");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
}
