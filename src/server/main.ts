// Composition root of `edgeward server`: wires the core detector to the SQLite store, the
// system clock, HTTP probes and the fastify app.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import type { DetectorOptions } from "../core/membership/detector-options.ts";
import type { Clock } from "../ports/clock.ts";
import type { Store } from "../ports/store.ts";
import { httpProber, type Prober } from "../runtime/probe/http-prober.ts";
import { writeEndpointFile } from "../runtime/endpoint-file.ts";
import { SqliteStore } from "../runtime/store/sqlite-store.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { buildApp } from "./app.ts";
import { ControlPlane } from "./control-plane.ts";
import { EventLog } from "./event-log.ts";
import { FailureDetection } from "./failure-detection.ts";
import { NodeDirectory, type DeclaredNode } from "./node-directory.ts";
import { ServerMetrics } from "./server-metrics.ts";

/** Heartbeat times and metrics reach the disk at least this often. */
export const nodeFlushIntervalMs = 2_000;

export interface ServerOptions {
  host: string;
  port: number;
  /** Holds state.db and endpoint.json. */
  dataDir: string;
  detection: DetectorOptions;
  declaredNodes?: ReadonlyMap<string, DeclaredNode>;
  logger: PinoLogger;
  /** Replace the real ones in tests. */
  clock?: Clock;
  prober?: Prober;
  store?: Store;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  plane: ControlPlane;
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  mkdirSync(options.dataDir, { recursive: true });
  const clock = options.clock ?? systemClock;
  const logger = options.logger;
  const store = options.store ?? new SqliteStore(join(options.dataDir, "state.db"));
  const directory = new NodeDirectory(store, logger);
  await directory.load();
  const events = new EventLog(store, logger);
  // The metrics read node counts from the detector only when scraped, after both exist.
  const metrics: ServerMetrics = new ServerMetrics((): Map<string, number> =>
    detection.countByStatus(),
  );
  const detection: FailureDetection = new FailureDetection(options.detection, {
    clock,
    directory,
    events,
    metrics,
    logger,
    prober: options.prober ?? httpProber,
  });
  const plane = new ControlPlane({
    clock,
    logger,
    directory,
    detection,
    events,
    metrics,
    declaredNodes: options.declaredNodes,
  });
  const app = await buildApp(plane, { logger });
  detection.start();

  let cancelFlush = () => {};
  const scheduleFlush = () => {
    cancelFlush = clock.schedule(nodeFlushIntervalMs, () => {
      directory
        .flush()
        .catch((error: unknown) => logger.error({ err: error }, "could not store heartbeat times"))
        .finally(scheduleFlush);
    });
  };
  scheduleFlush();

  const address = await app.listen({ host: options.host, port: options.port });
  const url = address.replace("[::1]", "localhost");
  writeEndpointFile(options.dataDir, { url, pid: process.pid });
  logger.info(
    { url, preset: options.detection.presetName, nodes: directory.size },
    "edgeward server listening",
  );

  return {
    url,
    app,
    plane,
    async close() {
      detection.stop();
      cancelFlush();
      await app.close();
      await events.settled();
      await directory.flush();
      await store.close();
    },
  };
}
