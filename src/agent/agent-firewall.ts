// The agent's firewall (ADR 0006, "Firewall"): enforces the fleet spec's rules the server
// pushed on every listener this agent owns — its API (probes, data copies, the shard API) and
// each service's forwarding proxy. Address, port and service rules drop a connection as it is
// accepted, before a byte is read; node and role rules answer 403 once a request's signature
// is verified. Denials are counted and reported to the server, summed per source. The last pushed
// rules are kept in <data-dir>/firewall-rules.json, so they hold while the server is away.

import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { join } from "node:path";
import type {
  FirewallDeniedMessage,
  FirewallListener,
  FirewallRulesMessage,
} from "../api/service-messages.ts";
import { builtinRoles } from "../core/security/access-policy.ts";
import {
  compileFirewallRules,
  decideConnection,
  decideRequest,
  type CompiledFirewallRule,
  type ConnectionFacts,
  type FirewallRule,
} from "../core/security/firewall.ts";
import type { Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import type { PeerAuthorization } from "./peer-security.ts";
import {
  SecurityReportAggregator,
  securityReportDefaults,
  type SecurityReportOptions,
} from "./security-report-aggregator.ts";
import { parseServerServiceMessage } from "./server-service-message.ts";

export const firewallRulesFileName = "firewall-rules.json";

export class FirewallRulesFileError extends Error {
  override readonly name = "FirewallRulesFileError";
}

/** The outcome of a request check: allowed, or the answer to send. */
export type FirewallRequestCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly statusCode: 403; readonly message: string };

export interface AgentFirewallComponents {
  clock: Clock;
  logger: Logger;
  /** Sends a report on the channel; false when it is down (the denial is reported later). */
  report: (message: FirewallDeniedMessage) => boolean;
}

type DenialDraft = Omit<FirewallDeniedMessage, "type" | "deniedCount">;

export class AgentFirewall {
  readonly #path: string;
  readonly #components: AgentFirewallComponents;
  #rules: CompiledFirewallRule[];
  /** Denials since start, by listener. */
  readonly denials: Record<FirewallListener, number> = { "agent-api": 0, "service-proxy": 0 };
  /** Denials are summed per rule, listener and source before they are reported. */
  readonly #reports: SecurityReportAggregator<DenialDraft>;

