// Vitest global setup: the end-to-end tests run the CLI as real processes from dist/, so
// build it once before any test, even when vitest is started without `npm test`.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export default function setup(): void {
  execFileSync(process.execPath, [join(import.meta.dirname, "..", "scripts", "build.mjs")], {
    stdio: "inherit",
  });
}
