// The agent's side of failover: carries out the server's step commands with the supervisor,
// copies data from the old primary's agent, keeps the forwarding proxies on the routing table,
// and reports instances. A `services` message fences first: instances not assigned here stop
// before the channel starts heartbeating (see heartbeat-channel.ts).

import type {
  AgentCommand,
  AgentServiceMessage,
  CommandResult,
  InstanceStatus,
  ServerServiceMessage,
  ServiceDefinition,
} from "../api/service-messages.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { ServiceProxies } from "../runtime/proxy/service-proxies.ts";
import { pullServiceData } from "./data-transfer/data-transfer-http.ts";
import type { ServiceSupervisor } from "./supervisor/service-supervisor.ts";

/** A copy from the old primary gives up when its agent sends nothing for this long. */
export const dataPullIdleTimeoutMs = 30_000;
/** Instance reports are coalesced: at most one message per this interval. */
export const instanceReportIntervalMs = 100;
/** Characters of an error message sent to the server. */
const resultMessageCharactersMax = 2_000;

export interface ServiceAgentComponents {
  supervisor: ServiceSupervisor;
  proxies: ServiceProxies;
  clock: Clock;
  logger: Logger;
  /** Sends on the channel; false when it is not open (the server re-sends state on reconnect). */
  send: (message: AgentServiceMessage) => boolean;
  /** Restores the service's newest fleet backup into its data dir (sync-data source "backup"). */
  restoreFromBackup?: (
    service: string,
  ) => Promise<{ ok: true; dataAgeMs: number; from: string } | { ok: false; problem: string }>;
  /** Signature headers for data copies from peers (ADR 0006, "Peer requests"). */
  signPeerRequest?: (request: {
    receiver: string;
    method: string;
    pathAndQuery: string;
  }) => Record<string, string>;
}

export class ServiceAgent {
  readonly #components: ServiceAgentComponents;
  readonly #definitions = new Map<string, ServiceDefinition>();
  #reportTimer: CancelTimer | undefined;
  #latestInstances: InstanceStatus[] = [];

  constructor(components: ServiceAgentComponents) {
    this.#components = components;
  }

