// The last bytes a child process wrote, kept so an error message can quote them ("exited with
// code 1: <last lines>") without holding the whole output in memory.

import { Buffer } from "node:buffer";

/** Output kept for error messages; messages to the server are capped at a few KiB anyway. */
export const outputTailBytesMax = 2_048;

export class OutputTail {
  #chunks: Buffer[] = [];
  #sizeBytes = 0;

  constructor(readonly bytesMax: number = outputTailBytesMax) {}

  append(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#sizeBytes += chunk.length;
    while (
      this.#chunks.length > 1 &&
      this.#sizeBytes - (this.#chunks[0]?.length ?? 0) >= this.bytesMax
    ) {
      this.#sizeBytes -= this.#chunks.shift()?.length ?? 0;
    }
  }

  /** The kept output as text, trimmed, starting at a line boundary when one is near. */
  text(): string {
    const all = Buffer.concat(this.#chunks);
    const kept = all.subarray(Math.max(0, all.length - this.bytesMax));
    const text = kept.toString("utf8");
    const cut = kept.length < all.length ? text.indexOf("\n") : -1;
    return (cut >= 0 && cut < text.length - 1 ? text.slice(cut + 1) : text).trim();
  }
}
