#!/usr/bin/env node
// Entry point for `npx edgeward`: runs the bundle that `npm ci` (prepare) builds.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const bundle = fileURLToPath(new URL("../dist/edgeward.mjs", import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write("edgeward: dist/edgeward.mjs is missing; run `npm ci` or `npm run build` first.\n");
  process.exit(1);
}
await import(pathToFileURL(bundle).href);
