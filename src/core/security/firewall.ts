// The firewall's decision (ADR 0006, "Firewall"): the fleet spec's rules, in order, first match
// wins, a connection no rule matches is allowed. An agent decides twice: when a connection is
// accepted it knows the client's address and which listener (port, service) was reached, so
// rules on those alone decide before a byte is read; a rule that also names a node or a role
// needs the request's verified signature, so such a connection is decided per request.

import {
  cidrContains,
  parseCidr,
  parseIpAddress,
  type CidrBlock,
  type IpAddress,
} from "./ip-address.ts";

export type FirewallAction = "allow" | "deny";

/** A rule as the server pushes it to the agents it applies to. */
export interface FirewallRule {
  /** Position of the rule in the spec's security.network.firewall, for reports. */
  readonly index: number;
  readonly action: FirewallAction;
  readonly from: { readonly node?: string; readonly role?: string; readonly cidr?: string };
  readonly to: { readonly service?: string; readonly port?: number };
}

/** A rule with its CIDR block parsed once. */
export interface CompiledFirewallRule {
  readonly rule: FirewallRule;
  readonly block: CidrBlock | undefined;
}

/** What is known when a connection is accepted. */
export interface ConnectionFacts {
  /** The client's address as the socket reports it. */
  readonly remoteAddress: string;
  /** The local port the client connected to. */
  readonly localPort: number;
  /** The service whose forwarding proxy this listener is; null for the agent's own API. */
  readonly service: string | null;
}

/** The sender of a request whose signature was verified; null for an unsigned request. */
export type PeerFacts = { readonly nodeId: string; readonly roles: readonly string[] } | null;

export type FirewallDecision =
  | { readonly allowed: true; readonly rule: FirewallRule | undefined }
  | { readonly allowed: false; readonly rule: FirewallRule };

/** The connection decision: final, or wait for each request's verified sender. */
export type ConnectionDecision = FirewallDecision | { readonly allowed: "per-request" };

export class FirewallRuleError extends Error {
  override readonly name = "FirewallRuleError";
}

/** Parses every rule's CIDR block; throws FirewallRuleError naming the first bad rule. */
export function compileFirewallRules(rules: readonly FirewallRule[]): CompiledFirewallRule[] {
  return rules.map((rule) => {
    if (rule.from.cidr === undefined) return { rule, block: undefined };
    const block = parseCidr(rule.from.cidr);
    if (block === undefined)
      throw new FirewallRuleError(
        `firewall rule ${rule.index}: ${JSON.stringify(rule.from.cidr)} is not a CIDR block`,
      );
    return { rule, block };
  });
}

const needsPeer = (rule: FirewallRule): boolean =>
  rule.from.node !== undefined || rule.from.role !== undefined;

/** The client's address, parsed at most once per decision. */
function addressOf(facts: ConnectionFacts): () => IpAddress | undefined {
  let parsed: IpAddress | undefined | null = null;
  return () => {
    if (parsed === null) parsed = parseIpAddress(facts.remoteAddress);
    return parsed;
  };
}

/** Whether the address, port and service of `facts` match the rule (its peer fields aside). */
function matchesConnection(
  compiled: CompiledFirewallRule,
  facts: ConnectionFacts,
  address: () => IpAddress | undefined,
): boolean {
  const { rule, block } = compiled;
  if (rule.to.port !== undefined && rule.to.port !== facts.localPort) return false;
  if (rule.to.service !== undefined && rule.to.service !== facts.service) return false;
  if (block === undefined) return true;
  const client = address();
  // An address the socket could not tell is in no block: it matches no CIDR rule.
  return client !== undefined && cidrContains(block, client);
}

function matchesPeer(rule: FirewallRule, peer: PeerFacts): boolean {
  if (!needsPeer(rule)) return true;
  if (peer === null) return false;
  if (rule.from.node !== undefined && rule.from.node !== peer.nodeId) return false;
  return rule.from.role === undefined || peer.roles.includes(rule.from.role);
}

const decided = (rule: FirewallRule | undefined): FirewallDecision =>
  rule === undefined || rule.action === "allow"
    ? { allowed: true, rule }
    : { allowed: false, rule };

/**
 * Decides at accept time. The first rule whose address, port and service match decides, unless
 * it names a node or role: then only the request's verified sender can tell whether it or a
 * later rule applies ("per-request").
 */
export function decideConnection(
  rules: readonly CompiledFirewallRule[],
  facts: ConnectionFacts,
): ConnectionDecision {
  const address = addressOf(facts);
  for (const compiled of rules) {
    if (!matchesConnection(compiled, facts, address)) continue;
    if (needsPeer(compiled.rule)) return { allowed: "per-request" };
    return decided(compiled.rule);
  }
  return decided(undefined);
}

/**
 * Decides one request of a connection. A rule naming a node or role matches only a request
 * signed by that node (or a node whose credential carries that role): an unsigned request
 * matches none of them.
 */
export function decideRequest(
  rules: readonly CompiledFirewallRule[],
  facts: ConnectionFacts,
  peer: PeerFacts,
): FirewallDecision {
  const address = addressOf(facts);
  for (const compiled of rules) {
    if (matchesConnection(compiled, facts, address) && matchesPeer(compiled.rule, peer))
      return decided(compiled.rule);
  }
  return decided(undefined);
}
