// One simulated run from a scenario file to its report: what the CLI, the tests and the
// benchmarks all call.

import { buildFleet } from "./fleet.ts";
import { assertSeed } from "./random.ts";
import { buildReport, type ReplayArguments, type SimulationReport } from "./report.ts";
import { loadScenario } from "./scenario.ts";
import { Simulation } from "./simulation.ts";

export async function runScenario(run: ReplayArguments): Promise<SimulationReport> {
  assertSeed(run.seed);
  const scenario = await loadScenario(run.scenarioPath);
  const fleet = buildFleet(scenario, { nodesTarget: run.nodesTarget });
  const result = new Simulation(fleet, {
    seed: run.seed,
    durationMs: run.durationMs,
    injectedBug: run.injectedBug,
  }).run();
  return buildReport(fleet, result, run);
}

/** Why a run failed its invariants, with the seed and the command that replays it. */
export function describeViolations(report: SimulationReport): string {
  const failed = report.invariants.filter((invariant) => invariant.violations > 0);
  const lines = [`invariant violated with seed ${report.seed}; replay with:`, `  ${report.replay}`];
  for (const invariant of failed) {
    lines.push(`${invariant.name}: ${invariant.violations} violations of "${invariant.statement}"`);
    for (const example of invariant.examples.slice(0, 3))
      lines.push(`  at ${example.atMs} ms: ${example.message}`);
  }
  return lines.join("\n");
}
