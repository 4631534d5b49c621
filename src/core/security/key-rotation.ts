// When keys are due for rotation: the spec's `security.encryption.keyRotation` (weekly,
// monthly, Nd, Nh) as an interval, and the next due time from the newest key's creation.

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

/** `monthly` is 30 days: rotation needs a fixed interval, not a calendar month. */
export const keyRotationNamedIntervalsMs = { weekly: 7 * dayMs, monthly: 30 * dayMs } as const;
/** The spec's default policy. */
export const keyRotationDefault = "monthly";
/** A rotation policy shorter than this is refused: every rotation re-seals every secret file. */
export const keyRotationIntervalMsMin = hourMs;

export class KeyRotationPolicyError extends Error {
  override readonly name = "KeyRotationPolicyError";
}

/** The interval of a keyRotation policy text, or a KeyRotationPolicyError saying what is accepted. */
export function keyRotationIntervalMs(policy: string): number {
  if (policy === "weekly" || policy === "monthly") return keyRotationNamedIntervalsMs[policy];
  const match = /^([1-9]\d{0,4})([hd])$/.exec(policy);
  if (match === null)
    throw new KeyRotationPolicyError(
      `key rotation "${policy.slice(0, 40)}": expected weekly, monthly or a duration such as 90d or 12h`,
    );
  const intervalMs = Number(match[1]) * (match[2] === "h" ? hourMs : dayMs);
  if (intervalMs < keyRotationIntervalMsMin)
    throw new KeyRotationPolicyError(`key rotation "${policy}" is shorter than an hour`);
  return intervalMs;
}

export interface RotationDue {
  readonly dueAtMs: number;
  readonly due: boolean;
  /** How long until it is due (0 when due). */
  readonly inMs: number;
}

/** The newest key is due for replacement `intervalMs` after it was created. */
export function rotationDue(
  newestKeyCreatedAtMs: number,
  intervalMs: number,
  nowMs: number,
): RotationDue {
  const dueAtMs = newestKeyCreatedAtMs + intervalMs;
  return { dueAtMs, due: nowMs >= dueAtMs, inMs: Math.max(0, dueAtMs - nowMs) };
}
