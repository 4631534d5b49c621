import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isCronExpression } from "../spec/schema-primitives.ts";
import {
  nextRunAfterMs,
  parseSchedule,
  scheduleMatchesMs,
  ScheduleError,
  searchDaysMax,
} from "./schedule.ts";

const at = (iso: string): number => Date.parse(`${iso}Z`);

describe("nextRunAfterMs", () => {
  // 2024-01-01 is a Monday.
  it.each([
    // every field kind
    ["* * * * *", "2024-01-01T00:00:00", "2024-01-01T00:01:00"],
    ["* * * * *", "2024-01-01T00:00:30", "2024-01-01T00:01:00"],
    ["0 * * * *", "2024-01-01T00:00:00", "2024-01-01T01:00:00"],
    ["30 14 * * *", "2024-01-01T15:00:00", "2024-01-02T14:30:00"],
    ["30 14 * * *", "2024-01-01T14:29:59", "2024-01-01T14:30:00"],
    ["0 0 15 * *", "2024-01-15T00:00:00", "2024-02-15T00:00:00"],
    ["0 0 1 6 *", "2024-01-01T00:00:00", "2024-06-01T00:00:00"],
    ["0 0 * * 3", "2024-01-01T00:00:00", "2024-01-03T00:00:00"],
    // steps
    ["*/15 * * * *", "2024-01-01T00:16:00", "2024-01-01T00:30:00"],
    ["*/15 * * * *", "2024-01-01T00:45:00", "2024-01-01T01:00:00"],
    ["5/20 * * * *", "2024-01-01T00:26:00", "2024-01-01T00:45:00"],
    ["10-20/5 * * * *", "2024-01-01T00:21:00", "2024-01-01T01:10:00"],
    ["0 */6 * * *", "2024-01-01T06:00:00", "2024-01-01T12:00:00"],
    ["0 0 1 */3 *", "2024-02-01T00:00:00", "2024-04-01T00:00:00"],
    // ranges and lists
    ["0,30 9-17/4 * * *", "2024-01-01T17:30:00", "2024-01-02T09:00:00"],
    ["0,30 9-17/4 * * *", "2024-01-01T09:00:00", "2024-01-01T09:30:00"],
    ["0 0 * * 1-5", "2024-01-05T12:00:00", "2024-01-08T00:00:00"],
    ["0 0 1,15 * *", "2024-01-02T00:00:00", "2024-01-15T00:00:00"],
    ["0 0 * 2,11 *", "2024-03-01T00:00:00", "2024-11-01T00:00:00"],
    ["15 2 * * 1,3-4,6", "2024-01-04T02:15:00", "2024-01-06T02:15:00"],
    // Sunday as 0 and as 7
    ["0 0 * * 0", "2024-01-01T00:00:00", "2024-01-07T00:00:00"],
    ["0 0 * * 7", "2024-01-01T00:00:00", "2024-01-07T00:00:00"],
    ["0 0 * * 5-7", "2024-01-01T00:00:00", "2024-01-05T00:00:00"],
    ["0 0 * * 5-7", "2024-01-06T12:00:00", "2024-01-07T00:00:00"],
    // day of month OR day of week when both are restricted
    ["0 0 13 * 5", "2024-01-01T00:00:00", "2024-01-05T00:00:00"],
    ["0 0 13 * 5", "2024-01-12T00:00:00", "2024-01-13T00:00:00"],
    ["0 0 31 2 1", "2024-01-01T00:00:00", "2024-02-05T00:00:00"],
    // ... but AND when either starts with '*' (Vixie cron): odd days that are Mondays
    ["0 0 */2 * 1", "2024-01-01T00:00:00", "2024-01-15T00:00:00"],
    ["0 0 13 * *", "2024-01-01T00:00:00", "2024-01-13T00:00:00"],
    // month and year rollover
    ["0 0 1 6 *", "2024-07-01T00:00:00", "2025-06-01T00:00:00"],
    ["59 23 31 12 *", "2024-12-31T23:59:00", "2025-12-31T23:59:00"],
    ["0 0 31 * *", "2024-01-31T00:00:00", "2024-03-31T00:00:00"],
    ["0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"],
    ["0 0 1 1 *", "2024-12-31T23:59:59.999", "2025-01-01T00:00:00"],
    ["* * * * *", "2024-12-31T23:59:00", "2025-01-01T00:00:00"],
    // leap day
    ["0 0 29 2 *", "2024-01-01T00:00:00", "2024-02-29T00:00:00"],
    ["0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"],
    ["0 0 29 2 *", "2096-03-01T00:00:00", "2104-02-29T00:00:00"],
    // named schedules: quiet hours, 03:00 UTC
    ["weekly", "2024-01-01T00:00:00", "2024-01-07T03:00:00"],
    ["weekly", "2024-01-07T02:59:00", "2024-01-07T03:00:00"],
    ["weekly", "2024-01-07T03:00:00", "2024-01-14T03:00:00"],
    ["monthly", "2024-01-01T02:00:00", "2024-01-01T03:00:00"],
    ["monthly", "2024-01-01T03:00:00", "2024-02-01T03:00:00"],
    ["monthly", "2024-12-15T00:00:00", "2025-01-01T03:00:00"],
    // before the epoch
    ["0 0 1 1 *", "1969-06-01T00:00:00", "1970-01-01T00:00:00"],
  ])("%s after %s is %s", (text, after, expected) => {
    expect(nextRunAfterMs(parseSchedule(text), at(after))).toBe(at(expected));
  });

  it.each(["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 30,31 2 *"])(
    "%s never runs and throws NO_RUN",
    (text) => {
      const schedule = parseSchedule(text);
      expect(() => nextRunAfterMs(schedule, at("2024-01-01T00:00:00"))).toThrow(ScheduleError);
      expect(() => nextRunAfterMs(schedule, 0)).toThrow(
        expect.objectContaining({ code: "NO_RUN" }),
      );
    },
  );

  it("rejects a non-finite time as a programmer error", () => {
    expect(() => nextRunAfterMs(parseSchedule("weekly"), Number.NaN)).toThrow(/assertion/);
  });
});

