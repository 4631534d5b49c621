// The storage port of a backup repository: named, immutable blobs. The local directory is
// one implementation; S3 and erasure-coded peer stores are others, and all pass the same
// contract suite (src/runtime/backup/blob-store-contract.ts).

/**
 * Names are slash-separated paths such as `data/3f/3f9a…` or `keys/01ab…`, made of
 * [A-Za-z0-9._-] segments. Blobs are written once and never modified, only deleted.
 */
export interface BlobStore {
  /** A short description for messages, e.g. the directory path or bucket URL. */
  readonly location: string;
  /**
   * Stores `data` under `name`, atomically and durably: after it resolves the blob survives a
   * crash; a reader never sees part of it. Overwriting an existing name replaces it whole.
   * A list of parts stores their concatenation, which spares callers a copy of large packs.
   */
  put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** Starts a blob written piece by piece and named only when complete (packs use it). */
  begin(): Promise<PendingBlob>;
  /** The whole blob; rejects with a BLOB_NOT_FOUND BackupError when it does not exist. */
  get(name: string): Promise<Uint8Array>;
  /** Up to `lengthBytes` bytes from `offsetBytes`; fewer when the blob ends earlier. */
  getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  /** Size in bytes; rejects with BLOB_NOT_FOUND when missing. */
  sizeBytes(name: string): Promise<number>;
  exists(name: string): Promise<boolean>;
  /** Every blob name starting with `prefix` (e.g. "snapshots/"), in no particular order. */
  list(prefix: string): Promise<string[]>;
  /** Removes the blob; removing a missing blob is not an error (prune may be rerun). */
  delete(name: string): Promise<void>;
}

/**
 * A blob under construction. Streaming stores (a directory) write it to a temporary place as
 * it arrives, so large blobs never sit in memory; others may buffer it.
 */
export interface PendingBlob {
  /** The caller may reuse `data` once this resolves: stores copy what they keep. */
  append(data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** Stores everything appended under `name`, atomically and durably, as `put` does. */
  commit(name: string): Promise<void>;
  /** Discards what was appended; harmless after a failure. */
  abort(): Promise<void>;
}

const blobNamePattern = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** True for names the port accepts: no empty segments, no "..", no leading slash. */
export function isValidBlobName(name: string): boolean {
  return (
    blobNamePattern.test(name) &&
    !name.split("/").some((segment) => segment === "." || segment === "..")
  );
}
