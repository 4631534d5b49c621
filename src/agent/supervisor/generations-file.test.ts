import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { generationsFilePath, readGenerations, writeGenerations } from "./generations-file.ts";
import { SupervisorError } from "./supervisor-error.ts";
import { TemporaryDirectories } from "./supervisor-test-support.ts";

const directories = new TemporaryDirectories();
afterEach(() => directories.removeAll());

describe("generations file", () => {
  it("is empty before the first write and reads back what was written", () => {
    const dataDir = directories.create("generations");
    expect(readGenerations(dataDir)).toEqual(new Map());
    const generations = new Map([
      ["monitoring", 3],
      ["quality_control", 0],
      ["constructor", 2],
    ]);
    writeGenerations(dataDir, generations);
    expect(readGenerations(dataDir)).toEqual(generations);
    expect(JSON.parse(readFileSync(generationsFilePath(dataDir), "utf8"))).toEqual({
      formatVersion: 1,
      newestGenerations: { monitoring: 3, quality_control: 0, constructor: 2 },
    });
  });

  it.each([
    ["not JSON", "{", /not JSON/],
    [
      "a wrong version",
      JSON.stringify({ formatVersion: 2, newestGenerations: {} }),
      /formatVersion 2/,
    ],
    [
      "a negative generation",
      JSON.stringify({ formatVersion: 1, newestGenerations: { monitoring: -1 } }),
      /generation of monitoring/,
    ],
    [
      "a fractional generation",
      JSON.stringify({ formatVersion: 1, newestGenerations: { monitoring: 1.5 } }),
      /generation of monitoring/,
    ],
    [
      "an unknown field",
      JSON.stringify({ formatVersion: 1, newestGenerations: {}, extra: 1 }),
      /unknown field extra/,
    ],
    ["an array", JSON.stringify({ formatVersion: 1, newestGenerations: [] }), /not an object/],
  ])("refuses a damaged file (%s)", (_name, content, message) => {
    const dataDir = directories.create("generations");
    writeFileSync(generationsFilePath(dataDir), content);
    expect(() => readGenerations(dataDir)).toThrow(SupervisorError);
    expect(() => readGenerations(dataDir)).toThrow(message);
  });
});
