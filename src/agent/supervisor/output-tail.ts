// The last bytes a child process wrote, kept so an error message can quote them ("exited with
// code 1: <last lines>") without holding the whole output in memory.

import { Buffer } from "node:buffer";

/** Output kept for error messages; messages to the server are capped at a few KiB anyway. */
const outputTailBytesMax = 2_048;

export class OutputTail {
  #kept: Buffer = Buffer.alloc(0);
  /** Whether the kept bytes begin inside a line (the bytes before them were dropped). */
  #startsMidLine = false;

  constructor(readonly bytesMax: number = outputTailBytesMax) {}

  append(chunk: Buffer): void {
    const combined = Buffer.concat([this.#kept, chunk]);
    if (combined.length <= this.bytesMax) {
      this.#kept = combined;
      return;
    }
    const startBytes = combined.length - this.bytesMax;
    this.#startsMidLine = combined[startBytes - 1] !== 0x0a;
    // A copy, so a large chunk is not kept alive by a small view of it.
    this.#kept = Buffer.from(combined.subarray(startBytes));
  }

  /** The kept output as text, trimmed, from its first whole line when the start was cut. */
  text(): string {
    const text = this.#kept.toString("utf8");
    const cut = this.#startsMidLine ? text.indexOf("\n") : -1;
    return (cut >= 0 && cut < text.length - 1 ? text.slice(cut + 1) : text).trim();
  }
}
