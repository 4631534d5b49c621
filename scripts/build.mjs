// Bundles the TypeScript sources into dist/ so `npx edgeward` and the processes that
// `edgeward up` starts run plain JavaScript (fast start, small agents). Runs on `npm ci`
// through the `prepare` script, and before `npm start` and `npm test`.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: [join(root, "src/cli/main.ts")],
  outfile: join(root, "dist/edgeward.mjs"),
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  packages: "external",
  sourcemap: "linked",
  logLevel: "warning",
});
