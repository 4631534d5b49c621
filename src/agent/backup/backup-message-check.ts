// Checks the server's backup messages by hand (the agent keeps zod out of memory), like
// server-service-message.ts does for the service messages.

import type {
  BackupRestorePoint,
  BackupCommand,
  BackupLevelName,
  BackupPolicyDefinition,
  BackupSourceDefinition,
  BackupTargets,
  ServerBackupMessage,
} from "../../api/service-messages.ts";
import { backupPasswordsMax } from "../../api/service-messages.ts";

/** Most policies one message may carry. */
export const backupPoliciesPerMessageMax = 256;
/** Most peers (nodes with a blob API) one message may list. */
export const backupPeersPerMessageMax = 4_096;

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const isText = (value: unknown): value is string => typeof value === "string";
const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
const isTextList = (value: unknown, max: number): value is string[] =>
  Array.isArray(value) && value.length <= max && value.every(isText);

const levels: ReadonlySet<string> = new Set(["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL", "CLOUD"]);
export const isBackupLevel = (value: unknown): value is BackupLevelName =>
  isText(value) && levels.has(value);

function isSource(value: unknown): value is BackupSourceDefinition {
  if (!isObject(value)) return false;
  switch (value["type"]) {
    case "service_data":
      return isText(value["service"]) && (value["path"] === null || isText(value["path"]));
    case "configuration":
    case "metrics":
      return true;
    case "logs":
      return value["service"] === null || isText(value["service"]);
    case "sqlite":
      return isText(value["path"]);
    default:
      return false;
  }
}

function isPolicy(value: unknown): value is BackupPolicyDefinition {
  return (
    isObject(value) &&
    isText(value["name"]) &&
    isTextList(value["dataTypes"], 64) &&
    isObject(value["sources"]) &&
    Object.values(value["sources"]).every(isSource) &&
    Array.isArray(value["levels"]) &&
    value["levels"].every(
      (level: unknown) =>
        isObject(level) &&
        isBackupLevel(level["level"]) &&
        isCount(level["intervalSeconds"]) &&
        level["intervalSeconds"] > 0 &&
        isCount(level["retentionDays"]),
    ) &&
    typeof value["encryptionRequired"] === "boolean"
  );
}

function isTargets(value: unknown): value is BackupTargets {
  if (!isObject(value)) return false;
  const peers = value["peers"];
  const cloud = value["cloud"];
  return (
    isText(value["password"]) &&
    value["password"].length > 0 &&
    (value["previousPasswords"] === undefined ||
      (Array.isArray(value["previousPasswords"]) &&
        value["previousPasswords"].length < backupPasswordsMax &&
        value["previousPasswords"].every((password) => isText(password) && password.length > 0))) &&
    isObject(peers) &&
    Object.keys(peers).length <= backupPeersPerMessageMax &&
    Object.values(peers).every(isText) &&
    isCount(value["clusterDataShards"]) &&
    isCount(value["clusterParityShards"]) &&
    (value["regionalUrl"] === null || isText(value["regionalUrl"])) &&
    (cloud === null ||
      (isObject(cloud) &&
        isText(cloud["url"]) &&
        isText(cloud["region"]) &&
        isText(cloud["accessKeyId"]) &&
        isText(cloud["secretAccessKey"])))
  );
}

function isRepositoryRef(value: unknown): boolean {
  return (
    isObject(value) &&
    isBackupLevel(value["level"]) &&
    isText(value["owner"]) &&
    isTextList(value["holders"], 255)
  );
}

function isRestorePoint(value: unknown): value is BackupRestorePoint {
  return (
    isObject(value) &&
    isRepositoryRef(value["repository"]) &&
    isText(value["snapshotId"]) &&
    isText(value["policy"]) &&
    isText(value["dataType"]) &&
    isCount(value["atMs"])
  );
}

function isRestorePoints(value: unknown): value is Record<string, BackupRestorePoint[]> {
  return (
    isObject(value) &&
    Object.keys(value).length <= backupPeersPerMessageMax &&
    Object.values(value).every(
      (points) => Array.isArray(points) && points.length <= 64 && points.every(isRestorePoint),
    )
  );
}

function isCommand(value: unknown): value is BackupCommand {
  if (!isObject(value)) return false;
  switch (value["type"]) {
    case "run":
      return isText(value["policy"]) && (value["level"] === null || isBackupLevel(value["level"]));
    case "restore": {
      return (
        isRepositoryRef(value["repository"]) &&
        isText(value["snapshotId"]) &&
        (value["entry"] === null || isText(value["entry"])) &&
        (value["targetDir"] === null || isText(value["targetDir"])) &&
        (value["service"] === null || isText(value["service"]))
      );
    }
    case "verify":
      return typeof value["readData"] === "boolean";
    case "forget":
      return isBackupLevel(value["level"]) && isTextList(value["snapshotIds"], 10_000);
    default:
      return false;
  }
}

/** The message if it is a well-formed backup message, else undefined. */
export function parseServerBackupMessage(value: Json): ServerBackupMessage | undefined {
  switch (value["type"]) {
    case "backup-policies":
      return Array.isArray(value["policies"]) &&
        value["policies"].length <= backupPoliciesPerMessageMax &&
        value["policies"].every(isPolicy) &&
        isTargets(value["targets"]) &&
        isRestorePoints(value["restorePoints"])
        ? (value as unknown as ServerBackupMessage)
        : undefined;
    case "backup-command":
      return isCount(value["id"]) && isCommand(value["command"])
        ? (value as unknown as ServerBackupMessage)
        : undefined;
    default:
      return undefined;
  }
}
