// Simulator throughput and the smart-city report. Writes bench/results/sim.json.
//
//   npm run bench:sim                      the full set (several minutes on one core)
//   npm run bench:sim -- --quick           1,000 and 10,000 nodes for 10 simulated minutes
//
// Throughput is simulated node-seconds per wall second: nodes x simulated seconds / wall
// seconds spent in the event loop (loading the scenario is timed separately). The runs are
// single-threaded; on a shared machine wall time includes waiting for a core, so the same rate
// per CPU second (time actually on a core) is reported beside it, with the load average.

import { writeFile, mkdir } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { buildFleet } from "../../src/sim/fleet.ts";
import { buildReport } from "../../src/sim/report.ts";
import { loadScenario } from "../../src/sim/scenario.ts";
import { Simulation } from "../../src/sim/simulation.ts";

const scenarioPath = "examples/scenarios/smart-city.yaml";
const resultPath = "bench/results/sim.json";
const quick = process.argv.includes("--quick");
const seed = 1;
const hourMs = 3_600_000;

/**
 * 50,000 nodes run for ten simulated minutes: the rate is what is measured, not the hour. The
 * 10,000-node hour (the target) runs twice, since one run on a shared machine can be an outlier.
 */
const sizes = quick
  ? [
      { nodes: 1_000, durationMs: hourMs / 6 },
      { nodes: 10_000, durationMs: hourMs / 6 },
    ]
  : [
      { nodes: 1_000, durationMs: hourMs },
      { nodes: 10_000, durationMs: hourMs },
      { nodes: 10_000, durationMs: hourMs },
      { nodes: 50_000, durationMs: hourMs / 6 },
    ];

interface Measured {
  nodes: number;
  simulatedSeconds: number;
  loadSeconds: number;
  runWallSeconds: number;
  runCpuSeconds: number;
  events: number;
  eventsPerWallSecond: number;
  nodeSecondsPerWallSecond: number;
  nodeSecondsPerCpuSecond: number;
  /** Wall time one simulated hour of this fleet takes at the measured rate. */
  wallSecondsPerSimulatedHour: number;
  /** The same on a core of its own (CPU time). */
  cpuSecondsPerSimulatedHour: number;
  /** One-minute load average when the run ended (2 cores: above 2, runs waited for a core). */
  loadAverageAtEnd: number;
}

async function measure(nodesTarget: number | undefined, durationMs: number) {
  const loadStartMs = performance.now();
  const scenario = await loadScenario(scenarioPath);
  const fleet = buildFleet(scenario, { nodesTarget });
  const simulation = new Simulation(fleet, { seed, durationMs });
  const loadSeconds = (performance.now() - loadStartMs) / 1_000;
  const cpuBefore = process.cpuUsage();
  const runStartMs = performance.now();
  const result = simulation.run();
  const runWallSeconds = (performance.now() - runStartMs) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  const report = buildReport(fleet, result, { scenarioPath, seed, durationMs, nodesTarget });
  const nodes = fleet.nodes.length;
  const simulatedSeconds = durationMs / 1_000;
  const rate = (nodes * simulatedSeconds) / runWallSeconds;
  const runCpuSeconds = (cpu.user + cpu.system) / 1e6;
  const cpuRate = (nodes * simulatedSeconds) / runCpuSeconds;
  const measured: Measured = {
    nodes,
    simulatedSeconds,
    loadSeconds: round(loadSeconds),
    runWallSeconds: round(runWallSeconds),
    runCpuSeconds: round(runCpuSeconds),
    events: report.eventsProcessed,
    eventsPerWallSecond: Math.round(report.eventsProcessed / runWallSeconds),
    nodeSecondsPerWallSecond: Math.round(rate),
    nodeSecondsPerCpuSecond: Math.round(cpuRate),
    wallSecondsPerSimulatedHour: round((nodes * 3_600) / rate),
    cpuSecondsPerSimulatedHour: round((nodes * 3_600) / cpuRate),
    loadAverageAtEnd: round(loadavg()[0] ?? 0),
  };
  return { measured, report };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

const throughput: Measured[] = [];
for (const size of sizes) {
  const { measured } = await measure(size.nodes, size.durationMs);
  throughput.push(measured);
  process.stdout.write(`${JSON.stringify(measured)}\n`);
}

const { report } = await measure(undefined, quick ? hourMs / 6 : hourMs);
const failoverObjective = report.objectives.find((objective) => objective.name === "failover");
const smartCity = {
  replay: report.replay,
  nodes: report.nodes,
  simulatedSeconds: report.durationSeconds,
  faultsInjected: report.faultsInjected,
  detectionLatencyMsByNodeGroup: report.detection.latencyMsByNodeGroup,
  falseConvictions: report.detection.falseConvictions,
  failoverSeconds: report.failover.timeSeconds,
  /** Failovers the orchestrator ended, by status, and its steps' durations (ms). */
  failoverRecords: report.failover.records,
  failoverStepsMs: report.failover.stepsMs,
  failoverPlacements: report.failover.placements,
  failoverObjectiveSeconds: 30,
  failoverObjective: failoverObjective?.status ?? "not-exercised",
  services: report.services.map((service) => ({
    name: service.name,
    availability: service.availability,
    failovers: service.failovers,
    failoverSecondsP99: service.failoverSeconds.p99,
  })),
  invariantsPassed: report.passed,
};
process.stdout.write(`${JSON.stringify(smartCity, null, 2)}\n`);

await mkdir("bench/results", { recursive: true });
const cpu = cpus()[0];
await writeFile(
  resultPath,
  `${JSON.stringify(
    {
      benchmark: "sim",
      command: `npm run bench:sim${quick ? " -- --quick" : ""}`,
      node: process.version,
      cpu:
        cpu === undefined
          ? "unknown"
          : `${cpu.model} (${cpus().length} logical cores, run single-threaded)`,
      targetWallSecondsFor10000NodesPerHour: 60,
      throughput,
      smartCity,
    },
    null,
    2,
  )}\n`,
);
process.stdout.write(`wrote ${resultPath}\n`);
