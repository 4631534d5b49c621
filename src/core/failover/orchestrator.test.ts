import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NodeStatus } from "../membership/node-status.ts";
import type { PlacementCandidate, Resources } from "../placement/placement.ts";
import { serviceSchema } from "../spec/service-schema.ts";
import { failoverDefaults, failoverOptionsFor, type FailoverOptions } from "./failover-options.ts";
import {
  failoverServiceFromSpec,
  type FailoverEffect,
  type FailoverService,
  type FailoverReason,
  type FailoverRecord,
} from "./failover-protocol.ts";
import {
  FailoverOrchestrator,
  FailoverSnapshotError,
  type FailoverSnapshot,
} from "./orchestrator.ts";

const capacity: Resources = { cpuCores: 4, memoryMb: 8_192, storageGb: 256, networkMbps: 1_000 };
const idle: Resources = { cpuCores: 0, memoryMb: 0, storageGb: 0, networkMbps: 0 };

function loaded(fraction: number): Resources {
  return {
    cpuCores: capacity.cpuCores * fraction,
    memoryMb: capacity.memoryMb * fraction,
    storageGb: capacity.storageGb * fraction,
    networkMbps: capacity.networkMbps * fraction,
  };
}

function node(nodeId: string, overrides: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return {
    nodeId,
    status: NodeStatus.healthy,
    capabilities: new Set(["data_processing"]),
    capacity,
    used: idle,
    ...overrides,
  };
}

const demand: Resources = { cpuCores: 0.5, memoryMb: 256, storageGb: 1, networkMbps: 0 };

/** The production_monitoring plan of the industrial example, on short node names. */
const monitoring: FailoverService = {
  name: "production_monitoring",
  demand,
  requiredCapabilities: ["data_processing"],
  plan: {
    backups: ["edge-2", "edge-3"],
    conditions: ["node_failure", "network_partition"],
    hooks: [],
    dataSources: ["primary"],
  },
};

/** quality_control: two hooks between sync_data and start_service. */
const quality: FailoverService = {
  name: "quality_control",
  demand,
  requiredCapabilities: ["data_processing"],
  plan: {
    backups: ["edge-2", "edge-3"],
    conditions: ["node_failure", "hardware_failure"],
    hooks: [
      {
        hook: "reconfigure_sensors",
        command: ["node", "qc.mjs", "reconfigure-sensors"],
        timeoutMs: 7_000,
      },
      {
        hook: "calibrate_equipment",
        command: ["node", "qc.mjs", "calibrate-equipment"],
        timeoutMs: 9_000,
      },
    ],
    dataSources: ["backup"],
  },
};

const unplanned: FailoverService = { ...monitoring, name: "report_export", plan: null };

type StepEffect = Extract<FailoverEffect, { stepIndex: number }>;

/** An orchestrator with a fake fleet, its effects recorded, and a clock the test moves. */
class Harness {
  readonly effects: FailoverEffect[] = [];
  readonly fleet = new Map<string, PlacementCandidate>();
  nowMs = 1_000;
  orchestrator: FailoverOrchestrator;

  constructor(
    readonly options: FailoverOptions = failoverDefaults,
    nodes: readonly PlacementCandidate[] = ["edge-1", "edge-2", "edge-3"].map((id) => node(id)),
    snapshot?: FailoverSnapshot,
  ) {
    for (const candidate of nodes) this.fleet.set(candidate.nodeId, candidate);
    this.orchestrator = this.#create(snapshot);
  }

