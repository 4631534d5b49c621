// Which snapshots `forget` keeps: restic's policy (keep-last/hourly/daily/weekly/monthly/
// yearly/within) applied per group of snapshots that share a host and set of paths.
import { calendarTimeFromMs } from "./calendar.ts";
import type { CalendarTime } from "./calendar.ts";

/** Counts of snapshots to keep per period; an absent field keeps none for that period. */
export interface RetentionPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Keep every snapshot younger than this, relative to the newest snapshot of its group. */
  keepWithinMs?: number;
}

export interface RetentionCandidate {
  id: string;
  timeMs: number;
  hostname: string;
  paths: readonly string[];
}

export interface RetentionDecision {
  id: string;
  keep: boolean;
  /** Why a snapshot is kept, e.g. ["last", "daily"]; empty when it is forgotten. */
  reasons: string[];
}

type BucketRule = {
  reason: string;
  count: number | undefined;
  bucketOf: (time: CalendarTime) => string;
};

const bucketRules: ReadonlyArray<Omit<BucketRule, "count"> & { field: keyof RetentionPolicy }> = [
  {
    field: "keepHourly",
    reason: "hourly",
    bucketOf: (time) => `${time.year}-${time.month}-${time.day}T${time.hour}`,
  },
  {
    field: "keepDaily",
    reason: "daily",
    bucketOf: (time) => `${time.year}-${time.month}-${time.day}`,
  },
  {
    field: "keepWeekly",
    reason: "weekly",
    bucketOf: (time) => `${time.isoWeekYear}W${time.isoWeek}`,
  },
  { field: "keepMonthly", reason: "monthly", bucketOf: (time) => `${time.year}-${time.month}` },
  { field: "keepYearly", reason: "yearly", bucketOf: (time) => `${time.year}` },
];

/** True when the policy would keep nothing, which `forget` refuses as almost surely a mistake. */
export function isEmptyPolicy(policy: RetentionPolicy): boolean {
  return Object.values(policy).every((value) => value === undefined);
}

/**
 * Decides for every snapshot whether it is kept. Within a group, snapshots are walked newest
 * first; each rule keeps the newest snapshot of each of its most recent `count` periods.
 */
export function applyRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
): RetentionDecision[] {
  const groups = new Map<string, RetentionCandidate[]>();
  for (const candidate of candidates) {
    const key = JSON.stringify([candidate.hostname, [...candidate.paths].sort()]);
    const group = groups.get(key) ?? [];
    group.push(candidate);
    groups.set(key, group);
  }
  const decisions = new Map<string, RetentionDecision>();
  for (const group of groups.values()) {
    const newestFirst = [...group].sort(
      (left, right) => right.timeMs - left.timeMs || (left.id < right.id ? -1 : 1),
    );
    const newestMs = newestFirst[0]?.timeMs ?? 0;
    const rules: BucketRule[] = bucketRules.map((rule) => ({
      reason: rule.reason,
      count: policy[rule.field],
      bucketOf: rule.bucketOf,
    }));
    const lastBucketByRule = new Map<string, string>();
    const keptByRule = new Map<string, number>();
    newestFirst.forEach((candidate, position) => {
      const reasons: string[] = [];
      if (policy.keepLast !== undefined && position < policy.keepLast) reasons.push("last");
      if (policy.keepWithinMs !== undefined && newestMs - candidate.timeMs <= policy.keepWithinMs)
        reasons.push("within");
      const time = calendarTimeFromMs(candidate.timeMs);
      for (const rule of rules) {
        if (rule.count === undefined) continue;
        const kept = keptByRule.get(rule.reason) ?? 0;
        const bucket = rule.bucketOf(time);
        if (kept < rule.count && lastBucketByRule.get(rule.reason) !== bucket) {
          lastBucketByRule.set(rule.reason, bucket);
          keptByRule.set(rule.reason, kept + 1);
          reasons.push(rule.reason);
        }
      }
      decisions.set(candidate.id, { id: candidate.id, keep: reasons.length > 0, reasons });
    });
  }
  return candidates.map((candidate) => decisions.get(candidate.id) as RetentionDecision);
}
