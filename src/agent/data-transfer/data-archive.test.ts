import { createHash } from "node:crypto";
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { SeededRandom } from "../../sim/random.ts";
import {
  archiveMagic,
  archiveVersion,
  createArchiveStream,
  DataArchiveError,
  dataArchiveLimitsDefaults,
  extractArchive,
  fileChunkBytes,
  writeArchive,
  type ArchiveEntryHeader,
} from "./data-archive.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) {
    rmSync(directory, { recursive: true, force: true });
  }
});

function scratch(): string {
  const directory = mkdtempSync(join(tmpdir(), "edgeward-data-archive-"));
  directories.push(directory);
  return directory;
}

interface SnapshotEntry {
  path: string;
  type: string;
  mode: number;
  mtimeMs: number;
  content: string;
}

/** Everything an exact copy must reproduce: paths, types, modes, mtimes, bytes, link targets. */
function snapshot(root: string): SnapshotEntry[] {
  const entries: SnapshotEntry[] = [];
  const visit = (path: string) => {
    const absolute = path === "." ? root : join(root, path);
    const stats = lstatSync(absolute);
    const common = { path, mode: stats.mode & 0o777, mtimeMs: Math.round(stats.mtimeMs) };
    if (stats.isSymbolicLink()) {
      entries.push({ ...common, mode: 0, type: "symlink", content: readlinkSync(absolute) });
    } else if (stats.isFile()) {
      const digest = createHash("sha256").update(readFileSync(absolute)).digest("hex");
      entries.push({ ...common, type: "file", content: `${stats.size}:${digest}` });
    } else {
      entries.push({ ...common, type: "dir", content: "" });
      for (const name of readdirSync(absolute).sort()) {
        visit(path === "." ? name : `${path}/${name}`);
      }
    }
  };
  visit(".");
  return entries;
}

/** A random tree: nested dirs, empty and multi-chunk files, symlinks, varied modes and mtimes. */
function makeTree(root: string, seed: number): void {
  const random = new SeededRandom(seed);
  const pick = <T>(values: readonly T[]): T =>
    values[Math.floor(random.nextFloat() * values.length)] as T;
  const bytes = (length: number) =>
    Buffer.from(Array.from({ length }, () => Math.floor(random.nextFloat() * 256)));
  const baseMs = 1_700_000_000_000;
  const directoriesMade: string[] = [];
  const fill = (relative: string, depth: number) => {
    const absolute = join(root, relative);
    mkdirSync(absolute, { recursive: true });
    directoriesMade.push(absolute);
    const fileCount = 1 + Math.floor(random.nextFloat() * 4);
    for (let index = 0; index < fileCount; index += 1) {
      const file = join(absolute, `file-${index}.bin`);
      const size = pick([0, 1, 100, 4_096, fileChunkBytes + 17, 3 * fileChunkBytes]);
      writeFileSync(file, bytes(size));
      chmodSync(file, pick([0o600, 0o644, 0o640, 0o755, 0o400]));
      const seconds = (baseMs + Math.floor(random.nextFloat() * 1e9)) / 1000;
      utimesSync(file, seconds, seconds);
    }
    if (depth < 3) {
      const subdirectoryCount = Math.floor(random.nextFloat() * 3);
      for (let index = 0; index < subdirectoryCount; index += 1) {
        fill(join(relative, `dir ${depth}-${index}`), depth + 1);
      }
    }
  };
  fill("", 0);
  writeFileSync(join(root, "empty"), "");
  mkdirSync(join(root, "empty-dir"));
  directoriesMade.push(join(root, "empty-dir"));
  symlinkSync("file-0.bin", join(root, "link-to-file"));
  mkdirSync(join(root, "links"));
  directoriesMade.push(join(root, "links"));
  symlinkSync("../empty-dir", join(root, "links", "up"));
  symlinkSync("missing-target", join(root, "links", "dangling"));
  // Directories last, deepest first: creating children changes their mtime.
  for (const directory of directoriesMade.reverse()) {
    chmodSync(directory, pick([0o755, 0o750, 0o700]));
    const seconds = (baseMs + Math.floor(random.nextFloat() * 1e9)) / 1000;
    utimesSync(directory, seconds, seconds);
  }
}

