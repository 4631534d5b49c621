// production_monitoring as a real process: every acknowledged reading survives kill -9.

import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { getJson, postJson, startService, stopStarted } from "./service-process.ts";

const script = "production_monitoring.mjs";
/** Clients writing at once while the service is killed. */
const writersCount = 8;
/** Acknowledged readings after which the process is killed mid-stream. */
const acknowledgedBeforeKill = 150;

interface Stats {
  acknowledgedWrites: number;
  generation: number;
  startedAtMs: number;
  dataDir: string;
}

interface StoredReading {
  sequence: number;
  generation: number;
  sensorId: string;
  value: number;
}

let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "edgeward-production-monitoring-"));
});

afterEach(async () => {
  await stopStarted();
  rmSync(dataDir, { recursive: true, force: true });
});

function storedReadings(): StoredReading[] {
  const text = readFileSync(join(dataDir, "readings.log"), "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as StoredReading);
}

describe("production_monitoring", () => {
  it("keeps every acknowledged reading across kill -9 and a restart", async () => {
    const first = await startService(script, {
      EDGEWARD_DATA_DIR: dataDir,
      EDGEWARD_GENERATION: "1",
    });
    const acknowledged = new Map<string, number>();
    let next = 0;
    let killed = false;
    const writer = async () => {
      for (;;) {
        const sensorId = `sensor-${next++}`;
        try {
          const answer = await postJson(`${first.url}/readings`, { sensorId, value: next / 10 });
          if (answer.status !== 201) throw new Error(`status ${answer.status}`);
          acknowledged.set(sensorId, (answer.body as { sequence: number }).sequence);
        } catch (error) {
          if (killed) return; // refused or cut off by the kill: never acknowledged
          throw error;
        }
        if (acknowledged.size >= acknowledgedBeforeKill && !killed) {
          killed = true;
          first.child.kill("SIGKILL");
        }
      }
    };
    await Promise.all(Array.from({ length: writersCount }, writer));
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });

    const second = await startService(script, {
      EDGEWARD_DATA_DIR: dataDir,
      EDGEWARD_GENERATION: "2",
    });
    const stats = await getJson<Stats>(`${second.url}/stats`);
    expect(stats).toMatchObject({ generation: 2, dataDir });
    expect(stats.acknowledgedWrites).toBeGreaterThanOrEqual(acknowledged.size);

    const stored = storedReadings();
    expect(stored.map((reading) => reading.sequence)).toEqual(
      stored.map((_reading, index) => index + 1),
    );
    expect(stored.length).toBe(stats.acknowledgedWrites);
    const sequenceBySensor = new Map(stored.map((reading) => [reading.sensorId, reading.sequence]));
    for (const [sensorId, sequence] of acknowledged)
      expect(sequenceBySensor.get(sensorId)).toBe(sequence);

    const after = await postJson(`${second.url}/readings`, { sensorId: "after-restart", value: 1 });
    expect(after).toEqual({
      status: 201,
      body: {
        sequence: stats.acknowledgedWrites + 1,
        acknowledgedWrites: stats.acknowledgedWrites + 1,
      },
    });
    expect(storedReadings().at(-1)).toMatchObject({ sensorId: "after-restart", generation: 2 });
  });

  it("cuts off a torn last line left by a crash and goes on from the last complete record", async () => {
    appendFileSync(
      join(dataDir, "readings.log"),
      '{"sequence":1,"sensorId":"a","value":1}\n{"seque',
    );
    const service = await startService(script, { EDGEWARD_DATA_DIR: dataDir });
    expect((await getJson<Stats>(`${service.url}/stats`)).acknowledgedWrites).toBe(1);
    expect((await postJson(`${service.url}/readings`, { sensorId: "b", value: 2 })).status).toBe(
      201,
    );
    expect(storedReadings().map((reading) => [reading.sequence, reading.sensorId])).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
  });

  it("answers health and stops gracefully on SIGTERM", async () => {
    const service = await startService(script, {
      EDGEWARD_DATA_DIR: dataDir,
      EDGEWARD_GENERATION: "7",
    });
    expect(await getJson(`${service.url}/health`)).toEqual({
      status: "ok",
      service: "production_monitoring",
      generation: 7,
    });
    await postJson(`${service.url}/readings`, {
      sensorId: "a",
      value: 1,
      unit: "C",
      measuredAtMs: 5,
    });
    service.child.kill("SIGTERM");
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(storedReadings()).toEqual([
      expect.objectContaining({ sequence: 1, sensorId: "a", value: 1, unit: "C", measuredAtMs: 5 }),
    ]);
  });

  it("rejects malformed readings and stores none of them", async () => {
    const cases: [label: string, body: unknown, status: number][] = [
      ["not JSON", "{", 400],
      ["an array", [], 400],
      ["no sensorId", { value: 1 }, 400],
      ["an empty sensorId", { sensorId: "", value: 1 }, 400],
      ["a string value", { sensorId: "a", value: "1" }, 400],
      ["a fractional measuredAtMs", { sensorId: "a", value: 1, measuredAtMs: 1.5 }, 400],
      ["an unknown field", { sensorId: "a", value: 1, extra: true }, 400],
      ["a body over 64 KiB", { sensorId: "a", value: 1, unit: "x".repeat(70_000) }, 413],
    ];
    const service = await startService(script, { EDGEWARD_DATA_DIR: dataDir });
    for (const [label, body, status] of cases) {
      const answer = await postJson(`${service.url}/readings`, body);
      expect(answer.status, label).toBe(status);
      expect(typeof (answer.body as { error?: unknown }).error, label).toBe("string");
    }
    const notFound = await fetch(`${service.url}/nowhere`);
    expect(notFound.status).toBe(404);
    await notFound.body?.cancel();
    const wrongMethod = await fetch(`${service.url}/readings`);
    expect(wrongMethod.status).toBe(405);
    await wrongMethod.body?.cancel();
    expect((await getJson<Stats>(`${service.url}/stats`)).acknowledgedWrites).toBe(0);
  });

  it("refuses to start without a data directory", async () => {
    await expect(startService(script, { EDGEWARD_DATA_DIR: "" })).rejects.toThrow(
      /EDGEWARD_DATA_DIR/,
    );
  });
});
