// Firewall decision cost: what one accepted connection pays in decideConnection, for the
// industrial example's rules and for rule lists up to the spec's maximum (1,024) that the
// client's address does not match (the worst case: every rule is tried).
// Usage: tsx bench/firewall/run.ts; writes bench/results/firewall.json.

import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import {
  compileFirewallRules,
  decideConnection,
  type FirewallRule,
} from "../../src/core/security/firewall.ts";

const facts = { remoteAddress: "::ffff:192.168.1.20", localPort: 7400, service: null };

/** `count` rules alternating IPv4 and IPv6 blocks, none holding the client's address. */
function missingRules(count: number): FirewallRule[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    action: "deny" as const,
    from: {
      cidr: index % 2 === 0 ? `fd00:${index.toString(16)}::/32` : `10.${index % 256}.0.0/16`,
    },
    to: {},
  }));
}

const exampleRules: FirewallRule[] = [
  {
    index: 0,
    action: "deny",
    from: { cidr: "192.168.1.0/24" },
    to: { service: "quality_control" },
  },
  { index: 1, action: "allow", from: { cidr: "127.0.0.0/8" }, to: {} },
  { index: 2, action: "allow", from: { cidr: "::1/128" }, to: {} },
  { index: 3, action: "allow", from: { cidr: "192.168.1.0/24" }, to: {} },
  { index: 4, action: "deny", from: {}, to: {} },
];

function measure(name: string, rules: FirewallRule[]) {
  const compiled = compileFirewallRules(rules);
  const iterations = Math.max(1_000, Math.floor(2_000_000 / Math.max(1, rules.length)));
  for (let warmup = 0; warmup < iterations / 10; warmup += 1) decideConnection(compiled, facts);
  const startedAt = performance.now();
  for (let round = 0; round < iterations; round += 1) decideConnection(compiled, facts);
  const microsecondsPerDecision = ((performance.now() - startedAt) * 1_000) / iterations;
  console.log(`${name}: ${microsecondsPerDecision.toFixed(2)} µs per connection`);
  return { name, rules: rules.length, iterations, microsecondsPerDecision };
}

const results = [
  measure("industrial example (match at rule 3)", exampleRules),
  measure("64 rules, no match", missingRules(64)),
  measure("1024 rules, no match", missingRules(1_024)),
];
writeFileSync(
  new URL("../results/firewall.json", import.meta.url),
  `${JSON.stringify({ node: process.version, facts, results }, null, 2)}\n`,
);
