// The server's side of the agents' firewalls (ADR 0006, "Firewall"): each agent gets the fleet
// spec's rules that apply to it when its channel opens, and the denials agents report become
// `firewall.denied` events and a Prometheus counter.

import type { FirewallDeniedMessage, FirewallRulesMessage } from "../api/service-messages.ts";
import type { FirewallRule } from "../core/security/firewall.ts";
import type { FirewallRuleSpec } from "../core/spec/security-schema.ts";
import type { Logger } from "../ports/logger.ts";
import type { EventLog } from "./event-log.ts";
import type { ServerMetrics } from "./server-metrics.ts";
import type { AgentLinks } from "./services/agent-links.ts";

export interface ServerFirewallComponents {
  links: AgentLinks;
  events: EventLog;
  metrics: ServerMetrics;
  logger: Logger;
}

/** The rules of `spec` that `nodeId` enforces, in spec order, each with its spec index. */
export function firewallRulesOf(spec: readonly FirewallRuleSpec[], nodeId: string): FirewallRule[] {
  const rules: FirewallRule[] = [];
  spec.forEach((rule, index) => {
    if (rule.nodes !== undefined && !rule.nodes.includes(nodeId)) return;
    rules.push({ index, action: rule.action, from: { ...rule.from }, to: { ...rule.to } });
  });
  return rules;
}

export class ServerFirewall {
  readonly #spec: readonly FirewallRuleSpec[];
  readonly #components: ServerFirewallComponents;

  constructor(spec: readonly FirewallRuleSpec[], components: ServerFirewallComponents) {
    this.#spec = spec;
    this.#components = components;
  }

  rulesFor(nodeId: string): FirewallRulesMessage {
    return { type: "firewall-rules", rules: firewallRulesOf(this.#spec, nodeId) };
  }

  /** An agent connected: it gets its rules (an empty list too, which lifts an old set). */
  agentConnected(nodeId: string): void {
    this.#components.links.send(nodeId, this.rulesFor(nodeId));
  }

  /** An agent's firewall denied `deniedCount` connections or requests. */
  agentReported(nodeId: string, message: FirewallDeniedMessage): void {
    const { events, metrics, logger } = this.#components;
    metrics.firewallDenials.inc({ node: nodeId, listener: message.listener }, message.deniedCount);
    const source =
      message.peerNodeId === null ? `ip:${message.remoteAddress}` : `node:${message.peerNodeId}`;
    const target =
      message.listener === "service-proxy"
        ? `the proxy of ${message.service ?? "?"} (port ${message.localPort})`
        : `the agent API (port ${message.localPort}${message.path === null ? "" : `, ${message.path}`})`;
    const details =
      `rule ${message.ruleIndex} denied ${source} at ${target}` +
      (message.deniedCount > 1 ? `; ${message.deniedCount} denials since the last report` : "");
    logger.info({ node: nodeId, source, rule: message.ruleIndex }, "firewall denied");
    events.publish({
      type: "firewall.denied",
      node: nodeId,
      source,
      atMs: message.atMs,
      // A signed node refused by rule is a peer of the fleet acting out of policy; an address
      // knocking on a closed listener is background noise of any network.
      severity: message.peerNodeId === null ? "low" : "medium",
      details,
      count: message.deniedCount,
    });
  }
}
