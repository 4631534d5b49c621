import type { Command } from "commander";

/** Placeholder until the `repo` command group lands. */
export function registerRepoCommands(program: Command): void {
  void program;
}