  /** Loads the last pushed rules; throws FirewallRulesFileError if the file is damaged. */
  constructor(
    options: { dataDir: string; reports?: SecurityReportOptions },
    components: AgentFirewallComponents,
  ) {
    this.#path = join(options.dataDir, firewallRulesFileName);
    this.#components = components;
    this.#reports = new SecurityReportAggregator(options.reports ?? securityReportDefaults, {
      clock: components.clock,
      keyOf: (draft) =>
        `${draft.ruleIndex} ${draft.listener} ${draft.service} ${draft.remoteAddress} ${draft.peerNodeId}`,
      send: (draft, deniedCount) => this.#report(draft, deniedCount),
    });
    this.#rules = compileFirewallRules(this.#load());
  }

  /** Rules in force, in order. */
  get rules(): readonly FirewallRule[] {
    return this.#rules.map((compiled) => compiled.rule);
  }

  /** The server's rules for this node: in force at once, and kept on disk. */
  update(message: FirewallRulesMessage): void {
    this.#rules = compileFirewallRules(message.rules);
    try {
      this.#save(message);
    } catch (error) {
      this.#components.logger.warn(
        { err: (error as Error).message },
        "could not keep the firewall rules on disk; they hold until the agent stops",
      );
    }
    this.#components.logger.info({ rules: message.rules.length }, "firewall rules in force");
  }

  /**
   * Decides a connection to this agent's API as it is accepted; false: it was destroyed, no byte
   * of it read.
   */
  admitApiConnection(socket: Socket): boolean {
    return this.#admit(socket, null, "agent-api");
  }

  /** Decides a connection to `service`'s forwarding proxy as it is accepted (see above). */
  admitProxyConnection(socket: Socket, service: string): boolean {
    return this.#admit(socket, service, "service-proxy");
  }

  /**
   * Decides one request to the agent API: `peerNodeId` is its verified signer (undefined for an
   * unsigned request, which matches no node or role rule).
   */
  checkRequest(request: IncomingMessage, peerNodeId: string | undefined): FirewallRequestCheck {
    if (this.#rules.length === 0) return { ok: true };
    const facts = factsOf(request.socket, null);
    const peer =
      peerNodeId === undefined ? null : { nodeId: peerNodeId, roles: [builtinRoles.node] };
    const decision = decideRequest(this.#rules, facts, peer);
    if (decision.allowed) return { ok: true };
    const path = (request.url ?? "/").split("?")[0]?.slice(0, 512) ?? "/";
    this.#denied({
      ruleIndex: decision.rule.index,
      listener: "agent-api",
      service: null,
      localPort: facts.localPort,
      remoteAddress: facts.remoteAddress,
      peerNodeId: peerNodeId?.slice(0, 253) ?? null,
      path,
      atMs: this.#nowMs(),
    });
    return {
      ok: false,
      statusCode: 403,
      message: `firewall rule ${decision.rule.index} denies this request`,
    };
  }

  /**
   * A signed route's check after PeerSecurity's: a request whose signature passed is then held
   * to the node and role rules; a refused one stays refused.
   */
  afterSignature(request: IncomingMessage, authorization: PeerAuthorization): PeerAuthorization {
    if (!authorization.ok) return authorization;
    const check = this.checkRequest(request, authorization.nodeId);
    return check.ok ? authorization : check;
  }

  /** Stops the report timer; unreported denials stay counted in `denials`. */
  close(): void {
    this.#reports.close();
  }

  #admit(socket: Socket, service: string | null, listener: FirewallListener): boolean {
    if (this.#rules.length === 0) return true;
    const facts = factsOf(socket, service);
    // A proxy carries plain TCP: no request will ever name a signed sender, so its connection
    // is decided now as an unsigned one (node and role rules do not match it).
    const decision =
      service === null
        ? decideConnection(this.#rules, facts)
        : decideRequest(this.#rules, facts, null);
    if (decision.allowed !== false) return true;
    socket.destroy();
    this.#denied({
      ruleIndex: decision.rule.index,
      listener,
      service,
      localPort: facts.localPort,
      remoteAddress: facts.remoteAddress,
      peerNodeId: null,
      path: null,
      atMs: this.#nowMs(),
    });
    return false;
  }

  #denied(draft: DenialDraft): void {
    this.denials[draft.listener] += 1;
    this.#reports.add(draft);
  }

  #report(draft: DenialDraft, deniedCount: number): boolean {
    const message: FirewallDeniedMessage = { type: "firewall-denied", ...draft, deniedCount };
    if (!this.#components.report(message)) return false;
    this.#components.logger.warn(
      {
        rule: message.ruleIndex,
        listener: message.listener,
        remoteAddress: message.remoteAddress,
        peer: message.peerNodeId,
        denied: message.deniedCount,
      },
      "firewall denied",
    );
    return true;
  }

  #nowMs(): number {
    return Math.max(0, Math.round(this.#components.clock.nowMs()));
  }

  #load(): FirewallRule[] {
    if (!existsSync(this.#path)) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.#path, "utf8"));
    } catch (error) {
      throw new FirewallRulesFileError(
        `${this.#path} is damaged (${(error as Error).message}); move it away: the server pushes the rules again when the agent connects`,
      );
    }
    const message = parseServerServiceMessage(parsed);
    if (message?.type !== "firewall-rules")
      throw new FirewallRulesFileError(
        `${this.#path} holds no valid firewall rules; move it away: the server pushes the rules again when the agent connects`,
      );
    return message.rules;
  }

  /** Written atomically and durably (temp file, fsync, rename), 0600. */
  #save(message: FirewallRulesMessage): void {
    const temporaryPath = `${this.#path}.tmp`;
    writeFileSync(temporaryPath, `${JSON.stringify(message)}\n`, { mode: 0o600 });
    const descriptor = openSync(temporaryPath, "r");
    try {
      fsyncSync(descriptor);
    } finally {
      closeSync(descriptor);
    }
    renameSync(temporaryPath, this.#path);
  }
}

function factsOf(socket: Socket, service: string | null): ConnectionFacts {
  return {
    remoteAddress: (socket.remoteAddress ?? "unknown").slice(0, 64),
    localPort: socket.localPort ?? 0,
    service,
  };
}
