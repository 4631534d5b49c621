// A real edgeward server in its own process for the security benchmark: `startServer` from
// src/server/main.ts with the SQLite store, the system clock and the options the benchmark
// passes as JSON in argv[2]. It prints one JSON line on stdout (its URL and the routes the app
// registered, never a credential) and stops on SIGTERM. Logs at `error` go to stderr, so a
// request that failed with a 500 leaves a line the benchmark counts.

import { join } from "node:path";
import { detectorOptionsFor } from "../../src/core/membership/detector-options.ts";
import { securitySchema } from "../../src/core/spec/security-schema.ts";
import { startServer } from "../../src/server/main.ts";
import pino from "pino";

export interface BenchServerOptions {
  dataDir: string;
  tls: boolean;
  enforce: boolean;
  /** Serve the REGIONAL blob API (signed peer requests) from <dataDir>/blobs. */
  blobs?: boolean;
  /** The fleet spec's `security` section (intrusion detection thresholds, rate limit). */
  security?: unknown;
}

/** What the process prints once it listens. */
export interface BenchServerReady {
  url: string;
  /** Every route as `METHOD path`, from the app's own route table. */
  routes: string[];
}

/**
 * Routes from fastify's printRoutes tree (`commonPrefix: false`): each line is a path segment
 * indented four columns per level below its parent, followed by its methods.
 */
function routeTable(tree: string): string[] {
  const routes: string[] = [];
  const parents: string[] = [];
  for (const line of tree.split("\n")) {
    const match = /^([\s│├└─]*)(\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (match === null) continue;
    const depth = Math.max(0, match[1]!.length / 4 - 1);
    const segment = match[2]!;
    const path = `${parents[depth - 1] ?? ""}${depth > 0 && !segment.startsWith("/") ? "/" : ""}${segment}`;
    parents[depth] = path;
    parents.length = depth + 1;
    for (const method of match[3]!.split(", ")) routes.push(`${method} ${path}`);
  }
  return routes;
}

const options = JSON.parse(process.argv[2] ?? "{}") as BenchServerOptions;
const server = await startServer({
  host: "127.0.0.1",
  port: 0,
  dataDir: options.dataDir,
  detection: detectorOptionsFor("lan"),
  ...(options.blobs === true ? { blobDir: join(options.dataDir, "blobs") } : {}),
  logger: pino({ level: "error" }, pino.destination(2)),
  security: {
    tls: options.tls,
    enforce: options.enforce,
    spec: securitySchema.parse(options.security ?? {}),
  },
});
const ready: BenchServerReady = {
  url: server.url,
  routes: routeTable(server.app.printRoutes({ commonPrefix: false })),
};
process.stdout.write(`${JSON.stringify(ready)}\n`);
process.once("SIGTERM", () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
