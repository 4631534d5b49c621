// What the failover orchestrator and the runtime say to each other: the service as the
// orchestrator needs it, the commands it emits, the reports it is fed, and the history record.
// Everything here is plain JSON, so a failover can be persisted and resumed.

import type { Resources } from "../placement/placement.ts";
import type { FailoverCondition, ServiceSpec } from "../spec/service-schema.ts";
import type { ServiceRoute } from "./service-registry.ts";

/** A plan's condition, or `planned`: an operator's failover, a drill, or an initial placement. */
export type FailoverReason = FailoverCondition | "planned";

/** Where sync_data may take the service's data from, in order of preference. */
export type DataSource = "primary" | "backup";

export interface FailoverHook {
  readonly hook: string;
  readonly command: readonly string[];
  readonly timeoutMs: number;
}

export interface FailoverPlan {
  readonly backups: readonly string[];
  readonly conditions: readonly FailoverCondition[];
  /** Site-specific steps, run on the target after sync_data and before start_service. */
  readonly hooks: readonly FailoverHook[];
  readonly dataSources: readonly DataSource[];
}

/** A service as the orchestrator sees it; copied into each failover, so a spec edit mid-way cannot change it. */
export interface FailoverService {
  readonly name: string;
  readonly demand: Resources;
  readonly requiredCapabilities: readonly string[];
  /** null: no plan, the placement rule alone decides. */
  readonly plan: FailoverPlan | null;
}

/** Without a plan saying otherwise: the old primary's copy if reachable, else the newest backup. */
export const defaultDataSources: readonly DataSource[] = ["primary", "backup"];

export function failoverServiceFromSpec(spec: ServiceSpec): FailoverService {
  const plan = spec.failover;
  if (plan === undefined) {
    return {
      name: spec.name,
      demand: spec.resources,
      requiredCapabilities: spec.requiredCapabilities,
      plan: null,
    };
  }
  const hooks: FailoverHook[] = [];
  const dataSources: DataSource[] = [];
  for (const procedure of plan.procedures) {
    if (typeof procedure !== "string") hooks.push(procedure);
    else if (procedure === "sync_data") dataSources.push("primary");
    else if (procedure === "restore_from_backup") dataSources.push("backup");
  }
  return {
    name: spec.name,
    demand: spec.resources,
    requiredCapabilities: spec.requiredCapabilities,
    plan: {
      backups: plan.backups,
      conditions: plan.conditions,
      hooks,
      dataSources: dataSources.length > 0 ? dataSources : defaultDataSources,
    },
  };
}

export const StepKind = {
  prepareTarget: "prepare_target",
  syncData: "sync_data",
  hook: "hook",
  startService: "start_service",
  updateRouting: "update_routing",
  verify: "verify",
} as const;
export type StepKind = (typeof StepKind)[keyof typeof StepKind];

/**
 * Names the step a command belongs to. Reports echo it back; one naming a generation or step
 * the failover has moved past is ignored, so a late answer can never act on a newer attempt.
 */
export interface StepAddress {
  readonly service: string;
  readonly generation: number;
  /** Position in the attempt: 0 prepare_target, 1 sync_data, hooks, then start, route, verify. */
  readonly stepIndex: number;
}

export type AlertSeverity = "info" | "warning" | "critical";

/**
 * Commands for the runtime. Step commands are idempotent per (service, generation, stepIndex):
 * after a restart the orchestrator issues the current step again.
 */
