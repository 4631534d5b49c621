// `edgeward services`, `services resolve`, `failovers`, `failover`, `drill` and `drills`: the
// operator's view of where services run, how they moved, and whether their plans hold. Each
// command is a function of (client, options, output) returning an exit code, so tests call
// them against a real server without spawning the CLI.

import { setTimeout as sleepMs } from "node:timers/promises";
import { InvalidArgumentError, Option, type Command } from "commander";
import type { FailoverRecord } from "../../core/failover/failover-protocol.ts";
import {
  ApiClient,
  ApiClientError,
  drillRequestTimeoutMs,
  resolveServerUrl,
  type ServerSelection,
} from "../api-client.ts";
import { parseDurationMs } from "../options.ts";
import {
  formatDrillReport,
  formatDurationMs,
  formatFailoverRecord,
  formatRoute,
  formatTriggerOutcome,
  renderDrillTable,
  renderFailoverTable,
  renderServiceTable,
  summariseServices,
} from "../service-table.ts";
import {
  exitWith,
  processOutput,
  withServerOptions,
  type CommandOutput,
  type TextSink,
} from "../command-io.ts";

/** `failover --wait` gives up after this long unless --timeout says otherwise. */
export const failoverWaitDefaultMs = 120_000;
/** Longest --timeout accepted for `failover --wait`. */
export const failoverWaitMsMax = 3_600_000;
/** `failover --wait` asks the server this often. */
export const failoverPollIntervalMs = 500;
/** Failovers fetched per poll: the one waited for is among the newest of its service. */
export const failoverPollLimit = 100;
/** The server returns at most this many failovers per request. */
export const failoverListLimitMax = 1_000;
/** The spinner on a terminal's stderr redraws this often. */
export const progressRedrawIntervalMs = 100;

const serverSelectionHelp =
  "\nThe server is --server URL, else the local fleet in --dir (default .edgeward), else $EDGEWARD_SERVER.";

function parseListLimit(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > failoverListLimitMax)
    throw new InvalidArgumentError(
      `expected a whole number from 1 to ${failoverListLimitMax}, got "${value}"`,
    );
  return number;
}

function parseWaitTimeout(value: string): number {
  const timeoutMs = parseDurationMs(value);
  if (timeoutMs <= 0 || timeoutMs > failoverWaitMsMax)
    throw new InvalidArgumentError(`expected a duration from 1s to 1h, got "${value}"`);
  return timeoutMs;
}

const printJson = (output: CommandOutput, value: unknown) =>
  output.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

const colourOf = (output: CommandOutput) =>
  output.stdout.isTTY === true && process.env["NO_COLOR"] === undefined;

/**
 * A spinner with the elapsed time on a terminal's stderr while `label` runs; nothing when
 * stderr is not a terminal. Returns the function that erases it.
 */
export function startProgress(stderr: TextSink, label: string): () => void {
  if (stderr.isTTY !== true) return () => {};
  const frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";
  const startedAtMs = Date.now();
  let frame = 0;
  const draw = () => {
    const elapsedSeconds = Math.floor((Date.now() - startedAtMs) / 1_000);
    stderr.write(`\r${frames[frame % frames.length] ?? ""} ${label} ${elapsedSeconds}s\u001b[K`);
    frame += 1;
  };
  draw();
  const timer = setInterval(draw, progressRedrawIntervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    stderr.write("\r\u001b[K");
  };
}

async function withProgress<Result>(
  output: CommandOutput,
  label: string,
  work: () => Promise<Result>,
): Promise<Result> {
  const stop = startProgress(output.stderr, label);
  try {
    return await work();
  } finally {
    stop();
  }
}

