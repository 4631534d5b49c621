// The main thread's side of a chunk worker: sends it file paths and feeds the sealed blobs it
// returns to the backup's sink. Pays on multi-core machines, where hashing, zstd and AES of
// one file run beside another's and beside the main thread's packing and writing.
import type { Worker } from "node:worker_threads";
import { workerScript } from "./worker-script.ts";
import type { WorkerScript } from "./worker-script.ts";
import type { RepositoryConfig, KeyRing } from "../../core/backup/objects.ts";
import type { PackHeaderEntry } from "../../core/backup/pack-format.ts";
import type { ChunkSink, ContentSaver } from "./content-saver.ts";
import type { Repository } from "./repository.ts";

export interface ChunkWorkerData {
  keyRing: KeyRing;
  config: RepositoryConfig;
  knownBlobIds: string[];
  bytesInFlightMax: number;
}

export type ToWorker =
  { kind: "file"; requestId: number; path: string } | { kind: "ack"; bytes: number };
export type ToMain =
  | { kind: "blob"; requestId: number; entry: PackHeaderEntry; parts: Uint8Array[] }
  | { kind: "done"; requestId: number; content: string[]; bytesRead: number }
  | { kind: "failed"; requestId: number; message: string; code: string | undefined };

/**
 * Sealed bytes a worker may send before the main thread has stored them. A cap in bytes, not
 * blobs: twelve blobs measured ~10 % faster than four, but twelve 8 MiB chunks would be 96 MiB.
 * 4 MiB: with 2 the worker waited for the main thread's acknowledgements while that thread
 * sealed a file of its own (together with small files going to idle workers: 9.0 → 8.0 s,
 * at the same peak RSS); 8 measured no better.
 */
const bytesInFlightMax = 4 * 1024 * 1024;

/** The chunk worker's code, or undefined when it is not available. */
export function chunkWorkerScript(): WorkerScript<ChunkWorkerData> | undefined {
  return workerScript<ChunkWorkerData>("chunk-worker");
}

interface PendingRequest {
  sink: ChunkSink;
  resolve: (result: { content: string[]; bytesRead: number }) => void;
  reject: (error: Error) => void;
  /** Blob additions still running; `done` waits for them so the file's chunks are all stored. */
  adding: Promise<void>;
}

export class WorkerContentSaver implements ContentSaver {
  private readonly worker: Worker;
  private readonly pending = new Map<number, PendingRequest>();
  private nextRequestId = 0;
  private failure: Error | undefined;

  constructor(repository: Repository, script: WorkerScript<ChunkWorkerData>) {
    const data: ChunkWorkerData = {
      keyRing: repository.keys.ring,
      config: repository.config,
      knownBlobIds: [...repository.index.blobs.keys()],
      bytesInFlightMax,
    };
    this.worker = script.start(data);
    this.worker.on("message", (message: ToMain) => this.receive(message));
    this.worker.on("error", (error) => this.failAll(error));
    this.worker.on("exit", (exitCode) =>
      this.failAll(new Error(`chunk worker exited with code ${exitCode}`)),
    );
  }

  private failAll(error: Error): void {
    this.failure ??= error;
    for (const request of this.pending.values()) request.reject(error);
    this.pending.clear();
  }

  private receive(message: ToMain): void {
    const request = this.pending.get(message.requestId);
    if (request === undefined) return;
    switch (message.kind) {
      case "blob":
        // The ack goes back even after a failure, so the worker never waits forever.
        request.adding = request.adding
          .then(() => request.sink.add({ entry: message.entry, parts: message.parts }))
          .finally(() =>
            this.worker.postMessage({
              kind: "ack",
              bytes: message.entry.lengthBytes,
            } satisfies ToWorker),
          );
        break;
      case "done":
        this.pending.delete(message.requestId);
        request.adding.then(
          () => request.resolve({ content: message.content, bytesRead: message.bytesRead }),
          (error: unknown) =>
            request.reject(error instanceof Error ? error : new Error(String(error))),
        );
        break;
      case "failed":
        this.pending.delete(message.requestId);
        request.reject(Object.assign(new Error(message.message), { code: message.code }));
        break;
    }
  }

  saveFile(path: string, sink: ChunkSink): Promise<{ content: string[]; bytesRead: number }> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { sink, resolve, reject, adding: Promise.resolve() });
      this.worker.postMessage({ kind: "file", requestId, path } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}
