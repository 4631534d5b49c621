// Ledger throughput: appends per second (one durable transaction each, and batched), proof
// generation time at the final size, and the offline audit of the whole log.
// Usage: tsx bench/ledger/run.ts [entries=100000]; writes bench/results/ledger.json.

import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { measureLedger } from "./measure.ts";

const entries = Number(process.argv[2] ?? 100_000);
const results = {
  benchmark: "ledger",
  node: process.version,
  loadAverage: loadavg(),
  ...measureLedger({
    entries,
    batchSize: 1_000,
    singleAppends: Math.min(2_000, entries),
    proofSamples: 2_000,
    audit: true,
  }),
};
mkdirSync(join(import.meta.dirname, "..", "results"), { recursive: true });
writeFileSync(
  join(import.meta.dirname, "..", "results", "ledger.json"),
  `${JSON.stringify(results, null, 2)}\n`,
);
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
