// The main thread's side of a restore worker: sends it batches of planned files and hears of
// each file written. Pays on multi-core machines, where one thread's decryption, zstd, hashing
// and writes run beside another's. Nothing but file plans and byte counts cross threads: the
// worker reads the packs itself, so it serves repositories in a local directory only.
import type { Worker } from "node:worker_threads";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import type { BackupErrorCode } from "../../core/backup/errors.ts";
import type { KeyRing } from "../../core/backup/objects.ts";
import type { PlannedFile } from "./restore-lane.ts";
import { workerScript } from "./worker-script.ts";
import type { WorkerScript } from "./worker-script.ts";

export interface RestoreWorkerData {
  keyRing: KeyRing;
  chunkSizeBytesMax: number;
  /** The repository's directory; pack names are relative to it. */
  directory: string;
}

export interface ToWorker {
  requestId: number;
  files: PlannedFile[];
}
export type ToMain =
  | { kind: "file"; requestId: number; bytesWritten: number }
  | { kind: "done"; requestId: number }
  | { kind: "failed"; requestId: number; failure: WorkerFailure };

/** An error as it crosses threads, enough to rebuild its type, code and object name. */
export interface WorkerFailure {
  message: string;
  code: string | undefined;
  objectName: string | undefined;
  detail: string | undefined;
  backupError: boolean;
}

export function describeFailure(error: unknown): WorkerFailure {
  const code =
    typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
  return {
    message: error instanceof Error ? error.message : String(error),
    code,
    objectName: error instanceof CorruptObjectError ? error.objectName : undefined,
    detail: error instanceof CorruptObjectError ? error.detail : undefined,
    backupError: error instanceof BackupError,
  };
}

/** The error the worker threw, as the calling thread would have thrown it. */
export function rebuildFailure(failure: WorkerFailure): Error {
  if (failure.objectName !== undefined && failure.detail !== undefined)
    return new CorruptObjectError(failure.objectName, failure.detail);
  if (failure.backupError && failure.code !== undefined)
    return new BackupError(failure.code as BackupErrorCode, failure.message);
  return Object.assign(new Error(failure.message), { code: failure.code });
}

/** The restore worker's code, or undefined when it is not available. */
export function restoreWorkerScript(): WorkerScript<RestoreWorkerData> | undefined {
  return workerScript<RestoreWorkerData>("restore-worker");
}

interface PendingBatch {
  onFileWritten: (bytesWritten: number) => void;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class WorkerFileRestorer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, PendingBatch>();
  private nextRequestId = 0;
  private failure: Error | undefined;

  constructor(script: WorkerScript<RestoreWorkerData>, data: RestoreWorkerData) {
    this.worker = script.start(data);
    this.worker.on("message", (message: ToMain) => this.receive(message));
    this.worker.on("error", (error) => this.failAll(error));
    this.worker.on("exit", (exitCode) =>
      this.failAll(new Error(`restore worker exited with code ${exitCode}`)),
    );
  }

  private failAll(error: Error): void {
    this.failure ??= error;
    for (const batch of this.pending.values()) batch.reject(error);
    this.pending.clear();
  }

  private receive(message: ToMain): void {
    const batch = this.pending.get(message.requestId);
    if (batch === undefined) return;
    switch (message.kind) {
      case "file":
        batch.onFileWritten(message.bytesWritten);
        break;
      case "done":
        this.pending.delete(message.requestId);
        batch.resolve();
        break;
      case "failed":
        this.pending.delete(message.requestId);
        batch.reject(rebuildFailure(message.failure));
        break;
    }
  }

  /**
   * Restores `files` in order; settles once the worker has finished with all of them, so no
   * partial file is being written when it does. Stops at the first failure.
   */
  restoreFiles(files: PlannedFile[], onFileWritten: (bytesWritten: number) => void): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { onFileWritten, resolve, reject });
      this.worker.postMessage({ requestId, files } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}
