// Time as a port: the real runtime reads the system clock, the simulator a virtual one.
// Core code never reads time itself; it is handed `atMs` by whoever holds a Clock.

/** Cancels a scheduled callback; calling it twice is harmless. */
export type CancelTimer = () => void;

export interface Clock {
  /** Milliseconds since the Unix epoch (virtual in the simulator). */
  nowMs(): number;
  /** Runs `callback` once after `delayMs`. */
  schedule(delayMs: number, callback: () => void): CancelTimer;
}
