// Durations on the command line: "90s", "10m", "1h", "1h30m", or plain seconds.

export class InvalidDurationError extends Error {
  override readonly name = "InvalidDurationError";
}

/** Longest simulated run accepted (a week of virtual time). */
export const simulatedDurationMsMax = 7 * 24 * 3_600_000;

const unitMs: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  let totalMs = 0;
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    totalMs = Number(trimmed) * 1_000;
  } else {
    const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
    if (parts.length === 0 || parts.map((part) => part[0]).join("") !== trimmed) {
      throw new InvalidDurationError(`"${text}" is not a duration; use e.g. 90s, 10m, 1h or 1h30m`);
    }
    for (const part of parts) totalMs += Number(part[1]) * (unitMs[part[2] ?? "s"] ?? 1_000);
  }
  if (!(totalMs > 0) || totalMs > simulatedDurationMsMax) {
    throw new InvalidDurationError(`duration must be above 0 and at most 7d, got "${text}"`);
  }
  return totalMs;
}