  #create(snapshot?: FailoverSnapshot): FailoverOrchestrator {
    return new FailoverOrchestrator(
      this.options,
      {
        candidates: () => this.fleet.values(),
        candidate: (nodeId) => this.fleet.get(nodeId),
        emit: (effect) => this.effects.push(effect),
      },
      snapshot,
    );
  }

  /** A server restart: state through JSON, a new orchestrator, resumed. */
  restart(afterMs: number): void {
    const saved = JSON.parse(JSON.stringify(this.orchestrator.snapshot())) as FailoverSnapshot;
    this.nowMs += afterMs;
    this.orchestrator = this.#create(saved);
    this.orchestrator.resume(this.nowMs);
  }

  trigger(service: FailoverService, reason: FailoverReason, from: string | null, to?: string) {
    return this.orchestrator.trigger({
      service,
      reason,
      from,
      atMs: this.nowMs,
      ...(to === undefined ? {} : { to }),
    });
  }

  setStatus(nodeId: string, status: NodeStatus): void {
    this.fleet.set(nodeId, { ...node(nodeId), ...this.fleet.get(nodeId), status });
  }

  /** The newest step command of `service`. */
  step(service: FailoverService): StepEffect {
    const found = this.effects.findLast(
      (effect): effect is StepEffect => "stepIndex" in effect && effect.service === service.name,
    );
    if (found === undefined) throw new Error(`no step command for ${service.name}`);
    return found;
  }

  /** Answers the current step of `service` successfully, after `tookMs`. */
  succeed(service: FailoverService, tookMs = 10): StepEffect {
    const step = this.step(service);
    this.nowMs += tookMs;
    if (step.type === "verify") {
      for (let pass = 0; pass < this.options.verifyPassesRequired; pass++) {
        this.orchestrator.healthChecked({
          service: service.name,
          generation: step.generation,
          ok: true,
          atMs: this.nowMs,
        });
      }
      return step;
    }
    this.orchestrator.stepSucceeded({
      service: step.service,
      generation: step.generation,
      stepIndex: step.stepIndex,
      atMs: this.nowMs,
      ...(step.type === "start" ? { endpoint: `127.0.0.1:${4_000 + step.generation}` } : {}),
      ...(step.type === "sync-data" ? { dataAgeMs: 1_500 } : {}),
    });
    return step;
  }

  fail(service: FailoverService, error = "boom"): StepEffect {
    const step = this.step(service);
    this.nowMs += 10;
    this.orchestrator.stepFailed({ ...addressOf(step), atMs: this.nowMs, error });
    return step;
  }

  /** Succeeds every step until the failover of `service` is over. */
  complete(service: FailoverService): void {
    for (let steps = 0; this.isActive(service); steps++) {
      if (steps > 20) throw new Error("failover did not finish");
      this.succeed(service);
    }
  }

  isActive(service: FailoverService): boolean {
    return [...this.orchestrator.active()].some(
      (failover) => failover.service.name === service.name,
    );
  }

  /** Starts `service` on `nodeId` as generation 1 (an initial placement). */
  place(service: FailoverService, nodeId: string): void {
    expect(this.trigger(service, "planned", null, nodeId).kind).toBe("started");
    this.complete(service);
    this.effects.length = 0;
  }

  lastRecord(service: FailoverService): FailoverRecord {
    const records = this.orchestrator.records().filter((record) => record.service === service.name);
    const record = records.at(-1);
    if (record === undefined) throw new Error(`no record for ${service.name}`);
    return record;
  }

  since(mark: number): FailoverEffect[] {
    return this.effects.slice(mark);
  }

  ofType<Type extends FailoverEffect["type"]>(
    type: Type,
  ): Extract<FailoverEffect, { type: Type }>[] {
    return this.effects.filter(
      (effect): effect is Extract<FailoverEffect, { type: Type }> => effect.type === type,
    );
  }
}

function addressOf(step: StepEffect) {
  return { service: step.service, generation: step.generation, stepIndex: step.stepIndex };
}

/** Drives `service` (placed on edge-1) into a failover and to the command of `type`. */
function failoverUntil(harness: Harness, service: FailoverService, type: StepEffect["type"]) {
  harness.place(service, "edge-1");
  harness.setStatus("edge-1", NodeStatus.failed);
  expect(harness.trigger(service, "node_failure", "edge-1").kind).toBe("started");
  while (harness.step(service).type !== type) harness.succeed(service);
  return harness.step(service);
}

