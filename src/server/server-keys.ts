// The server's keys at rest (docs/adr/0007-secrets-at-rest.md): its keyring, the secret files
// it seals, and rotation — a new data key with every file re-sealed, and a new fleet backup
// password — reported to the ledger as `key.rotation` entries.

import { keyRotationDefault, keyRotationIntervalMs } from "../core/security/key-rotation.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import { ledgerKeyFileName } from "../runtime/ledger/ledger-key.ts";
import { adminTokenFileName } from "../runtime/security/admin-token-file.ts";
import { tlsSecretFileNames } from "../runtime/security/certificate-authority.ts";
import {
  openRunningDataDirKeys,
  releaseDataDirKeys,
  rotateDataKey,
  type DataDirKeys,
  type KeyRotationReport,
} from "../runtime/security/data-dir-keys.ts";
import { startKeyRotationSchedule } from "../runtime/security/key-rotation-schedule.ts";
import { signingKeyFileName } from "../runtime/security/token-service.ts";
import { backupPasswordsFileName, rotateBackupPassword } from "./backup/fleet-backup-passwords.ts";

/** Every secret file of a server data dir (public certificates stay plain). */
export const serverSecretFileNames = [
  signingKeyFileName,
  adminTokenFileName,
  backupPasswordsFileName,
  ledgerKeyFileName,
  tlsSecretFileNames.caKey,
  tlsSecretFileNames.serverKey,
] as const;

/** Opens (or makes) the keyring, seals an earlier version's plaintext files, says where the root key is. */
export function openServerKeys(
  options: { dataDir: string; masterKeyFile: string | undefined; keyRotation: string | undefined },
  components: { clock: Clock; logger: Logger },
): DataDirKeys {
  return openRunningDataDirKeys({ ...options, secretFileNames: serverSecretFileNames }, components);
}

/**
 * Rotates the data key (re-sealing every secret file) and then the fleet backup password;
 * `rotateBackupPassword` is the running server's (it also tells the agents), else the file's.
 */
export function rotateServerKeys(
  keys: DataDirKeys,
  nowMs: number,
  rotatePassword: (nowMs: number) => KeyRotationReport = (atMs) =>
    rotateBackupPassword(keys.files, atMs),
): KeyRotationReport[] {
  const data = rotateDataKey(keys, serverSecretFileNames, nowMs);
  const reports: KeyRotationReport[] = [
    {
      purpose: data.purpose,
      keyId: data.keyId,
      previousKeyId: data.previousKeyId,
      atMs: data.atMs,
    },
  ];
  if (keys.files.exists(backupPasswordsFileName)) reports.push(rotatePassword(nowMs));
  return reports;
}

export interface ServerKeyRotation {
  /** Rotates every key now (as the schedule does when due) and reports each rotation. */
  rotateNow(): KeyRotationReport[];
  /** Stops the schedule and releases the data dir's keys for `edgeward keys rotate`. */
  cancel: CancelTimer;
}

/** Rotates when the keyring's policy says so, at start and on the clock; every rotation is reported. */
export function startServerKeyRotation(
  keys: DataDirKeys,
  components: {
    clock: Clock;
    logger: Logger;
    rotatePassword: (nowMs: number) => KeyRotationReport;
    onRotated: (report: KeyRotationReport) => void;
  },
): ServerKeyRotation {
  const rotate = (nowMs: number) => {
    const reports = rotateServerKeys(keys, nowMs, components.rotatePassword);
    for (const report of reports) {
      components.logger.info(
        { purpose: report.purpose, keyId: report.keyId, previousKeyId: report.previousKeyId },
        "rotated a key",
      );
      components.onRotated(report);
    }
    return reports;
  };
  const policy = keys.keyring.rotationPolicy ?? keyRotationDefault;
  const cancel = startKeyRotationSchedule(keyRotationIntervalMs(policy), {
    clock: components.clock,
    logger: components.logger,
    newestKeyCreatedAtMs: () => keys.keyring.newest().createdAtMs,
    rotate,
  });
  return {
    rotateNow: () => rotate(components.clock.nowMs()),
    cancel: () => {
      cancel();
      releaseDataDirKeys(keys.files.directory);
    },
  };
}
