// Backup → restore must give back every byte and every piece of metadata, for any tree.
import { chmod, lutimes, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { restore } from "./restore.ts";
import { describeTree, initTestingRepository, withTemporaryDirectory } from "./testing.ts";

type Entry =
  | { kind: "file"; content: Uint8Array; mode: number }
  | { kind: "symlink"; target: string }
  | { kind: "directory"; children: Record<string, Entry> };

const nameArbitrary = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,11}$/);
const contentArbitrary = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ maxLength: 300 }),
  // Repetitive content larger than several chunks: exercises chunking and dedup.
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 3000 }))
    .map(([unit, repeats]) => {
      const bytes = new Uint8Array(unit.length * repeats);
      for (let index = 0; index < repeats; index++) bytes.set(unit, index * unit.length);
      return bytes;
    }),
);
const entryArbitrary: fc.Arbitrary<Entry> = fc.letrec<{ entry: Entry }>((tie) => ({
  entry: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({
      kind: fc.constant("file" as const),
      content: contentArbitrary,
      mode: fc.constantFrom(0o644, 0o600, 0o755, 0o400),
    }),
    fc.record({
      kind: fc.constant("symlink" as const),
      target: fc.constantFrom("../elsewhere", "sibling", "/absolute/target"),
    }),
    fc.record({
      kind: fc.constant("directory" as const),
      children: fc.dictionary(nameArbitrary, tie("entry"), { maxKeys: 4 }),
    }),
  ),
})).entry;

async function materialize(path: string, entry: Entry, mtimeSeconds: number): Promise<void> {
  switch (entry.kind) {
    case "file":
      await writeFile(path, entry.content);
      await chmod(path, entry.mode);
      await utimes(path, mtimeSeconds, mtimeSeconds);
      break;
    case "symlink":
      await symlink(entry.target, path);
      await lutimes(path, mtimeSeconds, mtimeSeconds);
      break;
    case "directory":
      await mkdir(path);
      for (const [name, child] of Object.entries(entry.children))
        await materialize(join(path, name), child, mtimeSeconds + 1);
      await utimes(path, mtimeSeconds, mtimeSeconds);
      break;
  }
}

describe("backup and restore round trip", () => {
  it("restores random trees byte-identical with their metadata", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(nameArbitrary, entryArbitrary, { minKeys: 1, maxKeys: 5 }),
        async (children) => {
          await withTemporaryDirectory(async (directory) => {
            const source = join(directory, "source");
            await materialize(source, { kind: "directory", children }, 1_700_000_000);
            const repository = await initTestingRepository(
              new DirectoryBlobStore(join(directory, "repository")),
            );
            const { snapshotId } = await backup(repository, { paths: [source] });
            const target = join(directory, "target");
            await restore(repository, { snapshotId, targetDirectory: target });
            expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
            const report = await check(repository, { readData: { kind: "all" } });
            expect(report.errors).toEqual([]);
          });
        },
      ),
      { numRuns: 25 },
    );
  });
});
