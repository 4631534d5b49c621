// Failover drills (SPEC §5): a planned failover to the plan's first backup location and back,
// measured the way a client sees it. A prober sends a request through a forwarding proxy every
// few tens of milliseconds; the longest stretch between two answered requests is the RTO. The
// service's acknowledged-write counter (GET /stats) before and after each leg gives the writes
// lost, and the data age the sync step reports is the RPO in time. Results are kept in the
// store and published as `service.drill` events; each plan's testSchedule runs them by itself.

import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import type { DrillLeg, DrillResult, FleetEvent } from "../../api/contract.ts";
import { parseSchedule, nextRunAfterMs } from "../../core/schedule/schedule.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import type { Store } from "../../ports/store.ts";
import type { EventLog } from "../event-log.ts";
import { HttpError } from "../http-error.ts";
import type { ServiceCatalog } from "./service-catalog.ts";
import { storedDocument, UnknownServiceError, type ServiceControl } from "./service-control.ts";

/** Drill results in the store's documents. */
export const drillsDocumentName = "drills";
/** Results kept; the oldest are dropped first. */
export const drillResultsMax = 200;
/** A probe is sent this often while a leg runs. */
export const drillProbeIntervalMs = 25;
/** A probe not answered within this counts as failed (the proxy holds clients up to 10 s). */
export const drillProbeTimeoutMs = 15_000;
/** Probes in flight at most. */
const probesInFlightMax = 1_024;
/** A leg's failover plus the first answered probe after it must fit in this. */
export const drillLegTimeoutMs = 120_000;
/** Scheduled drills wake up at least this often, so a far-off date never overflows a timer. */
const scheduleWakeMaxMs = 60 * 60 * 1000;

export interface DrillRunnerComponents {
  clock: Clock;
  logger: Logger;
  store: Store;
  events: EventLog;
  catalog: ServiceCatalog;
  control: ServiceControl;
}

export class DrillError extends HttpError {}

export class DrillRunner {
  readonly #components: DrillRunnerComponents;
  #results: DrillResult[] = [];
  #nextDrillId = 1;
  readonly #running = new Set<string>();
  readonly #timers: CancelTimer[] = [];
  #closed = false;

  constructor(components: DrillRunnerComponents) {
    this.#components = components;
  }

  /** Loads past results and schedules every plan's testSchedule. */
  async start(): Promise<void> {
    const saved = await this.#components.store.loadDocument(drillsDocumentName);
    if (saved !== undefined) {
      this.#results = storedDocument<{ results: DrillResult[] }>(saved, drillsDocumentName).results;
      this.#nextDrillId = (this.#results.at(-1)?.drillId ?? 0) + 1;
    }
    for (const [name, entry] of this.#components.catalog) {
      const text = entry.spec.failover?.testSchedule;
      if (text !== undefined) this.#schedule(name, text);
    }
  }

