// Option parsers shared by the commands, each rejecting bad input with a message that says
// what was expected.

import { InvalidArgumentError } from "commander";
import { keyRotationIntervalMs, KeyRotationPolicyError } from "../core/security/key-rotation.ts";

export function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError(
      `expected a port number 0-65535 (0 = any free port), got "${value}"`,
    );
  }
  return port;
}

/** A key rotation policy: weekly, monthly, Nd or Nh. */
export function parseKeyRotation(value: string): string {
  try {
    keyRotationIntervalMs(value);
  } catch (error) {
    if (error instanceof KeyRotationPolicyError) throw new InvalidArgumentError(error.message);
    throw error;
  }
  return value;
}

export function parseFraction(value: string): number {
  const fraction = Number(value);
  if (!Number.isFinite(fraction) || fraction < 0 || fraction >= 1) {
    throw new InvalidArgumentError(`expected a fraction in [0, 1), got "${value}"`);
  }
  return fraction;
}

export function parseNonNegativeMs(value: string): number {
  const milliseconds = Number(value);
  if (!Number.isFinite(milliseconds) || milliseconds < 0 || milliseconds > 3_600_000) {
    throw new InvalidArgumentError(`expected milliseconds between 0 and 3600000, got "${value}"`);
  }
  return milliseconds;
}

/** Durations like 500ms, 30s, 5m, 1h (a bare number is seconds). */
export function parseDurationMs(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (match === null)
    throw new InvalidArgumentError(
      `expected a duration such as 500ms, 30s, 5m or 1h, got "${value}"`,
    );
  const amount = Number(match[1]);
  const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[
    (match[2] ?? "s") as "ms" | "s" | "m" | "h"
  ];
  return amount * unitMs;
}

export function parsePositiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1)
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return number;
}

export function parseNonNegativeInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0)
    throw new InvalidArgumentError(`expected a whole number >= 0, got "${value}"`);
  return number;
}

/** `host:port`, where port 0 means any free port. */
export function parseListenAddress(value: string): { host: string; port: number } {
  const separator = value.lastIndexOf(":");
  if (separator <= 0)
    throw new InvalidArgumentError(`expected host:port such as 127.0.0.1:0, got "${value}"`);
  return {
    host: value.slice(0, separator).replace(/^\[|\]$/g, ""),
    port: parsePort(value.slice(separator + 1)),
  };
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Collects repeatable key=value options into a record. */
export function collectLabel(
  value: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const separator = value.indexOf("=");
  if (separator <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, separator)]: value.slice(separator + 1) };
}
