// Wraps a BlobStore and fails on cue: a full disk after N writes or N bytes, or a crash (the
// process "dies") after N pack writes. Tests use them to prove the repository survives both.
import { BackupError } from "../../core/backup/errors.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";

export interface FaultPlan {
  /** Fail every put after this many successful puts whose name starts with `prefix`. */
  putsBeforeFailure: number;
  prefix: string;
  failure: "disk-full" | "crash";
}

/** Thrown by the "crash" fault: stands for the process dying mid-operation. */
export class SimulatedCrash extends Error {
  override readonly name = "SimulatedCrash";
}

export class FaultInjectingBlobStore implements BlobStore {
  private matchingPuts = 0;
  constructor(
    private readonly inner: BlobStore,
    private readonly plan: FaultPlan,
  ) {}

  get location(): string {
    return this.inner.location;
  }

  private countWrite(name: string): void {
    if (!name.startsWith(this.plan.prefix)) return;
    if (this.matchingPuts >= this.plan.putsBeforeFailure) {
      if (this.plan.failure === "crash") throw new SimulatedCrash(`crash before writing ${name}`);
      throw new BackupError(
        "STORAGE_FULL",
        `no space left on the repository's disk while writing ${name}`,
      );
    }
    this.matchingPuts++;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.countWrite(name);
    await this.inner.put(name, data);
  }

  async begin(): Promise<PendingBlob> {
    const pending = await this.inner.begin();
    return {
      append: (data) => pending.append(data),
      commit: async (name) => {
        try {
          this.countWrite(name);
        } catch (error) {
          await pending.abort();
          throw error;
        }
        await pending.commit(name);
      },
      abort: () => pending.abort(),
    };
  }

  get(name: string): Promise<Uint8Array> {
    return this.inner.get(name);
  }
  getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.inner.getRange(name, offsetBytes, lengthBytes);
  }
  sizeBytes(name: string): Promise<number> {
    return this.inner.sizeBytes(name);
  }
  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }
}

/**
 * Fails every write once `bytesBeforeFailure` bytes have been written through it, the way a
 * file system that runs out of space does: an `Error` with `code: "ENOSPC"`, as node:fs throws
 * it, not the store's typed error, so the engine's own handling of it is what is tested.
 */
export class DiskFullBlobStore implements BlobStore {
  private bytesWritten = 0;
  constructor(
    private readonly inner: BlobStore,
    private readonly bytesBeforeFailure: number,
  ) {}

  get location(): string {
    return this.inner.location;
  }

  private count(data: Uint8Array | readonly Uint8Array[]): void {
    const bytes =
      data instanceof Uint8Array ? data.length : data.reduce((sum, part) => sum + part.length, 0);
    if (this.bytesWritten + bytes > this.bytesBeforeFailure)
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), {
        code: "ENOSPC",
        errno: -28,
        syscall: "write",
      });
    this.bytesWritten += bytes;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.count(data);
    await this.inner.put(name, data);
  }

  async begin(): Promise<PendingBlob> {
    const pending = await this.inner.begin();
    return {
      append: async (data) => {
        this.count(data);
        await pending.append(data);
      },
      commit: (name) => pending.commit(name),
      abort: () => pending.abort(),
    };
  }

  get(name: string): Promise<Uint8Array> {
    return this.inner.get(name);
  }
  getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    return this.inner.getRange(name, offsetBytes, lengthBytes);
  }
  sizeBytes(name: string): Promise<number> {
    return this.inner.sizeBytes(name);
  }
  exists(name: string): Promise<boolean> {
    return this.inner.exists(name);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }
}
