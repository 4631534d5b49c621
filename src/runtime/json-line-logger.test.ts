import { describe, expect, it } from "vitest";
import { createJsonLineLogger } from "./json-line-logger.ts";

describe("JSON line logger", () => {
  it("writes pino-shaped lines at or above its level, with errors serialised", () => {
    const lines: string[] = [];
    const logger = createJsonLineLogger("edgeward-agent", "info", (line) => lines.push(line));
    logger.debug({}, "hidden");
    logger.warn({ node: "a", err: new Error("boom") }, "connection lost");
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
    expect(record).toMatchObject({
      level: 40,
      name: "edgeward-agent",
      node: "a",
      msg: "connection lost",
      err: { type: "Error", message: "boom" },
    });
  });
});
