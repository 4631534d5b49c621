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
});