describe("a failover that succeeds", () => {
  it("runs the five steps on the first backup and routes the new generation", () => {
    const harness = new Harness();
    harness.place(monitoring, "edge-1");
    expect(harness.orchestrator.registry.resolve(monitoring.name)).toEqual({
      nodeId: "edge-1",
      endpoint: "127.0.0.1:4001",
      generation: 1,
    });

    harness.setStatus("edge-1", NodeStatus.failed);
    harness.trigger(monitoring, "node_failure", "edge-1");
    expect(harness.effects.slice(0, 3)).toEqual([
      { type: "stop", service: monitoring.name, node: "edge-1", generation: 1, reason: "fence" },
      { type: "unroute", service: monitoring.name, generation: 1 },
      expect.objectContaining({ type: "alert", severity: "warning" }),
    ]);
    harness.complete(monitoring);

    expect(harness.ofType("prepare")).toEqual([
      expect.objectContaining({ node: "edge-2", generation: 2, stepIndex: 0, demand }),
    ]);
    expect(harness.ofType("sync-data")).toEqual([
      expect.objectContaining({ from: "edge-1", to: "edge-2", sources: ["primary"] }),
    ]);
    expect(harness.ofType("start")).toEqual([
      expect.objectContaining({ node: "edge-2", generation: 2 }),
    ]);
    expect(harness.orchestrator.registry.resolve(monitoring.name)).toEqual({
      nodeId: "edge-2",
      endpoint: "127.0.0.1:4002",
      generation: 2,
    });
    const record = harness.lastRecord(monitoring);
    expect(record).toMatchObject({
      plan: monitoring.name,
      service: monitoring.name,
      reason: "node_failure",
      from: "edge-1",
      to: "edge-2",
      via: "plan",
      generation: 2,
      status: "completed",
      durationMs: 50,
      dataAgeMs: 1_500,
    });
    expect(record.steps.map((step) => [step.name, step.ms, step.ok])).toEqual([
      ["prepare_target", 10, true],
      ["sync_data", 10, true],
      ["start_service", 10, true],
      ["update_routing", 10, true],
      ["verify", 10, true],
    ]);
    expect(harness.ofType("record").at(-1)?.record).toEqual(record);
    expect(harness.ofType("alert").at(-1)).toMatchObject({ severity: "info" });
  });

  it("runs the plan's hooks on the target between sync_data and start_service", () => {
    const harness = new Harness();
    harness.place(quality, "edge-1");
    harness.trigger(quality, "hardware_failure", "edge-1");
    harness.complete(quality);
    expect(harness.ofType("run-hook")).toEqual([
      expect.objectContaining({
        hook: "reconfigure_sensors",
        node: "edge-2",
        stepIndex: 2,
        timeoutMs: 7_000,
      }),
      expect.objectContaining({
        hook: "calibrate_equipment",
        node: "edge-2",
        stepIndex: 3,
        timeoutMs: 9_000,
      }),
    ]);
    expect(harness.lastRecord(quality).steps.map((step) => step.name)).toEqual([
      "prepare_target",
      "sync_data",
      "reconfigure_sensors",
      "calibrate_equipment",
      "start_service",
      "update_routing",
      "verify",
    ]);
    expect(harness.ofType("sync-data")[0]?.sources).toEqual(["backup"]);
  });

  it("restarts the health count when a check fails during verify", () => {
    const harness = new Harness(failoverOptionsFor({ verifyPassesRequired: 2 }));
    const verify = failoverUntil(harness, monitoring, "verify");
    const check = (ok: boolean) =>
      harness.orchestrator.healthChecked({
        service: monitoring.name,
        generation: verify.generation,
        ok,
        atMs: harness.nowMs,
      });
    check(true);
    check(false);
    check(true);
    expect(harness.isActive(monitoring)).toBe(true);
    check(true);
    expect(harness.lastRecord(monitoring).status).toBe("completed");
  });
});

/** What each step's failure must undo, newest first. */
const rollbackCases: [StepEffect["type"], FailoverEffect["type"][]][] = [
  ["prepare", ["release"]],
  ["sync-data", ["release"]],
  ["run-hook", ["release"]],
  ["start", ["stop", "release"]],
  ["route", ["unroute", "stop", "release"]],
  ["verify", ["unroute", "stop", "release"]],
];