describe("parseSchedule", () => {
  it("expands fields, folds day of week 7 into 0 and marks restricted day fields", () => {
    expect(parseSchedule(" 5/20 9-17/4 1,15 */5 5-7 ")).toEqual({
      text: "5/20 9-17/4 1,15 */5 5-7",
      minutes: [5, 25, 45],
      hours: [9, 13, 17],
      daysOfMonth: [1, 15],
      months: [1, 6, 11],
      daysOfWeek: [0, 5, 6],
      dayOfMonthRestricted: true,
      dayOfWeekRestricted: true,
    });
    expect(parseSchedule("0 0 */2 * 0,7")).toMatchObject({
      daysOfWeek: [0],
      dayOfMonthRestricted: false,
      dayOfWeekRestricted: true,
    });
  });

  it.each([
    ["weekly", "0 3 * * 0"],
    ["monthly", "0 3 1 * *"],
  ])("%s is %s", (name, cron) => {
    expect(parseSchedule(name)).toEqual({ ...parseSchedule(cron), text: name });
  });

  it.each([
    ["", /found 0/],
    ["daily", /found 1/],
    ["* * * *", /found 4/],
    ["* * * * * *", /found 6/],
    ["60 * * * *", /minute field: 60 is outside 0-59/],
    ["* 24 * * *", /hour field/],
    ["* * 0 * *", /day of month field/],
    ["* * 32 * *", /day of month field/],
    ["* * * 0 *", /month field/],
    ["* * * 13 *", /month field/],
    ["* * * * 8", /day of week field/],
    ["5-1 * * * *", /runs backwards/],
    ["*/0 * * * *", /step must be at least 1/],
    ["a * * * *", /found 'a'/],
    ["1,,2 * * * *", /found ''/],
    ["-1 * * * *", /found '-1'/],
    ["1-2-3 * * * *", /found '1-2-3'/],
    ["* * * JAN *", /found 'JAN'/],
    ["99999999999999999999 * * * *", /outside/],
    [`0 3 * * 0${" ".repeat(300)}`, /longer than 256/],
  ])("rejects %j", (text, message) => {
    expect(() => parseSchedule(text)).toThrow(ScheduleError);
    expect(() => parseSchedule(text)).toThrow(message);
  });

  it("accepts exactly what the fleet spec's isCronExpression accepts", () => {
    const part = fc.oneof(
      fc.constantFrom("*", "", "-", "x"),
      fc.nat(70).map(String),
      fc.tuple(fc.nat(70), fc.nat(70)).map(([first, last]) => `${first}-${last}`),
    );
    const stepped = fc
      .tuple(part, fc.option(fc.nat(5)))
      .map(([base, step]) => (step === null ? base : `${base}/${step}`));
    const field = fc.array(stepped, { minLength: 1, maxLength: 3 }).map((parts) => parts.join(","));
    const text = fc.array(field, { minLength: 4, maxLength: 6 }).map((fields) => fields.join(" "));
    fc.assert(
      fc.property(text, (cron) => {
        const parsed = (() => {
          try {
            parseSchedule(cron);
            return true;
          } catch (error) {
            if (!(error instanceof ScheduleError)) throw error;
            return false;
          }
        })();
        expect(parsed).toBe(isCronExpression(cron));
      }),
      { numRuns: 2_000 },
    );
  });
});

