// Test-only faults on the agent's heartbeat transport: drop a fraction of heartbeats, delay
// the rest with jitter. Off unless the operator passes --enable-fault-injection, because a
// production agent must never lose its own heartbeats on purpose.

import type { Random } from "../ports/random.ts";

export interface FaultInjection {
  /** Fraction of heartbeats silently dropped, in [0, 1). */
  readonly heartbeatLossFraction: number;
  /** Fixed delay added to every heartbeat. */
  readonly delayMs: number;
  /** Extra delay drawn uniformly from [0, jitterMs). */
  readonly jitterMs: number;
}

export const noFaults: FaultInjection = { heartbeatLossFraction: 0, delayMs: 0, jitterMs: 0 };

/** What to do with the next heartbeat: drop it, or send it after `delayMs`. */
export type FaultDecision =
  { readonly drop: true } | { readonly drop: false; readonly delayMs: number };

export function decideFault(faults: FaultInjection, random: Random): FaultDecision {
  if (faults.heartbeatLossFraction > 0 && random.nextFloat() < faults.heartbeatLossFraction)
    return { drop: true };
  const jitterMs = faults.jitterMs > 0 ? random.nextFloat() * faults.jitterMs : 0;
  return { drop: false, delayMs: faults.delayMs + jitterMs };
}
