// The agent's set of forwarding proxies, one per service: each listens on the port saved in
// proxies.json (a new one, with a warning, if that is taken) and follows the routing table.

import type { Socket } from "node:net";
import type { Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import {
  isServiceName,
  proxyPortsServicesMax,
  readProxyPortsFile,
  writeProxyPortsFile,
  type ProxyPorts,
} from "./proxy-ports-file.ts";
import { ServiceProxy, ServiceProxyError, type ServiceProxyStats } from "./service-proxy.ts";

export interface ServiceProxiesOptions {
  /** The agent's data dir, where proxies.json lives. */
  dataDir: string;
  listenHost: string;
  logger: Logger;
  clock: Clock;
  /** Per-proxy settings; serviceProxyDefaults where absent. */
  holdMs?: number;
  connectionsMax?: number;
  connectTimeoutMs?: number;
  retryIntervalMs?: number;
  /** Decides each client of every proxy as it is accepted (the agent's firewall). */
  admit?: (socket: Socket, service: string) => boolean;
}

/** A route as the server's routing table gives it (RouteEntry), or null: nothing serves it. */
export type ProxyRoute = { endpoint: string; generation: number } | null;

export class ServiceProxies {
  readonly #options: ServiceProxiesOptions;
  readonly #savedPorts: ProxyPorts;
  readonly #proxies = new Map<string, Promise<ServiceProxy>>();

  /** Reads proxies.json; throws ProxyPortsFileError if it is damaged. */
  constructor(options: ServiceProxiesOptions) {
    this.#options = options;
    this.#savedPorts = readProxyPortsFile(options.dataDir);
  }

  /** The proxy of `service`, started on its saved port if it is not running yet. */
  ensure(service: string): Promise<ServiceProxy> {
    const running = this.#proxies.get(service);
    if (running !== undefined) return running;
    if (!isServiceName(service)) {
      return Promise.reject(
        new ServiceProxyError(`${JSON.stringify(service)} is not a service name`),
      );
    }
    if (this.#proxies.size >= proxyPortsServicesMax) {
      return Promise.reject(
        new ServiceProxyError(`this agent already runs ${proxyPortsServicesMax} proxies`),
      );
    }
    const starting = this.#start(service);
    this.#proxies.set(service, starting);
    starting.catch(() => this.#proxies.delete(service));
    return starting;
  }

  async #start(service: string): Promise<ServiceProxy> {
    const { dataDir, listenHost, logger, clock } = this.#options;
    const savedPort = this.#savedPorts[service];
    const proxy = new ServiceProxy({
      service,
      listenHost,
      listenPort: savedPort ?? 0,
      fallbackToFreePort: true,
      logger,
      clock,
      holdMs: this.#options.holdMs,
      connectionsMax: this.#options.connectionsMax,
      connectTimeoutMs: this.#options.connectTimeoutMs,
      retryIntervalMs: this.#options.retryIntervalMs,
      ...(this.#options.admit === undefined ? {} : { admit: this.#options.admit }),
    });
    const port = await proxy.listen();
    if (port !== savedPort) {
      this.#savedPorts[service] = port;
      writeProxyPortsFile(dataDir, this.#savedPorts);
    }
    logger.info({ service, port }, "service proxy listening");
    return proxy;
  }

  /**
   * Follows the server's routing table: every service in it gets a proxy, pointed at its
   * route. Services not in the table keep their proxies as they are. Resolves with the ports
   * of all running proxies (what the agent reports in its "proxies" message).
   */
  async applyRoutes(routes: Record<string, ProxyRoute>): Promise<ProxyPorts> {
    for (const [service, route] of Object.entries(routes)) {
      try {
        const proxy = await this.ensure(service);
        if (route === null) proxy.setUpstream(null, proxy.generation ?? 0);
        else proxy.setUpstream(route.endpoint, route.generation);
      } catch (error) {
        this.#options.logger.warn(
          { service, err: (error as Error).message },
          "cannot follow the route of a service",
        );
      }
    }
    return this.ports();
  }

  /** Ports of the proxies that are listening. */
  async ports(): Promise<ProxyPorts> {
    const ports: ProxyPorts = {};
    for (const proxy of await this.#running()) {
      if (proxy.port !== undefined) ports[proxy.service] = proxy.port;
    }
    return ports;
  }

  async stats(): Promise<Record<string, ServiceProxyStats>> {
    const stats: Record<string, ServiceProxyStats> = {};
    for (const proxy of await this.#running()) stats[proxy.service] = proxy.stats();
    return stats;
  }

  async close(): Promise<void> {
    const proxies = await this.#running();
    this.#proxies.clear();
    await Promise.all(proxies.map((proxy) => proxy.close()));
  }

  async #running(): Promise<ServiceProxy[]> {
    const settled = await Promise.allSettled(this.#proxies.values());
    return settled.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  }
}
