// The bootstrap admin credential, sealed in <server-data-dir>/admin.token. The CLI on the
// server's machine reads it with the same root key as the server.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isSealed } from "../../core/security/sealed-envelope.ts";
import { openDataDirKeys } from "./data-dir-keys.ts";
import { keyringFileName } from "./keyring.ts";

export const adminTokenFileName = "admin.token";

/**
 * The admin credential of the server whose data dir is `dataDir`, or undefined when there is
 * none. Needs the root key (--master-key-file is the server's; the CLI takes
 * $EDGEWARD_MASTER_KEY_FILE, systemd's credential or <data-dir>/master.key).
 */
export function readAdminTokenFile(
  dataDir: string,
  environment: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const path = join(dataDir, adminTokenFileName);
  if (!existsSync(path)) return undefined;
  if (!existsSync(join(dataDir, keyringFileName))) {
    // A data dir an earlier edgeward wrote, not started by this one yet.
    const content = readFileSync(path);
    return isSealed(content) ? undefined : content.toString("utf8").trim();
  }
  const keys = openDataDirKeys({
    dataDir,
    environment,
    nowMs: 0,
    secretFileNames: [],
    create: false,
  });
  return keys.files.readText(adminTokenFileName)?.trim();
}
