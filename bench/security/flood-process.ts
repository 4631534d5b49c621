// Runs one flood phase in a process of its own (bench/security/flapping.ts starts it), so the
// benchmark's own probes of the agent and polls of the server do not queue behind the flood
// client's work. argv[2]: the agent's URL; argv[3]: the phase as JSON. Prints `started` when
// the flood begins, then the answers by status as one JSON line.

import type { FloodPhase } from "./flapping.ts";
import { floodBurst, floodSustained } from "./flood-client.ts";

const agentUrl = process.argv[2] ?? "";
const phase = JSON.parse(process.argv[3] ?? "{}") as FloodPhase;
process.stdout.write("started\n");
const answers =
  phase.kind === "burst"
    ? await floodBurst(agentUrl, phase.concurrent)
    : await floodSustained(agentUrl, phase.requestsPerSecond, phase.seconds);
process.stdout.write(`${JSON.stringify(answers)}\n`);
