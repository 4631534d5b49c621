// The four states a node can be in, as the server sees it.

export const NodeStatus = {
  /** Heartbeats arrive on time. */
  healthy: "HEALTHY",
  /** Suspected: heartbeats are overdue or its connection dropped; a probe is deciding. */
  degraded: "DEGRADED",
  /** Convicted: the detector and a probe both say it is gone. Its work must move. */
  failed: "FAILED",
  /** Shut down or drained on purpose: not a failure, nothing to detect. */
  offline: "OFFLINE",
} as const;

export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

export const nodeStatuses: readonly NodeStatus[] = Object.values(NodeStatus);

export function isNodeStatus(value: string): value is NodeStatus {
  return (nodeStatuses as readonly string[]).includes(value);
}
