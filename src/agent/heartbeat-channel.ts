// The agent's side of the persistent channel: register, connect, heartbeat at the interval
// the server asks for, reconnect with full-jitter backoff, and say goodbye on shutdown.

import { WebSocket } from "ws";
import type {
  NodeMetrics,
  RegisterRequest,
  RegisterResponse,
  ServerMessage,
} from "../api/contract.ts";
import { fullJitterDelayMs, type BackoffOptions } from "../core/resilience/backoff.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { Random } from "../ports/random.ts";
import { requestJson, type RequestJsonOptions } from "../runtime/http-json.ts";
import { messageText } from "../runtime/websocket-text.ts";
import type { AgentServiceMessage, ServerServiceMessage } from "../api/service-messages.ts";
import { decideFault, type FaultInjection } from "./fault-injector.ts";
import { PacedSender, pacedSenderDefaults } from "./paced-sender.ts";
import { parseServerServiceMessage } from "./server-service-message.ts";

/** Registration and goodbye requests give up after this long. */
export const serverRequestTimeoutMs = 5_000;
/** Shutdown waits at most this long for the server to acknowledge the goodbye. */
export const goodbyeTimeoutMs = 2_000;

export interface HeartbeatChannelOptions {
  serverUrl: string;
  registration: RegisterRequest;
  faults: FaultInjection;
  backoff: BackoffOptions;
}

export interface HeartbeatChannelComponents {
  clock: Clock;
  random: Random;
  logger: Logger;
  /** The newest metrics sample not yet sent, if any. */
  takeFreshMetrics: () => NodeMetrics | undefined;
  /** Called when the server says a newer process of this node exists: this one must stop. */
  onFenced: (reason: string) => void;
  /**
   * A service message from the server (already checked). The channel waits for the promise of
   * a `services` message before it heartbeats, so stale instances stop before the node can be
   * HEALTHY again; other messages are handled without holding anything up.
   */
  onServiceMessage: (message: ServerServiceMessage) => Promise<void>;
  /** The node credential and pinned CA for every request to the server, read at each use. */
  requestOptions?: () => RequestJsonOptions;
}