describe("a failed step", () => {
  it.each(rollbackCases)("at %s rolls back %j and moves to the next location", (type, undo) => {
    const harness = new Harness();
    const failing = failoverUntil(harness, quality, type);
    const mark = harness.effects.length;
    harness.fail(quality, "disk full");
    const after = harness.since(mark);
    expect(after.slice(0, undo.length).map((effect) => effect.type)).toEqual(undo);
    for (const effect of after.slice(0, undo.length)) {
      expect(effect).toMatchObject({ generation: failing.generation });
    }
    if (undo.includes("stop")) {
      expect(after.find((effect) => effect.type === "stop")).toMatchObject({
        node: "edge-2",
        reason: "rollback",
      });
    }
    expect(harness.step(quality)).toMatchObject({
      type: "prepare",
      node: "edge-3",
      generation: failing.generation + 1,
    });
    expect(harness.orchestrator.registry.resolve(quality.name)).toBeUndefined();
    harness.complete(quality);
    const record = harness.lastRecord(quality);
    expect(record).toMatchObject({ status: "completed", to: "edge-3" });
    expect(record.steps.filter((step) => !step.ok)).toEqual([
      expect.objectContaining({ node: "edge-2", ok: false, error: "disk full" }),
    ]);
  });
});

/** The timeout of each step kind, as the harness's options and the quality plan set them. */
const timeoutCases: [StepEffect["type"], number][] = [
  ["prepare", failoverDefaults.prepareTimeoutMs],
  ["sync-data", failoverDefaults.syncDataTimeoutMs],
  ["run-hook", 7_000],
  ["start", failoverDefaults.startTimeoutMs],
  ["route", failoverDefaults.routeTimeoutMs],
  ["verify", failoverDefaults.verifyTimeoutMs],
];

describe("a step that times out", () => {
  it.each(timeoutCases)("%s fails after %i ms", (type, timeoutMs) => {
    const harness = new Harness();
    const waiting = failoverUntil(harness, quality, type);
    const startedAtMs = harness.nowMs;
    harness.orchestrator.tick(startedAtMs + timeoutMs - 1);
    expect(harness.step(quality)).toBe(waiting);
    harness.nowMs = startedAtMs + timeoutMs;
    harness.orchestrator.tick(harness.nowMs);
    expect(harness.step(quality)).toMatchObject({ type: "prepare", node: "edge-3" });
    const failed = harness.orchestrator.records().at(-1)?.steps.at(-1);
    expect(failed).toMatchObject({ ok: false, ms: timeoutMs, node: "edge-2" });
    expect(failed?.error).toContain(`timed out after ${timeoutMs} ms`);
  });
});

describe("when every location fails", () => {
  it("ends failed with a critical alert and nothing routed", () => {
    const harness = new Harness();
    harness.place(monitoring, "edge-1");
    harness.setStatus("edge-1", NodeStatus.failed);
    harness.trigger(monitoring, "node_failure", "edge-1");
    harness.fail(monitoring);
    harness.succeed(monitoring);
    harness.fail(monitoring);
    expect(harness.isActive(monitoring)).toBe(false);
    const record = harness.lastRecord(monitoring);
    expect(record).toMatchObject({ status: "failed", to: null, generation: null, from: "edge-1" });
    expect(record.steps.map((step) => [step.name, step.node, step.ok])).toEqual([
      ["prepare_target", "edge-2", false],
      ["prepare_target", "edge-3", true],
      ["sync_data", "edge-3", false],
    ]);
    expect(harness.ofType("alert").at(-1)).toMatchObject({ severity: "critical" });
    expect(harness.ofType("record").at(-1)?.record.status).toBe("failed");
    expect(harness.orchestrator.registry.resolve(monitoring.name)).toBeUndefined();
  });

  it("records ineligible plan locations without spending a generation", () => {
    const harness = new Harness(failoverDefaults, [
      node("edge-1"),
      node("edge-2", { status: NodeStatus.degraded }),
      node("edge-3", { used: loaded(0.89) }),
      node("edge-4", { capabilities: new Set() }),
    ]);
    harness.place(monitoring, "edge-1");
    harness.setStatus("edge-1", NodeStatus.failed);
    harness.trigger(monitoring, "node_failure", "edge-1");
    const record = harness.lastRecord(monitoring);
    expect(record.status).toBe("failed");
    expect(record.steps.map((step) => [step.node, step.error])).toEqual([
      ["edge-2", "not eligible: not-healthy"],
      ["edge-3", "not eligible: over-capacity"],
    ]);
    expect(harness.orchestrator.registry.entry(monitoring.name)?.generation).toBe(1);
  });

  it("skips a plan location the fleet does not know and tries the next one", () => {
    const harness = new Harness();
    const misnamed = {
      ...monitoring,
      plan: { ...monitoring.plan!, backups: ["edge-9", "edge-3"] },
    };
    harness.place(misnamed, "edge-1");
    harness.setStatus("edge-1", NodeStatus.failed);
    harness.trigger(misnamed, "node_failure", "edge-1");
    harness.complete(misnamed);
    const record = harness.lastRecord(misnamed);
    expect(record.status).toBe("completed");
    expect(record.to).toBe("edge-3");
    expect(record.steps[0]).toMatchObject({ node: "edge-9", error: "not eligible: unknown node" });
  });
});

