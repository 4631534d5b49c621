// Runs the services the server assigns to this agent as real child processes: starts each
// generation on its port, health-checks it, restarts it locally a few times, and stops any
// instance the server has fenced off. The agent's channel turns server commands into calls here
// and reports `onChange` / `onInstanceFailed` back.

import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, statfs } from "node:fs/promises";
import { join } from "node:path";
import {
  instancesPerAgentMax,
  type InstanceState,
  type InstanceStatus,
  type ServiceDefinition,
} from "../../api/service-messages.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import { childClosed, describeExit, type ChildExit } from "./child-exit.ts";
import { resolveProgram } from "./command-path.ts";
import { pickFreePort } from "./free-port.ts";
import {
  generationsEntriesMax,
  readGenerations,
  writeGenerations,
  type Generations,
} from "./generations-file.ts";
import { checkTcp, runHealthCheck, type HealthResult, type HealthTarget } from "./health-check.ts";
import { logRotationDefaults, RotatingLogWriter, type LogRotationOptions } from "./log-rotation.ts";
import { OutputTail } from "./output-tail.ts";
import { runCommand } from "./run-command.ts";
import { commandProblem, definitionProblem } from "./service-definition-check.ts";
import { SupervisorError } from "./supervisor-error.ts";

/** Services listen on loopback only: clients reach them through the agents' proxies. */
export const serviceHost = "127.0.0.1";
/** Longest a hook may be given: a failover waits for it. */
export const hookTimeoutMsMax = 3_600_000;
/** Characters of a failed hook's command quoted in the error. */
const hookCommandCharactersQuotedMax = 200;

export interface SupervisorTunables {
  /** How long a start may take until the port accepts connections; longer hides hung starts. */
  startTimeoutMs: number;
  /** Between connection attempts while starting; shorter notices readiness sooner. */
  startPollIntervalMs: number;
  /** SIGTERM to SIGKILL; longer lets services flush, but delays a failover by as much. */
  stopGraceMs: number;
  /** Pause before a local restart, so a crash loop does not spin a core. */
  restartDelayMs: number;
  /** Instances kept (running or last known state); the server's report limit. */
  instancesMax: number;
  logRotation: LogRotationOptions;
}

export const supervisorDefaults: SupervisorTunables = {
  startTimeoutMs: 15_000,
  startPollIntervalMs: 50,
  stopGraceMs: 5_000,
  restartDelayMs: 200,
  instancesMax: instancesPerAgentMax,
  logRotation: logRotationDefaults,
};

export interface ServiceSupervisorOptions extends Partial<SupervisorTunables> {
  /** The agent's data dir: generations.json, services/<dataDir>, logs/. */
  dataDir: string;
  nodeId: string;
  /** Relative commands resolve here, and services run here. */
  cwd: string;
  /** Where `<service>.log` files go; default `<dataDir>/logs`. */
  logDir?: string;
  /** The environment services inherit; default the agent's own. */
  environment?: NodeJS.ProcessEnv;
}

export interface ServiceSupervisorComponents {
  clock: Clock;
  logger: Logger;
  /** Every state change, with the full list (the agent sends it as `instances`). */
  onChange: (instances: InstanceStatus[]) => void;
  /** Once per instance whose local restarts are used up. */
  onInstanceFailed: (service: string, generation: number, reason: string) => void;
}

/** One spawned process of an instance; an instance has a new one after each local restart. */
interface ServiceProcess {
  readonly child: ChildProcess;
  readonly closed: Promise<ChildExit>;
  readonly tail: OutputTail;
  exit: ChildExit | undefined;
  terminated: Promise<void> | undefined;
}

interface Instance {
  readonly service: string;
  readonly generation: number;
  /** The definition this instance was started with; a later define() applies at next start. */
  readonly definition: ServiceDefinition;
  state: InstanceState;
  port: number | null;
  restarts: number;
  lastError: string | null;
  serviceProcess: ServiceProcess | undefined;
  /** The first start; its endpoint, or the reason it failed. */
  ready: Promise<string>;
  healthFailures: number;
  cancelTimer: CancelTimer;
  /** Set once by stop; every async step checks it before spawning again. */
  stopped: Promise<void> | undefined;
  failureReported: boolean;
}

const aliveStates: ReadonlySet<InstanceState> = new Set([
  "starting",
  "running",
  "unhealthy",
  "restarting",
]);

