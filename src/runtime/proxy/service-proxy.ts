// A service's forwarding proxy: a stable local port whose connections are piped to wherever
// the service runs now. During a failover it holds new clients (they see latency, not an
// error) and it cuts connections to a fenced-off instance the moment the generation changes.

import { connect, createServer, type Server, type Socket } from "node:net";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";

/** Defaults, each a trade-off between a client's patience and the agent's resources. */
export const serviceProxyDefaults = {
  /** How long a client may wait for a reachable upstream before it is closed. Longer rides out
   * slower failovers; shorter tells clients sooner that the service is gone. */
  holdMs: 10_000,
  /** Open client connections per proxy; beyond it new clients are closed at once. Each costs
   * two sockets and up to two 16 KiB buffers. */
  connectionsMax: 1_024,
  /** One connect attempt to the upstream gives up after this long, then is retried. */
  connectTimeoutMs: 1_000,
  /** Pause between connect attempts to an upstream that refused or reset. */
  retryIntervalMs: 50,
  /** At most one warning per this interval about refused clients, so a flood cannot flood logs. */
  refusalWarningIntervalMs: 10_000,
} as const;

export interface ServiceProxyOptions {
  service: string;
  listenHost: string;
  /** 0: the system picks a free port. */
  listenPort: number;
  /** When listenPort is taken, listen on a free port (with a warning) instead of failing. */
  fallbackToFreePort?: boolean;
  logger: Logger;
  clock: Clock;
  holdMs?: number;
  connectionsMax?: number;
  connectTimeoutMs?: number;
  retryIntervalMs?: number;
  /**
   * Decides each client as it is accepted, before a byte is read (the agent's firewall);
   * false: the hook destroyed the socket. Absent: every client is taken.
   */
  admit?: (socket: Socket, service: string) => boolean;
}

export interface ServiceProxyStats {
  /** Clients taken in (not counting refused ones). */
  connectionsAccepted: number;
  /** Clients piped to an upstream. */
  connectionsForwarded: number;
  /** Clients that had to wait for an upstream at least once. */
  connectionsHeld: number;
  /** Clients closed at once because connectionsMax were open (or the proxy was closing). */
  connectionsRefused: number;
  /** Clients the admit hook (the firewall) turned away. */
  connectionsDenied: number;
  /** Held clients closed because no upstream took them within holdMs. */
  connectionsTimedOut: number;
  /** Piped connections cut because the upstream's generation changed. */
  connectionsFenced: number;
  /** Clients open now (held, connecting or piped). */
  connectionsOpen: number;
  bytesFromClients: number;
  bytesFromUpstreams: number;
}

export class ServiceProxyError extends Error {
  override readonly name = "ServiceProxyError";
}

export interface Endpoint {
  host: string;
  port: number;
}

/** Parses "host:port" or "[ipv6]:port"; undefined when it is neither. */
export function parseEndpoint(endpoint: string): Endpoint | undefined {
  const match =
    /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(endpoint) ?? /^([^\s:[\]]+):(\d{1,5})$/.exec(endpoint);
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: match[1] ?? "", port };
}

interface Upstream extends Endpoint {
  endpoint: string;
}

type ClientState =
  | { kind: "held"; cancelRetry: CancelTimer | undefined }
  | {
      kind: "connecting";
      upstream: Socket;
      endpoint: string;
      generation: number;
      cancelTimeout: CancelTimer;
    }
  | { kind: "piped"; upstream: Socket; generation: number };

interface Client {
  socket: Socket;
  arrivedAtMs: number;
  wasHeld: boolean;
  state: ClientState;
}

