// A worker thread that chunks, hashes, compresses and encrypts files for the main thread,
// which keeps deduplication, packing and storage. One request (file) at a time, in order.
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { createChunkerParameters } from "../../core/backup/chunker.ts";
import { sealBlob } from "./blob-codec.ts";
import { ChunkReadBuffer, forEachChunk } from "./content-saver.ts";
import { BlobCompressor, computeBlobId, keysFromRing } from "./crypto.ts";
import type { ChunkWorkerData, ToMain, ToWorker } from "./worker-content-saver.ts";

const data = workerData as ChunkWorkerData;
const port = parentPort;
if (port === null) throw new Error("chunk-worker.ts runs only as a worker thread");
const keys = keysFromRing(data.keyRing);
const parameters = createChunkerParameters(data.config.chunkerSeed, data.config);
const compressor = new BlobCompressor(data.config.compressionLevel);
const readBuffer = new ChunkReadBuffer(parameters);
/** Ids this worker need not send: indexed before the backup began, or sent already. */
const knownBlobIds = new Set(data.knownBlobIds);
/** Sealed bytes sent and not yet acknowledged: the main thread still holds them. */
let bytesInFlight = 0;
let creditWaiter: (() => void) | undefined;
let queue: Promise<void> = Promise.resolve();
/** Below this a copy is cheaper than detaching a buffer. */
const transferBytesMin = 4096;

function send(message: ToMain, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

/** Small parts (nonce, tag) are copied; a part is moved only if it owns its whole buffer. */
function transferable(parts: readonly Uint8Array[]): ArrayBuffer[] {
  return parts
    .filter(
      (part) =>
        part.byteOffset === 0 &&
        part.byteLength === part.buffer.byteLength &&
        part.byteLength >= transferBytesMin,
    )
    .map((part) => part.buffer as ArrayBuffer);
}

async function saveFile(requestId: number, path: string): Promise<void> {
  const content: string[] = [];
  let descriptor: number | undefined;
  try {
    // Synchronous reads: this thread has nothing else to do meanwhile, and it spares the
    // shared libuv pool and an event-loop round trip per read (which dominate small files).
    descriptor = openSync(path, "r");
    const file = descriptor;
    const bytesRead = await forEachChunk(
      { read: (target, offset, length) => readSync(file, target, offset, length, null) },
      readBuffer,
      parameters,
      async (chunk) => {
        const id = computeBlobId(keys, chunk);
        content.push(id);
        if (knownBlobIds.has(id)) return;
        knownBlobIds.add(id);
        const blob = sealBlob(keys, compressor, "data", chunk, id);
        // Bounded memory: wait for the main thread to store earlier blobs before sending more
        // (one blob always goes, however large).
        while (bytesInFlight > 0 && bytesInFlight + blob.entry.lengthBytes > data.bytesInFlightMax)
          await new Promise<void>((resolve) => (creditWaiter = resolve));
        bytesInFlight += blob.entry.lengthBytes;
        send(
          { kind: "blob", requestId, entry: blob.entry, parts: blob.parts },
          transferable(blob.parts),
        );
      },
    );
    send({ kind: "done", requestId, content, bytesRead });
  } catch (error) {
    const code =
      typeof error === "object" && error !== null && "code" in error
        ? String(error.code)
        : undefined;
    send({
      kind: "failed",
      requestId,
      message: error instanceof Error ? error.message : String(error),
      code,
    });
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
}

port.on("message", (message: ToWorker) => {
  switch (message.kind) {
    case "ack":
      bytesInFlight -= message.bytes;
      creditWaiter?.();
      creditWaiter = undefined;
      break;
    case "file":
      queue = queue.then(() => saveFile(message.requestId, message.path));
      break;
  }
});
