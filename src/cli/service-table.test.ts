import { describe, expect, it } from "vitest";
import type { DrillResult } from "../api/contract.ts";
import type { FailoverRecord, StepRecord } from "../core/failover/failover-protocol.ts";
import type { ServiceView } from "../api/contract.ts";
import {
  formatDrillReport,
  formatDurationMs,
  formatFailoverRecord,
  formatInstances,
  formatProxies,
  formatSteps,
  formatTriggerOutcome,
  renderColumns,
  renderDrillTable,
  renderFailoverTable,
  renderServiceTable,
  summariseServices,
  tableCellCharactersMax,
} from "./service-table.ts";

const step = (name: string, node: string, ms: number, error: string | null = null): StepRecord => ({
  name,
  node,
  ms,
  ok: error === null,
  error,
});

const service = (overrides: Partial<ServiceView> = {}): ServiceView => ({
  name: "production_monitoring",
  node: "edge-1",
  generation: 3,
  endpoint: "127.0.0.1:40100",
  status: "serving",
  instances: [],
  proxies: [],
  failoverId: null,
  ...overrides,
});

const instance = (node: string, generation: number, state: "running" | "stopped" | "failed") => ({
  node,
  service: "production_monitoring",
  generation,
  state,
  endpoint: null,
  pid: null,
  restarts: 0,
  lastError: null,
});

const record = (overrides: Partial<FailoverRecord> = {}): FailoverRecord => ({
  failoverId: 7,
  plan: "production_monitoring",
  service: "production_monitoring",
  reason: "node_failure",
  from: "edge-1",
  to: "edge-2",
  via: "plan",
  generation: 4,
  startedAtMs: 1_000,
  endedAtMs: 1_850,
  durationMs: 850,
  dataAgeMs: 1_500,
  steps: [step("prepare_target", "edge-2", 3), step("sync_data", "edge-2", 40)],
  status: "completed",
  ...overrides,
});

const drill = (overrides: Partial<DrillResult> = {}): DrillResult => ({
  drillId: 2,
  service: "production_monitoring",
  trigger: "operator",
  startedAtMs: Date.UTC(2026, 0, 5, 10, 0, 0),
  endedAtMs: Date.UTC(2026, 0, 5, 10, 0, 6),
  legs: [
    {
      from: "edge-1",
      to: "edge-2",
      failoverId: 8,
      status: "completed",
      unavailableMs: 420,
      writesLost: 0,
      dataAgeMs: 12,
    },
    {
      from: "edge-2",
      to: "edge-1",
      failoverId: 9,
      status: "completed",
      unavailableMs: 610,
      writesLost: 0,
      dataAgeMs: 30,
    },
  ],
  rtoMs: 610,
  rpoWritesLost: 0,
  objectives: { rtoSeconds: 30, rpoSeconds: 300 },
  passed: true,
  problem: null,
  ...overrides,
});

describe("formatDurationMs", () => {
  it.each([
    [null, "-"],
    [undefined, "-"],
    [0, "0ms"],
    [3.4, "3ms"],
    [999, "999ms"],
    [2_400, "2.4s"],
    [95_000, "95s"],
    [185_000, "3m05s"],
    [7_800_000, "2h10m"],
  ])("formats %s as %s", (ms, text) => {
    expect(formatDurationMs(ms)).toBe(text);
  });
});

describe("service table", () => {
  it("shows no proxy as -, one as host:port, several as the first and a count", () => {
    expect(formatProxies([])).toBe("-");
    expect(formatProxies([{ node: "edge-1", host: "10.0.0.1", port: 41000 }])).toBe(
      "10.0.0.1:41000",
    );
    expect(
      formatProxies([
        { node: "edge-1", host: "10.0.0.1", port: 41000 },
        { node: "edge-2", host: "10.0.0.2", port: 41000 },
        { node: "edge-3", host: "10.0.0.3", port: 41002 },
      ]),
    ).toBe("10.0.0.1:41000 (+2 more)");
  });

  it("summarises instances by state, running first", () => {
    expect(formatInstances([])).toBe("-");
    expect(
      formatInstances([
        instance("edge-1", 2, "stopped"),
        instance("edge-2", 3, "running"),
        instance("edge-3", 1, "stopped"),
      ]),
    ).toBe("1 running, 2 stopped");
  });

  it("renders one aligned row per service under the header", () => {
    const table = renderServiceTable(
      [
        service({
          proxies: [{ node: "edge-1", host: "127.0.0.1", port: 41000 }],
          instances: [instance("edge-1", 3, "running")],
        }),
        service({
          name: "quality_control",
          node: null,
          generation: 0,
          endpoint: null,
          status: "unplaced",
        }),
      ],
      false,
    );
    expect(table.split("\n")).toEqual([
      "NAME                   NODE    GENERATION  STATUS    ENDPOINT         PROXY            INSTANCES",
      "production_monitoring  edge-1  3           serving   127.0.0.1:40100  127.0.0.1:41000  1 running",
      "quality_control        -       -           unplaced  -                -                -",
    ]);
  });

  it("colours the status column only on a terminal", () => {
    const coloured = renderServiceTable([service()], true);
    expect(coloured).toContain("\u001b[32mserving");
    expect(renderServiceTable([service()], false)).not.toContain("\u001b[");
  });

  it("counts services by status", () => {
    expect(summariseServices([])).toMatch(/no services/);
    expect(
      summariseServices([service(), service({ status: "unplaced" }), service({ name: "x" })]),
    ).toBe("2 serving, 1 unplaced");
  });

  it("cuts cells longer than the maximum", () => {
    const table = renderColumns(["A"], [["x".repeat(500)]]);
    expect(table.split("\n")[1]).toHaveLength(tableCellCharactersMax);
  });
});