  close(): void {
    this.#closed = true;
    for (const cancel of this.#timers) cancel();
  }

  list(service?: string): DrillResult[] {
    return this.#results.filter((result) => service === undefined || result.service === service);
  }

  /** Runs one drill; refuses if the service has no plan, or a drill or failover is running. */
  async run(service: string, trigger: DrillResult["trigger"]): Promise<DrillResult> {
    const { catalog, control, clock, logger } = this.#components;
    const entry = catalog.get(service);
    if (entry === undefined) throw new UnknownServiceError(service);
    const plan = entry.spec.failover;
    if (plan === undefined) {
      throw new DrillError(422, "no_plan", `${service} has no failover plan to drill`);
    }
    if (this.#running.has(service)) {
      throw new DrillError(409, "drill_running", `a drill of ${service} is already running`);
    }
    const before = control.view(service);
    if (before.status !== "serving" || before.node === null) {
      throw new DrillError(
        409,
        "not_serving",
        `${service} is ${before.status}; drill it once it serves (see edgeward services)`,
      );
    }
    this.#running.add(service);
    const startedAtMs = clock.nowMs();
    logger.info({ service, trigger }, "drill started");
    try {
      const firstBackup = plan.backups[0] ?? plan.primary;
      const home = before.node;
      const legs: DrillLeg[] = [];
      const out = await this.#leg(service, firstBackup);
      legs.push(out);
      if (out.status === "completed") legs.push(await this.#leg(service, home));
      const result = judge({
        drillId: this.#nextDrillId++,
        service,
        trigger,
        startedAtMs,
        endedAtMs: clock.nowMs(),
        legs,
        objectives: { ...plan.objectives },
        hasData: entry.spec.dataDir !== undefined,
      });
      await this.#keep(result);
      return result;
    } finally {
      this.#running.delete(service);
    }
  }

  async #leg(service: string, to: string): Promise<DrillLeg> {
    const { control, clock } = this.#components;
    const view = control.view(service);
    const from = view.node;
    // Probe through a proxy on a node the drill does not touch, if there is one.
    const proxy =
      view.proxies.find((candidate) => candidate.node !== from && candidate.node !== to) ??
      view.proxies[0];
    const healthCheck = this.#components.catalog.get(service)?.spec.healthCheck;
    const path = healthCheck?.type === "http" ? healthCheck.path : undefined;
    const probeTarget = proxy === undefined ? undefined : { host: proxy.host, port: proxy.port };
    const writesBefore =
      probeTarget === undefined ? null : await readAcknowledgedWrites(probeTarget);
    const prober = probeTarget === undefined ? undefined : new Prober(clock, probeTarget, path);
    prober?.start();
    try {
      // A first answer before the move, so the gap measured starts while the service served.
      if (prober !== undefined && (await prober.recovered(drillLegTimeoutMs)) === undefined) {
        return {
          from,
          to,
          failoverId: null,
          status: "unreachable-before-move",
          unavailableMs: null,
          writesLost: null,
          dataAgeMs: null,
        };
      }
      const outcome = await control.failover(service, to);
      if (outcome.kind !== "started" && outcome.kind !== "queued") {
        return {
          from,
          to,
          failoverId: null,
          status: outcome.kind,
          unavailableMs: null,
          writesLost: null,
          dataAgeMs: null,
        };
      }
      const record = await withTimeout(
        clock,
        control.waitForEnd(outcome.failoverId),
        drillLegTimeoutMs,
      );
      if (record === undefined || record.status !== "completed") {
        return {
          from,
          to,
          failoverId: outcome.failoverId,
          status: record?.status ?? "timed-out",
          unavailableMs: null,
          writesLost: null,
          dataAgeMs: null,
        };
      }
      const unavailableMs =
        prober === undefined ? null : ((await prober.recovered(drillLegTimeoutMs)) ?? null);
      const writesAfter =
        probeTarget === undefined ? null : await readAcknowledgedWrites(probeTarget);
      return {
        from,
        to: record.to,
        failoverId: record.failoverId,
        status: record.status,
        unavailableMs,
        writesLost:
          writesBefore === null || writesAfter === null
            ? null
            : Math.max(0, writesBefore - writesAfter),
        dataAgeMs: record.dataAgeMs,
      };
    } finally {
      prober?.stop();
    }
  }

  async #keep(result: DrillResult): Promise<void> {
    const { store, events, logger } = this.#components;
    this.#results.push(result);
    if (this.#results.length > drillResultsMax) this.#results.shift();
    await store.saveDocument(drillsDocumentName, JSON.stringify({ results: this.#results }));
    const event: Omit<Extract<FleetEvent, { type: "service.drill" }>, "id"> = {
      type: "service.drill",
      ...result,
      atMs: result.endedAtMs,
    };
    events.publish(event);
    const fields = {
      service: result.service,
      drillId: result.drillId,
      rtoMs: result.rtoMs,
      writesLost: result.rpoWritesLost,
    };
    if (result.passed) logger.info(fields, "drill passed");
    else logger.warn({ ...fields, problem: result.problem }, "drill failed");
  }

  #schedule(service: string, text: string): void {
    const { clock, logger } = this.#components;
    const schedule = parseSchedule(text);
    let dueAtMs = nextRunAfterMs(schedule, clock.nowMs());
    const wake = () => {
      if (this.#closed) return;
      const nowMs = clock.nowMs();
      if (nowMs >= dueAtMs) {
        dueAtMs = nextRunAfterMs(schedule, nowMs);
        this.run(service, "schedule").catch((error: unknown) =>
          logger.warn({ service, err: (error as Error).message }, "scheduled drill did not run"),
        );
      }
      this.#timers.push(
        clock.schedule(Math.min(scheduleWakeMaxMs, Math.max(1, dueAtMs - nowMs)), wake),
      );
    };
    this.#timers.push(
      clock.schedule(Math.min(scheduleWakeMaxMs, Math.max(1, dueAtMs - clock.nowMs())), wake),
    );
  }
}

function judge(input: {
  drillId: number;
  service: string;
  trigger: DrillResult["trigger"];
  startedAtMs: number;
  endedAtMs: number;
  legs: DrillLeg[];
  objectives: DrillResult["objectives"];
  hasData: boolean;
}): DrillResult {
  const { legs, objectives, hasData, ...rest } = input;
  const gaps = legs.flatMap((leg) => (leg.unavailableMs === null ? [] : [leg.unavailableMs]));
  const rtoMs = gaps.length === legs.length && gaps.length > 0 ? Math.max(...gaps) : null;
  const losses = legs.flatMap((leg) => (leg.writesLost === null ? [] : [leg.writesLost]));
  const rpoWritesLost =
    losses.length === legs.length && losses.length > 0
      ? losses.reduce((sum, lost) => sum + lost, 0)
      : null;
  let problem: string | null = null;
  const unfinished = legs.find((leg) => leg.status !== "completed");
  if (unfinished !== undefined)
    problem = `failover to ${unfinished.to ?? "?"} ended ${unfinished.status}`;
  else if (legs.length < 2) problem = "the drill did not fail back";
  else if (rtoMs === null) problem = "no proxy to probe through; RTO not measured";
  else if (rtoMs > objectives.rtoSeconds * 1000)
    problem = `RTO ${rtoMs} ms exceeds the objective of ${objectives.rtoSeconds} s`;
  else if (rpoWritesLost !== null && rpoWritesLost > 0)
    problem = `${rpoWritesLost} acknowledged writes lost`;
  else if (hasData && legs.some((leg) => leg.dataAgeMs === null))
    problem = "a leg started with empty data";
  else if (legs.some((leg) => (leg.dataAgeMs ?? 0) > objectives.rpoSeconds * 1000))
    problem = `data older than the RPO of ${objectives.rpoSeconds} s`;
  return { ...rest, legs, rtoMs, rpoWritesLost, objectives, passed: problem === null, problem };
}

/** Sends a request through the proxy every drillProbeIntervalMs and tracks the longest gap between answers. */
class Prober {
  readonly #clock: Clock;
  readonly #target: { host: string; port: number };
  readonly #path: string | undefined;
  #cancel: CancelTimer | undefined;
  #inFlight = 0;
  #lastOkAtMs: number | undefined;
  #longestGapMs = 0;
  #okSinceMark = false;

  constructor(clock: Clock, target: { host: string; port: number }, path: string | undefined) {
    this.#clock = clock;
    this.#target = target;
    this.#path = path;
  }

  start(): void {
    const tick = () => {
      if (this.#inFlight < probesInFlightMax) {
        this.#inFlight += 1;
        void probeOnce(this.#target, this.#path).then((ok) => {
          this.#inFlight -= 1;
          if (ok) this.#answered(this.#clock.nowMs());
        });
      }
      this.#cancel = this.#clock.schedule(drillProbeIntervalMs, tick);
    };
    tick();
  }

  stop(): void {
    this.#cancel?.();
  }

  /** After the failover ended: waits for an answer sent after now, then gives the longest gap. */
  async recovered(timeoutMs: number): Promise<number | undefined> {
    this.#okSinceMark = false;
    const deadlineMs = this.#clock.nowMs() + timeoutMs;
    while (!this.#okSinceMark) {
      if (this.#clock.nowMs() >= deadlineMs) return undefined;
      await new Promise<void>((resolve) => this.#clock.schedule(drillProbeIntervalMs, resolve));
    }
    return this.#longestGapMs;
  }

  #answered(atMs: number): void {
    if (this.#lastOkAtMs !== undefined) {
      this.#longestGapMs = Math.max(this.#longestGapMs, atMs - this.#lastOkAtMs);
    }
    this.#lastOkAtMs = atMs;
    this.#okSinceMark = true;
  }
}

/** One request: HTTP GET of the health path if the service has one, else a TCP connect. */
function probeOnce(
  target: { host: string; port: number },
  path: string | undefined,
): Promise<boolean> {
  return new Promise((resolve) => {
    if (path === undefined) {
      const socket = connect({
        host: target.host,
        port: target.port,
        timeout: drillProbeTimeoutMs,
      });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
      return;
    }
    const outgoing = httpRequest(
      {
        host: target.host,
        port: target.port,
        path,
        method: "GET",
        timeout: drillProbeTimeoutMs,
        agent: false,
      },
      (response) => {
        response.resume();
        resolve((response.statusCode ?? 500) < 300);
      },
    );
    outgoing.once("error", () => resolve(false));
    outgoing.once("timeout", () => {
      outgoing.destroy();
      resolve(false);
    });
    outgoing.end();
  });
}

/** The service's `acknowledgedWrites` from GET /stats, or null if it does not report one. */
function readAcknowledgedWrites(target: { host: string; port: number }): Promise<number | null> {
  return new Promise((resolve) => {
    const outgoing = httpRequest(
      {
        host: target.host,
        port: target.port,
        path: "/stats",
        method: "GET",
        timeout: drillProbeTimeoutMs,
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes <= 64 * 1024) chunks.push(chunk);
        });
        response.on("end", () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
              acknowledgedWrites?: unknown;
            };
            resolve(typeof body.acknowledgedWrites === "number" ? body.acknowledgedWrites : null);
          } catch {
            resolve(null);
          }
        });
        response.on("error", () => resolve(null));
      },
    );
    outgoing.once("error", () => resolve(null));
    outgoing.once("timeout", () => {
      outgoing.destroy();
      resolve(null);
    });
    outgoing.end();
  });
}

function withTimeout<Value>(
  clock: Clock,
  promise: Promise<Value>,
  timeoutMs: number,
): Promise<Value | undefined> {
  return new Promise((resolve) => {
    const cancel = clock.schedule(timeoutMs, () => resolve(undefined));
    void promise.then((value) => {
      cancel();
      resolve(value);
    });
  });
}
