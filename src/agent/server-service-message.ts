// Checks a service message from the server by hand (the agent keeps zod out of memory): a
// malformed one is dropped with a warning instead of reaching the supervisor.

import type {
  AgentCommand,
  HealthCheckDefinition,
  RouteEntry,
  ServerServiceMessage,
  ServiceDefinition,
} from "../api/service-messages.ts";
import { firewallRulesMax, peerIdentitiesMax } from "../api/service-messages.ts";
import { isNodeId } from "../api/node-id.ts";
import { parseCidr } from "../core/security/ip-address.ts";
import { parseServerBackupMessage } from "./backup/backup-message-check.ts";

/** Most services one message may define, route or assign. */
export const servicesPerMessageMax = 4_096;

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isText = (value: unknown): value is string => typeof value === "string";
const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isArgv = (value: unknown): value is string[] =>
  Array.isArray(value) && value.length > 0 && value.every(isText);

function isRecordOf<Value>(
  value: unknown,
  isValue: (entry: unknown) => entry is Value,
): value is Record<string, Value> {
  if (!isObject(value)) return false;
  const entries = Object.values(value);
  return entries.length <= servicesPerMessageMax && entries.every(isValue);
}

function isHealthCheck(value: unknown): value is HealthCheckDefinition {
  if (!isObject(value)) return false;
  const timing =
    isCount(value["intervalMs"]) && isCount(value["timeoutMs"]) && isCount(value["threshold"]);
  if (!timing) return false;
  if (value["type"] === "http") return isText(value["path"]);
  if (value["type"] === "tcp") return true;
  return value["type"] === "exec" && isArgv(value["command"]);
}

function isDefinition(value: unknown): value is ServiceDefinition {
  return (
    isObject(value) &&
    isText(value["name"]) &&
    isArgv(value["command"]) &&
    isRecordOf(value["env"], isText) &&
    (value["port"] === null || isCount(value["port"])) &&
    (value["healthCheck"] === null || isHealthCheck(value["healthCheck"])) &&
    (value["dataDir"] === null || isText(value["dataDir"])) &&
    isCount(value["restartAttempts"]) &&
    isCount(value["storageBytes"])
  );
}

function isRoute(value: unknown): value is RouteEntry | null {
  return (
    value === null ||
    (isObject(value) &&
      isText(value["nodeId"]) &&
      isText(value["endpoint"]) &&
      isCount(value["generation"]))
  );
}

function isCommand(value: unknown): value is AgentCommand {
  if (!isObject(value) || !isText(value["service"]) || !isCount(value["generation"])) return false;
  switch (value["type"]) {
    case "prepare":
    case "start":
    case "check-health":
      return true;
    case "sync-data":
      return (
        ((value["fromUrl"] === null && value["fromNode"] === null) ||
          (isText(value["fromUrl"]) && isNodeId(value["fromNode"]))) &&
        typeof value["quiesce"] === "boolean" &&
        Array.isArray(value["sources"]) &&
        value["sources"].every((source) => source === "primary" || source === "backup")
      );
    case "run-hook":
      return isText(value["hook"]) && isArgv(value["command"]) && isCount(value["timeoutMs"]);
    case "stop":
      return (
        value["reason"] === "rollback" || value["reason"] === "fence" || value["reason"] === "drill"
      );
    default:
      return false;
  }
}

/** An Ed25519 SPKI DER key in base64 is 60 characters; allow some room for other encodings. */
const isPublicKey = (value: unknown): value is string =>
  isText(value) && value.length > 0 && value.length <= 1_024 && /^[A-Za-z0-9+/]+=*$/.test(value);

const isOptional = (value: unknown, check: (entry: unknown) => boolean): boolean =>
  value === undefined || check(value);
const isName = (value: unknown): boolean =>
  isText(value) && value.length > 0 && value.length <= 253;

/** A pushed firewall rule: the shape of FirewallRule, a parseable CIDR block, a real port. */
function isFirewallRule(value: unknown, position: number): boolean {
  if (!isObject(value) || !isObject(value["from"]) || !isObject(value["to"])) return false;
  const { from, to } = value as { from: Json; to: Json };
  const isPort = (port: unknown) => isCount(port) && port >= 1 && port <= 65_535;
  return (
    isCount(value["index"]) &&
    value["index"] >= position &&
    (value["action"] === "allow" || value["action"] === "deny") &&
    isOptional(from["node"], isName) &&
    isOptional(from["role"], isName) &&
    isOptional(from["cidr"], (cidr) => isText(cidr) && parseCidr(cidr) !== undefined) &&
    isOptional(to["service"], isName) &&
    isOptional(to["port"], isPort)
  );
}

/** The message if it is a well-formed service message, else undefined. */
export function parseServerServiceMessage(value: unknown): ServerServiceMessage | undefined {
  if (!isObject(value)) return undefined;
  switch (value["type"]) {
    case "services":
      return Array.isArray(value["definitions"]) &&
        value["definitions"].length <= servicesPerMessageMax &&
        value["definitions"].every(isDefinition) &&
        isRecordOf(value["assignments"], isCount) &&
        isRecordOf(value["newestGenerations"], isCount)
        ? (value as unknown as ServerServiceMessage)
        : undefined;
    case "routes":
      return isRecordOf(value["routes"], isRoute)
        ? (value as unknown as ServerServiceMessage)
        : undefined;
    case "command":
      return isCount(value["id"]) && isCommand(value["command"])
        ? (value as unknown as ServerServiceMessage)
        : undefined;
    case "backup-policies":
    case "backup-command":
      return parseServerBackupMessage(value);
    case "peer-identities":
      return typeof value["required"] === "boolean" &&
        isObject(value["keys"]) &&
        Object.keys(value["keys"]).length <= peerIdentitiesMax &&
        Object.entries(value["keys"]).every(
          ([nodeId, key]) => nodeId.length > 0 && nodeId.length <= 253 && isPublicKey(key),
        )
        ? (value as unknown as ServerServiceMessage)
        : undefined;
    case "firewall-rules":
      return Array.isArray(value["rules"]) &&
        value["rules"].length <= firewallRulesMax &&
        value["rules"].every(isFirewallRule)
        ? (value as unknown as ServerServiceMessage)
        : undefined;
    default:
      return undefined;
  }
}
