// The agent's keys at rest (docs/adr/0007-secrets-at-rest.md): its keyring, the secret files it
// seals (node key, credential, cached peer identities) and rotation on its own schedule.

import { keyRotationDefault, keyRotationIntervalMs } from "../core/security/key-rotation.ts";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import {
  openRunningDataDirKeys,
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
  return openRunningDataDirKeys({ ...options, secretFileNames: agentSecretFileNames }, components);
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
