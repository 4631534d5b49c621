import type { Command } from "commander";

/** Placeholder until the `sim` command lands. */
export function registerSimCommands(program: Command): void {
  void program;
}
