// A minimal logger that writes pino-compatible JSON lines. Agents use it instead of pino to
// keep their resident memory small; the server keeps pino, which fastify expects.

import type { LogFields, Logger } from "../ports/logger.ts";
import { redactedText, redactSecrets, secretLogFieldNames } from "./log-redaction.ts";

const secretFieldNames = new Set(secretLogFieldNames.map((name) => name.toLowerCase()));

const levelNumbers = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
} as const;
/** pino's level names, shared by every process's --log-level option. */
export type LogLevel = keyof typeof levelNumbers;
export const logLevels = Object.keys(levelNumbers) as LogLevel[];

function serialise(value: unknown): unknown {
  return value instanceof Error
    ? { type: value.name, message: value.message, stack: value.stack }
    : value;
}

export function createJsonLineLogger(
  name: string,
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const threshold = levelNumbers[level];
  const emit = (levelNumber: number, fields: LogFields, message: string) => {
    if (levelNumber < threshold) return;
    const record: Record<string, unknown> = {
      level: levelNumber,
      time: Date.now(),
      pid: process.pid,
      name,
    };
    for (const [key, value] of Object.entries(fields))
      record[key] = secretFieldNames.has(key.toLowerCase())
        ? redactedText
        : redactSecrets(serialise(value));
    record["msg"] = message;
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (fields, message) => emit(levelNumbers.debug, fields, message),
    info: (fields, message) => emit(levelNumbers.info, fields, message),
    warn: (fields, message) => emit(levelNumbers.warn, fields, message),
    error: (fields, message) => emit(levelNumbers.error, fields, message),
  };
}