export class RegistrationError extends Error {
  override readonly name = "RegistrationError";
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export class HeartbeatChannel {
  readonly #options: HeartbeatChannelOptions;
  readonly #components: HeartbeatChannelComponents;
  #socket: WebSocket | undefined;
  /** Everything but heartbeats and the goodbye, paced below the server's budget (ADR 0010). */
  #paced: PacedSender | undefined;
  #cancelHeartbeat: CancelTimer | undefined;
  #cancelReconnect: CancelTimer | undefined;
  #attempt = 0;
  #sequence = 0;
  #stopping = false;
  #connected = false;
  /** Settles once the connection's latest `services` message has been carried out. */
  #fenced: Promise<void> = Promise.resolve();

  constructor(options: HeartbeatChannelOptions, components: HeartbeatChannelComponents) {
    this.#options = options;
    this.#components = components;
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    void this.#connect();
  }

  /**
   * Sends a service message if the channel is open, paced: it may leave a little later, and
   * heartbeats never wait behind it. False when the channel is down or too far behind.
   */
  send(message: AgentServiceMessage): boolean {
    if (this.#socket?.readyState !== WebSocket.OPEN) return false;
    return this.#paced?.send(JSON.stringify(message)) ?? false;
  }

  /** Stops heartbeating; with `goodbye`, first tells the server this is a planned shutdown. */
  async stop(goodbye: boolean): Promise<void> {
    this.#stopping = true;
    this.#cancelReconnect?.();
    this.#cancelHeartbeat?.();
    const socket = this.#socket;
    if (goodbye && socket?.readyState === WebSocket.OPEN) {
      await new Promise<void>((resolve) => {
        const cancel = this.#components.clock.schedule(goodbyeTimeoutMs, resolve);
        socket.once("close", () => {
          cancel();
          resolve();
        });
        socket.send(JSON.stringify({ type: "goodbye" }));
      });
    } else if (goodbye) {
      await this.#postGoodbye();
    }
    socket?.terminate();
  }

  async #connect(): Promise<void> {
    if (this.#stopping) return;
    const { logger } = this.#components;
    let response: RegisterResponse;
    try {
      response = await this.#register();
    } catch (error) {
      if (error instanceof RegistrationError && error.statusCode === 409) {
        this.#components.onFenced(error.message);
        return;
      }
      logger.warn(
        { err: (error as Error).message, attempt: this.#attempt },
        error instanceof RegistrationError && error.statusCode === 401
          ? "the server refused this node's credential (expired or revoked?); enrol again with a new join token. Retrying"
          : "registration failed; retrying",
      );
      this.#scheduleReconnect();
      return;
    }
    if (this.#stopping) return;
    const { nodeId, incarnation } = this.#options.registration;
    const url = new URL("/v1/agents/connect", this.#options.serverUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = new URLSearchParams({ nodeId, incarnation: String(incarnation) }).toString();
    const { headers, ca } = this.#requestOptions();
    const socket = new WebSocket(url, {
      handshakeTimeout: serverRequestTimeoutMs,
      ...(headers === undefined ? {} : { headers }),
      ...(ca === undefined ? {} : { ca }),
    });
    this.#socket = socket;
    const paced = new PacedSender(pacedSenderDefaults, { clock: this.#components.clock, socket });
    this.#paced = paced;
    this.#fenced = Promise.resolve();
    socket.on("message", (data) => this.#onMessage(data, response.heartbeatIntervalMs));
    socket.on("error", (error) => logger.warn({ err: error.message }, "channel error"));
    socket.on("close", (code, reason) => {
      this.#connected = false;
      this.#cancelHeartbeat?.();
      const unsent = paced.close();
      if (unsent > 0) logger.warn({ unsent }, "channel closed before these messages were sent");
      if (this.#socket === socket) {
        this.#socket = undefined;
        this.#paced = undefined;
      }
      if (this.#stopping) return;
      if (code === 4409) {
        this.#components.onFenced(reason.toString("utf8"));
        return;
      }
      logger.warn({ code, reason: reason.toString("utf8") }, "channel closed; reconnecting");
      this.#scheduleReconnect();
    });
  }

  #onMessage(data: WebSocket.RawData, registeredIntervalMs: number): void {
    const { logger } = this.#components;
    let message: ServerMessage;
    try {
      message = JSON.parse(messageText(data)) as ServerMessage;
    } catch {
      logger.warn({}, "server sent a message that is not JSON; ignored");
      return;
    }
    switch (message.type) {
      case "welcome": {
        this.#connected = true;
        this.#attempt = 0;
        logger.info({ heartbeatIntervalMs: message.heartbeatIntervalMs }, "connected to server");
        const intervalMs =
          message.heartbeatIntervalMs > 0 ? message.heartbeatIntervalMs : registeredIntervalMs;
        const socket = this.#socket;
        void this.#fenced.then(() => {
          if (this.#socket === socket && !this.#stopping) this.#beatEvery(intervalMs);
        });
        return;
      }
      case "error":
        this.#components.logger.warn({ message: message.message }, "server reported an error");
        return;
      case "goodbye-acknowledged":
        return;
      default:
        this.#onServiceMessage(message);
    }
  }

  #onServiceMessage(value: unknown): void {
    const { logger, onServiceMessage } = this.#components;
    const message = parseServerServiceMessage(value);
    if (message === undefined) {
      logger.warn(
        { type: (value as { type?: unknown }).type },
        "server sent a malformed service message; ignored",
      );
      return;
    }
    const handle = () =>
      onServiceMessage(message).catch((error: unknown) =>
        logger.error(
          { err: (error as Error).message, type: message.type },
          "service message failed",
        ),
      );
    if (message.type === "services") this.#fenced = this.#fenced.then(handle);
    else void this.#fenced.then(handle);
  }

  #beatEvery(intervalMs: number): void {
    this.#cancelHeartbeat?.();
    const beat = () => {
      this.#sendHeartbeat();
      this.#cancelHeartbeat = this.#components.clock.schedule(intervalMs, beat);
    };
    beat();
  }

  #sendHeartbeat(): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    this.#sequence += 1;
    const metrics = this.#components.takeFreshMetrics();
    const text = JSON.stringify({
      type: "heartbeat",
      sequence: this.#sequence,
      ...(metrics ? { metrics } : {}),
    });
    const decision = decideFault(this.#options.faults, this.#components.random);
    if (decision.drop) return;
    const send = () => {
      if (socket.readyState === WebSocket.OPEN) socket.send(text);
    };
    if (decision.delayMs <= 0) send();
    else this.#components.clock.schedule(decision.delayMs, send);
  }

  #scheduleReconnect(): void {
    if (this.#stopping) return;
    const delayMs = fullJitterDelayMs(
      this.#options.backoff,
      this.#attempt,
      this.#components.random.nextFloat(),
    );
    this.#attempt += 1;
    this.#cancelReconnect = this.#components.clock.schedule(delayMs, () => void this.#connect());
  }

  #requestOptions(): RequestJsonOptions {
    return this.#components.requestOptions?.() ?? {};
  }

  async #register(): Promise<RegisterResponse> {
    const response = await requestJson(
      "POST",
      new URL("/v1/nodes/register", this.#options.serverUrl),
      this.#options.registration,
      serverRequestTimeoutMs,
      this.#requestOptions(),
    );
    if (response.statusCode !== 200) {
      const message = (response.body as { message?: string } | undefined)?.message;
      throw new RegistrationError(
        response.statusCode,
        message ?? `registration failed with HTTP ${response.statusCode}`,
      );
    }
    return response.body as RegisterResponse;
  }

  async #postGoodbye(): Promise<void> {
    const nodeId = this.#options.registration.nodeId;
    try {
      await requestJson(
        "POST",
        new URL(`/v1/nodes/${nodeId}/goodbye`, this.#options.serverUrl),
        undefined,
        goodbyeTimeoutMs,
        this.#requestOptions(),
      );
    } catch (error) {
      this.#components.logger.warn(
        { err: (error as Error).message },
        "could not tell the server goodbye",
      );
    }
  }
}
