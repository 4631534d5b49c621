// Helpers shared by the supervisor's tests: temporary directories and bounded polling (tests
// never sleep for a fixed time; they wait for a condition, up to a limit).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** How often waitFor looks again. */
const pollIntervalMs = 10;

/** Resolves once `predicate` holds; rejects after `timeoutMs` naming what it waited for. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadlineMs)
      throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}

/** Temporary directories, removed by `removeAll` (call it in afterEach). */
export class TemporaryDirectories {
  readonly #paths: string[] = [];

  create(prefix: string): string {
    const path = mkdtempSync(join(tmpdir(), `edgeward-${prefix}-`));
    this.#paths.push(path);
    return path;
  }

  removeAll(): void {
    for (const path of this.#paths.splice(0)) rmSync(path, { recursive: true, force: true });
  }
}

/** True while a process with this pid exists (signal 0 only checks, it sends nothing). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
