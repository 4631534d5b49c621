// Password and key management: change a password, and rotate the encryption key. Rotation
// adds a key generation: new objects use it, old ones stay readable with the older ones.
import { randomBytes } from "node:crypto";
import { objectNames } from "../../core/backup/objects.ts";
import type { KeyRing } from "../../core/backup/objects.ts";
import { keyDerivationDefaults } from "./crypto.ts";
import type { KeyDerivationOptions } from "./crypto.ts";
import { withLock } from "./lock.ts";
import type { Repository } from "./repository.ts";

/** Replaces the password that opened the repository; returns the new key file's id. */
export async function changePassword(
  repository: Repository,
  newPassword: string,
  options: KeyDerivationOptions = keyDerivationDefaults,
): Promise<string> {
  return withLock(repository.store, true, async () => {
    const newKeyId = await repository.addKey(newPassword, options);
    await repository.store.delete(objectNames.key(repository.keyId));
    return newKeyId;
  });
}

export interface RotationResult {
  generation: number;
  keyIdsWritten: string[];
  keyIdsRemoved: string[];
}

/**
 * Adds a fresh encryption key generation. A key file can only be rewritten by someone who
 * knows its password, so the new ring is wrapped for `passwords` (the caller's first) and
 * every other key file is removed: whoever held only those passwords loses access, which is
 * the point of rotating after a leak. The blob-id key stays, so deduplication continues.
 */
export async function rotateMasterKey(
  repository: Repository,
  passwords: readonly string[],
  options: KeyDerivationOptions = keyDerivationDefaults,
): Promise<RotationResult> {
  return withLock(repository.store, true, async () => {
    const ring = repository.keys.ring;
    const generation = repository.keys.currentGeneration + 1;
    const rotated: KeyRing = {
      ...ring,
      encryptionKeys: [
        ...ring.encryptionKeys,
        {
          generation,
          key: randomBytes(32).toString("base64"),
          createdAt: new Date().toISOString(),
        },
      ],
    };
    const previous = await repository.listKeys();
    const keyIdsWritten: string[] = [];
    for (const password of passwords)
      keyIdsWritten.push(await repository.addKey(password, options, rotated));
    const keyIdsRemoved = previous.map((key) => key.id).filter((id) => !keyIdsWritten.includes(id));
    for (const id of keyIdsRemoved) await repository.store.delete(objectNames.key(id));
    return { generation, keyIdsWritten, keyIdsRemoved };
  });
}
