import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parseDurationMs, InvalidDurationError } from "./duration.ts";
import { buildFleet } from "./fleet.ts";
import { parseScenario, ScenarioError } from "./scenario.ts";

const smartCityPath = "examples/scenarios/smart-city.yaml";
const smartCity = async () => parseScenario(await readFile(smartCityPath, "utf8"), smartCityPath);

describe("scenario files", () => {
  it.each([
    "examples/scenarios/smart-city.yaml",
    "examples/scenarios/industrial-slice.yaml",
    "examples/scenarios/chaos-small.yaml",
  ])("%s is valid and holds together", async (path) => {
    const fleet = buildFleet(parseScenario(await readFile(path, "utf8"), path));
    expect(fleet.nodes.length).toBeGreaterThan(0);
  });

  it("builds the smart city of SPEC §14", async () => {
    const fleet = buildFleet(await smartCity());
    const countOf = (group: string) =>
      fleet.groups.find((candidate) => candidate.name === group)?.nodeIndices.length;
    expect([
      countOf("traffic-camera"),
      countOf("environmental-sensor"),
      countOf("aggregation-server"),
      countOf("edge-data-centre"),
    ]).toEqual([1_000, 500, 50, 5]);
    const camera = fleet.instances.find(
      (instance) => instance.id === "traffic-video-analytics@traffic-camera-0001",
    );
    // Plan order: the neighbourhood's two aggregation servers, then the district's data centre.
    expect(camera?.backupNodeIndices.map((index) => fleet.nodes[index]?.id)).toEqual([
      "aggregation-server-01",
      "aggregation-server-26",
      "dc-north",
    ]);
  });

  it("scales counted groups to --nodes and keeps named nodes", async () => {
    const fleet = buildFleet(await smartCity(), { nodesTarget: 10_000 });
    expect(fleet.nodes.length).toBeGreaterThan(9_950);
    expect(fleet.nodes.length).toBeLessThan(10_050);
    expect(fleet.nodes.filter((node) => node.id.startsWith("dc-"))).toHaveLength(5);
  });

  it.each([
    ["not: [valid", /not valid YAML/],
    ["name: x\nzones: []", /zones: Too small/],
    [
      "name: x\nzones: [{ name: a }]\nlinkProfiles: {}\nnodeGroups: [{ name: g, tier: street, count: 1, link: l, capacity: { cpuCores: 1, memoryMb: 1, storageGb: 1, networkMbps: 1 }, detection: { preset: lan } }]",
      /nodeGroups\.0: `count` needs `zones`/,
    ],
  ])("names the field in a schema error (%#)", (text, message) => {
    expect(() => parseScenario(text, "bad.yaml")).toThrow(ScenarioError);
    expect(() => parseScenario(text, "bad.yaml")).toThrow(message);
  });

  it("reports broken references and overloaded starts together", async () => {
    const scenario = await smartCity();
    const broken = {
      ...scenario,
      nodeGroups: scenario.nodeGroups.map((group) =>
        group.name === "traffic-camera" ? { ...group, link: "nowhere", baseLoad: 0.9 } : group,
      ),
    };
    expect(() => buildFleet(broken)).toThrow(/no link profile "nowhere"[\s\S]*starts over 90 %/);
  });
});

describe("parseDurationMs", () => {
  it.each([
    ["90s", 90_000],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["45", 45_000],
  ])("%s is %i ms", (text, expected) => {
    expect(parseDurationMs(text)).toBe(expected);
  });

  it.each(["", "1x", "h", "0s", "8d"])("rejects %j", (text) => {
    expect(() => parseDurationMs(text)).toThrow(InvalidDurationError);
  });
});
