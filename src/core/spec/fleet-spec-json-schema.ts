// The JSON Schema of the fleet spec, generated from the same zod schemas the parser uses, so
// editors autocomplete and check exactly what edgeward accepts.

import { z } from "zod";
import { fleetSpecSchema } from "./fleet-spec-schema.ts";

/**
 * JSON Schema (draft-07, which every YAML editor understands) describing a fleet spec file as
 * written: fields with defaults are optional. Checks that span fields are the parser's alone.
 */
export function fleetSpecJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(fleetSpecSchema, { target: "draft-07", io: "input" });
}
