import { InvalidArgumentError, Option, type Command } from "commander";
import { InvalidDurationError, parseDurationMs } from "../../sim/duration.ts";
import { simulatedNodesMax } from "../../sim/fleet.ts";
import { seedMax } from "../../sim/random.ts";
import { renderReport } from "../../sim/report.ts";
import { describeViolations, runScenario } from "../../sim/run-scenario.ts";
import { ScenarioError } from "../../sim/scenario.ts";
import { injectedBugs, type InjectedBug } from "../../sim/simulation.ts";

interface SimOptions {
  scenario: string;
  seed: number;
  duration: number;
  nodes?: number;
  json?: boolean;
  injectBug?: InjectedBug;
}

const exitInvariantViolated = 1;
const exitBadInput = 2;

/** Registers `sim`: the control logic on a simulated fleet, in virtual time. */
export function registerSimCommands(program: Command): void {
  program
    .command("sim")
    .summary("run the control logic on a simulated fleet (seeded, reproducible)")
    .description(
      "Run the real failure detector and placement on a simulated fleet in virtual time.\n" +
        "Same scenario, seed and duration give a byte-identical --json report.\n\n" +
        "Example:\n" +
        "  edgeward sim --scenario examples/scenarios/smart-city.yaml --seed 1 --duration 1h",
    )
    .requiredOption("--scenario <file>", "scenario YAML (see examples/scenarios/)")
    .option("--seed <n>", `random seed, 0 to ${seedMax}`, parseSeed, 1)
    .addOption(
      new Option("--duration <time>", "simulated time, e.g. 90s, 10m, 1h")
        .argParser(parseDuration)
        .default(3_600_000, "1h"),
    )
    .option("--nodes <n>", "scale the scenario's counted node groups to about n nodes", parseNodes)
    .option("--json", "print the full report as JSON")
    .option(
      "--inject-bug <name>",
      `break one property on purpose to see the checkers catch it (${injectedBugs.join(", ")})`,
      parseBug,
    )
    .action(async (options: SimOptions) => {
      try {
        const report = await runScenario({
          scenarioPath: options.scenario,
          seed: options.seed,
          durationMs: options.duration,
          nodesTarget: options.nodes,
          injectedBug: options.injectBug,
        });
        process.stdout.write(
          options.json === true
            ? `${JSON.stringify(report, null, 2)}\n`
            : `${renderReport(report)}\n`,
        );
        if (!report.passed) {
          process.stderr.write(`\n${describeViolations(report)}\n`);
          process.exitCode = exitInvariantViolated;
        }
      } catch (error) {
        if (!(error instanceof ScenarioError)) throw error;
        process.stderr.write(`edgeward sim: ${error.message}\n`);
        process.exitCode = exitBadInput;
      }
    });
}

function parseSeed(text: string): number {
  const seed = Number(text);
  if (!/^\d+$/.test(text) || seed > seedMax) {
    throw new InvalidArgumentError(`seed must be a whole number from 0 to ${seedMax}`);
  }
  return seed;
}

function parseDuration(text: string): number {
  try {
    return parseDurationMs(text);
  } catch (error) {
    if (error instanceof InvalidDurationError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

function parseNodes(text: string): number {
  const nodes = Number(text);
  if (!/^\d+$/.test(text) || nodes < 1 || nodes > simulatedNodesMax) {
    throw new InvalidArgumentError(`--nodes must be a whole number from 1 to ${simulatedNodesMax}`);
  }
  return nodes;
}

function parseBug(text: string): InjectedBug {
  const bug = injectedBugs.find((name) => name === text);
  if (bug === undefined) throw new InvalidArgumentError(`one of ${injectedBugs.join(", ")}`);
  return bug;
}
