import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fleetSpecJsonSchema } from "../../src/core/spec/fleet-spec-json-schema.ts";

describe("schemas/fleet.schema.json", () => {
  it("is what the zod schemas generate", () => {
    const committed: unknown = JSON.parse(
      readFileSync(new URL("../../schemas/fleet.schema.json", import.meta.url), "utf8"),
    );
    expect(
      committed,
      "schemas/fleet.schema.json is out of date: run `npx tsx scripts/generate-schema.ts` and commit it",
    ).toEqual(fleetSpecJsonSchema());
  });

  it("describes every field, so editors can explain it", () => {
    const undescribed: string[] = [];
    const visit = (schema: unknown, path: string): void => {
      if (typeof schema !== "object" || schema === null) return;
      const properties: unknown = (schema as Record<string, unknown>)["properties"];
      if (typeof properties === "object" && properties !== null)
        for (const [name, property] of Object.entries(properties))
          if (typeof property !== "object" || property === null || !("description" in property))
            undescribed.push(`${path}.${name}`);
      for (const [key, child] of Object.entries(schema)) visit(child, `${path}/${key}`);
    };
    visit(fleetSpecJsonSchema(), "#");
    expect(undescribed).toEqual([]);
  });
});
