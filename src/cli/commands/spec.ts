import type { Command } from "commander";

/** Placeholder until the `spec` command group lands. */
export function registerSpecCommands(program: Command): void {
  void program;
}
