import { describe, expect, it } from "vitest";
import { isPackInSubset, parseDataSubset } from "./check-subset.ts";
import { conflictingLocks, isLockStale, lockDefaults } from "./locks.ts";
import type { IndexedPack, Lock } from "./objects.ts";
import {
  decodePackHeader,
  decodePackTrailer,
  encodePackHeader,
  encodePackTrailer,
} from "./pack-format.ts";
import { planPrune } from "./prune-plan.ts";
import { createPathFilter, findParentSnapshot, selectSnapshot } from "./snapshot-selection.ts";

const id = (digit: string) => digit.repeat(64);

describe("pack format", () => {
  it("round-trips a header and a trailer", () => {
    const entries = [
      {
        id: id("a"),
        type: "data" as const,
        lengthBytes: 100,
        rawLengthBytes: 300,
        compressed: true,
        keyGeneration: 0,
      },
      {
        id: id("b"),
        type: "tree" as const,
        lengthBytes: 50,
        rawLengthBytes: 22,
        compressed: false,
        keyGeneration: 3,
      },
    ];
    expect(decodePackHeader(encodePackHeader(entries), "pack")).toEqual([
      { ...entries[0], offsetBytes: 0 },
      { ...entries[1], offsetBytes: 100 },
    ]);
    expect(decodePackTrailer(encodePackTrailer(92, 3), "pack", 1000)).toEqual({
      headerLengthBytes: 92,
      headerKeyGeneration: 3,
    });
  });

  it("rejects a trailer without magic or with an impossible header length", () => {
    expect(() => decodePackTrailer(new Uint8Array(12), "data/00/x", 1000)).toThrow(
      /data\/00\/x: no pack trailer/,
    );
    expect(() => decodePackTrailer(encodePackTrailer(5000, 0), "data/00/x", 1000)).toThrow(
      /does not fit/,
    );
  });
});

describe("snapshot selection", () => {
  const snapshots = [
    { id: "aaa111", timeMs: 1000, hostname: "h", paths: ["/data"] },
    { id: "aab222", timeMs: 3000, hostname: "h", paths: ["/data"] },
    { id: "bbb333", timeMs: 2000, hostname: "other", paths: ["/data"] },
  ];
  it("selects by latest, unique prefix and point in time", () => {
    expect(selectSnapshot(snapshots, { kind: "latest" }).id).toBe("aab222");
    expect(selectSnapshot(snapshots, { kind: "id", prefix: "bb" }).id).toBe("bbb333");
    expect(selectSnapshot(snapshots, { kind: "at", timeMs: 2500, timeText: "2500" }).id).toBe(
      "bbb333",
    );
    expect(() => selectSnapshot(snapshots, { kind: "id", prefix: "aa" })).toThrow(/ambiguous/);
    expect(() => selectSnapshot(snapshots, { kind: "at", timeMs: 10, timeText: "10" })).toThrow(
      /no snapshot/,
    );
  });
  it("finds the parent among snapshots of the same host and paths", () => {
    expect(findParentSnapshot(snapshots, "h", ["/data"])?.id).toBe("aab222");
    expect(findParentSnapshot(snapshots, "h", ["/etc"])).toBeUndefined();
  });
  it("filters paths by prefix and glob", () => {
    const filter = createPathFilter(["/src/docs", "/src/*.log"]);
    expect(filter.includes("/src/docs/readme.md")).toBe(true);
    expect(filter.includes("/src/app.log")).toBe(true);
    expect(filter.includes("/src/app.txt")).toBe(false);
    expect(filter.mayIncludeBelow("/src")).toBe(true);
    expect(filter.mayIncludeBelow("/other")).toBe(false);
  });
});

describe("prune plan", () => {
  const blob = (blobId: string, lengthBytes: number) => ({
    id: blobId,
    type: "data" as const,
    offsetBytes: 0,
    lengthBytes,
    rawLengthBytes: lengthBytes,
    compressed: false,
    keyGeneration: 0,
  });
  const packs: IndexedPack[] = [
    { id: id("1"), sizeBytes: 200, blobs: [blob(id("a"), 100), blob(id("b"), 100)] },
    { id: id("2"), sizeBytes: 200, blobs: [blob(id("c"), 100), blob(id("d"), 100)] },
    { id: id("3"), sizeBytes: 200, blobs: [blob(id("e"), 100), blob(id("f"), 100)] },
  ];
  it("keeps full packs, removes unused ones and repacks mostly unused ones", () => {
    const plan = planPrune(packs, new Set([id("a"), id("b"), id("c")]), {
      unusedFractionMax: 0.1,
      packSizeBytesSmall: 0,
    });
    expect(plan.keep).toEqual([id("1")]);
    expect(plan.repack).toEqual([id("2")]);
    expect(plan.remove).toEqual([id("3")]);
    expect(plan.bytesFreed).toBe(300);
  });
});

describe("locks", () => {
  const lock = (overrides: Partial<Lock>): Lock => ({
    version: 1,
    exclusive: false,
    hostname: "h",
    pid: 10,
    createdAtMs: 0,
    refreshedAtMs: 0,
    ...overrides,
  });
  const context = { nowMs: 60_000, hostname: "h", isProcessAlive: (pid: number) => pid === 10 };
  it("treats old locks and locks of dead local processes as stale", () => {
    expect(isLockStale(lock({}), context, lockDefaults)).toBe(false);
    expect(isLockStale(lock({ pid: 11 }), context, lockDefaults)).toBe(true);
    expect(isLockStale(lock({ hostname: "elsewhere", pid: 11 }), context, lockDefaults)).toBe(
      false,
    );
    expect(
      isLockStale(lock({}), { ...context, nowMs: lockDefaults.staleAfterMs + 1 }, lockDefaults),
    ).toBe(true);
  });
  it("lets shared locks coexist and makes exclusive ones conflict", () => {
    const shared = [{ lock: lock({}) }];
    expect(conflictingLocks(false, shared, context, lockDefaults)).toEqual([]);
    expect(conflictingLocks(true, shared, context, lockDefaults)).toHaveLength(1);
    expect(
      conflictingLocks(false, [{ lock: lock({ exclusive: true }) }], context, lockDefaults),
    ).toHaveLength(1);
  });
});

describe("check --read-data-subset", () => {
  it("parses n/m and percentages and partitions packs into m slices", () => {
    expect(parseDataSubset("2/5")).toEqual({ kind: "slice", part: 2, parts: 5 });
    expect(parseDataSubset("10%")).toEqual({ kind: "fraction", fraction: 0.1 });
    expect(() => parseDataSubset("6/5")).toThrow(/n\/m/);
    const packIds = Array.from(
      { length: 50 },
      (_, index) => index.toString(16).padStart(8, "0") + "0".repeat(56),
    );
    const covered = [1, 2, 3].flatMap((part) =>
      packIds.filter((packId) => isPackInSubset(packId, { kind: "slice", part, parts: 3 }, 0)),
    );
    expect(covered.sort()).toEqual(packIds.sort());
  });
});
