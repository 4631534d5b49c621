// A local fleet for one e2e test file: the real CLI in a temporary directory, and a cleanup that
// kills only the process groups this fleet started.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { FleetFile } from "../../src/cli/local-fleet/fleet-file.ts";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");
const cli = join(root, "bin", "edgeward.js");

export class LocalFleetHarness {
  readonly dir: string;
  readonly #startedGroups = new Set<number>();

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  /** Runs the CLI from the repository root. */
  edgeward(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run(process.execPath, [cli, ...args], { cwd: root, timeout: 90_000 });
  }

  fleetFile(): FleetFile {
    return JSON.parse(readFileSync(join(this.dir, "fleet.json"), "utf8")) as FleetFile;
  }

  /** `edgeward up` of the industrial example, detached; its stdout (the server's URL). */
  async up(): Promise<string> {
    const { stdout } = await this.edgeward(
      "up",
      "examples/industrial-iot.yaml",
      "--dir",
      this.dir,
      "--detach",
      "--timeout",
      "60s",
    );
    this.trackGroups();
    return stdout;
  }

  /** Remembers the process groups fleet.json lists now (after a node restart, too). */
  trackGroups(): void {
    const fleet = this.fleetFile();
    this.#startedGroups.add(fleet.server.pgid);
    for (const node of fleet.nodes) this.#startedGroups.add(node.pgid);
  }

  /** `edgeward down`, then SIGKILL to whatever it missed of this fleet's groups only. */
  async down(): Promise<void> {
    try {
      await this.edgeward("down", "--dir", this.dir);
    } finally {
      for (const pgid of this.#startedGroups) {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
