// Opens a repository with the fleet's backup passwords: the current one, else one of earlier
// rotations, newest first. A repository still keyed to an old password gets its key re-wrapped
// under the current one (the master key stays, so every snapshot stays readable).

import type { BackupTargets } from "../../api/service-messages.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { BackupError } from "../../core/backup/errors.ts";
import type { Logger } from "../../ports/logger.ts";
import { changePassword } from "../../runtime/backup/keys.ts";
import { openRepository, type Repository } from "../../runtime/backup/repository.ts";

const isWrongPassword = (error: unknown) =>
  error instanceof BackupError && error.code === "WRONG_PASSWORD";

/**
 * `rewrap`: re-key a repository opened with an old password (needs its exclusive lock; a
 * repository busy now is re-wrapped at a later open). Read-only opens pass false.
 */
export async function openWithFleetPasswords(
  store: BlobStore,
  targets: BackupTargets,
  options: { rewrap: boolean; logger?: Logger },
): Promise<Repository> {
  try {
    return await openRepository(store, targets.password);
  } catch (error) {
    if (!isWrongPassword(error) || (targets.previousPasswords ?? []).length === 0) throw error;
  }
  for (const [age, password] of (targets.previousPasswords ?? []).entries()) {
    let repository: Repository;
    try {
      repository = await openRepository(store, password);
    } catch (error) {
      if (isWrongPassword(error)) continue;
      throw error;
    }
    if (!options.rewrap) return repository;
    try {
      await changePassword(repository, targets.password);
    } catch (error) {
      options.logger?.warn(
        { repository: store.location, err: (error as Error).message },
        "could not re-wrap the repository key under the current fleet password; will retry",
      );
      return repository;
    }
    options.logger?.info(
      { repository: store.location, passwordsBack: age + 1 },
      "re-wrapped the repository key under the current fleet password",
    );
    return openRepository(store, targets.password);
  }
  throw new BackupError(
    "WRONG_PASSWORD",
    "none of the fleet's backup passwords opens this repository",
  );
}