  /** The supervisor's change callback: reports the newest list, coalesced. */
  instancesChanged(instances: InstanceStatus[]): void {
    this.#latestInstances = instances;
    if (this.#reportTimer !== undefined) return;
    this.#reportTimer = this.#components.clock.schedule(instanceReportIntervalMs, () => {
      this.#reportTimer = undefined;
      this.#components.send({ type: "instances", instances: this.#latestInstances });
    });
  }

  /** The supervisor's failure callback: local restarts are used up. */
  instanceFailed(service: string, generation: number, reason: string): void {
    this.#components.send({
      type: "instance-failed",
      service,
      generation,
      reason: reason.slice(0, resultMessageCharactersMax),
    });
  }

  /** Handles one message; `services` resolves once stale instances have stopped. */
  async handle(message: ServerServiceMessage): Promise<void> {
    const { supervisor, proxies, send } = this.#components;
    switch (message.type) {
      case "services": {
        for (const definition of message.definitions)
          this.#definitions.set(definition.name, definition);
        supervisor.define(message.definitions);
        await supervisor.fence(message.assignments, message.newestGenerations);
        send({ type: "instances", instances: supervisor.instances() });
        return;
      }
      case "routes": {
        const routes: Record<string, { endpoint: string; generation: number } | null> = {};
        for (const [service, route] of Object.entries(message.routes)) {
          routes[service] =
            route === null ? null : { endpoint: route.endpoint, generation: route.generation };
        }
        const ports = await proxies.applyRoutes(routes);
        send({ type: "proxies", ports });
        return;
      }
      case "command": {
        const result = await this.#run(message.id, message.command);
        send({ type: "command-result", ...result });
        return;
      }
      case "backup-policies":
      case "backup-command":
        // Fleet backups handle these (agent/main.ts routes them to FleetBackups).
        return;
      case "peer-identities":
      case "firewall-rules":
        // Peer request security and the firewall handle these (agent/main.ts routes them).
        return;
    }
  }

  /** Stops every instance (agent shutdown) and the proxies. */
  async close(): Promise<void> {
    this.#reportTimer?.();
    await this.#components.supervisor.stopAll();
    await this.#components.proxies.close();
  }

  async #run(id: number, command: AgentCommand): Promise<CommandResult> {
    const { supervisor, logger } = this.#components;
    try {
      switch (command.type) {
        case "prepare":
          await supervisor.prepare(command.service, command.generation);
          return { id, ok: true };
        case "sync-data":
          return { id, ...(await this.#syncData(command)) };
        case "run-hook":
          await supervisor.runHook(
            command.service,
            command.generation,
            command.command,
            command.timeoutMs,
          );
          return { id, ok: true };
        case "start":
          return {
            id,
            ok: true,
            endpoint: (await supervisor.start(command.service, command.generation)).endpoint,
          };
        case "check-health": {
          const health = await supervisor.checkHealth(command.service, command.generation);
          return health.healthy ? { id, ok: true } : { id, ok: false, message: health.reason };
        }
        case "stop":
          await supervisor.stop(command.service, command.generation);
          return { id, ok: true };
      }
    } catch (error) {
      const message = (error as Error).message.slice(0, resultMessageCharactersMax);
      if (command.type !== "check-health") {
        logger.warn(
          { command: command.type, service: command.service, err: message },
          "command failed",
        );
      }
      return { id, ok: false, message };
    }
  }

  /**
   * Brings the service's data here from the first source that works: the old primary's agent
   * (which stops its instance first, so the copy is exact), then a backup. With neither, the
   * service starts on what its data dir holds (empty on a fresh node) and the server is warned.
   */
  async #syncData(
    command: Extract<AgentCommand, { type: "sync-data" }>,
  ): Promise<Omit<CommandResult, "id">> {
    const { supervisor, logger } = this.#components;
    const definition = this.#definitions.get(command.service);
    if (definition === undefined)
      return { ok: false, message: `unknown service ${command.service}` };
    if (definition.dataDir === null) return { ok: true, dataAgeMs: 0 };
    const problems: string[] = [];
    for (const source of command.sources) {
      if (source === "primary") {
        if (command.fromUrl === null || command.fromNode === null) {
          problems.push("the old primary is unreachable");
          continue;
        }
        try {
          const summary = await pullServiceData({
            fromUrl: command.fromUrl,
            fromNode: command.fromNode,
            service: command.service,
            quiesce: command.quiesce,
            targetDir: supervisor.dataDirOf(command.service),
            timeoutMs: dataPullIdleTimeoutMs,
            ...(this.#components.signPeerRequest === undefined
              ? {}
              : { sign: this.#components.signPeerRequest }),
          });
          logger.info(
            { service: command.service, from: command.fromUrl, ...summary },
            "data copied from the old primary",
          );
          return { ok: true, dataAgeMs: 0 };
        } catch (error) {
          problems.push(`copy from the old primary failed: ${(error as Error).message}`);
        }
      } else {
        const restoreFromBackup = this.#components.restoreFromBackup;
        if (restoreFromBackup === undefined) {
          problems.push("this agent has no fleet backups");
          continue;
        }
        const restored = await restoreFromBackup(command.service);
        if (restored.ok) {
          logger.info(
            { service: command.service, from: restored.from, dataAgeMs: restored.dataAgeMs },
            "data restored from the newest fleet backup",
          );
          return { ok: true, dataAgeMs: restored.dataAgeMs };
        }
        problems.push(restored.problem);
      }
    }
    return {
      ok: true,
      message: `${command.service} starts without fresh data (${problems.join("; ")}); it keeps what ${supervisor.dataDirOf(command.service)} holds`,
    };
  }
}
