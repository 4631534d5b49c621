// Writing a secret file: owner-only (0600) from the first byte, fsynced, renamed into place,
// so a crash leaves the old file or the new one, never half of either.

import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

export function writeSecretFileAtomically(path: string, content: string | Uint8Array): void {
  const temporaryPath = `${path}.partial`;
  rmSync(temporaryPath, { force: true });
  const descriptor = openSync(temporaryPath, "wx", 0o600);
  try {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    let written = 0;
    while (written < bytes.length)
      written += writeSync(descriptor, bytes, written, bytes.length - written);
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(temporaryPath, path);
}
