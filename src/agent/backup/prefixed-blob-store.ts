// A BlobStore seen under a name prefix of another: how one blob API (a peer agent's shard
// store, the server's regional store) holds one repository per node without their names
// colliding.

import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";

export class PrefixedBlobStore implements BlobStore {
  readonly location: string;

  constructor(
    private readonly inner: BlobStore,
    /** Slash-free segments such as `nodes/factory-1-line-a-edge-1`, no trailing slash. */
    private readonly prefix: string,
  ) {
    this.location = `${inner.location}/${prefix}`;
  }

  #name(name: string): string {
    return `${this.prefix}/${name}`;
  }

  put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    return this.inner.put(this.#name(name), data);
  }

  async begin(): Promise<PendingBlob> {
    const pending = await this.inner.begin();
    return {
      append: (data) => pending.append(data),
      commit: (name) => pending.commit(this.#name(name)),
      abort: () => pending.abort(),
    };
  }

  get(name: string): Promise<Uint8Array> {
    return this.inner.get(this.#name(name));
  }

  getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.inner.getRange(this.#name(name), offsetBytes, lengthBytes);
  }

  sizeBytes(name: string): Promise<number> {
    return this.inner.sizeBytes(this.#name(name));
  }

  exists(name: string): Promise<boolean> {
    return this.inner.exists(this.#name(name));
  }

  async list(prefix: string): Promise<string[]> {
    const start = this.prefix.length + 1;
    return (await this.inner.list(this.#name(prefix))).map((name) => name.slice(start));
  }

  delete(name: string): Promise<void> {
    return this.inner.delete(this.#name(name));
  }
}

/**
 * For reads from a degraded tier: restore and check take a shared lock, which is a write, and
 * an erasure-coded store with holders down refuses writes it could not spread over every
 * holder. Lock writes that fail are kept in memory instead, so a restore still works after
 * losing m holders. The price: a prune running at the same time does not see this reader (a
 * blob it removes then fails authentication; the restore stops, it never writes wrong bytes).
 */
export class BestEffortLockStore implements BlobStore {
  readonly location: string;
  readonly #localLocks = new Map<string, Uint8Array>();

  constructor(readonly inner: BlobStore) {
    this.location = inner.location;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    try {
      await this.inner.put(name, data);
    } catch (error) {
      if (!name.startsWith("locks/")) throw error;
      this.#localLocks.set(name, data instanceof Uint8Array ? data : Buffer.concat(data));
    }
  }

  begin(): Promise<PendingBlob> {
    return this.inner.begin();
  }

  get(name: string): Promise<Uint8Array> {
    const local = this.#localLocks.get(name);
    return local === undefined ? this.inner.get(name) : Promise.resolve(local);
  }

  getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.inner.getRange(name, offsetBytes, lengthBytes);
  }

  sizeBytes(name: string): Promise<number> {
    const local = this.#localLocks.get(name);
    return local === undefined ? this.inner.sizeBytes(name) : Promise.resolve(local.length);
  }

  async exists(name: string): Promise<boolean> {
    return this.#localLocks.has(name) || this.inner.exists(name);
  }

  async list(prefix: string): Promise<string[]> {
    const names = await this.inner.list(prefix);
    for (const name of this.#localLocks.keys()) if (name.startsWith(prefix)) names.push(name);
    return names;
  }

  async delete(name: string): Promise<void> {
    if (this.#localLocks.delete(name)) return;
    await this.inner.delete(name);
  }
}
