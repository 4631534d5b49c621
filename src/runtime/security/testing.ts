// Tests' sealed secret files: a keyring in `dataDir` wrapped by a root key made there.

import { openDataDirKeys } from "./data-dir-keys.ts";
import type { SecretFiles } from "./secret-files.ts";

export function testSecretFiles(dataDir: string): SecretFiles {
  return openDataDirKeys({
    dataDir,
    environment: {},
    nowMs: Date.now(),
    secretFileNames: [],
    create: true,
  }).files;
}
