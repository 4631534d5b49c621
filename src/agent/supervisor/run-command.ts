// One-shot commands beside a service: failover hooks and exec health checks. No shell; the
// output is kept only as a tail for the error message; a command over its time is killed.

import { spawn } from "node:child_process";
import type { Clock } from "../../ports/clock.ts";
import { childClosed, describeExit } from "./child-exit.ts";
import { resolveProgram } from "./command-path.ts";
import { OutputTail } from "./output-tail.ts";

export interface CommandRun {
  /** Program and arguments. */
  command: readonly string[];
  cwd: string;
  environment: NodeJS.ProcessEnv;
  timeoutMs: number;
}

export type CommandOutcome =
  { ok: true; output: string } | { ok: false; reason: string; output: string };

/** Runs the command to its end; never rejects: a failure is an outcome with its reason. */
export async function runCommand(run: CommandRun, clock: Clock): Promise<CommandOutcome> {
  const [program = "", ...args] = run.command;
  const path = await resolveProgram(program, run.cwd, run.environment["PATH"]);
  if (path === undefined) {
    return { ok: false, reason: `command not found: ${program}`, output: "" };
  }
  const child = spawn(path, args, {
    cwd: run.cwd,
    env: run.environment,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const closed = childClosed(child, clock);
  const tail = new OutputTail();
  child.stdout.on("data", (chunk: Buffer) => tail.append(chunk));
  child.stderr.on("data", (chunk: Buffer) => tail.append(chunk));
  let timedOut = false;
  const cancelTimeout = clock.schedule(run.timeoutMs, () => {
    timedOut = true;
    // SIGKILL at once: a hook past its time holds up a failover, there is no grace to give.
    child.kill("SIGKILL");
  });
  const exit = await closed;
  cancelTimeout();
  const output = tail.text();
  if (timedOut) return { ok: false, reason: `timed out after ${run.timeoutMs} ms`, output };
  if (exit.exitCode === 0) return { ok: true, output };
  return { ok: false, reason: describeExit(exit), output };
}
