import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DeadlineQueue } from "./deadline-queue.ts";
import { detectorPresets } from "./detector-options.ts";
import { Membership, type MembershipEffect } from "./membership.ts";
import { NodeStatus } from "./node-status.ts";

describe("DeadlineQueue", () => {
  it("pops in deadline order", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true })), (deadlines) => {
        const queue = new DeadlineQueue<number>();
        deadlines.forEach((deadline) => queue.push(deadline, deadline));
        const popped: number[] = [];
        while (queue.size > 0) popped.push(queue.pop() ?? Number.NaN);
        expect(popped).toEqual([...deadlines].sort((left, right) => left - right));
        expect(queue.peekMs()).toBe(Number.POSITIVE_INFINITY);
      }),
    );
  });
});

describe("Membership.tick evaluates only what is due", () => {
  // Oracle independent of the deadline queue: a HEALTHY node must turn DEGRADED at the first
  // tick at which its phi (from `view`) has reached suspectPhi — also when its history just
  // changed its deadline, earlier or later.
  it("suspects every node at the first tick its phi crosses the threshold", () => {
    const options = detectorPresets.lan;
    const tickMs = 10;
    const nodeGaps = fc.array(fc.integer({ min: 20, max: 900 }), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(fc.array(nodeGaps, { minLength: 1, maxLength: 4 }), (gapsPerNode) => {
        const effects: MembershipEffect[] = [];
        const membership = new Membership(options, 0, (effect) => effects.push(effect));
        const startMs = options.startupGraceMs;
        const beats: { atMs: number; nodeId: string }[] = [];
        gapsPerNode.forEach((gaps, index) => {
          const nodeId = `node-${index}`;
          membership.register(nodeId, startMs, { probeable: true });
          let atMs = startMs;
          for (const gapMs of gaps) {
            atMs += gapMs;
            beats.push({ atMs, nodeId });
          }
        });
        beats.sort((left, right) => left.atMs - right.atMs);
        const lastMs = (beats.at(-1)?.atMs ?? startMs) + 5_000;
        const expectedSuspicionMs = new Map<string, number>();
        let next = 0;
        for (let atMs = startMs + tickMs; atMs <= lastMs; atMs += tickMs) {
          while (next < beats.length && (beats[next]?.atMs ?? Infinity) <= atMs) {
            const beat = beats[next];
            if (beat !== undefined) membership.heartbeat(beat.nodeId, beat.atMs);
            next += 1;
          }
          for (const nodeId of membership.nodeIds()) {
            const view = membership.view(nodeId, atMs);
            if (view?.status === NodeStatus.healthy && (view.phi ?? 0) >= options.suspectPhi) {
              if (!expectedSuspicionMs.has(nodeId)) expectedSuspicionMs.set(nodeId, atMs);
            }
          }
          membership.tick(atMs);
          // Answer every probe at once, so only suspicion (not conviction) is in play.
          for (const effect of effects.splice(0)) {
            if (effect.type === "probe") membership.probeAnswered(effect.nodeId, "alive", atMs);
            if (effect.type === "transition" && effect.to === NodeStatus.degraded) {
              const expectedMs = expectedSuspicionMs.get(effect.nodeId);
              // phi and the deadline may round apart at the boundary: one tick of slack.
              expect(Math.abs((expectedMs ?? -Infinity) - effect.atMs)).toBeLessThanOrEqual(tickMs);
              expectedSuspicionMs.delete(effect.nodeId);
            }
          }
          for (const expectedMs of expectedSuspicionMs.values()) {
            expect(
              atMs - expectedMs,
              "a node overdue for a tick is still HEALTHY",
            ).toBeLessThanOrEqual(tickMs);
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
