#!/usr/bin/env node
// quality_control: records inspection results from the quality station and keeps every
// acknowledged one on disk. POST /inspections {"itemId":"batch-7/item-42","passed":false,
// "defects":["scratch"]} -> 201 {"sequence":n,"acknowledgedWrites":n} once fsynced;
// GET /health; GET /stats (with the sensor configuration and calibration count).
//
// The failover plan's hooks run it as a command on the target node before the service starts:
//   quality_control.mjs reconfigure-sensors   points the station's sensors at this node:
//                                              rewrites <dataDir>/sensors.json atomically
//   quality_control.mjs calibrate-equipment   appends a calibration record (fsynced) to
//                                              <dataDir>/calibration/records.log
// Both print one JSON line and exit 0. Settings: see durable-service.mjs.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  RequestError,
  exitWithError,
  openDurableLog,
  runDurableService,
  serviceSettings,
  SettingsError,
  writeFileDurably,
} from "./durable-service.mjs";

/** Longest item id or defect name accepted. */
const nameCharactersMax = 128;
/** Most defects one inspection may list. */
const defectsMax = 32;
/** The station's sensors, which reconfigure-sensors points at the node running the service. */
const stationSensors = ["camera-top", "camera-side", "laser-gauge", "scale"];

function validateInspection(body) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RequestError(400, "an inspection must be a JSON object");
  }
  const allowed = new Set(["itemId", "passed", "defects"]);
  const unknown = Object.keys(body).filter((field) => !allowed.has(field));
  if (unknown.length > 0) throw new RequestError(400, `unknown fields: ${unknown.join(", ")}`);
  const { itemId, passed, defects = [] } = body;
  if (typeof itemId !== "string" || itemId.length === 0 || itemId.length > nameCharactersMax) {
    throw new RequestError(400, `itemId must be a string of 1 to ${nameCharactersMax} characters`);
  }
  if (typeof passed !== "boolean") throw new RequestError(400, "passed must be true or false");
  const validDefects =
    Array.isArray(defects) &&
    defects.length <= defectsMax &&
    defects.every(
      (defect) =>
        typeof defect === "string" && defect.length > 0 && defect.length <= nameCharactersMax,
    );
  if (!validDefects) {
    throw new RequestError(400, `defects must be a list of at most ${defectsMax} names`);
  }
  return { itemId, passed, defects };
}

const sensorsFile = (dataDir) => join(dataDir, "sensors.json");
const calibrationLog = (dataDir) => join(dataDir, "calibration", "records.log");

async function reconfigureSensors() {
  const { dataDir, generation, nodeId } = serviceSettings();
  const configuration = {
    reconfiguredAtMs: Date.now(),
    generation,
    collector: nodeId,
    sensors: stationSensors,
  };
  await writeFileDurably(sensorsFile(dataDir), JSON.stringify(configuration, null, 2) + "\n");
  console.log(JSON.stringify({ event: "sensors-reconfigured", ...configuration }));
}

async function calibrateEquipment() {
  const { dataDir, generation } = serviceSettings();
  const log = await openDurableLog(calibrationLog(dataDir));
  const record = { calibratedAtMs: Date.now(), generation, equipment: stationSensors };
  const sequence = await log.append(record);
  await log.close();
  console.log(JSON.stringify({ event: "equipment-calibrated", sequence, ...record }));
}

/** Calibrations recorded and the current sensor configuration, read without changing either. */
async function extraStats({ dataDir }) {
  const [calibrations, sensors] = await Promise.all([
    readIfPresent(calibrationLog(dataDir)),
    readIfPresent(sensorsFile(dataDir)),
  ]);
  return {
    calibrations: calibrations === null ? 0 : calibrations.split("\n").length - 1,
    sensors: sensors === null ? null : JSON.parse(sensors),
  };
}

async function readIfPresent(path) {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (error.code === "ENOENT") return null;
    throw error;
  }
}

const commands = {
  "reconfigure-sensors": reconfigureSensors,
  "calibrate-equipment": calibrateEquipment,
};

const subcommand = process.argv[2];
if (subcommand === undefined) {
  await runDurableService({
    name: "quality_control",
    collectionPath: "/inspections",
    logName: "inspections.log",
    validate: validateInspection,
    extraStats,
  }).catch(exitWithError);
} else if (Object.hasOwn(commands, subcommand)) {
  await commands[subcommand]().catch(exitWithError);
} else {
  exitWithError(
    new SettingsError(
      `unknown subcommand ${subcommand}; expected ${Object.keys(commands).join(", ")} or none`,
    ),
  );
}
