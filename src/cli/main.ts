// The edgeward command line: one program, one file per command group under ./commands.
import { Command } from "commander";
import { registerAgentCommand } from "./commands/agent.ts";
import { registerEventsCommand } from "./commands/events.ts";
import { registerNodeCommands } from "./commands/node.ts";
import { registerRepoCommands } from "./commands/repo.ts";
import { registerSimCommands } from "./commands/sim.ts";
import { registerServerCommand } from "./commands/server.ts";
import { registerSpecCommands } from "./commands/spec.ts";
import { registerStatusCommand } from "./commands/status.ts";
import { registerUpCommands } from "./commands/up.ts";

const program = new Command();
program
  .name("edgeward")
  .description(
    "Keeps fleets of edge-computing nodes running and their data safe.\n\n" +
      "Quick start:\n" +
      "  edgeward up examples/industrial-iot.yaml   start a local fleet and watch it\n" +
      "  edgeward status                            every node's health and usage\n" +
      "  edgeward events --follow                   node transitions as they happen",
  )
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)");

registerUpCommands(program);
registerStatusCommand(program);
registerEventsCommand(program);
registerNodeCommands(program);
registerServerCommand(program);
registerAgentCommand(program);
registerSpecCommands(program);
registerRepoCommands(program);
registerSimCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Operating errors carry a message that says what to do; a stack only helps developers.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`edgeward: ${message}\n`);
  if (process.env["EDGEWARD_DEBUG"] !== undefined && error instanceof Error)
    process.stderr.write(`${error.stack ?? ""}\n`);
  process.exitCode = 1;
}
