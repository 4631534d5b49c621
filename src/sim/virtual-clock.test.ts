import { describe, expect, it } from "vitest";
import { SeededRandom } from "./random.ts";
import { VirtualClock, type EventHandler } from "./virtual-clock.ts";

function recorder(clock: VirtualClock) {
  const seen: string[] = [];
  const handler: EventHandler = {
    handleEvent: (kind, first, second) => seen.push(`${clock.nowMs()}:${kind}:${first}:${second}`),
  };
  return { seen, handler };
}

describe("VirtualClock", () => {
  it("runs events in time order and ties in posting order", () => {
    const clock = new VirtualClock();
    const { seen, handler } = recorder(clock);
    clock.post(20, 1, 1, 0);
    clock.post(10, 1, 2, 0);
    clock.post(20, 1, 3, 0);
    clock.post(10, 2, 4, 0);
    expect(clock.runUntil(100, handler)).toBe(4);
    expect(seen).toEqual(["10:1:2:0", "10:2:4:0", "20:1:1:0", "20:1:3:0"]);
    expect(clock.nowMs()).toBe(100);
  });

  it("leaves later events pending and never runs time backwards", () => {
    const clock = new VirtualClock(1_000);
    const { seen, handler } = recorder(clock);
    clock.post(5_000, 1, 0, 0);
    clock.runUntil(2_000, handler);
    expect(seen).toEqual([]);
    clock.post(0, 1, 9, 0);
    clock.runUntil(6_000, handler);
    expect(seen).toEqual(["2000:1:9:0", "5000:1:0:0"]);
  });

  it("implements the Clock port: schedule, nested schedule and cancel", () => {
    const clock = new VirtualClock();
    const { handler } = recorder(clock);
    const fired: number[] = [];
    clock.schedule(100, () => {
      fired.push(clock.nowMs());
      clock.schedule(50, () => fired.push(clock.nowMs()));
    });
    const cancel = clock.schedule(120, () => fired.push(-1));
    cancel();
    clock.runUntil(1_000, handler);
    cancel();
    expect(fired).toEqual([100, 150]);
  });

  it("keeps (time, posting order) through growth with many random events", () => {
    const clock = new VirtualClock();
    const random = new SeededRandom(3);
    // Each event carries its posting number, so ties must come out in increasing numbers.
    let posted = 0;
    const post = (atMs: number) => {
      clock.post(atMs, 1, posted, 0);
      posted += 1;
    };
    let lastMs = -1;
    let lastNumber = -1;
    let ordered = true;
    const handler: EventHandler = {
      handleEvent: (_kind, number) => {
        const nowMs = clock.nowMs();
        if (nowMs < lastMs || (nowMs === lastMs && number < lastNumber)) ordered = false;
        lastMs = nowMs;
        lastNumber = number;
        // Keep the queue busy while draining, as the simulator does.
        if (posted < 10_000) post(nowMs + random.nextIndex(100));
      },
    };
    for (let index = 0; index < 5_000; index += 1) post(random.nextIndex(1_000));
    expect(clock.runUntil(10_000, handler)).toBe(10_000);
    expect(ordered).toBe(true);
  });

  it("matches a sorted reference across the calendar's horizon, gaps and fractional times", () => {
    const clock = new VirtualClock(0.25);
    const random = new SeededRandom(11);
    const expected: { atMs: number; number: number }[] = [];
    let posted = 0;
    const post = (atMs: number) => {
      const clampedMs = Math.max(atMs, clock.nowMs());
      clock.post(atMs, 1, posted, 0);
      expected.push({ atMs: clampedMs, number: posted });
      posted += 1;
    };
    const seen: { atMs: number; number: number }[] = [];
    const handler: EventHandler = {
      handleEvent: (_kind, number) => {
        const nowMs = clock.nowMs();
        seen.push({ atMs: nowMs, number });
        if (posted >= 20_000) return;
        // Near (same millisecond), within the ring, beyond it (16.4 s), and ties.
        const roll = random.nextIndex(4);
        if (roll === 0) post(nowMs + random.nextFloat());
        else if (roll === 1) post(nowMs + random.nextFloat() * 5_000);
        else if (roll === 2) post(nowMs + 16_000 + random.nextFloat() * 60_000);
        else post(nowMs);
      },
    };
    // A first batch spread over ten minutes, with long empty stretches between clusters.
    for (let index = 0; index < 2_000; index += 1) {
      post(random.nextIndex(10) * 60_000 + random.nextFloat() * 3);
    }
    // Run in slices, posting between them as a caller of runUntil would.
    for (let endMs = 0; endMs <= 2_000_000; endMs += 33_333.5) {
      clock.runUntil(endMs, handler);
      expect(clock.nowMs()).toBe(Math.max(endMs, 0.25));
      post(endMs - 5);
      post(endMs + 0.5);
    }
    clock.runUntil(Number.MAX_SAFE_INTEGER, handler);
    expected.sort((left, right) => left.atMs - right.atMs || left.number - right.number);
    expect(seen).toEqual(expected);
  });
});
