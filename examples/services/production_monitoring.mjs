#!/usr/bin/env node
// production_monitoring: takes sensor readings from a production line over HTTP and keeps every
// acknowledged one on disk. POST /readings {"sensorId":"line-a/temperature-1","value":71.5,
// "unit":"C","measuredAtMs":1763800000000} -> 201 {"sequence":n,"acknowledgedWrites":n} once
// the reading is fsynced; GET /health; GET /stats. Settings: see durable-service.mjs.

import { RequestError, exitWithError, runDurableService } from "./durable-service.mjs";

/** Longest sensor id or unit accepted. */
const nameCharactersMax = 128;

function text(body, field, required) {
  const value = body[field];
  if (value === undefined && !required) return undefined;
  if (typeof value !== "string" || value.length === 0 || value.length > nameCharactersMax) {
    throw new RequestError(
      400,
      `${field} must be a string of 1 to ${nameCharactersMax} characters`,
    );
  }
  return value;
}

/** A reading as stored: exactly the fields below, nothing else. */
function validateReading(body) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new RequestError(400, "a reading must be a JSON object");
  }
  const allowed = new Set(["sensorId", "value", "unit", "measuredAtMs"]);
  const unknown = Object.keys(body).filter((field) => !allowed.has(field));
  if (unknown.length > 0) throw new RequestError(400, `unknown fields: ${unknown.join(", ")}`);
  if (typeof body.value !== "number" || !Number.isFinite(body.value)) {
    throw new RequestError(400, "value must be a finite number");
  }
  if (body.measuredAtMs !== undefined && !Number.isSafeInteger(body.measuredAtMs)) {
    throw new RequestError(400, "measuredAtMs must be an integer (milliseconds since 1970)");
  }
  return {
    sensorId: text(body, "sensorId", true),
    value: body.value,
    unit: text(body, "unit", false),
    measuredAtMs: body.measuredAtMs,
  };
}

await runDurableService({
  name: "production_monitoring",
  collectionPath: "/readings",
  logName: "readings.log",
  validate: validateReading,
}).catch(exitWithError);
