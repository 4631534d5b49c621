// Restored times land on the snapshot's microsecond: a regression test for restores that,
// once in a while, did not compare equal with their source (the mtime came back 1 µs early,
// across a millisecond boundary about once per thousand files).
import { lstatSync, lutimesSync, mkdirSync, statSync, symlinkSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { finishFile, openPartialFile, partialPathOf, secondsOf } from "./restore-file.ts";
import { withTemporaryDirectory } from "./testing.ts";

/** Nanosecond times around 2025: near millisecond boundaries and spread over the second. */
function sampleTimesNs(count: number): bigint[] {
  const baseNs = 1_763_860_000n * 1_000_000_000n;
  const times: bigint[] = [];
  let state = 12_345;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    const millisecond = BigInt(state % 1_000) * 1_000_000n;
    // Half just past a millisecond boundary (the case that crossed back), half anywhere.
    const withinNs = index % 2 === 0 ? BigInt(state % 1_000) : BigInt(state % 1_000_000);
    times.push(baseNs + BigInt(index) * 1_000_000_000n + millisecond + withinNs);
  }
  return times;
}

const microsecondOf = (ns: bigint) => ns / 1000n;

describe("restored times", () => {
  it("files get the snapshot's microsecond exactly", async () => {
    await withTemporaryDirectory((directory) => {
      const target = join(directory, "file");
      for (const timeNs of sampleTimesNs(2_000)) {
        const partial = partialPathOf(target, "file");
        const descriptor = openPartialFile(partial);
        finishFile(
          descriptor,
          { uid: 0, gid: 0, mode: 0o644, mtimeNs: timeNs.toString() },
          partial,
          target,
        );
        expect(microsecondOf(statSync(target, { bigint: true }).mtimeNs)).toBe(
          microsecondOf(timeNs),
        );
      }
      return Promise.resolve();
    });
  });

  it("directories and symlinks too", async () => {
    await withTemporaryDirectory((directory) => {
      const subdirectory = join(directory, "directory");
      mkdirSync(subdirectory);
      const link = join(directory, "link");
      symlinkSync("directory", link);
      for (const timeNs of sampleTimesNs(500)) {
        const seconds = secondsOf(timeNs.toString());
        utimesSync(subdirectory, seconds, seconds);
        lutimesSync(link, seconds, seconds);
        expect(microsecondOf(statSync(subdirectory, { bigint: true }).mtimeNs)).toBe(
          microsecondOf(timeNs),
        );
        expect(microsecondOf(lstatSync(link, { bigint: true }).mtimeNs)).toBe(
          microsecondOf(timeNs),
        );
      }
      return Promise.resolve();
    });
  });
});