describe("reallocation by the placement rule", () => {
  const fleet = () => [
    node("edge-1"),
    node("edge-2"),
    node("edge-3"),
    node("edge-4", { used: loaded(0.5) }),
    node("edge-5", { used: loaded(0.2) }),
    node("edge-6", { used: loaded(0.1), capabilities: new Set() }),
    node("edge-7", { used: loaded(0.0), status: NodeStatus.degraded }),
    node("edge-8", { used: loaded(0.89) }),
  ];

  it.each([
    ["a service without a plan", unplanned, 0, "edge-5"],
    ["a plan whose locations all failed", monitoring, 2, "edge-5"],
  ])("places %s on the least loaded eligible node", (_label, service, planFailures, expected) => {
    const harness = new Harness(failoverDefaults, fleet());
    for (const id of ["edge-2", "edge-3"]) harness.fleet.set(id, node(id, { used: loaded(0.3) }));
    harness.place(service, "edge-1");
    harness.setStatus("edge-1", NodeStatus.failed);
    harness.trigger(service, "node_failure", "edge-1");
    for (let failure = 0; failure < planFailures; failure++) harness.fail(service);
    expect(harness.step(service)).toMatchObject({ type: "prepare", node: expected });
    harness.complete(service);
    expect(harness.lastRecord(service)).toMatchObject({
      status: "completed",
      to: expected,
      via: "rule",
      plan: service.plan === null ? null : service.name,
    });
  });

  it("tries at most reallocationAttemptsMax rule nodes, each once", () => {
    const harness = new Harness(failoverOptionsFor({ reallocationAttemptsMax: 2 }), fleet());
    harness.place(unplanned, "edge-1");
    harness.setStatus("edge-1", NodeStatus.failed);
    harness.trigger(unplanned, "node_failure", "edge-1");
    harness.fail(unplanned);
    harness.fail(unplanned);
    expect(harness.ofType("prepare").map((effect) => effect.node)).toEqual(["edge-2", "edge-3"]);
    expect(harness.lastRecord(unplanned).status).toBe("failed");
  });

  it("counts the reservation of a failover still running on a node", () => {
    // Alone, edge-2 ends at 87.5 % CPU and edge-3 at 88.75 %; with the first reservation edge-2
    // would reach 100 %, so the second service must go to edge-3.
    const harness = new Harness(failoverDefaults, [
      node("edge-2", { used: { ...idle, cpuCores: 3 } }),
      node("edge-3", { used: { ...idle, cpuCores: 3.05 } }),
    ]);
    const second = { ...unplanned, name: "second" };
    harness.trigger(unplanned, "planned", null, "edge-2");
    expect(harness.step(unplanned)).toMatchObject({ node: "edge-2" });
    harness.trigger(second, "planned", null);
    expect(harness.step(second)).toMatchObject({ node: "edge-3" });
  });

  it("ignores a condition the plan does not list, but not for a service without a plan", () => {
    const harness = new Harness();
    harness.place(monitoring, "edge-1");
    harness.place(unplanned, "edge-1");
    expect(harness.trigger(monitoring, "hardware_failure", "edge-1")).toEqual({
      kind: "ignored",
      why: "condition-not-in-plan",
    });
    expect(harness.trigger(unplanned, "hardware_failure", "edge-1").kind).toBe("started");
  });
});

