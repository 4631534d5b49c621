// Reads the API of a local fleet the way the CLI does: its admin credential
// (<dir>/server/admin.token) over HTTPS trusting its CA (<dir>/server/tls/ca.crt).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { FleetFile } from "../../src/cli/local-fleet/fleet-file.ts";
import { fleetClient } from "../../src/cli/local-fleet/local-fleet.ts";

/** GETs `path` from the server of the local fleet in `dir` as its bootstrap admin. */
export function fleetGet<Body>(dir: string, path: string): Promise<Body> {
  const fleet = JSON.parse(readFileSync(join(dir, "fleet.json"), "utf8")) as FleetFile;
  return fleetClient(dir, fleet.server.url).getJson<Body>(path);
}
