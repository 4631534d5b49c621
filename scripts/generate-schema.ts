// Writes schemas/fleet.schema.json from the zod schemas of the fleet spec.
// Run `npx tsx scripts/generate-schema.ts` after changing anything under src/core/spec/;
// a test fails while the committed file is out of date.
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { fleetSpecJsonSchema } from "../src/core/spec/fleet-spec-json-schema.ts";

const schemaFile = fileURLToPath(new URL("../schemas/fleet.schema.json", import.meta.url));
await writeFile(schemaFile, `${JSON.stringify(fleetSpecJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${schemaFile}\n`);
