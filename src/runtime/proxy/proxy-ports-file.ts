// proxies.json in the agent's data dir: the local port of each service's forwarding proxy, so
// a restarted agent listens where its clients already connect.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Service names as the fleet spec allows them (checked by hand: the agent keeps zod out). */
export const serviceNamePattern = /^[a-z][a-z0-9_-]{0,62}$/;

export function isServiceName(value: unknown): value is string {
  return typeof value === "string" && serviceNamePattern.test(value);
}

/** A file listing more proxies than this is refused as damaged. */
export const proxyPortsServicesMax = 4_096;

export type ProxyPorts = Record<string, number>;

export class ProxyPortsFileError extends Error {
  override readonly name = "ProxyPortsFileError";
}

export function proxyPortsFilePath(dataDir: string): string {
  return join(dataDir, "proxies.json");
}

function isPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65_535;
}

/** What is wrong with the parsed file, or the ports. */
function parseProxyPorts(value: unknown): ProxyPorts | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "not a JSON object";
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > proxyPortsServicesMax) {
    return `more than ${proxyPortsServicesMax} services`;
  }
  const ports: ProxyPorts = {};
  for (const [service, port] of entries) {
    if (!isServiceName(service)) return `${JSON.stringify(service)} is not a service name`;
    if (!isPort(port)) return `port of ${service} is not a whole number in 1..65535`;
    ports[service] = port;
  }
  return ports;
}

/** The saved ports; empty when the file does not exist yet. Throws ProxyPortsFileError if damaged. */
export function readProxyPortsFile(dataDir: string): ProxyPorts {
  const path = proxyPortsFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ProxyPortsFileError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ProxyPortsFileError(
      `${path} is damaged (not JSON: ${(error as Error).message}); move it away to start afresh`,
    );
  }
  const ports = parseProxyPorts(parsed);
  if (typeof ports === "string") {
    throw new ProxyPortsFileError(`${path} is damaged (${ports}); move it away to start afresh`);
  }
  return ports;
}

/** Written atomically and durably: temp file, fsync, rename. */
export function writeProxyPortsFile(dataDir: string, ports: ProxyPorts): void {
  const checked = parseProxyPorts(ports);
  if (typeof checked === "string") throw new ProxyPortsFileError(`refusing to write: ${checked}`);
  const path = proxyPortsFilePath(dataDir);
  const temporaryPath = `${path}.tmp`;
  writeFileSync(temporaryPath, `${JSON.stringify(checked)}\n`);
  const descriptor = openSync(temporaryPath, "r");
  try {
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(temporaryPath, path);
  const directory = openSync(dataDir, "r");
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
