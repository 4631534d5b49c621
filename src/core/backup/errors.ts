// Operating errors of the backup engine: each reaches the user as a clear message and exit
// code 1. Programmer errors are plain assertion failures instead.

export type BackupErrorCode =
  | "WRONG_PASSWORD"
  | "REPOSITORY_NOT_FOUND"
  | "REPOSITORY_EXISTS"
  | "BLOB_NOT_FOUND"
  | "STORAGE_FULL"
  | "STORAGE_FAILED"
  | "CORRUPT_OBJECT"
  | "LOCKED"
  | "SNAPSHOT_NOT_FOUND"
  | "INVALID_ARGUMENT";

export class BackupError extends Error {
  override readonly name = "BackupError";
  constructor(
    readonly code: BackupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A stored object failed authentication, its hash or its structure; `objectName` says which. */
export class CorruptObjectError extends BackupError {
  constructor(
    readonly objectName: string,
    readonly detail: string,
  ) {
    super("CORRUPT_OBJECT", `${objectName}: ${detail}`);
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
