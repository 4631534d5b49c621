// What the server and an agent say to each other about services, over the agent's persistent
// channel: the definitions and assignments the server pushes, the step commands of a failover,
// their results, the routing table the agents' proxies follow, and the instances' status.
// Plain types only: the server validates what agents send with the zod schemas in
// service-message-schemas.ts; the agent checks what the server sends by hand (it keeps zod out
// of memory).

/** How the agent checks a service (the spec's healthCheck, with its defaults applied). */
export type HealthCheckDefinition =
  | { type: "http"; path: string; intervalMs: number; timeoutMs: number; threshold: number }
  | { type: "tcp"; intervalMs: number; timeoutMs: number; threshold: number }
  | {
      type: "exec";
      command: string[];
      intervalMs: number;
      timeoutMs: number;
      threshold: number;
    };

/** A service as an agent needs it to run it; the server derives it from the fleet spec. */
export interface ServiceDefinition {
  name: string;
  /** Program and arguments, run without a shell; relative paths resolve against the agent's cwd. */
  command: string[];
  env: Record<string, string>;
  /** Fixed port, or null: the agent picks a free one and passes it as PORT. */
  port: number | null;
  healthCheck: HealthCheckDefinition | null;
  /** Relative to `<agent data dir>/services/`; null for a stateless service. */
  dataDir: string | null;
  /** Local restarts before the agent reports the instance failed (0: report at once). */
  restartAttempts: number;
  /** Disk the service needs, checked by prepare. */
  storageBytes: number;
}

/** Where clients of a service are sent; null: nothing serves it now (proxies hold connections). */
export interface RouteEntry {
  nodeId: string;
  /** host:port of the instance. */
  endpoint: string;
  generation: number;
}

/** One failover step for one agent. Each is idempotent per (service, generation). */
export type AgentCommand =
  /** Check this node can take the service (data dir writable, free disk, command resolvable). */
  | { type: "prepare"; service: string; generation: number }
  /**
   * Bring the service's data here. `fromUrl`: the old primary's agent, tried first when
   * `sources` lists "primary"; `quiesce`: ask it to stop its instance first (planned moves),
   * so the copy is exact. Otherwise, or if it fails, start empty with a warning.
   */
  | {
      type: "sync-data";
      service: string;
      generation: number;
      fromUrl: string | null;
      quiesce: boolean;
      sources: ("primary" | "backup")[];
    }
  | {
      type: "run-hook";
      service: string;
      generation: number;
      hook: string;
      command: string[];
      timeoutMs: number;
    }
  /** Start the instance with EDGEWARD_GENERATION = generation; result carries its endpoint. */
  | { type: "start"; service: string; generation: number }
  /** Run the service's health check once against the instance of `generation`. */
  | { type: "check-health"; service: string; generation: number }
  /** Stop every instance of the service with generation <= `generation`. */
  | { type: "stop"; service: string; generation: number; reason: "rollback" | "fence" | "drill" };

export interface CommandResult {
  id: number;
  ok: boolean;
  /** Why it failed (ok false), or a warning (ok true, e.g. "started with empty data"). */
  message?: string;
  /** start: host:port the instance listens on. */
  endpoint?: string;
  /** sync-data: age of the data brought over in ms (0: an exact copy); absent when started empty. */
  dataAgeMs?: number;
}

export type InstanceState =
  "starting" | "running" | "unhealthy" | "restarting" | "failed" | "stopped";

/** An instance an agent supervises, as it reports it. */
export interface InstanceStatus {
  service: string;
  generation: number;
  state: InstanceState;
  endpoint: string | null;
  pid: number | null;
  restarts: number;
  /** Last health or exit problem, if any. */
  lastError: string | null;
}

/** Service messages the server sends an agent (besides welcome/error/goodbye-acknowledged). */
export type ServerServiceMessage =
  /**
   * Sent after welcome and whenever they change. `assignments`: the generation of each service
   * this node should run now (routed here, or a failover attempt here). `newestGenerations`:
   * the newest generation issued per service. On receipt the agent stops every instance that
   * is not assigned here at that generation (fencing) and only then starts heartbeating.
   */
  | {
      type: "services";
      definitions: ServiceDefinition[];
      assignments: Record<string, number>;
      newestGenerations: Record<string, number>;
    }
  /** The whole routing table, after welcome and on every change; proxies switch at once. */
  | { type: "routes"; routes: Record<string, RouteEntry | null> }
  | { type: "command"; id: number; command: AgentCommand };

/** Service messages an agent sends the server. */
export type AgentServiceMessage =
  | ({ type: "command-result" } & CommandResult)
  /** The full set, whenever any instance changes state. */
  | { type: "instances"; instances: InstanceStatus[] }
  /** Local restarts are used up: the server treats this as the service_unhealthy condition. */
  | { type: "instance-failed"; service: string; generation: number; reason: string }
  /** The stable local port of each service's forwarding proxy on this agent, after welcome. */
  | { type: "proxies"; ports: Record<string, number> };

/** Limits on what an agent reports, so one agent cannot flood the server. */
export const instancesPerAgentMax = 256;
export const commandMessageCharactersMax = 4_096;
