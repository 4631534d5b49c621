// The real Clock: the system's wall clock and Node timers.

import type { Clock } from "../ports/clock.ts";

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  schedule: (delayMs, callback) => {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};
