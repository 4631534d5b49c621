// What the API commands share: where they write, the options that pick the server, and how
// a command's result becomes the process's exit code.

import type { Command } from "commander";

/** Where a command writes; `process.stdout`/`process.stderr` fit, and so does a test's buffer. */
export interface TextSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface CommandOutput {
  stdout: TextSink;
  stderr: TextSink;
}

export const processOutput: CommandOutput = { stdout: process.stdout, stderr: process.stderr };

/** --dir and --server, as every command that talks to the server takes them. */
export function withServerOptions(command: Command): Command {
  return command
    .option(
      "--dir <dir>",
      "find the server of the local fleet in this directory (default .edgeward)",
    )
    .option("--server <url>", "the server's URL (default: the local fleet, then $EDGEWARD_SERVER)");
}

/** Runs a command and sets the exit code it returns (errors go to main's handler). */
export async function exitWith(run: () => Promise<number>): Promise<void> {
  const code = await run();
  if (code !== 0) process.exitCode = code;
}
