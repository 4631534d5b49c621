// Starting and stopping the processes of a local fleet. Each runs in its own process group
// (detached: setsid), so a "node crash" is `kill -9 -<pgid>` and takes the agent and all its
// children at once. We only ever signal groups whose leader is an edgeward process we started.

import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { readEndpointFile, type Endpoint } from "../../runtime/endpoint-file.ts";

export class LocalProcessError extends Error {
  override readonly name = "LocalProcessError";
}

/** The command that re-runs this very CLI (bundle or TypeScript via tsx) with new arguments. */
export function edgewardCommand(args: string[]): { command: string; args: string[] } {
  const script = process.argv[1];
  if (script === undefined)
    throw new LocalProcessError("cannot tell which script is running edgeward");
  return { command: process.execPath, args: [...process.execArgv, script, ...args] };
}

export interface StartedProcess {
  pid: number;
  pgid: number;
  url: string;
}

/**
 * Starts `edgeward <args>` detached, with stdout and stderr appended to `logPath`, and waits
 * until it has written <endpointDir>/endpoint.json with its own pid.
 */
export async function startEdgewardProcess(
  args: string[],
  logPath: string,
  endpointDir: string,
  timeoutMs: number,
  /** Extra environment (secrets go here, not into arguments that `ps` shows). */
  environment: Record<string, string> = {},
): Promise<StartedProcess> {
  const { command, args: fullArgs } = edgewardCommand(args);
  const log = openSync(logPath, "a");
  const child = spawn(command, fullArgs, {
    detached: true,
    stdio: ["ignore", log, log],
    env: { ...process.env, ...environment },
  });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined)
    throw new LocalProcessError(`could not start edgeward ${args[0] ?? ""}; see ${logPath}`);
  const exited: { code: number | undefined } = { code: undefined };
  child.once("exit", (code, signal) => {
    exited.code = code ?? (signal === null ? -1 : 128);
  });
  child.unref();
  const deadlineMs = Date.now() + timeoutMs;
  for (;;) {
    const endpoint: Endpoint | undefined = readEndpointFile(endpointDir);
    if (endpoint?.pid === pid) return { pid, pgid: pid, url: endpoint.url };
    if (exited.code !== undefined) {
      throw new LocalProcessError(
        `edgeward ${args[0] ?? ""} exited (code ${exited.code}) before it was ready:\n${tail(logPath)}`,
      );
    }
    if (Date.now() > deadlineMs) {
      killGroup(pid, "SIGKILL");
      throw new LocalProcessError(
        `edgeward ${args[0] ?? ""} was not ready after ${timeoutMs} ms; see ${logPath}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True if `pid` is running edgeward (guards against signalling a recycled pid). */
export function isEdgewardProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("edgeward");
  } catch {
    return false;
  }
}

export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Signals a group's leader to stop, escalating to SIGKILL after `graceMs`. */
export async function stopGroup(
  pgid: number,
  graceMs: number,
): Promise<"stopped" | "killed" | "gone"> {
  if (!isAlive(pgid) || !isEdgewardProcess(pgid)) return "gone";
  killGroup(pgid, "SIGTERM");
  const deadlineMs = Date.now() + graceMs;
  while (Date.now() < deadlineMs) {
    if (!isAlive(pgid)) {
      killGroup(pgid, "SIGKILL"); // children the leader left behind
      return "stopped";
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  killGroup(pgid, "SIGKILL");
  return "killed";
}
