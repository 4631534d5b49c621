// Long campaigns: many seeds through every scenario and every invariant checker. A benchmark-
// style tool, not a test: it runs for as long as you ask.
//
//   npm run sim:soak -- --seeds 200
//   npm run sim:soak -- --seeds 50 --scenario examples/scenarios/smart-city.yaml --nodes 2000 --duration 1h
//
// Prints one line per run and, for every failing seed, the violations and the replay command.
// Exits 1 if any run broke an invariant.

import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";
import { parseDurationMs } from "../../src/sim/duration.ts";
import type { ReplayArguments } from "../../src/sim/report.ts";
import { describeViolations, runScenario } from "../../src/sim/run-scenario.ts";

/** The default campaign: each seed runs every one of these. */
const defaultCampaign: readonly Omit<ReplayArguments, "seed">[] = [
  { scenarioPath: "examples/scenarios/chaos-small.yaml", durationMs: 30 * 60_000 },
  { scenarioPath: "examples/scenarios/industrial-slice.yaml", durationMs: 2 * 3_600_000 },
  { scenarioPath: "examples/scenarios/smart-city.yaml", durationMs: 30 * 60_000, nodesTarget: 500 },
];

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "20" },
    "first-seed": { type: "string", default: "1" },
    scenario: { type: "string" },
    duration: { type: "string", default: "1h" },
    nodes: { type: "string" },
  },
});

const seeds = Number(values.seeds);
const firstSeed = Number(values["first-seed"]);
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(firstSeed) || firstSeed < 0) {
  throw new Error("--seeds must be a positive whole number and --first-seed a whole number");
}
const campaign =
  values.scenario === undefined
    ? defaultCampaign
    : [
        {
          scenarioPath: values.scenario,
          durationMs: parseDurationMs(values.duration),
          nodesTarget: values.nodes === undefined ? undefined : Number(values.nodes),
        },
      ];

const startMs = performance.now();
let runs = 0;
let nodeSeconds = 0;
const failures: string[] = [];
let liveConvictions = 0;
let unexplainedConvictions = 0;
let worstFailoverSeconds = 0;
for (let seed = firstSeed; seed < firstSeed + seeds; seed += 1) {
  for (const run of campaign) {
    const report = await runScenario({ ...run, seed });
    runs += 1;
    nodeSeconds += report.nodes * report.durationSeconds;
    liveConvictions += report.detection.falseConvictions.total;
    unexplainedConvictions += report.detection.falseConvictions.unexplained;
    worstFailoverSeconds = Math.max(worstFailoverSeconds, report.failover.timeSeconds.max ?? 0);
    const verdict = report.passed ? "ok  " : "FAIL";
    process.stdout.write(
      `${verdict} seed ${seed} ${report.scenario}: ${report.nodes} nodes, ${report.durationSeconds} s, ` +
        `failover p99 ${report.failover.timeSeconds.p99 ?? "-"} s, ` +
        `${report.invariants.reduce((total, invariant) => total + invariant.checks, 0)} checks` +
        (report.detection.falseConvictions.unexplained > 0
          ? `, ${report.detection.falseConvictions.unexplained} unexplained convictions of live nodes`
          : "") +
        "\n",
    );
    if (!report.passed) failures.push(describeViolations(report));
  }
}
const wallSeconds = (performance.now() - startMs) / 1_000;
process.stdout.write(
  `\n${runs} runs, ${failures.length} failed, ${Math.round(nodeSeconds / 3_600)} simulated node-hours ` +
    `in ${wallSeconds.toFixed(1)} s wall; ${liveConvictions} convictions of live nodes ` +
    `(${unexplainedConvictions} with no network fault to explain them); ` +
    `slowest failover ${worstFailoverSeconds} s\n`,
);
for (const failure of failures) process.stdout.write(`\n${failure}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
