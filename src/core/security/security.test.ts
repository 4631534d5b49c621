import { describe, expect, it } from "vitest";
import {
  builtinAccessRules,
  createAccessPolicy,
  decideAccess,
  decideObjectAccess,
  type AccessAction,
  type Principal,
} from "./access-policy.ts";
import { IntrusionDetector, intrusionDetectorDefaults } from "./intrusion-detector.ts";
import { NonceCache } from "./nonce-cache.ts";
import { RateLimiter } from "./rate-limit.ts";
import { checkClaims, renewAtMs, type ClaimsRejection } from "./token-claims.ts";

const user = (...roles: string[]): Principal => ({ kind: "user", subject: "ana", roles });
const node = (subject: string): Principal => ({ kind: "node", subject, roles: ["node"] });

describe("access policy", () => {
  const policy = createAccessPolicy([
    ...builtinAccessRules,
    {
      resource: "production_data",
      roles: ["production_manager", "quality_engineer"],
      access: "read_write",
    },
    { resource: "configuration_data", roles: ["system_admin"], access: "admin" },
  ]);

  it.each<[string, Principal, string, AccessAction, boolean]>([
    ["admin may do anything", user("admin"), "tokens", "admin", true],
    ["admin even on unknown resources", user("admin"), "whatever", "write", true],
    ["viewer reads nodes", user("viewer"), "nodes", "read", true],
    ["viewer may not write nodes", user("viewer"), "nodes", "write", false],
    ["operator fails over services", user("operator"), "services", "write", true],
    ["operator may not delete nodes", user("operator"), "nodes", "admin", false],
    ["operator may not issue tokens", user("operator"), "tokens", "admin", false],
    ["no roles, no access", user(), "nodes", "read", false],
    ["unknown resource is denied", user("viewer"), "secrets", "read", false],
    [
      "spec rule: read_write allows read",
      user("quality_engineer"),
      "production_data",
      "read",
      true,
    ],
    [
      "spec rule: read_write allows write",
      user("production_manager"),
      "production_data",
      "write",
      true,
    ],
    [
      "spec rule: read_write is not admin",
      user("production_manager"),
      "production_data",
      "admin",
      false,
    ],
    [
      "spec rule: other resource denied",
      user("quality_engineer"),
      "configuration_data",
      "read",
      false,
    ],
    [
      "spec rule: admin level allows admin",
      user("system_admin"),
      "configuration_data",
      "admin",
      true,
    ],
    ["node writes nodes", node("edge-1"), "nodes", "write", true],
    ["node may not read services", node("edge-1"), "services", "read", false],
    ["a user cannot claim the node role", user("node"), "nodes", "write", false],
  ])("%s", (_name, principal, resource, action, allowed) => {
    expect(decideAccess(policy, principal, resource, action).allowed).toBe(allowed);
  });

  it.each<[string, Principal, string, boolean]>([
    ["a node acts as itself", node("edge-1"), "edge-1", true],
    ["a node may not act as another", node("edge-1"), "edge-2", false],
    ["a user's object access is up to its roles", user("operator"), "edge-2", true],
  ])("per object: %s", (_name, principal, nodeId, allowed) => {
    expect(decideObjectAccess(principal, { kind: "node", nodeId }).allowed).toBe(allowed);
  });

  it("knows the roles of rules and built-ins", () => {
    expect(policy.roles.has("quality_engineer")).toBe(true);
    expect(policy.roles.has("admin")).toBe(true);
    expect(policy.roles.has("janitor")).toBe(false);
  });
});

describe("token claims", () => {
  const nowMs = 1_800_000_000_000;
  const nowS = nowMs / 1_000;
  const valid = {
    kind: "user",
    sub: "ana",
    roles: ["viewer"],
    jti: "t1",
    iat: nowS - 100,
    nbf: nowS - 100,
    exp: nowS + 3_600,
    aud: "edgeward",
    iss: "edgeward-server",
  };
  const expectation = {
    audience: "edgeward",
    issuer: "edgeward-server",
    kinds: ["user", "node"] as const,
    nowMs,
    skewMs: 30_000,
  };

  it("accepts valid claims", () => {
    const check = checkClaims(valid, expectation);
    expect(check.ok).toBe(true);
  });

  it.each<[string, unknown, ClaimsRejection]>([
    ["not an object", "token", "malformed"],
    ["null", null, "malformed"],
    ["unknown kind", { ...valid, kind: "root" }, "malformed"],
    ["missing jti", { ...valid, jti: undefined }, "malformed"],
    ["roles not a list", { ...valid, roles: "admin" }, "malformed"],
    ["fractional exp", { ...valid, exp: nowS + 0.5 }, "malformed"],
    ["exp before iat", { ...valid, iat: nowS, nbf: nowS, exp: nowS - 1_000 }, "expired"],
    ["other audience", { ...valid, aud: "grafana" }, "wrong_audience"],
    ["other issuer", { ...valid, iss: "someone-else" }, "wrong_issuer"],
    ["join token used as a credential", { ...valid, kind: "join" }, "wrong_kind"],
    ["expired beyond the skew", { ...valid, exp: nowS - 31 }, "expired"],
    ["not yet valid beyond the skew", { ...valid, nbf: nowS + 31 }, "not_yet_valid"],
    ["issued in the future", { ...valid, iat: nowS + 60, nbf: nowS }, "issued_in_future"],
  ])("rejects %s", (_name, payload, rejection) => {
    const check = checkClaims(payload, expectation);
    expect(check.ok ? "ok" : check.rejection).toBe(rejection);
  });

  it.each([
    ["expired within the skew", { ...valid, exp: nowS - 29 }],
    ["not yet valid within the skew", { ...valid, nbf: nowS + 29 }],
  ])("tolerates %s", (_name, payload) => {
    expect(checkClaims(payload, expectation).ok).toBe(true);
  });

  it("renews at two thirds of the life", () => {
    expect(renewAtMs(0, 24 * 3_600_000)).toBe(16 * 3_600_000);
  });
});

