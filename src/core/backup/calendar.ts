// UTC calendar fields from epoch milliseconds without `Date`, so retention stays pure and
// gives the same answer on every machine whatever its time zone.

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

/** Days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil inverse). */
function civilFromDays(daysSinceEpoch: number): { year: number; month: number; day: number } {
  const shifted = daysSinceEpoch + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear =
    dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

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

function daysFromCivil(year: number, month: number, day: number): number {
  const adjustedYear = month <= 2 ? year - 1 : year;
  const era = Math.floor(adjustedYear / 400);
  const yearOfEra = adjustedYear - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra =
    yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
