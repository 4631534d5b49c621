// Checks the service definitions the server pushes, by hand (the agent keeps zod out of its
// memory). The server derived them from a validated spec; this guards the agent against a
// mismatched or hostile server: a data dir outside the agent's, a name unsafe as a file name.

import type { HealthCheckDefinition, ServiceDefinition } from "../../api/service-messages.ts";

/** Service names as the fleet spec allows them: safe in file names and environment values. */
const serviceNamePattern = /^[a-z][a-z0-9_-]{0,62}$/;
/** Local restarts allowed per instance; more only delays the server's failover. */
const restartAttemptsMax = 100;
/** Arguments of a command, and characters of each. */
const commandPartsMax = 256;
const commandPartCharactersMax = 4_096;
/** Names a shell could export too; others (with '=' or NUL) would break the spawn. */
const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Environment variables a definition may set. */
const environmentEntriesMax = 256;
/** Longest health-check interval or timeout: one hour. */
const checkIntervalMsMax = 3_600_000;

function isWholeNumber(value: unknown, minimum: number, maximum: number): value is number {
  return (
    typeof value === "number" && Number.isSafeInteger(value) && value >= minimum && value <= maximum
  );
}

/** What is wrong with a program-and-arguments list, or undefined when it can be spawned. */
export function commandProblem(command: unknown): string | undefined {
  if (!Array.isArray(command) || command.length === 0 || command.length > commandPartsMax) {
    return `command must be 1 to ${commandPartsMax} strings`;
  }
  for (const part of command) {
    if (typeof part !== "string" || part.length > commandPartCharactersMax || part.includes("\0")) {
      return `command parts must be strings of at most ${commandPartCharactersMax} characters`;
    }
  }
  if (command[0] === "") return "command[0] must name a program";
  return undefined;
}

function checkHealthCheck(check: HealthCheckDefinition | null): string | undefined {
  if (check === null) return undefined;
  if (typeof check !== "object") return "healthCheck must be an object or null";
  if (!isWholeNumber(check.intervalMs, 1, checkIntervalMsMax)) return "bad healthCheck.intervalMs";
  if (!isWholeNumber(check.timeoutMs, 1, checkIntervalMsMax)) return "bad healthCheck.timeoutMs";
  if (!isWholeNumber(check.threshold, 1, 1_000)) return "bad healthCheck.threshold";
  const type: string = check.type;
  switch (check.type) {
    case "http":
      return typeof check.path === "string" && check.path.startsWith("/")
        ? undefined
        : "healthCheck.path must start with /";
    case "tcp":
      return undefined;
    case "exec":
      return commandProblem(check.command);
    default:
      return `unknown healthCheck.type ${type}`;
  }
}

function checkDataDir(dataDir: string | null): string | undefined {
  if (dataDir === null) return undefined;
  if (typeof dataDir !== "string" || dataDir === "" || dataDir.length > 255) {
    return "dataDir must be a relative path or null";
  }
  const parts = dataDir.split("/");
  if (
    dataDir.startsWith("/") ||
    parts.some((part) => part === "" || part === "." || part === "..")
  ) {
    return "dataDir must stay inside the agent's services directory (no /, . or .. parts)";
  }
  return undefined;
}

/** What is wrong with the definition, or undefined when it can be run. */
export function definitionProblem(definition: ServiceDefinition): string | undefined {
  if (typeof definition !== "object" || definition === null) return "not an object";
  if (typeof definition.name !== "string" || !serviceNamePattern.test(definition.name)) {
    return "name must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter";
  }
  const environment: unknown = definition.env;
  if (typeof environment !== "object" || environment === null) return "env must be an object";
  const entries = Object.entries(environment);
  if (entries.length > environmentEntriesMax) {
    return `env has more than ${environmentEntriesMax} variables`;
  }
  for (const [name, value] of entries) {
    if (!environmentNamePattern.test(name)) return `env name ${name.slice(0, 80)} is not valid`;
    if (typeof value !== "string" || value.includes("\0")) {
      return `env ${name} must be a string without NUL characters`;
    }
  }
  if (definition.port !== null && !isWholeNumber(definition.port, 1, 65_535)) {
    return "port must be 1 to 65535 or null";
  }
  if (!isWholeNumber(definition.restartAttempts, 0, restartAttemptsMax)) {
    return `restartAttempts must be 0 to ${restartAttemptsMax}`;
  }
  if (!isWholeNumber(definition.storageBytes, 0, Number.MAX_SAFE_INTEGER)) {
    return "storageBytes must be a whole number >= 0";
  }
  return (
    commandProblem(definition.command) ??
    checkHealthCheck(definition.healthCheck) ??
    checkDataDir(definition.dataDir)
  );
}
