// How many connections one address may hold open on the agent's listener before any request
// on them has proven itself (ADR 0010). A flooding host is cut off as its connections are
// accepted, before a byte of them is parsed: shedding costs a fraction of answering, and the
// event loop stays free for heartbeats and the server's probes. A connection that carried a
// verified peer request no longer counts, so peers of a fleet that shares one address (a local
// fleet on loopback, a site behind NAT) keep their kept-alive pools whatever their number.

import type { Socket } from "node:net";

export interface ConnectionLimitsOptions {
  /**
   * Connections from one address, none of whose requests carried a verified signature yet.
   * A peer opens at most 8 at once (the shard client's `connectionsMax`), the server's probe
   * 2 to 4; past this limit new ones are closed as they are accepted.
   */
  unverifiedPerSourceMax: number;
  /** Addresses tracked at once; past it, connections from new addresses are closed. */
  sourcesMax: number;
}

export const connectionLimitsDefaults: ConnectionLimitsOptions = {
  unverifiedPerSourceMax: 64,
  sourcesMax: 4_096,
};

export class ConnectionLimits {
  readonly #options: ConnectionLimitsOptions;
  /** Unverified open connections by remote address. */
  readonly #unverified = new Map<string, number>();
  /** Sockets still counted in `#unverified` (a verified one leaves). */
  readonly #counted = new WeakMap<Socket, string>();

  constructor(options: ConnectionLimitsOptions = connectionLimitsDefaults) {
    this.#options = options;
  }

  /** Decides a connection as it is accepted; false: it was destroyed, nothing read. */
  admit(socket: Socket): boolean {
    const source = socket.remoteAddress ?? "unknown";
    const open = this.#unverified.get(source) ?? 0;
    const full =
      open >= this.#options.unverifiedPerSourceMax ||
      (open === 0 && this.#unverified.size >= this.#options.sourcesMax);
    if (full) {
      socket.destroy();
      return false;
    }
    this.#unverified.set(source, open + 1);
    this.#counted.set(socket, source);
    socket.once("close", () => this.#release(socket));
    return true;
  }

  /**
   * A request on `socket` was authorized as a peer's (a verified signature; in an open fleet,
   * any request to a peer route): it stops counting.
   */
  verified(socket: Socket): void {
    this.#release(socket);
  }

  #release(socket: Socket): void {
    const source = this.#counted.get(socket);
    if (source === undefined) return;
    this.#counted.delete(socket);
    const left = (this.#unverified.get(source) ?? 1) - 1;
    if (left > 0) this.#unverified.set(source, left);
    else this.#unverified.delete(source);
  }
}
