// A worker thread that restores files for the main thread: it reads their blobs from the packs
// of a repository in a local directory, verifies and writes them as the calling thread does
// (restore-lane.ts), and reports each file done. Batches are handled in order, one at a time.
import { parentPort, workerData } from "node:worker_threads";
import { keysFromRing } from "./crypto.ts";
import { PackFileReader } from "./pack-file-reader.ts";
import { RestoreLane } from "./restore-lane.ts";
import { describeFailure } from "./worker-file-restorer.ts";
import type { RestoreWorkerData, ToMain, ToWorker } from "./worker-file-restorer.ts";

const data = workerData as RestoreWorkerData;
const port = parentPort;
if (port === null) throw new Error("restore-worker.ts runs only as a worker thread");

const packs = new PackFileReader(data.directory);
const lane = new RestoreLane(
  keysFromRing(data.keyRing),
  data.chunkSizeBytesMax,
  (packName, offsetBytes, target) => packs.read(packName, offsetBytes, target),
);
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
    packs.close();
  }
}

port.on("message", (message: ToWorker) => {
  queue = queue.then(() => restoreBatch(message));
});
