// How a child process ended, once its output has been read. `close` alone can wait forever when
// a grandchild inherited the pipes, so after `exit` the output gets a bounded time to drain.

import type { ChildProcess } from "node:child_process";
import type { Clock } from "../../ports/clock.ts";

/** After the child exits, how long its pipes may stay open before they are cut. */
const outputDrainMs = 250;

export interface ChildExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all (not found, not executable). */
  spawnError: string | null;
}

/** Call right after spawn: resolves once; never rejects. */
export function childClosed(child: ChildProcess, clock: Clock): Promise<ChildExit> {
  return new Promise((resolve) => {
    let settled = false;
    let cancelDrain = () => {};
    const settle = (exit: ChildExit) => {
      if (settled) return;
      settled = true;
      cancelDrain();
      resolve(exit);
    };
    // Also emitted when a signal cannot be sent; only a child without a pid never ran.
    child.on("error", (error) => {
      if (child.pid === undefined)
        settle({ exitCode: null, signal: null, spawnError: error.message });
    });
    child.once("close", (exitCode: number | null, signal: NodeJS.Signals | null) =>
      settle({ exitCode, signal, spawnError: null }),
    );
    child.once("exit", (exitCode, signal) => {
      cancelDrain = clock.schedule(outputDrainMs, () => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        settle({ exitCode, signal, spawnError: null });
      });
    });
  });
}

/** "exited with code 1", "was killed by SIGKILL", "could not start: spawn ENOENT". */
export function describeExit(exit: ChildExit): string {
  if (exit.spawnError !== null) return `could not start: ${exit.spawnError}`;
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  return `exited with code ${String(exit.exitCode)}`;
}
