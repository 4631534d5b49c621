// Intrusion detection (SPEC §7): failed authentications, bad signatures, replays, impersonation
// and floods become suspicious activities per source; each is reported at most once per source
// and window (so an attacker cannot flood the event log), and the threshold-th report of a
// source means QUARANTINE.

import type { IntrusionDetectionSpec } from "../spec/security-schema.ts";

export type SuspiciousActivity =
  "failed_auth_burst" | "bad_signature" | "replay" | "impersonation" | "flood";

export type SecuritySeverity = "low" | "medium" | "high";

export const activitySeverity: Record<SuspiciousActivity, SecuritySeverity> = {
  failed_auth_burst: "medium",
  bad_signature: "high",
  replay: "high",
  impersonation: "high",
  flood: "medium",
};

export interface IntrusionDetectorOptions {
  enabled: boolean;
  /** Reports after which a source is quarantined (documents: 3). */
  suspiciousActivityThreshold: number;
  /** Failed authentications one source may have per window before it counts as a burst. */
  failedAuthenticationsMax: number;
  windowMs: number;
  /** Sources tracked at once; the least recently seen is forgotten first. */
  sourcesMax: number;
}

export function intrusionDetectorOptionsFrom(
  spec: IntrusionDetectionSpec,
  sourcesMax = 10_000,
): IntrusionDetectorOptions {
  return {
    enabled: spec.enabled,
    suspiciousActivityThreshold: spec.suspiciousActivityThreshold,
    failedAuthenticationsMax: spec.failedAuthenticationsMax,
    windowMs: spec.windowSeconds * 1_000,
    sourcesMax,
  };
}

export const intrusionDetectorDefaults: IntrusionDetectorOptions = {
  enabled: true,
  suspiciousActivityThreshold: 3,
  failedAuthenticationsMax: 10,
  windowMs: 60_000,
  sourcesMax: 10_000,
};

/** What to do about one observation. */
export type IntrusionVerdict =
  | { readonly report: false }
  | {
      readonly report: true;
      readonly activity: SuspiciousActivity;
      readonly severity: SecuritySeverity;
      /** Reports of this source so far, this one included. */
      readonly count: number;
      /** True exactly once: on the report that reaches the threshold. */
      readonly quarantine: boolean;
    };

interface SourceState {
  failedAuthWindowStartMs: number;
  failedAuthInWindow: number;
  lastReportedAtMs: Map<SuspiciousActivity, number>;
  reports: number;
  quarantined: boolean;
}

export class IntrusionDetector {
  readonly #options: IntrusionDetectorOptions;
  readonly #sources = new Map<string, SourceState>();

  constructor(options: IntrusionDetectorOptions = intrusionDetectorDefaults) {
    this.#options = options;
  }

  isQuarantined(source: string): boolean {
    return this.#sources.get(source)?.quarantined === true;
  }

  /** Lifts a quarantine and forgets the source's history. */
  clear(source: string): void {
    this.#sources.delete(source);
  }

  /**
   * `failures` failed authentications (one, or an agent's summed report of several); a burst
   * above the limit within the window is reported.
   */
  failedAuthentication(source: string, nowMs: number, failures = 1): IntrusionVerdict {
    if (!this.#options.enabled) return { report: false };
    const state = this.#state(source, nowMs);
    if (nowMs - state.failedAuthWindowStartMs >= this.#options.windowMs) {
      state.failedAuthWindowStartMs = nowMs;
      state.failedAuthInWindow = 0;
    }
    state.failedAuthInWindow += failures;
    if (state.failedAuthInWindow <= this.#options.failedAuthenticationsMax)
      return { report: false };
    return this.#report(state, "failed_auth_burst", nowMs);
  }

  /** A suspicious activity other than a failed authentication. */
  suspicious(source: string, activity: SuspiciousActivity, nowMs: number): IntrusionVerdict {
    if (!this.#options.enabled) return { report: false };
    return this.#report(this.#state(source, nowMs), activity, nowMs);
  }

  #report(state: SourceState, activity: SuspiciousActivity, nowMs: number): IntrusionVerdict {
    const lastMs = state.lastReportedAtMs.get(activity);
    if (lastMs !== undefined && nowMs - lastMs < this.#options.windowMs) return { report: false };
    state.lastReportedAtMs.set(activity, nowMs);
    state.reports += 1;
    const quarantine =
      !state.quarantined && state.reports >= this.#options.suspiciousActivityThreshold;
    if (quarantine) state.quarantined = true;
    return {
      report: true,
      activity,
      severity: activitySeverity[activity],
      count: state.reports,
      quarantine,
    };
  }

  #state(source: string, nowMs: number): SourceState {
    let state = this.#sources.get(source);
    if (state === undefined) {
      if (this.#sources.size >= this.#options.sourcesMax) {
        // Forget the least recently seen source that is not quarantined.
        for (const [key, candidate] of this.#sources) {
          if (!candidate.quarantined) {
            this.#sources.delete(key);
            break;
          }
        }
      }
      state = {
        failedAuthWindowStartMs: nowMs,
        failedAuthInWindow: 0,
        lastReportedAtMs: new Map(),
        reports: 0,
        quarantined: false,
      };
    } else {
      this.#sources.delete(source);
    }
    this.#sources.set(source, state);
    return state;
  }
}
