import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type {
  HealthCheckDefinition,
  InstanceState,
  InstanceStatus,
  ServiceDefinition,
} from "../../api/service-messages.ts";
import { silentLogger } from "../../ports/logger.ts";
import { systemClock } from "../../runtime/system-clock.ts";
import { ServiceSupervisor, type SupervisorTunables } from "./service-supervisor.ts";
import { SupervisorError } from "./supervisor-error.ts";
import { processExists, TemporaryDirectories, waitFor } from "./supervisor-test-support.ts";

const repositoryRoot = join(import.meta.dirname, "..", "..", "..");
const node = process.execPath;
/** Bound on any one wait in these tests; real waits take well under a second. */
const waitMs = 10_000;

/** A node script (CommonJS, as `node -e` runs it) that listens on PORT at HOST, then does `then`. */
function listening(then: string, handler = ""): string[] {
  const server =
    handler === "" ? `require("net").createServer()` : `require("http").createServer(${handler})`;
  return [
    node,
    "-e",
    `${server}.listen(Number(process.env.PORT), process.env.HOST, () => { ${then} });`,
  ];
}

function definition(
  name: string,
  command: string[],
  overrides: Partial<ServiceDefinition> = {},
): ServiceDefinition {
  return {
    name,
    command,
    env: {},
    port: null,
    healthCheck: null,
    dataDir: null,
    restartAttempts: 0,
    storageBytes: 0,
    ...overrides,
  };
}

const httpCheck: HealthCheckDefinition = {
  type: "http",
  path: "/health",
  intervalMs: 50,
  timeoutMs: 1_000,
  threshold: 2,
};

const monitoring = definition(
  "production_monitoring",
  [node, "examples/services/production_monitoring.mjs"],
  { healthCheck: httpCheck, dataDir: "monitoring", env: { EXTRA_SETTING: "kept" } },
);
const plainTcp = definition("plain_tcp", listening(""));

const directories = new TemporaryDirectories();
const supervisors: ServiceSupervisor[] = [];
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((supervisor) => supervisor.stopAll()));
  directories.removeAll();
});

interface Harness {
  supervisor: ServiceSupervisor;
  dataDir: string;
  changes: InstanceStatus[][];
  failures: { service: string; generation: number; reason: string }[];
  stateOf: (service: string) => InstanceState | undefined;
  statesSeen: (service: string) => InstanceState[];
}

function harness(
  definitions: ServiceDefinition[],
  dataDir = directories.create("supervisor"),
  tunables: Partial<SupervisorTunables> = {},
): Harness {
  const changes: InstanceStatus[][] = [];
  const failures: Harness["failures"] = [];
  const supervisor = new ServiceSupervisor(
    {
      dataDir,
      nodeId: "edge-1",
      cwd: repositoryRoot,
      startTimeoutMs: 5_000,
      stopGraceMs: 300,
      restartDelayMs: 10,
      ...tunables,
    },
    {
      clock: systemClock,
      logger: silentLogger,
      onChange: (instances) => changes.push(instances),
      onInstanceFailed: (service, generation, reason) =>
        failures.push({ service, generation, reason }),
    },
  );
  supervisors.push(supervisor);
  supervisor.define(definitions);
  const stateOf = (service: string) =>
    supervisor.instances().find((instance) => instance.service === service)?.state;
  const statesSeen = (service: string) => {
    const states: InstanceState[] = [];
    for (const list of changes) {
      const state = list.find((instance) => instance.service === service)?.state;
      if (state !== undefined && states.at(-1) !== state) states.push(state);
    }
    return states;
  };
  return { supervisor, dataDir, changes, failures, stateOf, statesSeen };
}

async function rejection(promise: Promise<unknown>): Promise<SupervisorError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SupervisorError) return error;
    throw error;
  }
  throw new Error("expected a SupervisorError, but it resolved");
}

