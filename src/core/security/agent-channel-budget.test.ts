import { describe, expect, it } from "vitest";
import { AgentChannelBudget, agentChannelBudgetDefaults } from "./agent-channel-budget.ts";
import { TokenBucket } from "./rate-limit.ts";

describe("token bucket", () => {
  it("starts full, refills continuously up to its burst, and says how long until the next token", () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, false]);
    expect(bucket.waitMs(0)).toBe(100);
    expect(bucket.waitMs(60)).toBe(40);
    expect(bucket.take(100)).toBe(true);
    // A long pause saves up no more than the burst.
    expect([bucket.take(10_000), bucket.take(10_000), bucket.take(10_000)]).toEqual([
      true,
      true,
      false,
    ]);
    expect(() => new TokenBucket(0, 1, 0)).toThrow(/positive rate/);
  });
});

describe("agent channel budget", () => {
  const { livenessPerSecondMax, otherPerSecondMax, messagesPerSecondCeiling } =
    agentChannelBudgetDefaults;

  it("keeps heartbeats admitted however much other traffic is dropped", () => {
    const budget = new AgentChannelBudget(agentChannelBudgetDefaults, 0);
    // A second of a flood of reports (150 of them, 5 heartbeats among them) from one agent.
    const admitted = { liveness: 0, other: 0 };
    for (let index = 0; index < 150; index += 1) {
      const atMs = (index * 1_000) / 150;
      expect(budget.arrived(atMs)).toBe(true);
      const kind = index % 30 === 0 ? "liveness" : "other";
      if (budget.admit(kind, atMs)) admitted[kind] += 1;
    }
    expect(admitted.liveness).toBe(5);
    expect(admitted.other).toBeGreaterThanOrEqual(otherPerSecondMax);
    expect(admitted.other).toBeLessThanOrEqual(2 * otherPerSecondMax);
  });

  it("drops liveness messages past their own budget (the admitted ones prove the node alive)", () => {
    const budget = new AgentChannelBudget(agentChannelBudgetDefaults, 0);
    const admitted = Array.from({ length: 2 * livenessPerSecondMax }, () =>
      budget.admit("liveness", 0),
    ).filter(Boolean).length;
    expect(admitted).toBe(livenessPerSecondMax);
    expect(budget.admit("other", 0)).toBe(true);
  });

  it("says close only past the ceiling, counted before parsing", () => {
    const budget = new AgentChannelBudget(agentChannelBudgetDefaults, 0);
    let arrived = 0;
    while (budget.arrived(0)) arrived += 1;
    expect(arrived).toBe(messagesPerSecondCeiling);
    expect(budget.arrived(1_000 / messagesPerSecondCeiling)).toBe(true);
  });
});
