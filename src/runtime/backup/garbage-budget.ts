// Bounds the garbage that short-lived buffers leave behind. Node 20 cannot decrypt into an
// existing buffer, so every blob restored leaves its decrypted bytes as buffers that V8 frees
// only at a collection, and V8 starts one for external memory only after ~64 MiB of it: that
// garbage was up to 90 MiB of a restore's peak RSS. A young-generation collection after every
// few MiB of such buffers frees them while they are still young (a scavenge of a heap whose
// live objects are a few MiB takes about a millisecond).
//
// Only for buffers that are dead by the time `add` is called: a buffer still in use when
// scavenged is promoted to the old generation and lives until the next full collection.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

type Collect = (options?: { type?: "minor" | "major"; execution?: "sync" | "async" }) => void;

let collector: Collect | null | undefined;

/** V8's `gc`, exposed to a throwaway context only; null where the runtime refuses. */
function collect(): Collect | null {
  if (collector !== undefined) return collector;
  const exposed = (globalThis as { gc?: Collect }).gc;
  if (typeof exposed === "function") return (collector = exposed);
  try {
    setFlagsFromString("--expose-gc");
    const created: unknown = runInNewContext("gc");
    collector = typeof created === "function" ? (created as Collect) : null;
  } catch {
    collector = null;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
  return collector;
}

/** Below this a buffer is left to the collector as it is; detaching costs more than it saves. */
const detachBytesMin = 64 * 1024;

/** Counts the bytes of buffers that became garbage and collects after every `bytesMax`. */
export class GarbageBudget {
  private bytes = 0;

  constructor(private readonly bytesMax: number) {}

  /**
   * For buffers that may have lived through a collection (queued, then written): a
   * surviving buffer is promoted to the old generation, which V8 collects only after ~64 MiB
   * of external memory, so a scavenge would not free it. Each buffer that owns its memory is
   * detached here: its bytes move to a new, unreferenced ArrayBuffer that the next scavenge
   * frees. The caller must not touch the buffers again.
   */
  release(buffers: readonly Uint8Array[]): void {
    let bytes = 0;
    for (const buffer of buffers) {
      bytes += buffer.byteLength;
      if (
        buffer.byteLength >= detachBytesMin &&
        buffer.byteOffset === 0 &&
        buffer.byteLength === buffer.buffer.byteLength &&
        buffer.buffer instanceof ArrayBuffer
      )
        structuredClone(buffer.buffer, { transfer: [buffer.buffer] });
    }
    this.add(bytes);
  }

  add(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes < this.bytesMax) return;
    this.bytes = 0;
    collect()?.({ type: "minor", execution: "sync" });
  }
}