describe("failover formatting", () => {
  it("lists steps with durations and marks failed ones, grouped by node when it changed", () => {
    expect(formatSteps([])).toBe("-");
    expect(formatSteps(record().steps)).toBe("prepare_target 3ms, sync_data 40ms");
    expect(
      formatSteps([
        step("prepare_target", "edge-2", 3),
        step("sync_data", "edge-2", 1_200, "timed out"),
        step("prepare_target", "edge-3", 4),
      ]),
    ).toBe("edge-2: prepare_target 3ms, sync_data 1.2s FAILED | edge-3: prepare_target 4ms");
  });

  it("renders the failover table", () => {
    const lines = renderFailoverTable(
      [
        record(),
        record({
          failoverId: 8,
          status: "initiated",
          to: null,
          via: null,
          reason: "planned",
          durationMs: null,
          dataAgeMs: null,
          endedAtMs: null,
          steps: [],
        }),
      ],
      false,
    ).split("\n");
    expect(lines[0]).toMatch(
      /^ID\s+SERVICE\s+STATUS\s+FROM -> TO\s+REASON\s+DURATION\s+DATA AGE\s+STEPS$/,
    );
    expect(lines[1]).toMatch(
      /^#7\s+production_monitoring\s+completed\s+edge-1 -> edge-2\s+node_failure \(plan\)\s+850ms\s+1\.5s\s+prepare_target 3ms, sync_data 40ms$/,
    );
    expect(lines[2]).toMatch(
      /^#8\s+production_monitoring\s+initiated\s+edge-1 -> \?\s+planned\s+-\s+-\s+-$/,
    );
  });

  it("says a completed failover without data age started empty", () => {
    expect(renderFailoverTable([record({ dataAgeMs: null })], false)).toContain(" empty ");
  });

  it("prints one record in full, errors included", () => {
    const text = formatFailoverRecord(
      record({
        status: "failed",
        steps: [step("prepare_target", "edge-2", 3, "not enough memory: 95 % after placement")],
      }),
    );
    expect(text).toContain("failover #7 of production_monitoring: failed");
    expect(text).toContain(
      "FAILED prepare_target on edge-2 3ms: not enough memory: 95 % after placement",
    );
  });

  it("says what happened to a failover request and what to do", () => {
    expect(formatTriggerOutcome("pm", { kind: "started", failoverId: 3 }, "edge-2")).toBe(
      "failover #3 of pm started (to edge-2)",
    );
    expect(formatTriggerOutcome("pm", { kind: "queued", failoverId: 4 }, undefined)).toMatch(
      /queued \(to the plan's next location\)/,
    );
    expect(
      formatTriggerOutcome("pm", { kind: "refused", failoverId: 5, why: "queue-full" }, undefined),
    ).toMatch(/refused.*retry/);
    expect(formatTriggerOutcome("pm", { kind: "ignored", why: "not-on-node" }, undefined)).toMatch(
      /edgeward services/,
    );
  });
});

describe("drill formatting", () => {
  it("prints each leg and PASS", () => {
    const lines = formatDrillReport(drill(), false).split("\n");
    expect(lines[0]).toBe(
      "drill #2 of production_monitoring (operator), 2026-01-05T10:00:00.000Z, took 6.0s",
    );
    expect(lines[1]).toBe(
      "  leg 1: edge-1 -> edge-2  completed (failover #8)  unavailable 420ms, writes lost 0, data age 12ms",
    );
    expect(lines[3]).toBe(
      "  RTO 610ms (objective 30s), writes lost 0, data age 30ms (RPO objective 300s)",
    );
    expect(lines[4]).toBe("PASS");
  });

  it("prints FAIL with the problem", () => {
    const text = formatDrillReport(
      drill({ passed: false, problem: "RTO 41s exceeds the objective 30s", rtoMs: 41_000 }),
      false,
    );
    expect(text.split("\n").at(-1)).toBe("FAIL: RTO 41s exceeds the objective 30s");
  });

  it("renders the drill table", () => {
    const lines = renderDrillTable([drill()], false).split("\n");
    expect(lines[0]).toMatch(/^ID\s+SERVICE\s+STARTED\s+TRIGGER\s+RESULT\s+RTO\s+WRITES LOST/);
    expect(lines[1]).toContain("2026-01-05T10:00:00Z");
    expect(lines[1]).toContain("PASS");
    expect(lines[1]).toContain("edge-1 -> edge-2 completed, edge-2 -> edge-1 completed");
  });
});