describe("resume after a server restart", () => {
  it.each(["prepare", "sync-data", "run-hook", "start", "route", "verify"] as const)(
    "mid-attempt at %s issues the same command again and finishes",
    (type) => {
      const harness = new Harness();
      const before = failoverUntil(harness, quality, type);
      const mark = harness.effects.length;
      harness.restart(5_000);
      const again = harness.since(mark);
      expect(again).toEqual([before]);
      expect(harness.orchestrator.registry.entry(quality.name)?.generation).toBe(before.generation);
      harness.orchestrator.tick(harness.nowMs + 4_999);
      expect(harness.isActive(quality)).toBe(true);
      harness.complete(quality);
      const record = harness.lastRecord(quality);
      expect(record).toMatchObject({
        status: "completed",
        to: "edge-2",
        generation: before.generation,
      });
      const resumedStep = record.steps.find((step) => step.ms > 5_000);
      expect(resumedStep?.ok).toBe(true);
    },
  );

  it("starts failovers that were queued when the server stopped", () => {
    const harness = new Harness(failoverOptionsFor({ concurrentFailoversMax: 1 }));
    harness.trigger(monitoring, "planned", null, "edge-1");
    expect(harness.trigger(unplanned, "planned", null).kind).toBe("queued");
    harness.restart(1_000);
    harness.complete(monitoring);
    expect(harness.step(unplanned)).toMatchObject({ type: "prepare" });
    harness.complete(unplanned);
    expect(harness.orchestrator.records().map((record) => record.status)).toEqual([
      "completed",
      "completed",
    ]);
  });

  it("refuses state of another version", () => {
    const snapshot = {
      ...new Harness().orchestrator.snapshot(),
      version: 2,
    } as unknown as FailoverSnapshot;
    expect(() => new Harness(failoverDefaults, [], snapshot)).toThrow(FailoverSnapshotError);
  });
});