export class ServiceProxy {
  readonly service: string;
  readonly #options: ServiceProxyOptions;
  readonly #holdMs: number;
  readonly #connectionsMax: number;
  readonly #connectTimeoutMs: number;
  readonly #retryIntervalMs: number;
  readonly #clients = new Set<Client>();
  #server: Server | undefined;
  #port: number | undefined;
  #upstream: Upstream | null = null;
  #generation: number | undefined;
  #closed = false;
  #lastRefusalWarningAtMs = -Infinity;
  readonly #stats = {
    connectionsAccepted: 0,
    connectionsForwarded: 0,
    connectionsHeld: 0,
    connectionsRefused: 0,
    connectionsDenied: 0,
    connectionsTimedOut: 0,
    connectionsFenced: 0,
    bytesFromClients: 0,
    bytesFromUpstreams: 0,
  };

  constructor(options: ServiceProxyOptions) {
    this.service = options.service;
    this.#options = options;
    this.#holdMs = options.holdMs ?? serviceProxyDefaults.holdMs;
    this.#connectionsMax = options.connectionsMax ?? serviceProxyDefaults.connectionsMax;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? serviceProxyDefaults.connectTimeoutMs;
    this.#retryIntervalMs = options.retryIntervalMs ?? serviceProxyDefaults.retryIntervalMs;
    if (!(this.#holdMs >= 0 && this.#connectionsMax >= 1 && this.#retryIntervalMs > 0)) {
      throw new ServiceProxyError(
        `bad proxy options for ${options.service}: holdMs >= 0, connectionsMax >= 1 and retryIntervalMs > 0 are required`,
      );
    }
  }

  /** The port it listens on (after listen()). */
  get port(): number | undefined {
    return this.#port;
  }

  /** The generation of the current route; undefined before the first setUpstream. */
  get generation(): number | undefined {
    return this.#generation;
  }

  /** Starts listening; resolves with the port. */
  async listen(): Promise<number> {
    if (this.#server !== undefined)
      throw new ServiceProxyError(`proxy ${this.service} is already listening`);
    const { listenHost, listenPort, logger } = this.#options;
    let server: Server;
    try {
      server = await this.#listenOn(listenHost, listenPort);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EADDRINUSE" || listenPort === 0 || this.#options.fallbackToFreePort !== true) {
        throw new ServiceProxyError(
          `proxy for ${this.service} cannot listen on ${listenHost}:${listenPort}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      logger.warn(
        { service: this.service, port: listenPort },
        "proxy port is taken; listening on a new one (clients must learn the new address)",
      );
      server = await this.#listenOn(listenHost, 0);
    }
    const address = server.address();
    if (address === null || typeof address === "string") {
      throw new ServiceProxyError(`proxy for ${this.service} has no TCP address`);
    }
    this.#server = server;
    this.#port = address.port;
    server.on("error", (error) =>
      logger.warn({ service: this.service, err: error.message }, "proxy listener error"),
    );
    return address.port;
  }

  #listenOn(host: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) =>
        this.#onConnection(socket),
      );
      const onError = (error: Error) => {
        server.close();
        reject(error);
      };
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        resolve(server);
      });
    });
  }

  /**
   * Points the proxy at `endpoint` ("host:port"), or at nothing (null: new clients are held).
   * A route older than the current generation is ignored (returns false). When the generation
   * changes, connections piped to an older generation are cut: nothing may keep reaching a
   * fenced-off instance.
   */
  setUpstream(endpoint: string | null, generation: number): boolean {
    if (!Number.isSafeInteger(generation) || generation < 0) {
      throw new ServiceProxyError(`generation of ${this.service} must be a whole number >= 0`);
    }
    const { logger } = this.#options;
    if (this.#generation !== undefined && generation < this.#generation) {
      logger.warn(
        { service: this.service, generation, currentGeneration: this.#generation },
        "ignoring a route older than the proxy's current one",
      );
      return false;
    }
    let upstream: Upstream | null = null;
    if (endpoint !== null) {
      const parsed = parseEndpoint(endpoint);
      if (parsed === undefined) {
        throw new ServiceProxyError(`upstream of ${this.service} is not host:port: ${endpoint}`);
      }
      upstream = { ...parsed, endpoint };
    }
    const generationChanged = generation !== this.#generation;
    const endpointChanged = upstream?.endpoint !== this.#upstream?.endpoint;
    if (!generationChanged && !endpointChanged) return true;
    this.#upstream = upstream;
    this.#generation = generation;
    logger.info({ service: this.service, endpoint, generation }, "proxy upstream changed");
    for (const client of this.#clients) {
      const state = client.state;
      switch (state.kind) {
        case "held":
          if (upstream !== null) {
            state.cancelRetry?.();
            this.#attempt(client);
          }
          break;
        case "connecting":
          client.state = { kind: "held", cancelRetry: undefined };
          state.cancelTimeout();
          state.upstream.destroy();
          this.#attempt(client);
          break;
        case "piped":
          if (state.generation !== generation) {
            this.#stats.connectionsFenced += 1;
            state.upstream.destroy();
            client.socket.destroy();
          }
          break;
      }
    }
    return true;
  }

  stats(): ServiceProxyStats {
    return { ...this.#stats, connectionsOpen: this.#clients.size };
  }

  /** Stops listening and cuts every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const client of this.#clients) {
      const state = client.state;
      switch (state.kind) {
        case "held":
          state.cancelRetry?.();
          break;
        case "connecting":
          state.cancelTimeout();
          state.upstream.destroy();
          break;
        case "piped":
          state.upstream.destroy();
          break;
      }
      client.socket.destroy();
    }
    const server = this.#server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #onConnection(socket: Socket): void {
    const { logger, clock, admit } = this.#options;
    if (admit !== undefined && !admit(socket, this.service)) {
      this.#stats.connectionsDenied += 1;
      socket.destroy();
      return;
    }
    if (this.#closed || this.#clients.size >= this.#connectionsMax) {
      this.#stats.connectionsRefused += 1;
      socket.destroy();
      const nowMs = clock.nowMs();
      if (nowMs - this.#lastRefusalWarningAtMs >= serviceProxyDefaults.refusalWarningIntervalMs) {
        this.#lastRefusalWarningAtMs = nowMs;
        logger.warn(
          {
            service: this.service,
            connectionsMax: this.#connectionsMax,
            connectionsRefused: this.#stats.connectionsRefused,
          },
          "proxy is full; refusing clients",
        );
      }
      return;
    }
    this.#stats.connectionsAccepted += 1;
    const client: Client = {
      socket,
      arrivedAtMs: clock.nowMs(),
      wasHeld: false,
      state: { kind: "held", cancelRetry: undefined },
    };
    this.#clients.add(client);
    socket.on("error", (error) =>
      logger.debug({ service: this.service, err: error.message }, "proxy client error"),
    );
    socket.on("close", (hadError) => this.#onClientClosed(client, hadError));
    this.#attempt(client);
  }

  /** Tries the current upstream now, or holds the client until there is one. */
  #attempt(client: Client): void {
    if (client.socket.destroyed || this.#closed) return;
    const upstream = this.#upstream;
    const generation = this.#generation;
    if (upstream === null || generation === undefined) {
      this.#hold(client, undefined);
      return;
    }
    const socket = connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true });
    const cancelTimeout = this.#options.clock.schedule(this.#connectTimeoutMs, () =>
      socket.destroy(
        new ServiceProxyError(
          `no connection to ${upstream.endpoint} within ${this.#connectTimeoutMs} ms`,
        ),
      ),
    );
    client.state = {
      kind: "connecting",
      upstream: socket,
      endpoint: upstream.endpoint,
      generation,
      cancelTimeout,
    };
    let lastError: string | undefined;
    socket.on("error", (error) => {
      lastError = error.message;
    });
    socket.once("connect", () => this.#onUpstreamConnected(client, socket));
    socket.on("close", (hadError) => this.#onUpstreamClosed(client, socket, hadError, lastError));
  }

  /**
   * Waits before the next attempt: `retryAfterMs` after a failed one, or (no upstream) until
   * setUpstream or the hold deadline. Past the deadline the client is closed.
   */
  #hold(client: Client, retryAfterMs: number | undefined): void {
    const heldMs = this.#options.clock.nowMs() - client.arrivedAtMs;
    const remainingMs = this.#holdMs - heldMs;
    if (remainingMs <= 0) {
      this.#stats.connectionsTimedOut += 1;
      this.#options.logger.warn(
        { service: this.service, heldMs, upstream: this.#upstream?.endpoint ?? null },
        "no upstream took the client in time; closing it",
      );
      client.state = { kind: "held", cancelRetry: undefined };
      client.socket.destroy();
      return;
    }
    if (!client.wasHeld) {
      client.wasHeld = true;
      this.#stats.connectionsHeld += 1;
    }
    const delayMs = Math.min(retryAfterMs ?? remainingMs, remainingMs);
    client.state = {
      kind: "held",
      cancelRetry: this.#options.clock.schedule(delayMs, () => this.#attempt(client)),
    };
  }

  #onUpstreamConnected(client: Client, upstream: Socket): void {
    const state = client.state;
    if (state.kind !== "connecting" || state.upstream !== upstream) {
      upstream.destroy();
      return;
    }
    state.cancelTimeout();
    if (client.socket.destroyed || this.#closed) {
      upstream.destroy();
      return;
    }
    if (state.generation !== this.#generation || state.endpoint !== this.#upstream?.endpoint) {
      // The route moved while we were connecting: never hand a client to a stale instance.
      client.state = { kind: "held", cancelRetry: undefined };
      upstream.destroy();
      this.#attempt(client);
      return;
    }
    client.state = { kind: "piped", upstream, generation: state.generation };
    this.#stats.connectionsForwarded += 1;
    const socket = client.socket;
    socket.on("data", (chunk: Buffer) => {
      this.#stats.bytesFromClients += chunk.length;
    });
    upstream.on("data", (chunk: Buffer) => {
      this.#stats.bytesFromUpstreams += chunk.length;
    });
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
  }

  #onUpstreamClosed(
    client: Client,
    upstream: Socket,
    hadError: boolean,
    lastError: string | undefined,
  ): void {
    const state = client.state;
    if (state.kind === "connecting" && state.upstream === upstream) {
      state.cancelTimeout();
      this.#options.logger.debug(
        { service: this.service, upstream: state.endpoint, err: lastError ?? "closed" },
        "upstream connect failed; holding the client",
      );
      client.state = { kind: "held", cancelRetry: undefined };
      if (client.socket.destroyed) return;
      this.#hold(client, this.#retryIntervalMs);
      return;
    }
    if (state.kind === "piped" && state.upstream === upstream) {
      if (hadError) {
        this.#options.logger.debug(
          { service: this.service, err: lastError ?? "closed" },
          "upstream connection failed; closing its client",
        );
        client.socket.destroy();
      } else if (!client.socket.destroyed) {
        // Clean close: let the client's buffered output drain, discard what it still sends.
        client.socket.end();
        client.socket.resume();
      }
    }
  }

  #onClientClosed(client: Client, hadError: boolean): void {
    this.#clients.delete(client);
    const state = client.state;
    switch (state.kind) {
      case "held":
        state.cancelRetry?.();
        return;
      case "connecting":
        state.cancelTimeout();
        state.upstream.destroy();
        return;
      case "piped":
        if (hadError) {
          state.upstream.destroy();
        } else if (!state.upstream.destroyed) {
          state.upstream.end();
          state.upstream.resume();
        }
        return;
    }
  }
}