export type FailoverEffect =
  /** Check the node can take the service and hold `demand` for it until release or stop. */
  | (StepAddress & {
      readonly type: "prepare";
      readonly node: string;
      readonly demand: Resources;
      readonly requiredCapabilities: readonly string[];
    })
  /** Bring the data to `to`: from `from` (null: none known) or a backup, in `sources` order; else start empty with a warning. */
  | (StepAddress & {
      readonly type: "sync-data";
      readonly from: string | null;
      readonly to: string;
      readonly sources: readonly DataSource[];
    })
  | (StepAddress & {
      readonly type: "run-hook";
      readonly node: string;
      readonly hook: string;
      readonly command: readonly string[];
      readonly timeoutMs: number;
    })
  /** Start the instance with EDGEWARD_GENERATION = generation; succeed with its endpoint. */
  | (StepAddress & { readonly type: "start"; readonly node: string })
  /** The registry now points at `route`: switch every proxy of the service to it. */
  | (StepAddress & { readonly type: "route"; readonly route: ServiceRoute })
  /** Check the instance's health every `checkIntervalMs` and report each result. */
  | (StepAddress & {
      readonly type: "verify";
      readonly node: string;
      readonly passesRequired: number;
      readonly checkIntervalMs: number;
    })
  /** Stop the service's instance of `generation` or older on `node`, whenever the node is reachable. */
  | {
      readonly type: "stop";
      readonly service: string;
      readonly node: string;
      readonly generation: number;
      readonly reason: "rollback" | "fence";
    }
  /** Drop the reservation `prepare` made. */
  | {
      readonly type: "release";
      readonly service: string;
      readonly node: string;
      readonly generation: number;
    }
  /** Nothing serves the service now: proxies stop forwarding to `generation`. */
  | { readonly type: "unroute"; readonly service: string; readonly generation: number }
  | {
      readonly type: "alert";
      readonly severity: AlertSeverity;
      readonly service: string;
      readonly failoverId: number;
      readonly message: string;
      readonly atMs: number;
    }
  /** A failover ended (or was refused): persist it, publish it. */
  | { readonly type: "record"; readonly record: FailoverRecord };

export type FailoverEffectSink = (effect: FailoverEffect) => void;

export interface StepSucceededReport extends StepAddress {
  readonly atMs: number;
  /** start_service: where the instance listens (host:port). */
  readonly endpoint?: string;
  /** sync_data: age of the newest data brought over (the RPO achieved); absent when started empty. */
  readonly dataAgeMs?: number;
}

export interface StepFailedReport extends StepAddress {
  readonly atMs: number;
  readonly error: string;
}

export interface HealthCheckReport {
  readonly service: string;
  readonly generation: number;
  readonly ok: boolean;
  readonly atMs: number;
}

export interface TriggerRequest {
  readonly service: FailoverService;
  readonly reason: FailoverReason;
  /** Node the service ran on; null when it ran nowhere (initial placement). */
  readonly from: string | null;
  /** An operator's choice (`edgeward failover <service> --to NODE`), tried before the plan. */
  readonly to?: string;
  readonly atMs: number;
}

export type TriggerOutcome =
  | { readonly kind: "started"; readonly failoverId: number }
  | { readonly kind: "queued"; readonly failoverId: number }
  /** The service already has a failover; a report that its target failed fails the current step. */
  | { readonly kind: "in-progress"; readonly failoverId: number }
  | { readonly kind: "ignored"; readonly why: "condition-not-in-plan" | "not-on-node" }
  | { readonly kind: "refused"; readonly failoverId: number; readonly why: "queue-full" };

/** How an attempt's node was chosen: the trigger's `to`, a plan location, or the placement rule. */
export type LocationSource = "operator" | "plan" | "rule";

export type FailoverStatus = "initiated" | "completed" | "failed" | "error";

export interface StepRecord {
  /** The step kind, or the hook's name. */
  readonly name: string;
  readonly node: string;
  readonly ms: number;
  readonly ok: boolean;
  readonly error: string | null;
}

export interface FailoverRecord {
  readonly failoverId: number;
  /** The plan's service when a plan was followed; null when the placement rule alone decided. */
  readonly plan: string | null;
  readonly service: string;
  readonly reason: FailoverReason;
  readonly from: string | null;
  readonly to: string | null;
  readonly via: LocationSource | null;
  readonly generation: number | null;
  readonly startedAtMs: number;
  readonly endedAtMs: number | null;
  readonly durationMs: number | null;
  /** Age of the data the new instance started with: the RPO achieved (null: started empty). */
  readonly dataAgeMs: number | null;
  readonly steps: readonly StepRecord[];
  /** initiated: running or queued; error: refused before any attempt (queue full). */
  readonly status: FailoverStatus;
}
