import { describe, expect, it } from "vitest";
import type { TokenClaims } from "../core/security/token-claims.ts";
import { LiveSessions } from "./live-sessions.ts";

const claims = (sub: string, jti: string): TokenClaims => ({
  kind: "node",
  sub,
  roles: ["node"],
  jti,
  iat: 1,
  nbf: 1,
  exp: 2,
  aud: "edgeward",
  iss: "edgeward",
});

describe("LiveSessions", () => {
  it("closes exactly the sessions whose credential is revoked, once", () => {
    const revoked = new Set<string>();
    const sessions = new LiveSessions((held) => revoked.has(held.jti));
    const closed: string[] = [];
    sessions.hold(claims("edge-1", "a"), () => closed.push("a"));
    const releaseB = sessions.hold(claims("edge-2", "b"), () => closed.push("b"));
    sessions.hold(claims("edge-3", "c"), () => closed.push("c"));

    revoked.add("a");
    expect(sessions.closeRevoked()).toBe(1);
    expect(sessions.closeRevoked()).toBe(0);
    releaseB();
    revoked.add("b");
    expect(sessions.closeRevoked()).toBe(0);
    expect(closed).toEqual(["a"]);
    expect(sessions.size).toBe(1);
  });

  it("closes at once a session whose credential was revoked before it was held", () => {
    const sessions = new LiveSessions(() => true);
    let closed = 0;
    sessions.hold(claims("edge-1", "a"), () => (closed += 1));
    expect(closed).toBe(1);
    expect(sessions.size).toBe(0);
  });
});
