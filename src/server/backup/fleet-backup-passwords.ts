// The fleet's backup repository passwords, sealed in <data-dir>/backup.key: the newest is the
// current one; earlier ones stay so agents can open repositories still keyed to them and
// re-wrap those keys (rotation never makes a snapshot unreadable).

import { randomBytes } from "node:crypto";
import { backupPasswordsMax } from "../../api/service-messages.ts";
import type { KeyRotationReport } from "../../runtime/security/data-dir-keys.ts";
import type { SecretFiles } from "../../runtime/security/secret-files.ts";

export const backupPasswordsFileName = "backup.key";
export const backupPasswordPurpose = "backup-repository-password";
export const backupPasswordKeyId = (version: number) => `backup-password-${version}`;

export interface BackupPasswordVersion {
  version: number;
  createdAtMs: number;
  password: string;
}

export class BackupPasswordsError extends Error {
  override readonly name = "BackupPasswordsError";
}

const newPassword = () => randomBytes(32).toString("base64url");

function parse(text: string, nowMs: number): BackupPasswordVersion[] {
  const trimmed = text.trim();
  // Before passwords were versioned the file held one password on one line.
  if (!trimmed.startsWith("{")) return [{ version: 1, createdAtMs: nowMs, password: trimmed }];
  const parsed = JSON.parse(trimmed) as { passwords?: unknown };
  const passwords = parsed.passwords;
  if (
    !Array.isArray(passwords) ||
    passwords.length === 0 ||
    passwords.length > backupPasswordsMax ||
    !passwords.every(
      (entry: Partial<BackupPasswordVersion>) =>
        Number.isSafeInteger(entry.version) &&
        Number.isSafeInteger(entry.createdAtMs) &&
        typeof entry.password === "string" &&
        entry.password.length > 0,
    )
  )
    throw new BackupPasswordsError(
      "backup.key does not hold the fleet's backup passwords; restore it from a backup",
    );
  return passwords as BackupPasswordVersion[];
}

const serialise = (passwords: readonly BackupPasswordVersion[]) =>
  `${JSON.stringify({ passwords })}\n`;

/** Oldest first; created (one fresh password) at first start, upgraded from the one-line form. */
export function loadOrCreateBackupPasswords(
  files: SecretFiles,
  nowMs: number,
): BackupPasswordVersion[] {
  const text = files.readText(backupPasswordsFileName);
  if (text === undefined) {
    const passwords = [{ version: 1, createdAtMs: nowMs, password: newPassword() }];
    files.write(backupPasswordsFileName, serialise(passwords));
    return passwords;
  }
  const passwords = parse(text, nowMs);
  if (!text.trim().startsWith("{")) files.write(backupPasswordsFileName, serialise(passwords));
  return passwords;
}

/** Adds a new current password; the earlier ones are kept for repositories not re-wrapped yet. */
export function rotateBackupPassword(files: SecretFiles, nowMs: number): KeyRotationReport {
  const passwords = loadOrCreateBackupPasswords(files, nowMs);
  const previous = passwords.at(-1);
  if (previous === undefined) throw new Error("there is always a backup password");
  if (passwords.length >= backupPasswordsMax)
    throw new BackupPasswordsError(
      `backup.key holds ${backupPasswordsMax} passwords, the most it may: rotate less often`,
    );
  const added = { version: previous.version + 1, createdAtMs: nowMs, password: newPassword() };
  files.write(backupPasswordsFileName, serialise([...passwords, added]));
  return {
    purpose: backupPasswordPurpose,
    keyId: backupPasswordKeyId(added.version),
    previousKeyId: backupPasswordKeyId(previous.version),
    atMs: nowMs,
  };
}