async function archiveBytes(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of createArchiveStream(dir)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function copyThroughPipe(source: string, target: string) {
  const pipe = new PassThrough();
  const [written, extracted] = await Promise.all([
    writeArchive(source, pipe),
    extractArchive(pipe, target),
  ]);
  return { written, extracted };
}

/** Sibling names a failed or finished extraction must not leave behind. */
function leftovers(parent: string): string[] {
  return readdirSync(parent).filter((name) => /\.(incoming|old)-/.test(name));
}

interface CraftedEntry {
  header: Record<string, unknown>;
  content?: Buffer;
}

/** A well-formed archive (valid checksums) of arbitrary entries, for testing the checks. */
function craftArchive(entries: CraftedEntry[]): Buffer {
  const parts: Buffer[] = [];
  const version = Buffer.alloc(4);
  version.writeUInt32LE(archiveVersion);
  parts.push(archiveMagic, version);
  for (const { header, content } of entries) {
    const json = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt8(0x45);
    prefix.writeUInt32LE(json.length, 1);
    parts.push(prefix, json);
    if (header.type === "file") {
      const data = content ?? Buffer.alloc(0);
      parts.push(data, createHash("sha256").update(data).digest());
    }
  }
  const trailer = Buffer.alloc(5);
  trailer.writeUInt8(0x54);
  trailer.writeUInt32LE(entries.length, 1);
  parts.push(trailer);
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

function file(path: string, content = "x"): CraftedEntry {
  return {
    header: { path, type: "file", mode: 0o644, mtimeMs: 0, size: Buffer.byteLength(content) },
    content: Buffer.from(content),
  };
}

function directory(path: string): CraftedEntry {
  return { header: { path, type: "dir", mode: 0o755, mtimeMs: 0, size: 0 } };
}

function link(path: string, linkTarget: string): CraftedEntry {
  return { header: { path, type: "symlink", mode: 0o777, mtimeMs: 0, size: 0, linkTarget } };
}

/** A target holding old data, and a check that it still holds exactly that. */
function existingTarget(): { target: string; parent: string; unchanged: () => void } {
  const parent = scratch();
  const target = join(parent, "data");
  mkdirSync(target);
  writeFileSync(join(target, "old.txt"), "old data");
  const before = snapshot(target);
  return {
    target,
    parent,
    unchanged: () => {
      expect(snapshot(target)).toEqual(before);
      expect(leftovers(parent)).toEqual([]);
    },
  };
}

describe("data archive", () => {
  it.each([1, 2, 3, 0xdead_beef])(
    "copies a random tree exactly, replacing the old target (seed %d)",
    async (seed) => {
      const source = join(scratch(), "source");
      makeTree(source, seed);
      const { target, parent } = existingTarget();
      const { written, extracted } = await copyThroughPipe(source, target);
      expect(snapshot(target)).toEqual(snapshot(source));
      expect(leftovers(parent)).toEqual([]);
      expect(extracted).toEqual(written);
      expect(written.files).toBeGreaterThan(2);
    },
  );

  it("copies an empty directory into a target that does not exist yet", async () => {
    const source = scratch();
    const target = join(scratch(), "deeper", "data");
    const { extracted } = await copyThroughPipe(source, target);
    expect(extracted).toMatchObject({ entries: 1, files: 0, contentBytes: 0 });
    expect(snapshot(target)).toEqual(snapshot(source));
  });

  it("rejects any flipped byte and leaves the target untouched", async () => {
    const source = join(scratch(), "source");
    makeTree(source, 7);
    const archive = await archiveBytes(source);
    const { target, unchanged } = existingTarget();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: archive.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (position, mask) => {
          const corrupted = Buffer.from(archive);
          corrupted[position] = (corrupted[position] ?? 0) ^ mask;
          await expect(extractArchive(Readable.from([corrupted]), target)).rejects.toThrow(
            DataArchiveError,
          );
          unchanged();
        },
      ),
      { numRuns: 60 },
    );
  });

  it("rejects a truncated archive at any length and leaves the target untouched", async () => {
    const source = join(scratch(), "source");
    makeTree(source, 8);
    const archive = await archiveBytes(source);
    const { target, unchanged } = existingTarget();
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: archive.length - 1 }), async (length) => {
        const error = await extractArchive(
          Readable.from([archive.subarray(0, length)]),
          target,
        ).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(DataArchiveError);
        expect((error as DataArchiveError).code).toBe("truncated");
        unchanged();
      }),
      { numRuns: 60 },
    );
  });

  it("names the entry whose content does not match its checksum", async () => {
    const archive = craftArchive([directory("."), file("a.txt", "hello")]);
    const position = archive.indexOf("hello");
    archive[position] = 0x48;
    const { target, unchanged } = existingTarget();
    const error = await extractArchive(Readable.from([archive]), target).catch(
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: "checksum-mismatch", entry: "a.txt" });
    expect((error as Error).message).toMatch(/checksum does not match \(entry "a.txt"\)/);
    unchanged();
  });

  it("rejects bytes after the trailer, a wrong magic and an unknown version", async () => {
    const archive = craftArchive([file("a")]);
    const { target, unchanged } = existingTarget();
    const attempts: [Buffer, RegExp][] = [
      [Buffer.concat([archive, Buffer.from("x")]), /bytes after the archive's trailer/],
      [Buffer.concat([Buffer.from("NOTDATA!"), archive.subarray(8)]), /not an edgeward data/],
      [
        Buffer.concat([archive.subarray(0, 8), Buffer.from([2, 0, 0, 0]), archive.subarray(12)]),
        /archive version 2 is not supported/,
      ],
    ];
    for (const [bytes, message] of attempts) {
      await expect(extractArchive(Readable.from([bytes]), target)).rejects.toThrow(message);
      unchanged();
    }
  });

  it.each<[string, CraftedEntry[], string, RegExp]>([
    ["a parent reference", [file("../evil")], "../evil", /'\.\.' segment/],
    ["a nested parent reference", [directory("a"), file("a/../../evil")], "a/../../evil", /'\.\.'/],
    ["an absolute path", [file("/tmp/evil")], "/tmp/evil", /absolute/],
    ["an empty segment", [directory("a"), file("a//b")], "a//b", /empty/],
    ["an absolute link", [link("l", "/etc/passwd")], "l", /link target is absolute/],
    ["a link out of the root", [link("l", "../outside")], "l", /points outside/],
    ["a link climbing after a name", [link("l", "x/../..")], "l", /'\.\.' after another/],
    [
      "a write through a symlink",
      [directory("d"), link("l", "d"), file("l/x")],
      "l/x",
      /parent is not a directory listed earlier/,
    ],
    ["a file under a missing parent", [file("a/b")], "a/b", /parent is not a directory/],
  ])("rejects %s, naming the entry", async (_name, entries, entry, message) => {
    const { target, parent, unchanged } = existingTarget();
    const error = await extractArchive(Readable.from([craftArchive(entries)]), target).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DataArchiveError);
    expect(error).toMatchObject({ code: "unsafe-path", entry });
    expect((error as Error).message).toMatch(message);
    unchanged();
    expect(readdirSync(parent).sort()).toEqual(["data"]);
  });

  it("rejects a duplicate entry and a root entry that is not first", async () => {
    const { target, unchanged } = existingTarget();
    await expect(
      extractArchive(Readable.from([craftArchive([file("a"), file("a")])]), target),
    ).rejects.toThrow(/appears twice \(entry "a"\)/);
    await expect(
      extractArchive(Readable.from([craftArchive([file("a"), directory(".")])]), target),
    ).rejects.toThrow(/root entry must come first/);
    unchanged();
  });

  it("enforces the entry count, path length and total size limits on both sides", async () => {
    const source = scratch();
    for (const name of ["a", "b", "c"]) writeFileSync(join(source, name), "12345");
    const { target, unchanged } = existingTarget();
    const limitCases = [
      { ...dataArchiveLimitsDefaults, entryCountMax: 3 },
      { ...dataArchiveLimitsDefaults, totalBytesMax: 14 },
    ];
    for (const limits of limitCases) {
      const writing = writeArchive(source, new PassThrough().resume(), limits);
      await expect(writing).rejects.toMatchObject({ code: "limit-exceeded" });
      const archive = await archiveBytes(source);
      await expect(extractArchive(Readable.from([archive]), target, limits)).rejects.toMatchObject({
        code: "limit-exceeded",
      });
      unchanged();
    }
    const longName = craftArchive([file("x".repeat(200))]);
    await expect(
      extractArchive(Readable.from([longName]), target, {
        ...dataArchiveLimitsDefaults,
        pathBytesMax: 100,
      }),
    ).rejects.toThrow(/longer than 100 bytes/);
    unchanged();
  });

  it("refuses to archive a symlink that leads out of the directory", async () => {
    const source = scratch();
    mkdirSync(join(source, "sub"));
    symlinkSync("/etc/hostname", join(source, "sub", "escape"));
    await expect(writeArchive(source, new PassThrough().resume())).rejects.toMatchObject({
      code: "unsafe-path",
      entry: "sub/escape",
    });
  });

  it("refuses to archive something that is not a directory", async () => {
    const path = join(scratch(), "plain");
    writeFileSync(path, "");
    await expect(writeArchive(path, new PassThrough().resume())).rejects.toMatchObject({
      code: "not-a-directory",
    });
  });

  it("reads a crafted archive with every entry type", async () => {
    const header: ArchiveEntryHeader = {
      path: "f",
      type: "file",
      mode: 0o640,
      mtimeMs: 1_000,
      size: 2,
    };
    const target = join(scratch(), "data");
    await extractArchive(
      Readable.from([
        craftArchive([
          { header: { ...header }, content: Buffer.from("hi") },
          directory("d"),
          link("d/l", "../f"),
        ]),
      ]),
      target,
    );
    expect(readFileSync(join(target, "d", "l"), "utf8")).toBe("hi");
    expect(lstatSync(join(target, "f")).mode & 0o777).toBe(0o640);
  });
});
