// The agent's keys at rest (docs/adr/0007-secrets-at-rest.md): its keyring, the secret files it
// seals (node key, credential, cached peer identities) and rotation on its own schedule.

import { keyRotationDefault, keyRotationIntervalMs } from "../core/security/key-rotation.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import {
  holdDataDirKeys,
  openDataDirKeys,
  releaseDataDirKeys,
  rotateDataKey,
  type DataDirKeys,
} from "../runtime/security/data-dir-keys.ts";
import { startKeyRotationSchedule } from "../runtime/security/key-rotation-schedule.ts";
import { credentialFileName, nodeKeyFileName } from "./agent-credentials.ts";
import { peerIdentitiesFileName } from "./peer-security.ts";

/** Every secret file of an agent data dir (the pinned CA certificate is public and stays plain). */
export const agentSecretFileNames = [
  nodeKeyFileName,
  credentialFileName,
  peerIdentitiesFileName,
] as const;

export function openAgentKeys(
  options: { dataDir: string; masterKeyFile: string | undefined; keyRotation: string | undefined },
  components: { clock: Clock; logger: Logger },
): DataDirKeys {
  const keys = openDataDirKeys({
    dataDir: options.dataDir,
    masterKeyFile: options.masterKeyFile,
    environment: process.env,
    nowMs: components.clock.nowMs(),
    secretFileNames: agentSecretFileNames,
    create: true,
  });
  holdDataDirKeys(options.dataDir);
  const policy = options.keyRotation ?? keyRotationDefault;
  keyRotationIntervalMs(policy);
  keys.keyring.setRotationPolicy(policy);
  if (keys.warning !== undefined) components.logger.warn({}, keys.warning);
  if (keys.migrated.length > 0)
    components.logger.info(
      { files: keys.migrated },
      "sealed secret files an earlier edgeward left in plaintext",
    );
  return keys;
}

/** Rotates the agent's data key when due, at start and on the clock. */
export function startAgentKeyRotation(
  keys: DataDirKeys,
  components: { clock: Clock; logger: Logger },
): CancelTimer {
  const cancel = startKeyRotationSchedule(
    keyRotationIntervalMs(keys.keyring.rotationPolicy ?? keyRotationDefault),
    {
      ...components,
      newestKeyCreatedAtMs: () => keys.keyring.newest().createdAtMs,
      rotate: (nowMs) => {
        const report = rotateDataKey(keys, agentSecretFileNames, nowMs);
        components.logger.info(
          {
            purpose: report.purpose,
            keyId: report.keyId,
            previousKeyId: report.previousKeyId,
            resealedFiles: report.resealedFiles,
          },
          "rotated a key",
        );
      },
    },
  );
  return () => {
    cancel();
    releaseDataDirKeys(keys.files.directory);
  };
}
