// Rotates a keyring when its policy says so: checked at start and on a Clock timer. Timers
// never wait longer than rotationCheckIntervalMsMax, so a clock that jumps still rotates soon.

import { rotationDue } from "../../core/security/key-rotation.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";

export const rotationCheckIntervalMsMax = 6 * 3_600_000;

export interface KeyRotationScheduleComponents {
  clock: Clock;
  logger: Logger;
  /** When the newest data key was made. */
  newestKeyCreatedAtMs: () => number;
  /** Rotates every key of the data dir; a throw is logged and retried at the next check. */
  rotate: (nowMs: number) => void;
}

/** Checks now (rotating when due) and then on a timer until the returned cancel is called. */
export function startKeyRotationSchedule(
  intervalMs: number,
  components: KeyRotationScheduleComponents,
): CancelTimer {
  const { clock, logger } = components;
  let cancelTimer: CancelTimer = () => {};
  let cancelled = false;
  const check = () => {
    if (cancelled) return;
    const nowMs = clock.nowMs();
    let due = rotationDue(components.newestKeyCreatedAtMs(), intervalMs, nowMs);
    if (due.due) {
      try {
        components.rotate(nowMs);
      } catch (error) {
        logger.error({ err: (error as Error).message }, "key rotation failed; retrying later");
      }
      due = rotationDue(components.newestKeyCreatedAtMs(), intervalMs, nowMs);
    }
    const waitMs = due.due ? rotationCheckIntervalMsMax : due.inMs;
    cancelTimer = clock.schedule(
      Math.min(Math.max(waitMs, 1_000), rotationCheckIntervalMsMax),
      check,
    );
  };
  check();
  return () => {
    cancelled = true;
    cancelTimer();
  };
}
