// The edgeward command line. Each command group lives in ./commands and is loaded only when
// it runs (or for --help), so a long-running agent never loads the backup engine, the spec
// parser or the server.
import { Command } from "commander";

type Register = (program: Command) => void;

const commandLoaders: Record<string, () => Promise<Register>> = {
  up: async () => (await import("./commands/up.ts")).registerUpCommands,
  status: async () => (await import("./commands/status.ts")).registerStatusCommand,
  events: async () => (await import("./commands/events.ts")).registerEventsCommand,
  node: async () => (await import("./commands/node.ts")).registerNodeCommands,
  server: async () => (await import("./commands/server.ts")).registerServerCommand,
  agent: async () => (await import("./commands/agent.ts")).registerAgentCommand,
  spec: async () => (await import("./commands/spec.ts")).registerSpecCommands,
  repo: async () => (await import("./commands/repo.ts")).registerRepoCommands,
  backup: async () => (await import("./commands/backup.ts")).registerBackupCommands,
  sim: async () => (await import("./commands/sim.ts")).registerSimCommands,
  services: async () => (await import("./commands/services.ts")).registerServiceCommands,
  audit: async () => (await import("./commands/audit.ts")).registerAuditCommands,
  token: async () => (await import("./commands/token.ts")).registerTokenCommands,
};
/** Commands registered by another command's module. */
const commandAliases: Record<string, string> = {
  down: "up",
  failovers: "services",
  failover: "services",
  drill: "services",
  drills: "services",
};

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

try {
  const requested = process.argv[2] ?? "";
  const moduleName = commandAliases[requested] ?? requested;
  const loaders =
    moduleName in commandLoaders ? [commandLoaders[moduleName]] : Object.values(commandLoaders);
  for (const load of loaders) if (load !== undefined) (await load())(program);
  await program.parseAsync(process.argv);
} catch (error) {
  // Operating errors carry a message that says what to do; a stack only helps developers.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`edgeward: ${message}\n`);
  if (process.env["EDGEWARD_DEBUG"] !== undefined && error instanceof Error)
    process.stderr.write(`${error.stack ?? ""}\n`);
  process.exitCode = 1;
}