function isGeneration(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function endpointOf(port: number): string {
  return `${serviceHost}:${port}`;
}

function withOutput(message: string, output: string): string {
  return output === "" ? message : `${message}; last output:\n${output}`;
}

export class ServiceSupervisor {
  readonly #options: ServiceSupervisorOptions & SupervisorTunables;
  readonly #components: ServiceSupervisorComponents;
  readonly #logDir: string;
  readonly #environment: NodeJS.ProcessEnv;
  #definitions = new Map<string, ServiceDefinition>();
  readonly #instances = new Map<string, Instance>();
  readonly #logs = new Map<string, RotatingLogWriter>();
  readonly #newestGenerations: Generations;

  /** Reads generations.json; throws SupervisorError when it is damaged. */
  constructor(options: ServiceSupervisorOptions, components: ServiceSupervisorComponents) {
    this.#options = { ...supervisorDefaults, ...options };
    this.#components = components;
    this.#logDir = options.logDir ?? join(options.dataDir, "logs");
    this.#environment = options.environment ?? process.env;
    this.#newestGenerations = readGenerations(options.dataDir);
  }

  /** Replaces the known definitions; running instances keep theirs until started again. */
  define(definitions: readonly ServiceDefinition[]): void {
    // Every defined service may get a generation remembered, so the file's limit applies.
    if (definitions.length > generationsEntriesMax) {
      throw new SupervisorError(
        "invalid-definition",
        `${definitions.length} service definitions; at most ${generationsEntriesMax}`,
      );
    }
    const known = new Map<string, ServiceDefinition>();
    for (const definition of definitions) {
      const problem = definitionProblem(definition);
      if (problem !== undefined) {
        const name = typeof definition.name === "string" ? definition.name.slice(0, 63) : "?";
        throw new SupervisorError("invalid-definition", `service ${name}: ${problem}`);
      }
      known.set(definition.name, structuredClone(definition));
    }
    this.#definitions = known;
  }

  /**
   * Remembers the newest generations (durably, before anything else) and stops every instance
   * that is not assigned here at exactly its generation. Resolves once they have stopped.
   */
  async fence(
    assignments: Readonly<Record<string, number>>,
    newestGenerations: Readonly<Record<string, number>>,
  ): Promise<void> {
    for (const [service, generation] of Object.entries(newestGenerations)) {
      this.#checkGeneration(service, generation);
    }
    this.#recordGenerations(newestGenerations);
    const stops: Promise<void>[] = [];
    for (const instance of this.#instances.values()) {
      const assigned = Object.hasOwn(assignments, instance.service)
        ? assignments[instance.service]
        : undefined;
      if (aliveStates.has(instance.state) && assigned !== instance.generation) {
        stops.push(this.#stopInstance(instance, "fenced: not assigned here at this generation"));
      }
    }
    await Promise.all(stops);
  }

  /**
   * Checks this node can run the service at `generation`: known, not fenced, data dir creatable
   * and writable, enough free disk, program found. Throws a SupervisorError saying what is not.
   */
  async prepare(service: string, generation: number): Promise<void> {
    const definition = this.#definitionOf(service);
    this.#checkNotFenced(service, generation);
    const dataDir = await this.#createDataDir(definition);
    const { bavail, bsize } = await statfs(dataDir);
    const freeBytes = bavail * bsize;
    if (freeBytes < definition.storageBytes) {
      throw new SupervisorError(
        "not-enough-disk",
        `${service} needs ${definition.storageBytes} bytes of disk; ${dataDir} has ${freeBytes} free`,
      );
    }
    await this.#resolveCommand(definition.command);
  }

  /**
   * Starts `generation` of the service and resolves with its endpoint once it accepts TCP
   * connections. Idempotent; stops an older instance of the service first; refuses a
   * generation older than the newest seen.
   */
  async start(service: string, generation: number): Promise<{ endpoint: string }> {
    const definition = this.#definitionOf(service);
    this.#checkNotFenced(service, generation);
    const previous = this.#instances.get(service);
    if (
      previous !== undefined &&
      previous.generation === generation &&
      aliveStates.has(previous.state)
    ) {
      return { endpoint: await previous.ready };
    }
    if (previous === undefined) this.#makeRoomForInstance();
    this.#recordGenerations({ [service]: generation });
    const instance: Instance = {
      service,
      generation,
      definition,
      state: "starting",
      port: null,
      restarts: 0,
      lastError: null,
      serviceProcess: undefined,
      ready: Promise.resolve(""),
      healthFailures: 0,
      cancelTimer: () => {},
      stopped: undefined,
      failureReported: false,
    };
    // Registered before the first await, so a concurrent start of the same generation joins it.
    this.#instances.set(service, instance);
    instance.ready = this.#launch(instance, previous);
    this.#notify();
    return { endpoint: await instance.ready };
  }

  /** Runs the service's health check once against the running instance of `generation`. */
  async checkHealth(service: string, generation: number): Promise<HealthResult> {
    const instance = this.#instances.get(service);
    if (
      instance === undefined ||
      instance.generation !== generation ||
      !aliveStates.has(instance.state) ||
      instance.port === null
    ) {
      throw new SupervisorError(
        "not-running",
        `${service} generation ${generation} is not running on this node`,
      );
    }
    return await runHealthCheck(
      instance.definition.healthCheck,
      this.#healthTarget(instance, instance.port),
      this.#components.clock,
    );
  }

  /**
   * Stops the instance of the service if its generation is at most `generationAtMost`:
   * SIGTERM, then SIGKILL after stopGraceMs. Resolves once it has exited.
   */
  async stop(service: string, generationAtMost: number): Promise<void> {
    const instance = this.#instances.get(service);
    if (instance === undefined || instance.generation > generationAtMost) return;
    await this.#stopInstance(instance, `stopped at generation ${generationAtMost}`);
  }

  /**
   * Runs a failover hook in the service's environment for `generation`. Throws a
   * SupervisorError with the exit code and the output's tail when it fails or times out.
   */
  async runHook(
    service: string,
    generation: number,
    command: readonly string[],
    timeoutMs: number,
  ): Promise<void> {
    const definition = this.#definitionOf(service);
    this.#checkNotFenced(service, generation);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > hookTimeoutMsMax) {
      throw new SupervisorError(
        "invalid-request",
        `hook timeout must be 1 to ${hookTimeoutMsMax} ms, got ${timeoutMs}`,
      );
    }
    const problem = commandProblem(command);
    if (problem !== undefined) throw new SupervisorError("invalid-request", `hook ${problem}`);
    await this.#createDataDir(definition);
    const instance = this.#instances.get(service);
    const port = instance?.generation === generation ? instance.port : definition.port;
    const outcome = await runCommand(
      {
        command,
        cwd: this.#options.cwd,
        environment: this.#serviceEnvironment(definition, generation, port),
        timeoutMs,
      },
      this.#components.clock,
    );
    if (!outcome.ok) {
      throw new SupervisorError(
        "hook-failed",
        withOutput(
          `hook ${command.join(" ").slice(0, hookCommandCharactersQuotedMax)} ${outcome.reason}`,
          outcome.output,
        ),
      );
    }
  }

  /** Every instance this agent knows, by service name. */
  instances(): InstanceStatus[] {
    return [...this.#instances.values()]
      .sort((left, right) => (left.service < right.service ? -1 : 1))
      .map((instance) => ({
        service: instance.service,
        generation: instance.generation,
        state: instance.state,
        endpoint:
          instance.state === "running" && instance.port !== null ? endpointOf(instance.port) : null,
        pid:
          aliveStates.has(instance.state) && instance.serviceProcess?.exit === undefined
            ? (instance.serviceProcess?.child.pid ?? null)
            : null,
        restarts: instance.restarts,
        lastError: instance.lastError,
      }));
  }

  /** `<dataDir>/services/<definition.dataDir or name>`. */
  dataDirOf(service: string): string {
    return this.#dataDirFor(this.#definitionOf(service));
  }

  /** Agent shutdown: stops every instance and closes the log files. */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.#instances.values()].map((instance) =>
        this.#stopInstance(instance, "the agent is stopping"),
      ),
    );
    const logs = [...this.#logs.values()];
    this.#logs.clear();
    await Promise.all(logs.map((log) => new Promise<void>((resolve) => log.end(() => resolve()))));
  }

  #definitionOf(service: string): ServiceDefinition {
    const definition = this.#definitions.get(service);
    if (definition === undefined) {
      throw new SupervisorError("unknown-service", `no service named ${service} is defined here`);
    }
    return definition;
  }

  #checkGeneration(service: string, generation: unknown): asserts generation is number {
    if (!isGeneration(generation)) {
      throw new SupervisorError(
        "invalid-request",
        `generation of ${service} must be a whole number >= 0, got ${String(generation)}`,
      );
    }
  }

  #checkNotFenced(service: string, generation: number): void {
    this.#checkGeneration(service, generation);
    const newest = this.#newestGenerations.get(service) ?? 0;
    if (generation < newest) {
      throw new SupervisorError(
        "fenced",
        `${service} generation ${generation} is fenced: generation ${newest} exists`,
      );
    }
  }

  /** Raises the remembered generations and writes them durably when any went up. */
  #recordGenerations(generations: Readonly<Record<string, number>>): void {
    let changed = false;
    for (const [service, generation] of Object.entries(generations)) {
      if (generation > (this.#newestGenerations.get(service) ?? -1)) {
        this.#newestGenerations.set(service, generation);
        changed = true;
      }
    }
    if (changed) writeGenerations(this.#options.dataDir, this.#newestGenerations);
  }

  /** Forgets the oldest stopped or failed instance when the list is full. */
  #makeRoomForInstance(): void {
    if (this.#instances.size < this.#options.instancesMax) return;
    for (const [service, instance] of this.#instances) {
      if (!aliveStates.has(instance.state)) {
        this.#instances.delete(service);
        return;
      }
    }
    throw new SupervisorError(
      "too-many-instances",
      `this agent already runs ${this.#instances.size} instances (at most ${this.#options.instancesMax})`,
    );
  }

  /** From the definition an instance runs with, which a later define() may have dropped. */
  #dataDirFor(definition: ServiceDefinition): string {
    return join(this.#options.dataDir, "services", definition.dataDir ?? definition.name);
  }

  async #createDataDir(definition: ServiceDefinition): Promise<string> {
    const dataDir = this.#dataDirFor(definition);
    try {
      await mkdir(dataDir, { recursive: true });
      await access(dataDir, constants.W_OK);
    } catch (error) {
      throw new SupervisorError(
        "data-dir-unavailable",
        `cannot create a writable data dir ${dataDir}: ${(error as Error).message}`,
      );
    }
    return dataDir;
  }

  async #resolveCommand(command: readonly string[]): Promise<string> {
    const program = command[0] ?? "";
    const path = await resolveProgram(program, this.#options.cwd, this.#environment["PATH"]);
    if (path === undefined) {
      throw new SupervisorError(
        "command-not-found",
        `${program} is not an executable file (relative to ${this.#options.cwd} or on PATH)`,
      );
    }
    return path;
  }

  #serviceEnvironment(
    definition: ServiceDefinition,
    generation: number,
    port: number | null,
  ): NodeJS.ProcessEnv {
    return {
      ...this.#environment,
      ...definition.env,
      HOST: serviceHost,
      ...(port === null ? {} : { PORT: String(port) }),
      EDGEWARD_DATA_DIR: this.#dataDirFor(definition),
      EDGEWARD_GENERATION: String(generation),
      EDGEWARD_SERVICE: definition.name,
      EDGEWARD_NODE_ID: this.#options.nodeId,
    };
  }

  #healthTarget(instance: Instance, port: number): HealthTarget {
    return {
      host: serviceHost,
      port,
      cwd: this.#options.cwd,
      environment: this.#serviceEnvironment(instance.definition, instance.generation, port),
    };
  }

  /** The first start of an instance: stop its predecessor, pick the port, spawn, wait. */
  async #launch(instance: Instance, previous: Instance | undefined): Promise<string> {
    try {
      if (previous !== undefined) {
        await this.#stopInstance(previous, `replaced by generation ${instance.generation}`);
      }
      this.#throwIfStopped(instance);
      await this.#createDataDir(instance.definition);
      this.#throwIfStopped(instance);
      instance.port = instance.definition.port ?? (await pickFreePort(serviceHost));
      await this.#spawnUntilListening(instance, instance.port);
    } catch (error) {
      if (instance.stopped === undefined) {
        instance.state = "failed";
        instance.lastError = (error as Error).message;
        this.#notify();
      }
      throw error;
    }
    this.#becomeRunning(instance);
    return endpointOf(instance.port);
  }

  #throwIfStopped(instance: Instance): void {
    if (instance.stopped !== undefined) {
      throw new SupervisorError(
        "stopped",
        `${instance.service} generation ${instance.generation} was stopped while starting`,
      );
    }
  }

  /** Spawns a process for the instance and resolves once its port accepts connections. */
  async #spawnUntilListening(instance: Instance, port: number): Promise<void> {
    const { definition } = instance;
    const program = await this.#resolveCommand(definition.command);
    this.#throwIfStopped(instance);
    const child = spawn(program, definition.command.slice(1), {
      cwd: this.#options.cwd,
      env: this.#serviceEnvironment(definition, instance.generation, port),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const serviceProcess: ServiceProcess = {
      child,
      closed: childClosed(child, this.#components.clock),
      tail: new OutputTail(),
      exit: undefined,
      terminated: undefined,
    };
    instance.serviceProcess = serviceProcess;
    const log = this.#logOf(instance.service);
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk: Buffer) => serviceProcess.tail.append(chunk));
      stream.pipe(log, { end: false });
    }
    void serviceProcess.closed.then((exit) => {
      serviceProcess.exit = exit;
      this.#onExit(instance, serviceProcess, exit);
    });
    this.#components.logger.info(
      { service: instance.service, generation: instance.generation, pid: child.pid, port },
      "service process started",
    );
    await this.#waitUntilListening(instance, serviceProcess, port);
  }

  async #waitUntilListening(
    instance: Instance,
    serviceProcess: ServiceProcess,
    port: number,
  ): Promise<void> {
    const { clock } = this.#components;
    const { startTimeoutMs, startPollIntervalMs } = this.#options;
    const deadlineMs = clock.nowMs() + startTimeoutMs;
    for (;;) {
      this.#throwIfStopped(instance);
      if (serviceProcess.exit !== undefined) {
        throw new SupervisorError(
          "start-failed",
          withOutput(
            `${instance.service} ${describeExit(serviceProcess.exit)} before accepting connections on port ${port}`,
            serviceProcess.tail.text(),
          ),
        );
      }
      const remainingMs = deadlineMs - clock.nowMs();
      if (remainingMs <= 0) {
        await this.#terminate(serviceProcess);
        throw new SupervisorError(
          "start-timeout",
          withOutput(
            `${instance.service} did not accept connections on port ${port} within ${startTimeoutMs} ms`,
            serviceProcess.tail.text(),
          ),
        );
      }
      const answer = await checkTcp(serviceHost, port, remainingMs, clock);
      if (answer.healthy && serviceProcess.exit === undefined) {
        // A stop during the last connect wins: the caller must not mark the instance running.
        this.#throwIfStopped(instance);
        return;
      }
      await Promise.race([
        serviceProcess.closed,
        new Promise<void>((resolve) => clock.schedule(startPollIntervalMs, resolve)),
      ]);
    }
  }

  #becomeRunning(instance: Instance): void {
    instance.state = "running";
    instance.healthFailures = 0;
    this.#notify();
    this.#scheduleHealthCheck(instance);
  }

  #scheduleHealthCheck(instance: Instance): void {
    const check = instance.definition.healthCheck;
    const serviceProcess = instance.serviceProcess;
    if (check === null || serviceProcess === undefined) return;
    instance.cancelTimer = this.#components.clock.schedule(check.intervalMs, () => {
      void this.#healthTick(instance, serviceProcess, check.threshold);
    });
  }

  async #healthTick(
    instance: Instance,
    serviceProcess: ServiceProcess,
    threshold: number,
  ): Promise<void> {
    if (instance.port === null) return;
    const result = await runHealthCheck(
      instance.definition.healthCheck,
      this.#healthTarget(instance, instance.port),
      this.#components.clock,
    );
    // The answer is stale when the process was replaced or stopped meanwhile.
    if (instance.serviceProcess !== serviceProcess || instance.state !== "running") return;
    if (result.healthy) {
      instance.healthFailures = 0;
      this.#scheduleHealthCheck(instance);
      return;
    }
    instance.healthFailures += 1;
    instance.lastError = `health check failed: ${result.reason}`;
    if (instance.healthFailures < threshold) {
      this.#scheduleHealthCheck(instance);
      return;
    }
    instance.state = "unhealthy";
    this.#notify();
    await this.#recover(instance, `unhealthy after ${threshold} failed checks: ${result.reason}`);
  }

  #onExit(instance: Instance, serviceProcess: ServiceProcess, exit: ChildExit): void {
    this.#components.logger.info(
      { service: instance.service, generation: instance.generation, exit: describeExit(exit) },
      "service process ended",
    );
    // Exits while starting are the start's to report; exits once a stop began are expected.
    if (
      instance.serviceProcess !== serviceProcess ||
      instance.state !== "running" ||
      instance.stopped !== undefined
    ) {
      return;
    }
    void this.#recover(
      instance,
      withOutput(`exited unexpectedly: ${describeExit(exit)}`, serviceProcess.tail.text()),
    );
  }

  /** Restarts the instance locally while attempts remain, else marks it failed. */
  async #recover(instance: Instance, reason: string): Promise<void> {
    instance.cancelTimer();
    instance.lastError = reason;
    if (instance.restarts >= instance.definition.restartAttempts) {
      await this.#fail(instance, reason);
      return;
    }
    instance.restarts += 1;
    instance.state = "restarting";
    this.#notify();
    this.#components.logger.warn(
      {
        service: instance.service,
        generation: instance.generation,
        restarts: instance.restarts,
        reason,
      },
      "restarting service locally",
    );
    if (instance.serviceProcess !== undefined) await this.#terminate(instance.serviceProcess);
    await new Promise<void>((resolve) =>
      this.#components.clock.schedule(this.#options.restartDelayMs, resolve),
    );
    if (instance.stopped !== undefined || instance.port === null) return;
    try {
      await this.#spawnUntilListening(instance, instance.port);
    } catch (error) {
      if (instance.stopped !== undefined) return;
      await this.#recover(instance, (error as Error).message);
      return;
    }
    this.#becomeRunning(instance);
  }

  async #fail(instance: Instance, reason: string): Promise<void> {
    // Dead before reported: the server fails over on the report, and two live copies of a
    // stateful service must not overlap.
    if (instance.serviceProcess !== undefined) await this.#terminate(instance.serviceProcess);
    if (instance.stopped !== undefined) return;
    instance.state = "failed";
    this.#notify();
    if (instance.failureReported) return;
    instance.failureReported = true;
    this.#components.logger.error(
      { service: instance.service, generation: instance.generation, reason },
      "service failed; local restarts used up",
    );
    try {
      this.#components.onInstanceFailed(instance.service, instance.generation, reason);
    } catch (error) {
      this.#components.logger.error({ err: (error as Error).message }, "onInstanceFailed threw");
    }
  }

  #stopInstance(instance: Instance, reason: string): Promise<void> {
    if (instance.stopped !== undefined) return instance.stopped;
    instance.cancelTimer();
    const wasAlive = aliveStates.has(instance.state);
    instance.stopped = (async () => {
      if (instance.serviceProcess !== undefined) await this.#terminate(instance.serviceProcess);
      if (!wasAlive) return;
      this.#components.logger.info(
        { service: instance.service, generation: instance.generation, reason },
        "service stopped",
      );
      instance.state = "stopped";
      this.#notify();
    })();
    return instance.stopped;
  }

  /** SIGTERM, SIGKILL after the grace period; resolves once the process has exited. */
  #terminate(serviceProcess: ServiceProcess): Promise<void> {
    serviceProcess.terminated ??= (async () => {
      if (serviceProcess.exit !== undefined) return;
      const { child } = serviceProcess;
      child.kill("SIGTERM");
      const cancelKill = this.#components.clock.schedule(this.#options.stopGraceMs, () => {
        this.#components.logger.warn(
          { pid: child.pid, stopGraceMs: this.#options.stopGraceMs },
          "service ignored SIGTERM; killing it",
        );
        child.kill("SIGKILL");
      });
      await serviceProcess.closed;
      cancelKill();
    })();
    return serviceProcess.terminated;
  }

  #logOf(service: string): RotatingLogWriter {
    let log = this.#logs.get(service);
    if (log === undefined) {
      log = new RotatingLogWriter(
        join(this.#logDir, `${service}.log`),
        this.#options.logRotation,
        (error) =>
          this.#components.logger.warn(
            { service, err: error.message },
            "cannot write the service's log; output dropped",
          ),
      );
      log.on("error", (error: Error) =>
        this.#components.logger.warn({ service, err: error.message }, "service log failed"),
      );
      this.#logs.set(service, log);
    }
    return log;
  }

  #notify(): void {
    try {
      this.#components.onChange(this.instances());
    } catch (error) {
      this.#components.logger.error({ err: (error as Error).message }, "onChange threw");
    }
  }
}
