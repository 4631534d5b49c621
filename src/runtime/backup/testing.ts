// Helpers for the backup engine's tests: small, fast repositories and file-tree comparison.
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chunkerTestingOptions } from "../../core/backup/chunker.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { keyDerivationTesting } from "./crypto.ts";
import { initRepository, sha256Hex } from "./repository.ts";
import type { Repository, RepositoryOptions } from "./repository.ts";

/** Tiny chunks and packs and a cheap KDF: many chunk and pack boundaries in little data. */
export const testingRepositoryOptions: RepositoryOptions = {
  chunker: chunkerTestingOptions,
  compressionLevel: 3,
  packSizeBytesTarget: 64 * 1024,
  keyDerivation: keyDerivationTesting,
};

export const testingPassword = "correct horse battery staple";

export function initTestingRepository(store: BlobStore): Promise<Repository> {
  return initRepository(store, testingPassword, testingRepositoryOptions);
}

export async function withTemporaryDirectory<Result>(
  work: (directory: string) => Promise<Result>,
): Promise<Result> {
  const directory = await mkdtemp(join(tmpdir(), "edgeward-backup-test-"));
  try {
    return await work(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * Every entry under `root` with type, content, mode and mtime, for equality checks. The mtime
 * is in whole microseconds (what a restore can set) from the exact nanoseconds: `mtimeMs`, a
 * double, rounds the last ~0.1 µs of a millisecond up into the next one.
 */
export async function describeTree(root: string): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = join(root, relative, name);
      const key = relative === "" ? name : `${relative}/${name}`;
      const stats = await lstat(path, { bigint: true });
      const mode = (stats.mode & 0o7777n).toString(8);
      const mtimeUs = stats.mtimeNs / 1000n;
      if (stats.isSymbolicLink()) entries[key] = `symlink -> ${await readlink(path)}`;
      else if (stats.isDirectory()) {
        entries[key] = `directory mode=${mode} mtimeUs=${mtimeUs}`;
        await walk(key);
      } else
        entries[key] =
          `file mode=${mode} mtimeUs=${mtimeUs} size=${stats.size} sha256=${sha256Hex(await readFile(path))}`;
    }
  };
  await walk("");
  return entries;
}

/** Deterministic incompressible bytes, so packs fill up and several are written. */
export function noise(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let index = 0; index < length; index++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}