describe("fencing by generation", () => {
  it("issues growing generations across attempts and failovers", () => {
    const harness = new Harness(
      failoverDefaults,
      ["edge-1", "edge-2", "edge-3", "edge-4"].map((id) => node(id)),
    );
    harness.place(monitoring, "edge-1");
    harness.trigger(monitoring, "node_failure", "edge-1");
    harness.fail(monitoring);
    harness.complete(monitoring);
    harness.trigger(monitoring, "network_partition", "edge-3");
    harness.complete(monitoring);
    const generations = harness.ofType("prepare").map((effect) => effect.generation);
    expect(generations).toEqual([2, 3, 4]);
    expect(harness.ofType("route").map((effect) => effect.route.generation)).toEqual([3, 4]);
  });

  it("ignores reports and health checks of a generation that was rolled back", () => {
    const harness = new Harness();
    const oldStart = failoverUntil(harness, monitoring, "start");
    harness.succeed(monitoring);
    const oldRoute = harness.step(monitoring);
    harness.fail(monitoring);
    const mark = harness.effects.length;
    const current = harness.step(monitoring);
    harness.orchestrator.stepSucceeded({ ...addressOf(oldRoute), atMs: harness.nowMs });
    harness.orchestrator.stepSucceeded({
      ...addressOf(oldStart),
      atMs: harness.nowMs,
      endpoint: "x:1",
    });
    harness.orchestrator.stepFailed({ ...addressOf(oldStart), atMs: harness.nowMs, error: "late" });
    for (let check = 0; check < 5; check++) {
      harness.orchestrator.healthChecked({
        service: monitoring.name,
        generation: oldRoute.generation,
        ok: true,
        atMs: harness.nowMs,
      });
    }
    expect(harness.since(mark)).toEqual([]);
    expect(harness.step(monitoring)).toBe(current);
  });

  it("ignores a report for a step the attempt has already passed", () => {
    const harness = new Harness();
    const prepare = failoverUntil(harness, monitoring, "prepare");
    harness.succeed(monitoring);
    const mark = harness.effects.length;
    harness.orchestrator.stepFailed({ ...addressOf(prepare), atMs: harness.nowMs, error: "late" });
    expect(harness.since(mark)).toEqual([]);
  });

  it("stops the instance an attempt started when the attempt rolls back", () => {
    const harness = new Harness();
    const verify = failoverUntil(harness, monitoring, "verify");
    harness.fail(monitoring, "health check failed");
    expect(harness.ofType("stop").at(-1)).toEqual({
      type: "stop",
      service: monitoring.name,
      node: "edge-2",
      generation: verify.generation,
      reason: "rollback",
    });
  });

  it("fences the routed instance of a planned move that names no node", () => {
    const harness = new Harness();
    harness.place(monitoring, "edge-1");
    harness.trigger(monitoring, "planned", null, "edge-3");
    expect(harness.effects.slice(0, 2)).toEqual([
      { type: "stop", service: monitoring.name, node: "edge-1", generation: 1, reason: "fence" },
      { type: "unroute", service: monitoring.name, generation: 1 },
    ]);
    harness.complete(monitoring);
    expect(harness.lastRecord(monitoring)).toMatchObject({ from: "edge-1", to: "edge-3" });
  });

  it("fails the current step when the attempt's target node fails", () => {
    const harness = new Harness();
    failoverUntil(harness, monitoring, "sync-data");
    expect(harness.trigger(monitoring, "node_failure", "edge-2").kind).toBe("in-progress");
    expect(harness.step(monitoring)).toMatchObject({ type: "prepare", node: "edge-3" });
    expect(harness.orchestrator.records().at(-1)?.steps.at(-1)?.error).toBe(
      "target node edge-2 reported node_failure",
    );
  });

  it("ignores a trigger about a node the service has already left", () => {
    const harness = new Harness();
    harness.place(monitoring, "edge-1");
    harness.trigger(monitoring, "node_failure", "edge-1");
    harness.complete(monitoring);
    expect(harness.trigger(monitoring, "node_failure", "edge-1")).toEqual({
      kind: "ignored",
      why: "not-on-node",
    });
  });
});

describe("limits", () => {
  it("queues beyond concurrentFailoversMax and refuses beyond queuedFailoversMax", () => {
    const harness = new Harness(
      failoverOptionsFor({ concurrentFailoversMax: 1, queuedFailoversMax: 1 }),
    );
    const services = ["a", "b", "c"].map((name) => ({ ...unplanned, name }));
    expect(services.map((service) => harness.trigger(service, "planned", null).kind)).toEqual([
      "started",
      "queued",
      "refused",
    ]);
    expect(harness.ofType("record").at(-1)?.record).toMatchObject({
      service: "c",
      status: "error",
    });
    expect(harness.ofType("alert").at(-1)).toMatchObject({ service: "c", severity: "critical" });
    harness.complete(services[0] as FailoverService);
    expect(harness.step(services[1] as FailoverService).type).toBe("prepare");
  });

  it("keeps at most historyRecordsMax records, dropping the oldest", () => {
    const harness = new Harness(failoverOptionsFor({ historyRecordsMax: 2 }));
    for (const name of ["a", "b", "c"]) harness.place({ ...unplanned, name }, "edge-1");
    expect(harness.orchestrator.records().map((record) => record.service)).toEqual(["b", "c"]);
  });

  it("rejects options that are not positive integers", () => {
    expect(() => failoverOptionsFor({ verifyPassesRequired: 0 })).toThrow(/verifyPassesRequired/);
    expect(() => failoverOptionsFor({ startTimeoutMs: 1.5 })).toThrow(/startTimeoutMs/);
  });
});

