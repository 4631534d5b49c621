// The guard that keeps secrets out of logs even when a call passes one by mistake: fields with
// these names (at any depth the logger looks) are replaced by "[redacted]".

/** Field names whose values never reach a log line, matched case-insensitively. */
export const secretLogFieldNames = [
  "token",
  "key",
  "password",
  "secret",
  "authorization",
  "credential",
  "privateKey",
  "joinToken",
  "adminToken",
  "secretAccessKey",
  "cookie",
] as const;

export const redactedText = "[redacted]";

const capitalised = secretLogFieldNames.map((name) => name[0]?.toUpperCase() + name.slice(1));
/**
 * pino's `redact` paths for the same names (pino matches exactly: also capitalised), at the
 * top, one level down and in request headers.
 */
export const pinoRedactPaths = [
  ...secretLogFieldNames,
  ...capitalised,
  ...[...secretLogFieldNames, ...capitalised].map((name) => `*.${name}`),
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-edgeward-signature"]',
];

const secretNames = new Set(secretLogFieldNames.map((name) => name.toLowerCase()));
/** Nesting the json-line logger redacts through; deeper values are logged as "[nested]". */
const redactionDepthMax = 6;

export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (depth >= redactionDepthMax) return "[nested]";
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value))
    copy[name] = secretNames.has(name.toLowerCase())
      ? redactedText
      : redactSecrets(field, depth + 1);
  return copy;
}