// An independent oracle: cron fields generated as structure, expanded here, and calendar
// fields taken from Date.UTC rather than from the code under test.

type Part =
  | { kind: "star"; step: number | null }
  | { kind: "single"; value: number; step: number | null }
  | { kind: "range"; first: number; last: number; step: number | null };

const fieldRanges: readonly (readonly [number, number])[] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
];

function partArbitrary(minimum: number, maximum: number): fc.Arbitrary<Part> {
  const value = fc.integer({ min: minimum, max: maximum });
  const step = fc.option(fc.integer({ min: 1, max: maximum - minimum + 2 }), { freq: 2 });
  return fc.oneof(
    { weight: 4, arbitrary: step.map((stepValue) => ({ kind: "star" as const, step: stepValue })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(value, step)
        .map(([first, stepValue]) => ({ kind: "single" as const, value: first, step: stepValue })),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(value, value, step).map(([first, last, stepValue]) => ({
        kind: "range" as const,
        first: Math.min(first, last),
        last: Math.max(first, last),
        step: stepValue,
      })),
    },
  );
}

function partText(part: Part): string {
  const base =
    part.kind === "star"
      ? "*"
      : part.kind === "single"
        ? `${part.value}`
        : `${part.first}-${part.last}`;
  return part.step === null ? base : `${base}/${part.step}`;
}

function expand(parts: readonly Part[], minimum: number, maximum: number): Set<number> {
  const values = new Set<number>();
  for (const part of parts) {
    const [first, last] =
      part.kind === "star"
        ? [minimum, maximum]
        : part.kind === "single"
          ? [part.value, part.step === null ? part.value : maximum]
          : [part.first, part.last];
    for (let value = first; value <= last; value += part.step ?? 1) values.add(value);
  }
  return values;
}

interface Oracle {
  text: string;
  minutes: Set<number>;
  hours: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
  daysOfWeek: Set<number>;
  dayOfMonthRestricted: boolean;
  dayOfWeekRestricted: boolean;
}

const oracleArbitrary: fc.Arbitrary<Oracle> = fc
  .tuple(
    ...fieldRanges.map(([minimum, maximum]) =>
      fc.array(partArbitrary(minimum, maximum), { minLength: 1, maxLength: 3 }),
    ),
  )
  .map((fields) => {
    const sets = fields.map((parts, index) => {
      const [minimum, maximum] = fieldRanges[index] ?? [0, 0];
      return expand(parts, minimum, maximum);
    });
    const daysOfWeek = new Set([...(sets[4] ?? [])].map((day) => day % 7));
    return {
      text: fields.map((parts) => parts.map(partText).join(",")).join(" "),
      minutes: sets[0] ?? new Set(),
      hours: sets[1] ?? new Set(),
      daysOfMonth: sets[2] ?? new Set(),
      months: sets[3] ?? new Set(),
      daysOfWeek,
      dayOfMonthRestricted: fields[2]?.[0]?.kind !== "star",
      dayOfWeekRestricted: fields[4]?.[0]?.kind !== "star",
    };
  });

const minuteMs = 60_000;
const dayMs = 86_400_000;

function utcFields(epochMs: number) {
  const days = Math.floor(epochMs / dayMs);
  let year = 1970 + Math.floor(days / 365.2425);
  while (Date.UTC(year, 0, 1) > epochMs) year -= 1;
  while (Date.UTC(year + 1, 0, 1) <= epochMs) year += 1;
  let monthIndex = 11;
  while (Date.UTC(year, monthIndex, 1) > epochMs) monthIndex -= 1;
  const day = Math.floor((epochMs - Date.UTC(year, monthIndex, 1)) / dayMs) + 1;
  const minuteOfDay = Math.floor((epochMs - days * dayMs) / minuteMs);
  return {
    month: monthIndex + 1,
    day,
    weekday: (((days + 4) % 7) + 7) % 7,
    hour: Math.floor(minuteOfDay / 60),
    minute: minuteOfDay % 60,
  };
}

function oracleDayMatches(oracle: Oracle, epochMs: number): boolean {
  const fields = utcFields(epochMs);
  if (!oracle.months.has(fields.month)) return false;
  const dayOfMonth = oracle.daysOfMonth.has(fields.day);
  const dayOfWeek = oracle.daysOfWeek.has(fields.weekday);
  return oracle.dayOfMonthRestricted && oracle.dayOfWeekRestricted
    ? dayOfMonth || dayOfWeek
    : dayOfMonth && dayOfWeek;
}

function oracleMatches(oracle: Oracle, epochMs: number): boolean {
  const fields = utcFields(epochMs);
  return (
    oracleDayMatches(oracle, epochMs) &&
    oracle.hours.has(fields.hour) &&
    oracle.minutes.has(fields.minute)
  );
}

/** The first matching minute in [fromMs, fromMs + minutes), stepping minute by minute. */
function oracleFirstMatchMs(oracle: Oracle, fromMs: number, minutes: number): number | undefined {
  const dayMatchesByDay = new Map<number, boolean>();
  for (let minute = 0; minute < minutes; minute += 1) {
    const epochMs = fromMs + minute * minuteMs;
    const day = Math.floor(epochMs / dayMs);
    let dayMatches = dayMatchesByDay.get(day);
    if (dayMatches === undefined) {
      dayMatches = oracleDayMatches(oracle, epochMs);
      dayMatchesByDay.set(day, dayMatches);
    }
    const minuteOfDay = (epochMs - day * dayMs) / minuteMs;
    if (
      dayMatches &&
      oracle.hours.has(Math.floor(minuteOfDay / 60)) &&
      oracle.minutes.has(minuteOfDay % 60)
    )
      return epochMs;
  }
  return undefined;
}

describe("nextRunAfterMs properties", () => {
  const afterMsArbitrary = fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2150, 0, 1) });
  const stepSpanMinutesMax = 3 * 1_440;

  it("is after afterMs, matches, and no minute in between matches", () => {
    fc.assert(
      fc.property(oracleArbitrary, afterMsArbitrary, (oracle, afterMs) => {
        const schedule = parseSchedule(oracle.text);
        let nextMs: number;
        try {
          nextMs = nextRunAfterMs(schedule, afterMs);
        } catch (error) {
          if (!(error instanceof ScheduleError) || error.code !== "NO_RUN") throw error;
          // Never runs: no day in the searched span may match.
          const firstDayMs = Math.floor(afterMs / dayMs) * dayMs;
          for (let day = 0; day <= searchDaysMax; day += 1)
            expect(oracleDayMatches(oracle, firstDayMs + day * dayMs)).toBe(false);
          return;
        }
        expect(nextMs).toBeGreaterThan(afterMs);
        expect(nextMs % minuteMs).toBe(0);
        expect(oracleMatches(oracle, nextMs)).toBe(true);
        expect(scheduleMatchesMs(schedule, nextMs)).toBe(true);
        const firstMinuteMs = (Math.floor(afterMs / minuteMs) + 1) * minuteMs;
        const gapMinutes = (nextMs - firstMinuteMs) / minuteMs;
        // Step through short gaps minute by minute; for long ones, through both ends.
        const steppedMinutes = Math.min(gapMinutes, stepSpanMinutesMax);
        expect(oracleFirstMatchMs(oracle, firstMinuteMs, steppedMinutes)).toBeUndefined();
        expect(
          oracleFirstMatchMs(oracle, nextMs - steppedMinutes * minuteMs, steppedMinutes),
        ).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
