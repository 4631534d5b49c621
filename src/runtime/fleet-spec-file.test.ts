import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FleetSpecError } from "../core/spec/fleet-spec-error.ts";
import { fleetSpecBytesMax } from "../core/spec/parse-fleet-spec.ts";
import { FleetSpecFileError, loadFleetSpecFile } from "./fleet-spec-file.ts";

describe("loadFleetSpecFile", () => {
  let directory = "";
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "edgeward-spec-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("loads the industrial IoT example", async () => {
    const spec = await loadFleetSpecFile(
      fileURLToPath(new URL("../../examples/industrial-iot.yaml", import.meta.url)),
    );
    expect(spec.nodes).toHaveLength(5);
  });

  it.each([
    ["a missing file", "missing.yaml", "no such file"],
    ["a directory", ".", "it is a directory, not a file"],
  ])("names the file and the reason for %s", async (_, name, reason) => {
    const path = join(directory, name);
    await expect(loadFleetSpecFile(path)).rejects.toThrow(new FleetSpecFileError(path, reason));
  });

  it("reads no more than the size cap of an oversized file", async () => {
    const path = join(directory, "huge.yaml");
    await writeFile(path, "#".repeat(fleetSpecBytesMax + 1));
    await expect(loadFleetSpecFile(path)).rejects.toThrow(
      `${path}:1:1: expected a fleet spec of at most 1048576 bytes (1 MiB), got a larger file`,
    );
  });

  it("rejects bytes that are not UTF-8 as a problem of the spec", async () => {
    const path = join(directory, "latin1.yaml");
    await writeFile(path, Uint8Array.from([0x7a, 0x6f, 0x6e, 0x65, 0x3a, 0x20, 0xe9, 0x0a]));
    await expect(loadFleetSpecFile(path)).rejects.toBeInstanceOf(FleetSpecError);
  });
});
