// Security policies (SPEC §7): encryption at rest and key rotation, roles and access-control
// rules, firewall rules and intrusion detection.

import { z } from "zod";
import { parseCidr } from "../security/ip-address.ts";
import {
  dnsLabelSchema,
  identifierSchema,
  positiveIntegerSchema,
  textSchema,
  uniqueListSchema,
} from "./schema-primitives.ts";

/** Most roles, access rules or firewall rules in one fleet. */
const securityRulesMax = 1_024;

export const encryptionAlgorithms = ["AES-256-GCM", "ChaCha20-Poly1305"] as const;
export const accessLevels = ["read", "read_write", "admin"] as const;
export type AccessLevel = (typeof accessLevels)[number];

const cidrPattern =
  /^(((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/(3[0-2]|[12]?\d)|[0-9a-fA-F:]*:[0-9a-fA-F:.]*\/(12[0-8]|1[01]\d|[1-9]?\d))$/;

const encryptionSchema = z
  .strictObject({
    algorithm: z
      .enum(encryptionAlgorithms)
      .default("AES-256-GCM")
      .describe("Authenticated cipher for data at rest and backups (documents: AES-256)."),
    keyRotation: z
      .string()
      .regex(/^(weekly|monthly|[1-9]\d{0,4}[hd])$/, {
        error: "expected weekly, monthly or a duration such as 90d or 12h",
      })
      .default("monthly")
      .describe(
        "How often keys are rotated: weekly, monthly or a duration (90d, 12h). Old data stays readable.",
      ),
    nodes: uniqueListSchema(dnsLabelSchema, 100_000, "node")
      .optional()
      .describe("Nodes whose data at rest is encrypted; omit for every node."),
  })
  .describe("Encryption policy.");

const roleSchema = z.strictObject({
  name: identifierSchema.describe("Role name, e.g. production_manager."),
  description: textSchema.optional().describe("What people in this role do."),
});

const accessRuleSchema = z.strictObject({
  resource: identifierSchema.describe(
    "Protected resource, e.g. production_data or configuration_data.",
  ),
  roles: uniqueListSchema(identifierSchema, securityRulesMax, "role")
    .min(1)
    .describe("Roles granted access; every other role is denied."),
  access: z
    .enum(accessLevels)
    .describe("read: view; read_write: view and change; admin: also grant and revoke."),
});

const firewallRuleSchema = z
  .strictObject({
    action: z.enum(["allow", "deny"]).describe("What happens to matching connections."),
    from: z
      .strictObject({
        node: dnsLabelSchema.optional().describe("Requests signed by this node."),
        role: identifierSchema
          .optional()
          .describe(
            "Requests signed by a node whose credential carries this role (agents' peers are nodes: `node`).",
          ),
        cidr: z
          .string()
          .regex(cidrPattern, { error: "expected a CIDR block such as 10.0.0.0/8 or fd00::/8" })
          .refine((text) => parseCidr(text) !== undefined, {
            error: "expected a CIDR block such as 10.0.0.0/8 or fd00::/8",
          })
          .optional()
          .describe("Requests from addresses in this block."),
      })
      .prefault({})
      .describe("Who the rule matches; every given field must match; empty matches everyone."),
    to: z
      .strictObject({
        service: identifierSchema.optional().describe("Connections to this service's port."),
        port: z.int().min(1).max(65_535).optional().describe("Connections to this port."),
      })
      .prefault({})
      .describe("Which listener the rule guards; empty guards every listener of the node."),
    nodes: uniqueListSchema(dnsLabelSchema, 100_000, "node")
      .min(1)
      .optional()
      .describe("Nodes whose listeners enforce this rule; omit for every node."),
    description: textSchema.optional().describe("Why the rule exists."),
  })
  .describe("A firewall rule on the agents' listeners; the first matching rule wins.");

const intrusionDetectionSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Turn suspicious activity into security events."),
    suspiciousActivityThreshold: positiveIntegerSchema
      .default(3)
      .describe("Suspicious activities after which a node is quarantined (documents: 3)."),
    failedAuthenticationsMax: positiveIntegerSchema
      .default(10)
      .describe(
        "Failed authentications one source may have within windowSeconds; more count as a suspicious activity.",
      ),
    windowSeconds: positiveIntegerSchema
      .default(60)
      .describe("Window in which failed authentications and floods are counted."),
    requestsPerSecondMax: positiveIntegerSchema
      .default(1_000)
      .describe("Requests per second one client may send before it is rate limited and flagged."),
  })
  .prefault({})
  .describe("Intrusion detection: counts suspicious activity and quarantines repeat offenders.");

export const securitySchema = z
  .strictObject({
    encryption: encryptionSchema.prefault({}),
    roles: z
      .array(roleSchema)
      .max(securityRulesMax)
      .default([])
      .describe("Roles users' credentials may carry."),
    accessControl: z
      .array(accessRuleSchema)
      .max(securityRulesMax)
      .default([])
      .describe("Access-control rules: resource, allowed roles, access level. Default deny."),
    network: z
      .strictObject({
        firewall: z
          .array(firewallRuleSchema)
          .max(securityRulesMax)
          .default([])
          .describe("Firewall rules in order; connections no rule matches are allowed."),
        intrusionDetection: intrusionDetectionSchema,
      })
      .prefault({})
      .describe("Network security: firewall rules and intrusion detection."),
  })
  .describe("Security policies (SPEC §7).");

export type SecuritySpec = z.output<typeof securitySchema>;
export type AccessRuleSpec = z.output<typeof accessRuleSchema>;
export type FirewallRuleSpec = z.output<typeof firewallRuleSchema>;
export type IntrusionDetectionSpec = z.output<typeof intrusionDetectionSchema>;
