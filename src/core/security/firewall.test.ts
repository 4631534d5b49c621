import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileFirewallRules,
  decideConnection,
  decideRequest,
  FirewallRuleError,
  type ConnectionFacts,
  type FirewallRule,
  type PeerFacts,
} from "./firewall.ts";
import { cidrContains, parseCidr, parseIpAddress } from "./ip-address.ts";

describe("parseIpAddress and cidrContains", () => {
  const cases: [cidr: string, address: string, contained: boolean][] = [
    ["127.0.0.0/8", "127.0.0.1", true],
    ["127.0.0.0/8", "127.255.255.255", true],
    ["127.0.0.0/8", "128.0.0.1", false],
    ["127.0.0.0/8", "::ffff:127.0.0.1", true],
    ["127.0.0.0/8", "::FFFF:7f00:1", true],
    ["127.0.0.0/8", "::1", false],
    ["192.168.1.0/24", "192.168.1.77", true],
    ["192.168.1.0/24", "192.168.2.1", false],
    ["192.168.1.7/32", "192.168.1.7", true],
    ["192.168.1.7/32", "192.168.1.8", false],
    ["0.0.0.0/0", "8.8.8.8", true],
    ["0.0.0.0/0", "2001:db8::1", false],
    ["::/0", "2001:db8::1", true],
    ["::/0", "10.1.2.3", true],
    ["::1/128", "::1", true],
    ["::1/128", "0:0:0:0:0:0:0:1", true],
    ["::1/128", "::2", false],
    ["fd00::/8", "fd12:3456::9", true],
    ["fd00::/8", "fe80::1", false],
    ["fe80::/10", "fe80::1%eth0", true],
    ["2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["2001:db8::/32", "2001:db9::", false],
    ["::ffff:10.0.0.0/104", "10.9.9.9", true],
    ["::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true],
    ["::ffff:10.0.0.0/104", "11.0.0.1", false],
    ["10.0.0.0/8", "10.0.0.1.5", false],
    ["10.0.0.0/8", "not an address", false],
  ];
  it.each(cases)("%s contains %s: %s", (cidr, address, contained) => {
    const block = parseCidr(cidr);
    expect(block).toBeDefined();
    const parsed = parseIpAddress(address);
    expect(parsed !== undefined && block !== undefined && cidrContains(block, parsed)).toBe(
      contained,
    );
  });

  it.each([
    "10.0.0.0",
    "10.0.0.0/33",
    "256.0.0.0/8",
    "01.0.0.0/8",
    "::/129",
    "1:2:3:4:5:6:7:8:9/64",
    "1::2::3/64",
    "10.0.0.0/08",
    "g::/16",
  ])("%s is not a CIDR block", (text) => expect(parseCidr(text)).toBeUndefined());

  it("parses an IPv4 address the same whether plain or IPv4-mapped", () => {
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), (octets) => {
        const plain = octets.join(".");
        expect(parseIpAddress(`::ffff:${plain}`)).toEqual(parseIpAddress(plain));
      }),
    );
  });

  it("an address is in a block exactly when its first prefixLength bits equal the block's", () => {
    const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
    const text6 = (groups: Uint8Array) =>
      Array.from({ length: 8 }, (_, index) =>
        (((groups[2 * index] ?? 0) << 8) | (groups[2 * index + 1] ?? 0)).toString(16),
      ).join(":");
    const bitString = (data: Uint8Array) =>
      Array.from(data, (byte) => byte.toString(2).padStart(8, "0")).join("");
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(fc.constant(4 as const), bytes(4), bytes(4), fc.integer({ min: 0, max: 32 })),
          fc.tuple(fc.constant(6 as const), bytes(16), bytes(16), fc.integer({ min: 0, max: 128 })),
        ),
        ([family, network, address, prefixLength]) => {
          const render = family === 4 ? (data: Uint8Array) => data.join(".") : text6;
          const block = parseCidr(`${render(network)}/${prefixLength}`);
          const parsed = parseIpAddress(render(address));
          if (block === undefined || parsed === undefined) return false;
          // A v6 address in ::ffff:0:0/96 parses as IPv4; compare it in its mapped form.
          const expected =
            bitString(network).slice(0, prefixLength) === bitString(address).slice(0, prefixLength);
          expect(cidrContains(block, parsed)).toBe(expected);
          return true;
        },
      ),
    );
  });
});

const api = (remoteAddress: string, localPort = 7400): ConnectionFacts => ({
  remoteAddress,
  localPort,
  service: null,
});
const proxy = (
  service: string,
  remoteAddress = "127.0.0.1",
  localPort = 9000,
): ConnectionFacts => ({
  remoteAddress,
  localPort,
  service,
});
const peer = (nodeId: string): PeerFacts => ({ nodeId, roles: ["node"] });

function rules(...list: Omit<FirewallRule, "index">[]) {
  return compileFirewallRules(list.map((rule, index) => ({ ...rule, index })));
}

