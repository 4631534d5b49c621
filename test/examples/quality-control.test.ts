// quality_control as a real process: inspections survive kill -9; the failover hooks leave a
// record in the data directory and exit 0.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { getJson, postJson, runCommand, startService, stopStarted } from "./service-process.ts";

const script = "quality_control.mjs";

interface Stats {
  acknowledgedWrites: number;
  generation: number;
  calibrations: number;
  sensors: { generation: number; collector: string; sensors: string[] } | null;
}

let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "edgeward-quality-control-"));
});

afterEach(async () => {
  await stopStarted();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("quality_control", () => {
  it("keeps every acknowledged inspection across kill -9 and a restart", async () => {
    const first = await startService(script, {
      EDGEWARD_DATA_DIR: dataDir,
      EDGEWARD_GENERATION: "1",
    });
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_unused, index) =>
        postJson(`${first.url}/inspections`, {
          itemId: `item-${index}`,
          passed: index % 3 !== 0,
          ...(index % 3 === 0 ? { defects: ["scratch"] } : {}),
        }),
      ),
    );
    expect(answers.every((answer) => answer.status === 201)).toBe(true);
    first.child.kill("SIGKILL");
    await first.exited;

    const second = await startService(script, {
      EDGEWARD_DATA_DIR: dataDir,
      EDGEWARD_GENERATION: "2",
    });
    expect(await getJson<Stats>(`${second.url}/stats`)).toMatchObject({
      acknowledgedWrites: 40,
      generation: 2,
      calibrations: 0,
      sensors: null,
    });
    const stored = readFileSync(join(dataDir, "inspections.log"), "utf8").trim().split("\n");
    const items = stored.map((line) => (JSON.parse(line) as { itemId: string }).itemId);
    expect(new Set(items)).toEqual(new Set(answers.map((_answer, index) => `item-${index}`)));
  });

  it("reconfigure-sensors and calibrate-equipment record what they did and exit 0", async () => {
    const environment = {
      EDGEWARD_DATA_DIR: dataDir,
      EDGEWARD_GENERATION: "4",
      EDGEWARD_NODE_ID: "factory-1-line-a-edge-1",
    };
    const reconfigured = await runCommand(script, ["reconfigure-sensors"], environment);
    expect(reconfigured.code).toBe(0);
    expect(JSON.parse(reconfigured.stdout)).toMatchObject({ event: "sensors-reconfigured" });
    for (let calibration = 0; calibration < 2; calibration++) {
      const calibrated = await runCommand(script, ["calibrate-equipment"], environment);
      expect(calibrated.code).toBe(0);
      expect(JSON.parse(calibrated.stdout)).toMatchObject({
        event: "equipment-calibrated",
        sequence: calibration + 1,
      });
    }
    const sensors = JSON.parse(readFileSync(join(dataDir, "sensors.json"), "utf8")) as unknown;
    expect(sensors).toMatchObject({ generation: 4, collector: "factory-1-line-a-edge-1" });

    const service = await startService(script, environment);
    expect(await getJson<Stats>(`${service.url}/stats`)).toMatchObject({
      calibrations: 2,
      sensors: { generation: 4, collector: "factory-1-line-a-edge-1" },
    });
  });

  it("rejects malformed inspections and stores none of them", async () => {
    const cases: [label: string, body: unknown][] = [
      ["no itemId", { passed: true }],
      ["passed not a boolean", { itemId: "a", passed: "yes" }],
      ["defects not a list of names", { itemId: "a", passed: false, defects: [1] }],
      [
        "too many defects",
        { itemId: "a", passed: false, defects: Array.from({ length: 33 }, () => "x") },
      ],
    ];
    const service = await startService(script, { EDGEWARD_DATA_DIR: dataDir });
    for (const [label, body] of cases) {
      expect((await postJson(`${service.url}/inspections`, body)).status, label).toBe(400);
    }
    expect((await getJson<Stats>(`${service.url}/stats`)).acknowledgedWrites).toBe(0);
  });

  it("exits 2 on an unknown subcommand", async () => {
    expect((await runCommand(script, ["recalibrate"], { EDGEWARD_DATA_DIR: dataDir })).code).toBe(
      2,
    );
  });
});