describe("nonce cache", () => {
  it("accepts a nonce once, refuses stale and replayed ones, forgets after the window", () => {
    const cache = new NonceCache({ windowMs: 1_000, noncesMax: 10 }, 0);
    expect(cache.check("a", 5_000, 5_000)).toEqual({ accepted: true });
    expect(cache.check("a", 5_000, 5_100)).toEqual({ accepted: false, reason: "replay" });
    expect(cache.check("b", 3_000, 5_100)).toEqual({ accepted: false, reason: "stale" });
    expect(cache.check("c", 7_000, 5_100)).toEqual({ accepted: false, reason: "stale" });
    expect(cache.check("", 5_000, 5_100)).toEqual({ accepted: false, reason: "malformed" });
    // After the window "a" could not pass the freshness check anyway, so it is forgotten.
    expect(cache.check("d", 6_100, 6_100)).toEqual({ accepted: true });
    expect(cache.size).toBe(1);
  });

  it("refuses what was signed before it started: a restart forgets nonces, not freshness", () => {
    const restarted = new NonceCache({ windowMs: 1_000, noncesMax: 10 }, 5_000);
    expect(restarted.check("seen-by-the-old-process", 4_900, 5_050)).toEqual({
      accepted: false,
      reason: "stale",
    });
    expect(restarted.check("new", 5_000, 5_050)).toEqual({ accepted: true });
  });

  it("refuses new nonces when full instead of forgetting live ones", () => {
    const cache = new NonceCache({ windowMs: 1_000, noncesMax: 2 }, 0);
    expect(cache.check("a", 0, 0).accepted).toBe(true);
    expect(cache.check("b", 0, 0).accepted).toBe(true);
    expect(cache.check("c", 0, 0)).toEqual({ accepted: false, reason: "full" });
    expect(cache.check("a", 0, 10)).toEqual({ accepted: false, reason: "replay" });
  });
});

describe("rate limiter", () => {
  it("allows a burst, then the sustained rate, per client", () => {
    const limiter = new RateLimiter({ requestsPerSecond: 10, burst: 3, clientsMax: 100 });
    const outcomes = [0, 0, 0, 0].map(() => limiter.take("a", 0).allowed);
    expect(outcomes).toEqual([true, true, true, false]);
    expect(limiter.take("b", 0).allowed).toBe(true);
    expect(limiter.take("a", 50)).toEqual({ allowed: false, retryAfterMs: 50 });
    expect(limiter.take("a", 100).allowed).toBe(true);
    expect(limiter.take("a", 100).allowed).toBe(false);
  });

  it("tracks a bounded number of clients", () => {
    const limiter = new RateLimiter({ requestsPerSecond: 1, burst: 1, clientsMax: 2 });
    for (const client of ["a", "b", "c", "d"]) limiter.take(client, 0);
    expect(limiter.clients).toBe(2);
  });
});

describe("intrusion detector", () => {
  it("reports a failed-auth burst once per window and quarantines at the third report", () => {
    const detector = new IntrusionDetector({
      ...intrusionDetectorDefaults,
      failedAuthenticationsMax: 2,
    });
    const verdicts = [1, 2, 3, 4].map((at) => detector.failedAuthentication("ip:1", at));
    expect(verdicts.map((verdict) => verdict.report)).toEqual([false, false, true, false]);
    expect(detector.suspicious("ip:1", "bad_signature", 10)).toMatchObject({
      report: true,
      severity: "high",
      count: 2,
      quarantine: false,
    });
    expect(detector.suspicious("ip:1", "bad_signature", 20).report).toBe(false);
    expect(detector.suspicious("ip:1", "replay", 30)).toMatchObject({ count: 3, quarantine: true });
    expect(detector.isQuarantined("ip:1")).toBe(true);
    expect(detector.suspicious("ip:1", "impersonation", 40)).toMatchObject({ quarantine: false });
    detector.clear("ip:1");
    expect(detector.isQuarantined("ip:1")).toBe(false);
  });

  it("reports the same activity again after the window", () => {
    const detector = new IntrusionDetector({ ...intrusionDetectorDefaults, windowMs: 100 });
    expect(detector.suspicious("node:a", "replay", 0).report).toBe(true);
    expect(detector.suspicious("node:a", "replay", 99).report).toBe(false);
    expect(detector.suspicious("node:a", "replay", 100).report).toBe(true);
  });

  it("stays quiet when disabled and bounds its sources", () => {
    const disabled = new IntrusionDetector({ ...intrusionDetectorDefaults, enabled: false });
    expect(disabled.suspicious("x", "replay", 0).report).toBe(false);
    const small = new IntrusionDetector({
      ...intrusionDetectorDefaults,
      sourcesMax: 2,
      suspiciousActivityThreshold: 1,
    });
    small.suspicious("q", "replay", 0); // quarantined: never forgotten
    small.suspicious("a", "replay", 0);
    small.suspicious("b", "replay", 0);
    expect(small.isQuarantined("q")).toBe(true);
  });
});
