// An in-memory BlobStore: the fake behind fast tests, and the reference the contract suite
// holds every real backend to.
import { BackupError, assert } from "../../core/backup/errors.ts";
import { isValidBlobName } from "../../core/backup/blob-store.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";

/* eslint-disable @typescript-eslint/require-await -- async so failures reject like real I/O */
export class MemoryBlobStore implements BlobStore {
  readonly location = "memory";
  /** Exposed so tests can corrupt, truncate or remove stored objects. */
  readonly blobs = new Map<string, Uint8Array>();

  private find(name: string): Uint8Array {
    assert(isValidBlobName(name), `invalid blob name "${name}"`);
    const blob = this.blobs.get(name);
    if (blob === undefined) throw new BackupError("BLOB_NOT_FOUND", `${name} does not exist`);
    return blob;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    assert(isValidBlobName(name), `invalid blob name "${name}"`);
    this.blobs.set(
      name,
      data instanceof Uint8Array
        ? Uint8Array.prototype.slice.call(data)
        : new Uint8Array(Buffer.concat(data)),
    );
  }

  async begin(): Promise<PendingBlob> {
    let parts: Uint8Array[] = [];
    return {
      append: async (data) => {
        parts.push(
          ...(data instanceof Uint8Array ? [data] : data).map((part) =>
            Uint8Array.prototype.slice.call(part),
          ),
        );
      },
      commit: async (name) => this.put(name, parts),
      abort: async () => {
        parts = [];
      },
    };
  }

  async get(name: string): Promise<Uint8Array> {
    return this.find(name).slice();
  }

  async getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.find(name).slice(offsetBytes, offsetBytes + lengthBytes);
  }

  async sizeBytes(name: string): Promise<number> {
    return this.find(name).length;
  }

  async exists(name: string): Promise<boolean> {
    return this.blobs.has(name);
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.blobs.keys()].filter((name) => name.startsWith(prefix));
  }

  async delete(name: string): Promise<void> {
    this.blobs.delete(name);
  }
}
