import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { PendingBlob } from "../../core/backup/blob-store.ts";
import { sealBlob } from "./blob-codec.ts";
import { MemoryBlobStore } from "./memory-blob-store.ts";
import { PackWriter, initRepository } from "./repository.ts";
import { testingPassword, testingRepositoryOptions } from "./testing.ts";

/** A store whose appends complete only on a later turn of the event loop, like a real disk. */
class SlowStore extends MemoryBlobStore {
  override async begin(): Promise<PendingBlob> {
    const pending = await super.begin();
    return {
      append: async (data) => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        await pending.append(data);
      },
      commit: (name) => pending.commit(name),
      abort: () => pending.abort(),
    };
  }
}

describe("PackWriter", () => {
  it("applies backpressure to several concurrent writers without stalling any of them", async () => {
    const store = new SlowStore();
    // Packs larger than the write queue, so savers really wait for the disk.
    const repository = await initRepository(store, testingPassword, {
      ...testingRepositoryOptions,
      packSizeBytesTarget: 8 * 1024 * 1024,
    });
    const stored: string[] = [];
    const writer = new PackWriter(repository, (pack) => {
      stored.push(pack.id);
      return Promise.resolve();
    });
    const compressor = repository.createCompressor();
    const blobs = Array.from({ length: 24 }, () =>
      sealBlob(repository.keys, compressor, "data", randomBytes(512 * 1024)),
    );
    // Three savers adding at once, as worker threads do: all must finish.
    await Promise.all(
      [0, 1, 2].map(async (saver) => {
        for (let index = saver; index < blobs.length; index += 3)
          await writer.addSealed(blobs[index] as (typeof blobs)[number]);
      }),
    );
    await writer.flush();
    expect(stored.length).toBeGreaterThan(1);
    await repository.loadIndex();
    const packs = await store.list("data/");
    expect(packs).toHaveLength(stored.length);
    const total = (await Promise.all(packs.map((name) => store.sizeBytes(name)))).reduce(
      (sum, size) => sum + size,
      0,
    );
    expect(total).toBeGreaterThan(24 * 512 * 1024);
  });
});
