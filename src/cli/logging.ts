// Logs of long-running processes: pino JSON lines on stdout (which `edgeward up` sends to a
// file per process). Secrets never go into a log field.

import pino, { type Logger } from "pino";
import type { LogLevel } from "../runtime/json-line-logger.ts";
import { pinoRedactPaths, redactedText } from "../runtime/log-redaction.ts";

/** `destination`: where the lines go (stdout by default; tests capture them). */
export function createProcessLogger(
  name: string,
  level: LogLevel,
  destination?: pino.DestinationStream,
): Logger {
  const options = {
    name,
    level,
    base: { pid: process.pid },
    redact: { paths: pinoRedactPaths, censor: redactedText },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
