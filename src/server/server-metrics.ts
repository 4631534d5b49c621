// Prometheus metrics of the control plane, served at /metrics.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { nodeStatuses } from "../core/membership/node-status.ts";

export class ServerMetrics {
  readonly registry = new Registry();
  readonly heartbeatsReceived = new Counter({
    name: "edgeward_heartbeats_received_total",
    help: "Heartbeats accepted from agents.",
    labelNames: ["transport"] as const,
    registers: [this.registry],
  });
  readonly heartbeatsRejected = new Counter({
    name: "edgeward_heartbeats_rejected_total",
    help: "Heartbeats refused (malformed, unknown node, stale incarnation).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly transitions = new Counter({
    name: "edgeward_node_transitions_total",
    help: "Node status changes by target status and reason.",
    labelNames: ["to", "reason"] as const,
    registers: [this.registry],
  });
  readonly probes = new Counter({
    name: "edgeward_probes_total",
    help: "Direct probes of suspected nodes by answer (alive, refused, none).",
    labelNames: ["answer"] as const,
    registers: [this.registry],
  });
  readonly agentConnections = new Gauge({
    name: "edgeward_agent_connections",
    help: "Agents connected over the persistent heartbeat channel.",
    registers: [this.registry],
  });
  readonly firewallDenials = new Counter({
    name: "edgeward_firewall_denials_total",
    help: "Connections and requests the agents' firewalls denied, as the agents report them.",
    labelNames: ["node", "listener"] as const,
    registers: [this.registry],
  });
  readonly peerRequestsRefused = new Counter({
    name: "edgeward_peer_requests_refused_total",
    help: "Peer requests the agents refused (unsigned, bad signature, replayed, ...), as they report them.",
    labelNames: ["node", "reason"] as const,
    registers: [this.registry],
  });
  readonly agentSecurityReports = new Counter({
    name: "edgeward_agent_security_reports_total",
    help: "Security report messages from agents (each sums several refusals or denials).",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly agentMessagesDropped = new Counter({
    name: "edgeward_agent_messages_dropped_total",
    help: "Agent channel messages dropped over their budget (liveness: heartbeats, goodbyes; other).",
    labelNames: ["budget"] as const,
    registers: [this.registry],
  });
  readonly agentChannelsRateLimited = new Counter({
    name: "edgeward_agent_channels_rate_limited_total",
    help: "Agent channels closed (4429) for sending past the ceiling of messages per second.",
    registers: [this.registry],
  });
  readonly detectionSeconds = new Histogram({
    name: "edgeward_detection_seconds",
    help: "Time from a node's last heartbeat to its conviction (FAILED).",
    buckets: [0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  constructor(countByStatus: () => Map<string, number>) {
    collectDefaultMetrics({ register: this.registry, prefix: "edgeward_server_" });
    new Gauge({
      name: "edgeward_nodes",
      help: "Registered nodes by status.",
      labelNames: ["status"] as const,
      registers: [this.registry],
      collect() {
        const counts = countByStatus();
        for (const status of nodeStatuses) this.set({ status }, counts.get(status) ?? 0);
      },
    });
  }
}