export async function servicesCommand(
  client: ApiClient,
  options: { json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const list = await client.listServices();
  if (options.json === true) {
    printJson(output, list);
    return 0;
  }
  output.stdout.write(
    `${renderServiceTable(list.services, colourOf(output))}\n\n${summariseServices(list.services)}\n`,
  );
  return 0;
}

export async function resolveCommand(
  client: ApiClient,
  name: string,
  options: { json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const route = await client.resolveService(name);
  output.stdout.write(
    options.json === true ? `${JSON.stringify(route)}\n` : `${formatRoute(name, route)}\n`,
  );
  return 0;
}

export async function failoversCommand(
  client: ApiClient,
  options: { service?: string; limit?: number; json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const { failovers } = await client.listFailovers({
    service: options.service,
    limit: options.limit,
  });
  if (options.json === true) {
    printJson(output, failovers);
    return 0;
  }
  if (failovers.length === 0) {
    output.stdout.write(
      `no failovers${options.service === undefined ? "" : ` of ${options.service}`} recorded yet\n`,
    );
    return 0;
  }
  output.stdout.write(`${renderFailoverTable(failovers, colourOf(output))}\n`);
  return 0;
}

/** How `failover --wait` polls; tests pass a fake clock. */
export interface WaitOptions {
  timeoutMs: number;
  pollIntervalMs: number;
  nowMs: () => number;
  sleep: (ms: number) => Promise<unknown>;
}

const realWait: Omit<WaitOptions, "timeoutMs"> = {
  pollIntervalMs: failoverPollIntervalMs,
  nowMs: () => Date.now(),
  sleep: (ms) => sleepMs(ms),
};

/** Polls the failover history until `failoverId` has ended; an error after `timeoutMs`. */
export async function waitForFailoverEnd(
  client: ApiClient,
  service: string,
  failoverId: number,
  wait: WaitOptions,
): Promise<FailoverRecord> {
  const deadlineMs = wait.nowMs() + wait.timeoutMs;
  for (;;) {
    const { failovers } = await client.listFailovers({ service, limit: failoverPollLimit });
    const record = failovers.find((candidate) => candidate.failoverId === failoverId);
    if (record !== undefined && record.status !== "initiated") return record;
    const remainingMs = deadlineMs - wait.nowMs();
    if (remainingMs <= 0) {
      throw new ApiClientError(
        `failover #${failoverId} of ${service} has not ended after ${formatDurationMs(wait.timeoutMs)}; ` +
          `it keeps running on the server: follow it with \`edgeward failovers --service ${service}\` or \`edgeward events --follow\``,
      );
    }
    await wait.sleep(Math.min(wait.pollIntervalMs, remainingMs));
  }
}

export async function failoverCommand(
  client: ApiClient,
  service: string,
  options: { to?: string; wait?: boolean; json?: boolean; timeoutMs?: number },
  output: CommandOutput,
  waitOverrides: Partial<WaitOptions> = {},
): Promise<number> {
  const outcome = await client.triggerFailover(service, options.to);
  const accepted = outcome.kind === "started" || outcome.kind === "queued";
  if (options.wait !== true || !accepted) {
    if (options.json === true) printJson(output, outcome);
    else {
      const next = accepted
        ? `; follow it with \`edgeward failovers --service ${service}\`, or pass --wait next time`
        : "";
      output.stdout.write(`${formatTriggerOutcome(service, outcome, options.to)}${next}\n`);
    }
    return accepted ? 0 : 1;
  }
  if (options.json !== true)
    output.stderr.write(`${formatTriggerOutcome(service, outcome, options.to)}\n`);
  const record = await withProgress(
    output,
    `waiting for failover #${outcome.failoverId} of ${service}`,
    () =>
      waitForFailoverEnd(client, service, outcome.failoverId, {
        ...realWait,
        timeoutMs: options.timeoutMs ?? failoverWaitDefaultMs,
        ...waitOverrides,
      }),
  );
  if (options.json === true) printJson(output, record);
  else output.stdout.write(`${formatFailoverRecord(record)}\n`);
  return record.status === "completed" ? 0 : 1;
}

export async function drillCommand(
  client: ApiClient,
  service: string,
  options: { json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const drill = await withProgress(
    output,
    `drilling ${service}: failing over to its first backup and back`,
    () => client.runDrill(service),
  );
  if (options.json === true) printJson(output, drill);
  else output.stdout.write(`${formatDrillReport(drill, colourOf(output))}\n`);
  return drill.passed ? 0 : 1;
}

export async function drillsCommand(
  client: ApiClient,
  options: { service?: string; json?: boolean },
  output: CommandOutput,
): Promise<number> {
  const { drills } = await client.listDrills({ service: options.service });
  if (options.json === true) {
    printJson(output, drills);
    return 0;
  }
  if (drills.length === 0) {
    output.stdout.write(
      `no drills${options.service === undefined ? "" : ` of ${options.service}`} yet; run one with \`edgeward drill <service>\`\n`,
    );
    return 0;
  }
  output.stdout.write(`${renderDrillTable(drills, colourOf(output))}\n`);
  return 0;
}

function clientFor(selection: ServerSelection): ApiClient {
  return new ApiClient(resolveServerUrl(selection));
}

export function registerServiceCommands(program: Command): void {
  const services = withServerOptions(
    program
      .command("services")
      .summary("show where each service runs and how to reach it")
      .description(
        "Shows every service of the fleet spec: the node serving it, its fencing generation " +
          "(raised by every failover), status (serving, failing-over, unplaced), the endpoint of " +
          "its instance, its stable proxy address (PROXY: host:port of a node's forwarding proxy; " +
          "clients connect there and keep that address across failovers; +N more = proxies on " +
          "other nodes) and the states of the instances agents report (old generations show as " +
          "stopped). With --json, the server's answer (GET /v1/services) as one JSON document.",
      )
      .addHelpText(
        "after",
        "\nExamples:\n" +
          "  edgeward services\n" +
          "  edgeward services --json | jq '.services[] | {name, node, generation}'\n" +
          "  edgeward services resolve production_monitoring\n" +
          serverSelectionHelp,
      ),
  ).option("--json", "print JSON");
  services.action(async (options: ServerSelection & { json?: boolean }) =>
    exitWith(() => servicesCommand(clientFor(options), options, processOutput)),
  );

  withServerOptions(
    services
      .command("resolve")
      .description(
        "Prints where a service is served now: its node, the endpoint of its instance and its " +
          "generation (GET /v1/services/:name/resolve). Fails with HTTP 503 while nothing serves " +
          "it (failing over, or unplaced); retry shortly or look at `edgeward failovers`.",
      )
      .argument("<name>", "service name, as in the fleet spec")
      .addHelpText(
        "after",
        "\nExamples:\n" +
          "  edgeward services resolve production_monitoring\n" +
          "  edgeward services resolve production_monitoring --json\n\n" +
          "A --json line:\n" +
          '  {"nodeId":"factory-1-line-a-edge-1","endpoint":"127.0.0.1:40123","generation":3}',
      ),
  )
    .option("--json", "print JSON")
    .action(async (name: string, _options: unknown, command: Command) => {
      // The parent `services` declares the same options and may have consumed them.
      const options = command.optsWithGlobals<ServerSelection & { json?: boolean }>();
      await exitWith(() => resolveCommand(clientFor(options), name, options, processOutput));
    });

  withServerOptions(
    program
      .command("failovers")
      .summary("show the failover history")
      .description(
        "Shows recorded failovers, oldest first, with running ones (initiated) last: the service, " +
          "status (initiated, completed, failed = every location failed, error = refused), the " +
          "move FROM -> TO, the reason (a plan condition or planned; in brackets how the target " +
          "was chosen: operator, plan or rule), how long it took, the age of the data the new " +
          "instance started with (the RPO achieved; empty = started without data) and each " +
          "step's duration, FAILED where a step failed and the next location was tried. With " +
          "--json, the records as a JSON array.",
      )
      .addHelpText(
        "after",
        "\nExamples:\n" +
          "  edgeward failovers\n" +
          "  edgeward failovers --service production_monitoring --limit 5\n" +
          "  edgeward failovers --json | jq '.[] | select(.status == \"failed\")'\n" +
          serverSelectionHelp,
      ),
  )
    .option("--service <name>", "only this service's failovers")
    .option("--limit <n>", `the newest n failovers (1-${failoverListLimitMax})`, parseListLimit, 50)
    .option("--json", "print the records as a JSON array")
    .action(
      async (options: ServerSelection & { service?: string; limit: number; json?: boolean }) =>
        exitWith(() => failoversCommand(clientFor(options), options, processOutput)),
    );

  withServerOptions(
    program
      .command("failover")
      .summary("move a service to another node now (a planned failover)")
      .description(
        "Starts a planned failover of a service: the running instance is fenced (stopped and " +
          "unrouted), then prepare_target, sync_data (from the current node), start_service, " +
          "update_routing and verify run on the target: --to NODE if given, else the plan's " +
          "locations in order, else the least-loaded node that fits. Without --wait it returns " +
          "once the server accepted the request. With --wait it follows the failover until it " +
          "ends (at most --timeout) and prints its record. Exits 1 when the failover was " +
          "refused, ignored or failed.",
      )
      .argument("<service>", "service name, as in the fleet spec")
      .addHelpText(
        "after",
        "\nExamples:\n" +
          "  edgeward failover production_monitoring --wait\n" +
          "  edgeward failover quality_control --to factory-1-line-b-edge-1\n" +
          "  edgeward failover production_monitoring --wait --json\n" +
          serverSelectionHelp,
      ),
  )
    .option("--to <node>", "the node to move the service to (default: by the plan)")
    .option("--wait", "wait for the failover to end and print its record")
    .addOption(
      new Option(
        "--timeout <duration>",
        "with --wait, give up waiting after this long (the failover goes on)",
      )
        .argParser(parseWaitTimeout)
        .default(failoverWaitDefaultMs, formatDurationMs(failoverWaitDefaultMs)),
    )
    .option("--json", "print the server's answer, or with --wait the record, as JSON")
    .action(
      async (
        service: string,
        options: ServerSelection & { to?: string; wait?: boolean; json?: boolean; timeout: number },
      ) =>
        exitWith(() =>
          failoverCommand(
            clientFor(options),
            service,
            { ...options, timeoutMs: options.timeout },
            processOutput,
          ),
        ),
    );

  withServerOptions(
    program
      .command("drill")
      .summary("test a service's failover plan: fail over and back, measure RTO and RPO")
      .description(
        "Runs a failover drill (SPEC §5): a planned failover to the first backup location of the " +
          "service's plan and back, while the server probes the service through a proxy. For each " +
          "leg it prints the move, its status, the longest time a client saw no answer (the RTO), " +
          "the acknowledged writes lost and the age of the data the new instance started with " +
          "(the RPO), then PASS or FAIL against the plan's objectives. It takes seconds to a few " +
          `minutes (the CLI waits up to ${formatDurationMs(drillRequestTimeoutMs)}). Exits 1 when ` +
          "the drill fails. The plan's testSchedule runs drills by itself; see `edgeward drills`.",
      )
      .argument("<service>", "service name; it needs a failover plan with a backup location")
      .addHelpText(
        "after",
        "\nExamples:\n" +
          "  edgeward drill production_monitoring\n" +
          "  edgeward drill quality_control --json | jq '{passed, rtoMs, rpoWritesLost}'\n" +
          serverSelectionHelp,
      ),
  )
    .option("--json", "print the drill result as JSON")
    .action(async (service: string, options: ServerSelection & { json?: boolean }) =>
      exitWith(() => drillCommand(clientFor(options), service, options, processOutput)),
    );

  withServerOptions(
    program
      .command("drills")
      .summary("show past drills and whether they passed")
      .description(
        "Shows past drills, oldest first, run by an operator (`edgeward drill`) or by a plan's " +
          "testSchedule: when, PASS or FAIL, the RTO measured, the writes lost, the objectives, " +
          "each leg and the problem when one failed. With --json, the results as a JSON array.",
      )
      .addHelpText(
        "after",
        "\nExamples:\n" +
          "  edgeward drills\n" +
          "  edgeward drills --service production_monitoring --json\n" +
          serverSelectionHelp,
      ),
  )
    .option("--service <name>", "only this service's drills")
    .option("--json", "print the results as a JSON array")
    .action(async (options: ServerSelection & { service?: string; json?: boolean }) =>
      exitWith(() => drillsCommand(clientFor(options), options, processOutput)),
    );
}
