// Role-based access decisions (SPEC §7, §14): which roles may read, write or administer each
// resource, from built-in rules plus the fleet spec's accessControl rules. Default deny.

import type { AccessLevel } from "../spec/security-schema.ts";
import type { TokenClaims } from "./token-claims.ts";

/** What a route does to its resource. */
export type AccessAction = "read" | "write" | "admin";

/** Roles every fleet has; a spec's roles come on top. */
export const builtinRoles = {
  /** Everything, including issuing and revoking tokens. */
  admin: "admin",
  /** An enrolled agent: registers, heartbeats and reports as its own node only. */
  node: "node",
  /** Runs the fleet: reads everything, triggers failovers and drills. */
  operator: "operator",
  /** Reads the fleet's state. */
  viewer: "viewer",
} as const;

export interface AccessRule {
  readonly resource: string;
  readonly roles: readonly string[];
  readonly access: AccessLevel;
}

/** The rules of the API's own resources; `admin` needs no rule. */
export const builtinAccessRules: readonly AccessRule[] = [
  { resource: "nodes", roles: [builtinRoles.viewer], access: "read" },
  { resource: "nodes", roles: [builtinRoles.operator, builtinRoles.node], access: "read_write" },
  { resource: "credentials", roles: [builtinRoles.node], access: "read_write" },
  ...["events", "services", "failovers", "drills", "metrics"].flatMap((resource) => [
    { resource, roles: [builtinRoles.viewer], access: "read" as const },
    { resource, roles: [builtinRoles.operator], access: "read_write" as const },
  ]),
];

/** Who is asking: the verified subject of a credential. */
export interface Principal {
  readonly kind: "user" | "node";
  /** A user's name or a node's id. */
  readonly subject: string;
  readonly roles: readonly string[];
  /** The verified credential, so a session opened with it can be closed when it is revoked. */
  readonly claims?: TokenClaims;
}

export type AccessDecision =
  { readonly allowed: true } | { readonly allowed: false; reason: string };

const levelRank: Record<AccessLevel, number> = { read: 1, read_write: 2, admin: 3 };
const actionNeeds: Record<AccessAction, number> = { read: 1, write: 2, admin: 3 };

/** The rules indexed for decisions: resource -> role -> highest level granted. */
export interface AccessPolicy {
  readonly levels: ReadonlyMap<string, ReadonlyMap<string, number>>;
  readonly roles: ReadonlySet<string>;
}

/** Builds a policy from rules (built-in and spec); a role granted twice keeps its highest level. */
export function createAccessPolicy(
  rules: readonly AccessRule[],
  extraRoles: readonly string[] = [],
): AccessPolicy {
  const levels = new Map<string, Map<string, number>>();
  const roles = new Set<string>([...Object.values(builtinRoles), ...extraRoles]);
  for (const rule of rules) {
    const byRole = levels.get(rule.resource) ?? new Map<string, number>();
    levels.set(rule.resource, byRole);
    for (const role of rule.roles) {
      roles.add(role);
      byRole.set(role, Math.max(byRole.get(role) ?? 0, levelRank[rule.access]));
    }
  }
  return { levels, roles };
}

/** May `principal` perform `action` on `resource`? The admin role may do anything. */
export function decideAccess(
  policy: AccessPolicy,
  principal: Principal,
  resource: string,
  action: AccessAction,
): AccessDecision {
  if (principal.roles.includes(builtinRoles.admin)) return { allowed: true };
  const byRole = policy.levels.get(resource);
  const needed = actionNeeds[action];
  for (const role of principal.roles) {
    // A node credential carries the node role only; a user cannot claim it to act as a node.
    if (role === builtinRoles.node && principal.kind !== "node") continue;
    if ((byRole?.get(role) ?? 0) >= needed) return { allowed: true };
  }
  return {
    allowed: false,
    reason: `roles [${principal.roles.join(", ")}] may not ${action} ${resource}`,
  };
}

/** The object a request acts on, for checks beyond the resource type. */
export type AccessObject = { readonly kind: "node"; readonly nodeId: string };

/** Per-object check: a node credential acts only on its own node; users are limited by role. */
export function decideObjectAccess(principal: Principal, object: AccessObject): AccessDecision {
  switch (object.kind) {
    case "node":
      if (principal.kind === "node" && principal.subject !== object.nodeId) {
        return {
          allowed: false,
          reason: `node ${principal.subject} may not act as node ${object.nodeId}`,
        };
      }
      return { allowed: true };
  }
}
