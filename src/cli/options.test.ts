import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import {
  collectLabel,
  parseDurationMs,
  parseFraction,
  parseListenAddress,
  parseNonNegativeInteger,
  parsePort,
} from "./options.ts";

describe("option parsers", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["90", 90_000],
  ])("reads the duration %s as %i ms", (text, expectedMs) => {
    expect(parseDurationMs(text)).toBe(expectedMs);
  });

  it.each([
    [parseDurationMs, "soon"],
    [parsePort, "70000"],
    [parsePort, "-1"],
    [parseFraction, "1"],
    [parseFraction, "x"],
    [parseNonNegativeInteger, "1.5"],
    [parseListenAddress, "8080"],
    [collectLabel, "novalue"],
  ] as const)(
    "rejects bad input with a message that says what was expected (%#)",
    (parse, text) => {
      expect(() => parse(text)).toThrow(InvalidArgumentError);
      expect(() => parse(text)).toThrow(/expected/);
    },
  );

  it("reads listen addresses, IPv6 included", () => {
    expect(parseListenAddress("127.0.0.1:0")).toEqual({ host: "127.0.0.1", port: 0 });
    expect(parseListenAddress("[::1]:7070")).toEqual({ host: "::1", port: 7070 });
  });

  it("collects repeated labels", () => {
    expect(collectLabel("line=a", collectLabel("zone=x"))).toEqual({ zone: "x", line: "a" });
  });
});
