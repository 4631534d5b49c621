// UTC calendar fields from epoch milliseconds without `Date`, so retention stays pure and
// gives the same answer on every machine whatever its time zone.

import { civilFromDays, daysFromCivil } from "../time/civil-date.ts";

export interface CalendarTime {
  year: number;
  /** 1–12. */
  month: number;
  /** 1–31. */
  day: number;
  hour: number;
  /** ISO 8601 week-numbering year and week (weeks start on Monday). */
  isoWeekYear: number;
  isoWeek: number;
}

const millisecondsPerDay = 86_400_000;
const millisecondsPerHour = 3_600_000;

export function calendarTimeFromMs(epochMs: number): CalendarTime {
  const daysSinceEpoch = Math.floor(epochMs / millisecondsPerDay);
  const hour = Math.floor((epochMs - daysSinceEpoch * millisecondsPerDay) / millisecondsPerHour);
  const { year, month, day } = civilFromDays(daysSinceEpoch);
  // 1970-01-01 was a Thursday; ISO weekday 1 = Monday … 7 = Sunday.
  const isoWeekday = ((((daysSinceEpoch + 3) % 7) + 7) % 7) + 1;
  // The ISO week belongs to the year of its Thursday.
  const thursday = civilFromDays(daysSinceEpoch - isoWeekday + 4);
  const januaryFirstDays = daysFromCivil(thursday.year, 1, 1);
  const isoWeek = Math.floor((daysSinceEpoch - isoWeekday + 4 - januaryFirstDays) / 7) + 1;
  return { year, month, day, hour, isoWeekYear: thursday.year, isoWeek };
}