describe("decideConnection and decideRequest", () => {
  const documentRules = rules(
    { action: "allow", from: { cidr: "127.0.0.0/8" }, to: {} },
    { action: "allow", from: { cidr: "192.168.1.0/24" }, to: {} },
    { action: "deny", from: {}, to: {} },
  );

  const connectionCases: [
    name: string,
    list: ReturnType<typeof rules>,
    facts: ConnectionFacts,
    expected: boolean | "per-request",
    ruleIndex?: number,
  ][] = [
    ["no rules allow everything", rules(), api("10.0.0.1"), true],
    ["loopback is allowed by the documents' rules", documentRules, api("127.0.0.1"), true, 0],
    ["IPv4-mapped loopback too", documentRules, api("::ffff:127.0.0.1"), true, 0],
    ["the factory network too", documentRules, api("192.168.1.20"), true, 1],
    ["anything else is denied", documentRules, api("10.0.0.1"), false, 2],
    ["IPv6 loopback is not 127.0.0.0/8", documentRules, api("::1"), false, 2],
    [
      "a port rule guards that port only",
      rules({ action: "deny", from: {}, to: { port: 7400 } }),
      api("127.0.0.1", 7401),
      true,
    ],
    [
      "a port rule denies its port",
      rules({ action: "deny", from: {}, to: { port: 7400 } }),
      api("127.0.0.1", 7400),
      false,
      0,
    ],
    [
      "a service rule guards that service's proxy",
      rules({ action: "deny", from: { cidr: "127.0.0.0/8" }, to: { service: "db" } }),
      proxy("db"),
      false,
      0,
    ],
    [
      "a service rule does not guard another proxy",
      rules({ action: "deny", from: {}, to: { service: "db" } }),
      proxy("web"),
      true,
    ],
    [
      "a service rule does not guard the agent API",
      rules({ action: "deny", from: {}, to: { service: "db" } }),
      api("127.0.0.1"),
      true,
    ],
    [
      "a node rule first waits for the request",
      rules(
        { action: "allow", from: { node: "node-a" }, to: {} },
        { action: "deny", from: {}, to: {} },
      ),
      api("127.0.0.1"),
      "per-request",
    ],
    [
      "a node rule behind a matching CIDR rule never matters",
      rules(
        { action: "allow", from: { cidr: "127.0.0.0/8" }, to: {} },
        { action: "deny", from: { node: "node-a" }, to: {} },
      ),
      api("127.0.0.1"),
      true,
      0,
    ],
    [
      "a node rule whose CIDR does not match is skipped at once",
      rules(
        { action: "allow", from: { node: "node-a", cidr: "10.0.0.0/8" }, to: {} },
        { action: "deny", from: {}, to: {} },
      ),
      api("127.0.0.1"),
      false,
      1,
    ],
  ];
  it.each(connectionCases)("%s", (_name, list, facts, expected, ruleIndex) => {
    const decision = decideConnection(list, facts);
    expect(decision.allowed).toBe(expected);
    if (decision.allowed !== "per-request") expect(decision.rule?.index).toBe(ruleIndex);
  });

  const onlyNodeA = rules(
    { action: "allow", from: { node: "node-a" }, to: {} },
    { action: "deny", from: { role: "node" }, to: { port: 7400 } },
    { action: "deny", from: {}, to: {} },
  );
  const requestCases: [
    name: string,
    sender: PeerFacts,
    port: number,
    allowed: boolean,
    rule: number,
  ][] = [
    ["the named node passes", peer("node-a"), 7400, true, 0],
    ["another node is denied by the role rule", peer("node-b"), 7400, false, 1],
    ["another node on another port falls to the last rule", peer("node-b"), 7401, false, 2],
    ["an unsigned request matches no node or role rule", null, 7400, false, 2],
  ];
  it.each(requestCases)("%s", (_name, sender, port, allowed, ruleIndex) => {
    const decision = decideRequest(onlyNodeA, api("127.0.0.1", port), sender);
    expect(decision.allowed).toBe(allowed);
    expect(decision.rule?.index).toBe(ruleIndex);
  });

  it("refuses a rule with a bad CIDR, naming it", () => {
    expect(() =>
      compileFirewallRules([{ index: 3, action: "deny", from: { cidr: "10.0.0.0/99" }, to: {} }]),
    ).toThrow(new FirewallRuleError('firewall rule 3: "10.0.0.0/99" is not a CIDR block'));
  });

  it("agrees with decideRequest whenever the connection decision is final", () => {
    const ruleArbitrary = fc.record({
      action: fc.constantFrom("allow" as const, "deny" as const),
      from: fc.record(
        {
          node: fc.constantFrom("node-a", "node-b"),
          role: fc.constant("node"),
          cidr: fc.constantFrom("127.0.0.0/8", "10.0.0.0/8", "::1/128", "::/0"),
        },
        { requiredKeys: [] },
      ),
      to: fc.record(
        { service: fc.constantFrom("db", "web"), port: fc.constantFrom(7400, 9000) },
        { requiredKeys: [] },
      ),
    });
    fc.assert(
      fc.property(
        fc.array(ruleArbitrary, { maxLength: 6 }),
        fc.constantFrom("127.0.0.1", "::ffff:10.1.1.1", "::1", "2001:db8::5"),
        fc.constantFrom(7400, 9000),
        fc.constantFrom(null, "db", "web"),
        fc.constantFrom(null, peer("node-a"), peer("node-b")),
        (list, remoteAddress, localPort, service, sender) => {
          const compiled = rules(...list);
          const facts = { remoteAddress, localPort, service };
          const atAccept = decideConnection(compiled, facts);
          const perRequest = decideRequest(compiled, facts, sender);
          if (atAccept.allowed === "per-request") return;
          expect(perRequest).toEqual(atAccept);
        },
      ),
    );
  });
});
