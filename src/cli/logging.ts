// Logs of long-running processes: pino JSON lines on stdout (which `edgeward up` sends to a
// file per process). Secrets never go into a log field.

import pino, { type Logger } from "pino";
import type { LogLevel } from "../runtime/json-line-logger.ts";

export function createProcessLogger(name: string, level: LogLevel): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}
