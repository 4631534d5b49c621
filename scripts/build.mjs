// Bundles the TypeScript sources into dist/ so `npx edgeward` and the processes that
// `edgeward up` starts run plain JavaScript (fast start, small agents). Runs on `npm ci`
// through the `prepare` script, and before `npm start` and `npm test`.
import { rmSync } from "node:fs";
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

// Chunk names carry content hashes: without a clean start, old ones would pile up.
rmSync(join(root, "dist"), { recursive: true, force: true });

await build({
  // One entry, with the server, agent and other heavy commands split into chunks loaded on
  // demand, so an agent process never loads fastify.
  // The backup engine's worker threads are entries of their own, beside the chunks that load
  // them.
  entryPoints: {
    edgeward: join(root, "src/cli/main.ts"),
    "chunks/chunk-worker": join(root, "src/runtime/backup/chunk-worker.ts"),
    "chunks/restore-worker": join(root, "src/runtime/backup/restore-worker.ts"),
  },
  outdir: join(root, "dist"),
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  packages: "external",
  sourcemap: "linked",
  logLevel: "warning",
});