describe("failoverServiceFromSpec", () => {
  it("takes hooks and data sources from the plan's procedures", () => {
    const spec = serviceSchema.parse({
      name: "quality_control",
      command: ["node", "qc.mjs"],
      resources: { cpuCores: 0.5, memoryMb: 256 },
      requiredCapabilities: ["data_processing"],
      failover: {
        primary: "edge-1",
        backups: ["edge-2"],
        conditions: ["node_failure"],
        procedures: [
          "restore_from_backup",
          { hook: "calibrate_equipment", command: ["node", "qc.mjs", "calibrate-equipment"] },
        ],
      },
    });
    expect(failoverServiceFromSpec(spec)).toEqual({
      name: "quality_control",
      demand: { cpuCores: 0.5, memoryMb: 256, storageGb: 0, networkMbps: 0 },
      requiredCapabilities: ["data_processing"],
      plan: {
        backups: ["edge-2"],
        conditions: ["node_failure"],
        hooks: [
          {
            hook: "calibrate_equipment",
            command: ["node", "qc.mjs", "calibrate-equipment"],
            timeoutMs: 60_000,
          },
        ],
        dataSources: ["backup"],
      },
    });
  });
});

/** What a step's report can be in the property test. */
const outcomes = ["succeed", "fail", "silence"] as const;

describe("property: random step outcomes", () => {
  it("never route two generations, never route an older one, and always end", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...outcomes), { minLength: 1, maxLength: 60 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
        fc.boolean(),
        (stepOutcomes, healthOutcomes, restartMidway) => {
          const harness = new Harness(
            failoverOptionsFor({ reallocationAttemptsMax: 2 }),
            ["edge-1", "edge-2", "edge-3", "edge-4", "edge-5"].map((id) => node(id)),
          );
          harness.place(quality, "edge-1");
          harness.trigger(quality, "node_failure", "edge-1");
          const routed = new Set<number>();
          /** Running instances: generation -> node. */
          const running = new Map<number, string>([[1, "edge-1"]]);
          let highestRouted = 1;
          let cursor = 0;
          const apply = () => {
            for (; cursor < harness.effects.length; cursor++) {
              const effect = harness.effects[cursor];
              if (effect === undefined) continue;
              if (effect.type === "route") {
                // Equal only when a resumed server issues the same route again.
                expect(effect.route.generation).toBeGreaterThanOrEqual(highestRouted);
                highestRouted = effect.route.generation;
                routed.add(effect.route.generation);
              }
              if (effect.type === "unroute") routed.delete(effect.generation);
              if (effect.type === "start") running.set(effect.generation, effect.node);
              if (effect.type === "stop") {
                for (const [generation, node] of running) {
                  if (node === effect.node && generation <= effect.generation)
                    running.delete(generation);
                }
              }
              expect(routed.size).toBeLessThanOrEqual(1);
            }
          };
          apply();
          let health = 0;
          for (const [index, outcome] of stepOutcomes.entries()) {
            if (!harness.isActive(quality)) break;
            if (restartMidway && index === Math.floor(stepOutcomes.length / 2))
              harness.restart(100);
            const step = harness.step(quality);
            if (outcome === "fail") harness.fail(quality);
            else if (outcome === "succeed" && step.type !== "verify") harness.succeed(quality);
            else if (outcome === "succeed") {
              const ok = healthOutcomes[health++ % healthOutcomes.length] ?? true;
              harness.orchestrator.healthChecked({
                service: quality.name,
                generation: step.generation,
                ok,
                atMs: harness.nowMs,
              });
            } else {
              harness.nowMs += 1_000;
              harness.orchestrator.tick(harness.nowMs);
            }
            apply();
          }
          // Silence from here on: every step times out, so the failover must end.
          for (let ticks = 0; ticks < 100 && harness.isActive(quality); ticks++) {
            harness.nowMs += failoverDefaults.syncDataTimeoutMs;
            harness.orchestrator.tick(harness.nowMs);
            apply();
          }
          expect(harness.isActive(quality)).toBe(false);
          const record = harness.lastRecord(quality);
          const route = harness.orchestrator.registry.resolve(quality.name);
          if (record.status === "completed") {
            expect([...routed]).toEqual([record.generation]);
            expect([...running.keys()]).toEqual([record.generation]);
            expect(route?.generation).toBe(record.generation);
          } else {
            expect(record.status).toBe("failed");
            expect(routed.size).toBe(0);
            expect(running.size).toBe(0);
            expect(route).toBeUndefined();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