describe("ServiceSupervisor", () => {
  it("starts an example service with its environment, serves on the endpoint, logs its output", async () => {
    const { supervisor, dataDir } = harness([monitoring]);
    const { endpoint } = await supervisor.start("production_monitoring", 3);
    expect(endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    const health = await fetch(`http://${endpoint}/health`);
    expect(await health.json()).toEqual({
      status: "ok",
      service: "production_monitoring",
      generation: 3,
    });
    const stats = (await (await fetch(`http://${endpoint}/stats`)).json()) as { dataDir: string };
    expect(stats.dataDir).toBe(join(dataDir, "services", "monitoring"));
    expect(supervisor.dataDirOf("production_monitoring")).toBe(stats.dataDir);
    expect(await supervisor.checkHealth("production_monitoring", 3)).toEqual({ healthy: true });

    const [status] = supervisor.instances();
    expect(status).toMatchObject({
      service: "production_monitoring",
      generation: 3,
      state: "running",
      endpoint,
      restarts: 0,
      lastError: null,
    });

    const logPath = join(dataDir, "logs", "production_monitoring.log");
    await waitFor(
      () => {
        try {
          return readFileSync(logPath, "utf8").includes('"event":"listening"');
        } catch {
          return false;
        }
      },
      waitMs,
      "the listening line in the service's log",
    );
  });

  it("start is idempotent, and a newer generation replaces the older instance", async () => {
    const { supervisor, stateOf } = harness([plainTcp]);
    const [first, again] = await Promise.all([
      supervisor.start("plain_tcp", 1),
      supervisor.start("plain_tcp", 1),
    ]);
    expect(again).toEqual(first);
    const firstPid = supervisor.instances()[0]?.pid ?? 0;
    expect(await supervisor.start("plain_tcp", 1)).toEqual(first);
    expect(supervisor.instances()[0]?.pid).toBe(firstPid);

    await supervisor.start("plain_tcp", 2);
    expect(processExists(firstPid)).toBe(false);
    expect(supervisor.instances()).toMatchObject([{ generation: 2, state: "running" }]);
    expect(stateOf("plain_tcp")).toBe("running");
  });

  it("refuses an older generation, and still does after a restart on the same data dir", async () => {
    const { supervisor, dataDir } = harness([plainTcp]);
    await supervisor.start("plain_tcp", 5);
    expect((await rejection(supervisor.start("plain_tcp", 4))).code).toBe("fenced");
    await supervisor.stopAll();

    const restarted = harness([plainTcp], dataDir).supervisor;
    expect((await rejection(restarted.start("plain_tcp", 4))).message).toMatch(
      /plain_tcp generation 4 is fenced: generation 5 exists/,
    );
    await restarted.fence({}, { plain_tcp: 7 });
    expect((await rejection(restarted.prepare("plain_tcp", 6))).code).toBe("fenced");
    expect((await rejection(restarted.runHook("plain_tcp", 6, [node], 1_000))).code).toBe("fenced");
    expect(harness([plainTcp], dataDir).supervisor.instances()).toEqual([]);
    await expect(
      harness([plainTcp], dataDir).supervisor.start("plain_tcp", 7),
    ).resolves.toMatchObject({ endpoint: expect.any(String) as string });
  });

  it("fence stops every instance not assigned here at exactly its generation", async () => {
    const other = definition("other_tcp", listening(""));
    const third = definition("third_tcp", listening(""));
    const { supervisor, stateOf } = harness([plainTcp, other, third]);
    await Promise.all([
      supervisor.start("plain_tcp", 1),
      supervisor.start("other_tcp", 1),
      supervisor.start("third_tcp", 1),
    ]);
    const pids = new Map(
      supervisor.instances().map((instance) => [instance.service, instance.pid]),
    );
    await supervisor.fence({ plain_tcp: 1, third_tcp: 2 }, { plain_tcp: 1, third_tcp: 2 });
    expect(stateOf("plain_tcp")).toBe("running");
    expect(stateOf("other_tcp")).toBe("stopped");
    expect(stateOf("third_tcp")).toBe("stopped");
    expect(processExists(pids.get("plain_tcp") ?? 0)).toBe(true);
    expect(processExists(pids.get("other_tcp") ?? 0)).toBe(false);
    expect(processExists(pids.get("third_tcp") ?? 0)).toBe(false);
  });

  it("restarts a crashing instance locally, then reports it failed once", async () => {
    const crashing = definition(
      "crashing",
      // Long enough after listening that the supervisor sees it running, even on a loaded machine.
      listening(`setTimeout(() => { console.error("out of memory"); process.exit(3); }, 400);`),
      { restartAttempts: 2 },
    );
    const { supervisor, failures, stateOf, statesSeen } = harness([crashing]);
    await supervisor.start("crashing", 1);
    // Restarts use the definition the instance started with, even once the server drops it.
    supervisor.define([]);
    await waitFor(() => stateOf("crashing") === "failed", waitMs, "the instance to fail");
    expect(statesSeen("crashing")).toEqual([
      "starting",
      "running",
      "restarting",
      "running",
      "restarting",
      "running",
      "failed",
    ]);
    expect(supervisor.instances()[0]).toMatchObject({ restarts: 2, pid: null, endpoint: null });
    expect(failures).toEqual([
      {
        service: "crashing",
        generation: 1,
        reason: expect.stringMatching(
          /exited unexpectedly: exited with code 3[^]*out of memory/,
        ) as string,
      },
    ]);
  });

  it("marks an instance unhealthy after threshold failed checks", async () => {
    const failingHealth = definition(
      "failing_health",
      listening("", "(request, response) => { response.statusCode = 503; response.end(); }"),
      { healthCheck: httpCheck },
    );
    const { supervisor, failures, stateOf, statesSeen } = harness([failingHealth]);
    await supervisor.start("failing_health", 1);
    const pid = supervisor.instances()[0]?.pid ?? 0;
    await waitFor(() => stateOf("failing_health") === "failed", waitMs, "the instance to fail");
    expect(statesSeen("failing_health")).toEqual(["starting", "running", "unhealthy", "failed"]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.reason).toBe(
      "unhealthy after 2 failed checks: GET /health answered HTTP 503",
    );
    expect(processExists(pid)).toBe(false);
  });

  it("fails a start early with the exit code and the last output", async () => {
    const broken = definition("broken", [
      node,
      "-e",
      `console.error("missing setting FOO"); process.exit(4);`,
    ]);
    const { supervisor, stateOf } = harness([broken]);
    const error = await rejection(supervisor.start("broken", 1));
    expect(error.code).toBe("start-failed");
    expect(error.message).toMatch(/exited with code 4[^]*missing setting FOO/);
    expect(stateOf("broken")).toBe("failed");
  });

  it("gives up a start that does not listen in time, and kills the process", async () => {
    const silent = definition("silent", [
      node,
      "-e",
      `require("fs").writeFileSync(process.env.EDGEWARD_DATA_DIR + "/pid", String(process.pid));
       console.log("loading");
       setInterval(() => {}, 1000);`,
    ]);
    // Long enough for node to start and print even on a loaded machine.
    const { supervisor } = harness([silent], undefined, { startTimeoutMs: 1_500 });
    const error = await rejection(supervisor.start("silent", 1));
    expect(error.code).toBe("start-timeout");
    expect(error.message).toMatch(
      /did not accept connections on port \d+ within 1500 ms[^]*loading/,
    );
    expect(supervisor.instances()).toMatchObject([{ state: "failed", pid: null }]);
    const pid = Number(readFileSync(join(supervisor.dataDirOf("silent"), "pid"), "utf8"));
    expect(processExists(pid)).toBe(false);
  });

  it("fences a service whose name is also an Object key", async () => {
    const { supervisor } = harness([definition("constructor", listening(""))]);
    await supervisor.fence({}, { constructor: 2 });
    expect((await rejection(supervisor.start("constructor", 1))).code).toBe("fenced");
    await supervisor.start("constructor", 2);
    await supervisor.fence({}, { constructor: 2 });
    expect(supervisor.instances()).toMatchObject([{ service: "constructor", state: "stopped" }]);
  });

  it("stop escalates to SIGKILL for a process that ignores SIGTERM", async () => {
    const stubborn = definition("stubborn", [
      node,
      "-e",
      // The handler is in place before the port opens, so the start cannot race it.
      `process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
         require("net").createServer().listen(Number(process.env.PORT), process.env.HOST);`,
    ]);
    const { supervisor, stateOf } = harness([stubborn]);
    await supervisor.start("stubborn", 1);
    const pid = supervisor.instances()[0]?.pid ?? 0;
    await supervisor.stop("stubborn", 0);
    expect(stateOf("stubborn")).toBe("running");
    const startedMs = Date.now();
    await supervisor.stop("stubborn", 1);
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(290);
    expect(processExists(pid)).toBe(false);
    expect(stateOf("stubborn")).toBe("stopped");
  });

  it("runs hooks in the service's environment and reports failures and timeouts", async () => {
    const { supervisor, dataDir } = harness([monitoring]);
    const write = `require("fs").writeFileSync(require("path").join(process.env.EDGEWARD_DATA_DIR, "hook.txt"), [process.env.EDGEWARD_SERVICE, process.env.EDGEWARD_GENERATION, process.env.EDGEWARD_NODE_ID, process.env.EXTRA_SETTING].join(" "))`;
    await supervisor.runHook("production_monitoring", 2, [node, "-e", write], 5_000);
    expect(readFileSync(join(dataDir, "services", "monitoring", "hook.txt"), "utf8")).toBe(
      "production_monitoring 2 edge-1 kept",
    );

    const failed = await rejection(
      supervisor.runHook(
        "production_monitoring",
        2,
        [node, "-e", `console.log("schema mismatch"); process.exit(7)`],
        5_000,
      ),
    );
    expect(failed.code).toBe("hook-failed");
    expect(failed.message).toMatch(/exited with code 7[^]*schema mismatch/);

    const slow = await rejection(
      supervisor.runHook(
        "production_monitoring",
        2,
        [node, "-e", "setInterval(() => {}, 1000)"],
        200,
      ),
    );
    expect(slow.message).toMatch(/timed out after 200 ms/);
  });

  it("prepare says what stops this node from running the service", async () => {
    const { supervisor, dataDir } = harness([
      plainTcp,
      definition("huge", listening(""), { storageBytes: Number.MAX_SAFE_INTEGER }),
      definition("missing_program", ["./no-such-program"]),
      definition("blocked", listening(""), { dataDir: "blocked/inner" }),
    ]);
    await supervisor.prepare("plain_tcp", 1);
    expect((await rejection(supervisor.prepare("nothing", 1))).code).toBe("unknown-service");
    expect((await rejection(supervisor.prepare("huge", 1))).code).toBe("not-enough-disk");
    const missing = await rejection(supervisor.prepare("missing_program", 1));
    expect(missing.code).toBe("command-not-found");
    expect(missing.message).toMatch(/no-such-program/);
    mkdirSync(join(dataDir, "services"), { recursive: true });
    writeFileSync(join(dataDir, "services", "blocked"), "a file where a directory should be");
    expect((await rejection(supervisor.prepare("blocked", 1))).code).toBe("data-dir-unavailable");
  });

  it("refuses definitions that could escape the data dir or cannot run", () => {
    const { supervisor } = harness([]);
    expect(() =>
      supervisor.define([definition("escape", [node], { dataDir: "../other" })]),
    ).toThrow(/dataDir must stay inside/);
    expect(() => supervisor.define([definition("Bad Name", [node])])).toThrow(/name must be/);
    expect(() => supervisor.define([definition("empty", [])])).toThrow(/command must be/);
    expect(() =>
      supervisor.define([definition("bad_env", [node], { env: { "A=B": "1" } })]),
    ).toThrow(/env name A=B is not valid/);
  });
});
