// A worker thread that restores files for the main thread: it reads their blobs from the packs
// of a repository in a local directory, verifies and writes them as the calling thread does
// (restore-lane.ts), and reports each file done. Batches are handled in order, one at a time.
import { closeSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { keysFromRing } from "./crypto.ts";
import { storageError } from "./directory-blob-store.ts";
import { RestoreLane } from "./restore-lane.ts";
import { describeFailure } from "./worker-file-restorer.ts";
import type { RestoreWorkerData, ToMain, ToWorker } from "./worker-file-restorer.ts";

const data = workerData as RestoreWorkerData;
const port = parentPort;
if (port === null) throw new Error("restore-worker.ts runs only as a worker thread");

/** The pack read last, kept open for the next read: a pack is read in several windows. */
let openPack: { name: string; descriptor: number } | undefined;

/**
 * Synchronous reads: this thread has nothing else to do meanwhile, and a thread-pool round
 * trip per read would cost more than the read of a page-cached window.
 */
function readPackRange(packName: string, offsetBytes: number, target: Buffer): number {
  try {
    if (openPack?.name !== packName) {
      closeOpenPack();
      openPack = { name: packName, descriptor: openSync(join(data.directory, packName), "r") };
    }
    let filled = 0;
    while (filled < target.length) {
      const bytesRead = readSync(
        openPack.descriptor,
        target,
        filled,
        target.length - filled,
        offsetBytes + filled,
      );
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled;
  } catch (error) {
    throw storageError(error, `reading ${packName} from ${data.directory}`, packName);
  }
}

function closeOpenPack(): void {
  if (openPack === undefined) return;
  const { descriptor } = openPack;
  openPack = undefined;
  closeSync(descriptor);
}

const lane = new RestoreLane(keysFromRing(data.keyRing), data.chunkSizeBytesMax, readPackRange);
let queue: Promise<void> = Promise.resolve();

async function restoreBatch(message: ToWorker): Promise<void> {
  const send = (reply: ToMain) => port?.postMessage(reply);
  try {
    for (const file of message.files) {
      let bytesWritten = 0;
      await lane.restoreFile(file, (bytes) => (bytesWritten += bytes));
      send({ kind: "file", requestId: message.requestId, bytesWritten });
    }
    send({ kind: "done", requestId: message.requestId });
  } catch (error) {
    send({ kind: "failed", requestId: message.requestId, failure: describeFailure(error) });
  } finally {
    // No descriptor outlives a batch: the main thread may end this worker between batches.
    closeOpenPack();
  }
}

port.on("message", (message: ToWorker) => {
  queue = queue.then(() => restoreBatch(message));
});
