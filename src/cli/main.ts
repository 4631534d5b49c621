// The edgeward command line: one program, one file per command group under ./commands.
import { Command } from "commander";
import { registerFleetCommands } from "./commands/fleet.ts";
import { registerRepoCommands } from "./commands/repo.ts";
import { registerSimCommands } from "./commands/sim.ts";
import { registerSpecCommands } from "./commands/spec.ts";

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

registerFleetCommands(program);
registerSpecCommands(program);
registerRepoCommands(program);
registerSimCommands(program);

await program.parseAsync(process.argv);
