// Schedules of the fleet spec (drills, backups): `weekly`, `monthly` or a 5-field cron
// expression, and when each next runs. Pure: callers hand in the time; all times are UTC.

import { textCharactersMax } from "../spec/schema-primitives.ts";
import { civilFromDays, daysFromCivil, type CivilDate } from "../time/civil-date.ts";

export type ScheduleErrorCode = "INVALID_SCHEDULE" | "NO_RUN";

/** An operating error: the schedule text is malformed, or it never runs. */
export class ScheduleError extends Error {
  override readonly name = "ScheduleError";
  constructor(
    readonly code: ScheduleErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A parsed schedule: the allowed values of each cron field, sorted and without duplicates.
 * Plain data, so it can be saved as JSON and restored. Times are UTC; there is no time zone
 * and no daylight-saving shift.
 */
export interface Schedule {
  /** The text it was parsed from, trimmed. */
  readonly text: string;
  /** 0–59. */
  readonly minutes: readonly number[];
  /** 0–23. */
  readonly hours: readonly number[];
  /** 1–31. */
  readonly daysOfMonth: readonly number[];
  /** 1–12. */
  readonly months: readonly number[];
  /** 0–6, 0 = Sunday (a 7 in the text is stored as 0). */
  readonly daysOfWeek: readonly number[];
  /**
   * Whether the day-of-month and day-of-week fields restrict the day. As in Vixie cron and
   * cronie, a field is unrestricted when it starts with `*` (`*`, with or without a step). When both are
   * restricted a day matches if it matches either (`0 0 1 * 1`: the 1st and every Monday);
   * otherwise it must match both.
   */
  readonly dayOfMonthRestricted: boolean;
  readonly dayOfWeekRestricted: boolean;
}

/** Hour (UTC) of the `weekly` and `monthly` runs: quiet hours for most fleets. */
export const quietHourUtc = 3;

/**
 * The named schedules as cron text: `weekly` is Sunday 03:00 UTC, `monthly` is the 1st of
 * each month at 03:00 UTC.
 */
const namedScheduleCron: Readonly<Record<string, string>> = {
  weekly: `0 ${quietHourUtc} * * 0`,
  monthly: `0 ${quietHourUtc} 1 * *`,
};

/**
 * How far ahead `nextRunAfterMs` looks. Eight years, so `0 0 29 2 *` still finds the next
 * 29 February across a skipped leap year (2096 → 2104).
 */
export const searchDaysMax = 8 * 366;

const millisecondsPerMinute = 60_000;
const minutesPerDay = 1_440;

interface FieldDefinition {
  readonly name: string;
  readonly minimum: number;
  readonly maximum: number;
}

const fieldDefinitions: readonly FieldDefinition[] = [
  { name: "minute", minimum: 0, maximum: 59 },
  { name: "hour", minimum: 0, maximum: 23 },
  { name: "day of month", minimum: 1, maximum: 31 },
  { name: "month", minimum: 1, maximum: 12 },
  { name: "day of week", minimum: 0, maximum: 7 },
];

/**
 * Parses `weekly`, `monthly` (see `quietHourUtc`) or a 5-field cron expression — minute, hour,
 * day of month, month, day of week — whose fields are lists of `*`, `n` or `n-m`, each
 * optionally with a step `/s`. Day of week 0 and 7 are both Sunday. A step after a single
 * number runs to the field's maximum (`5/15` in the minute field is 5, 20, 35, 50), matching
 * what `isCronExpression` accepts. Throws `ScheduleError` (`INVALID_SCHEDULE`) for bad text.
 */
export function parseSchedule(text: string): Schedule {
  const trimmed = text.trim();
  if (text.length > textCharactersMax)
    throw invalid(text, `longer than ${textCharactersMax} characters`);
  const cron = namedScheduleCron[trimmed] ?? trimmed;
  const fields = cron.split(/\s+/);
  if (fields.length !== fieldDefinitions.length)
    throw invalid(
      text,
      `expected weekly, monthly or 5 fields (minute hour day-of-month month day-of-week), found ${cron === "" ? 0 : fields.length}`,
    );
  const values = fields.map((field, index) => {
    const definition = fieldDefinitions[index];
    assert(definition !== undefined, "one definition per field");
    return parseField(text, field, definition);
  });
  const [minutes, hours, daysOfMonth, months, daysOfWeekRaw] = values;
  assert(
    minutes !== undefined &&
      hours !== undefined &&
      daysOfMonth !== undefined &&
      months !== undefined &&
      daysOfWeekRaw !== undefined,
    "five fields parsed",
  );
  const daysOfWeek = sortedUnique(daysOfWeekRaw.map((day) => (day === 7 ? 0 : day)));
  return {
    text: trimmed,
    minutes,
    hours,
    daysOfMonth,
    months,
    daysOfWeek,
    dayOfMonthRestricted: !(fields[2] ?? "").startsWith("*"),
    dayOfWeekRestricted: !(fields[4] ?? "").startsWith("*"),
  };
}

function parseField(text: string, field: string, definition: FieldDefinition): number[] {
  const { name, minimum, maximum } = definition;
  const values: number[] = [];
  for (const part of field.split(",")) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (match === null)
      throw invalid(
        text,
        `${name} field: expected *, n, n-m or a list of them with /step, found '${part}'`,
      );
    const [, , firstText, lastText, stepText] = match;
    const inRange = (valueText: string): number => {
      const value = Number(valueText);
      if (value < minimum || value > maximum)
        throw invalid(text, `${name} field: ${valueText} is outside ${minimum}-${maximum}`);
      return value;
    };
    const first = firstText === undefined ? minimum : inRange(firstText);
    const last =
      lastText !== undefined
        ? inRange(lastText)
        : firstText === undefined || stepText !== undefined
          ? maximum
          : first;
    if (first > last) throw invalid(text, `${name} field: range ${first}-${last} runs backwards`);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw invalid(text, `${name} field: step must be at least 1, found ${stepText}`);
    for (let value = first; value <= last; value += step) values.push(value);
  }
  return sortedUnique(values);
}

function sortedUnique(values: readonly number[]): number[] {
  return [...new Set(values)].sort((left, right) => left - right);
}

function invalid(text: string, detail: string): ScheduleError {
  return new ScheduleError("INVALID_SCHEDULE", `invalid schedule '${text}': ${detail}`);
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** Whether the schedule fires in the (UTC) minute containing `epochMs`. */
export function scheduleMatchesMs(schedule: Schedule, epochMs: number): boolean {
  const epochMinute = Math.floor(epochMs / millisecondsPerMinute);
  const daysSinceEpoch = Math.floor(epochMinute / minutesPerDay);
  const minuteOfDay = epochMinute - daysSinceEpoch * minutesPerDay;
  return (
    dayMatches(schedule, daysSinceEpoch, civilFromDays(daysSinceEpoch)) &&
    schedule.hours.includes(Math.floor(minuteOfDay / 60)) &&
    schedule.minutes.includes(minuteOfDay % 60)
  );
}

/**
 * The first time the schedule fires strictly after `afterMs` (epoch milliseconds, UTC), at the
 * start of its minute. Walks day by day (a month at a time over excluded months), so a yearly
 * schedule costs a few hundred steps, not half a million minutes. Throws `ScheduleError`
 * (`NO_RUN`) when nothing fires within `searchDaysMax` days, e.g. `0 0 31 2 *`.
 */
export function nextRunAfterMs(schedule: Schedule, afterMs: number): number {
  assert(Number.isFinite(afterMs), `afterMs must be a finite number, got ${afterMs}`);
  const firstMinute = Math.floor(afterMs / millisecondsPerMinute) + 1;
  const firstDay = Math.floor(firstMinute / minutesPerDay);
  const lastDay = firstDay + searchDaysMax;
  let day = firstDay;
  while (day <= lastDay) {
    const date = civilFromDays(day);
    if (!schedule.months.includes(date.month)) {
      day = daysFromCivil(date.month === 12 ? date.year + 1 : date.year, (date.month % 12) + 1, 1);
      continue;
    }
    if (dayMatches(schedule, day, date)) {
      const fromMinuteOfDay = day === firstDay ? firstMinute - firstDay * minutesPerDay : 0;
      const minuteOfDay = firstMinuteOfDayFrom(schedule, fromMinuteOfDay);
      if (minuteOfDay !== undefined)
        return (day * minutesPerDay + minuteOfDay) * millisecondsPerMinute;
    }
    day += 1;
  }
  throw new ScheduleError(
    "NO_RUN",
    `schedule '${schedule.text}' never runs in the ${searchDaysMax} days after ${afterMs} ms`,
  );
}

/** The first minute of the day at or after `fromMinuteOfDay` allowed by the hour and minute fields. */
function firstMinuteOfDayFrom(schedule: Schedule, fromMinuteOfDay: number): number | undefined {
  const fromHour = Math.floor(fromMinuteOfDay / 60);
  const fromMinute = fromMinuteOfDay % 60;
  for (const hour of schedule.hours) {
    if (hour < fromHour) continue;
    const minute =
      hour === fromHour
        ? schedule.minutes.find((candidate) => candidate >= fromMinute)
        : schedule.minutes[0];
    if (minute !== undefined) return hour * 60 + minute;
  }
  return undefined;
}

function dayMatches(schedule: Schedule, daysSinceEpoch: number, date: CivilDate): boolean {
  if (!schedule.months.includes(date.month)) return false;
  const dayOfMonthMatches = schedule.daysOfMonth.includes(date.day);
  // 1970-01-01 was a Thursday (4).
  const dayOfWeekMatches = schedule.daysOfWeek.includes((((daysSinceEpoch + 4) % 7) + 7) % 7);
  return schedule.dayOfMonthRestricted && schedule.dayOfWeekRestricted
    ? dayOfMonthMatches || dayOfWeekMatches
    : dayOfMonthMatches && dayOfWeekMatches;
}
