// The streaming archive a service's data directory travels in between agents (format:
// docs/formats/data-transfer.md). Both sides stream with bounded memory; the receiving side
// builds the copy beside its target and swaps it in only after every checksum verified, so a
// broken transfer never leaves a half-installed data directory.

import { createHash, randomBytes, timingSafeEqual, type Hash } from "node:crypto";
import {
  chmod,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  utimes,
} from "node:fs/promises";
import { dirname, join, posix, resolve } from "node:path";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** "EWDATA" CR LF: a CR LF pair catches transfers that mangled line endings. */
export const archiveMagic = Buffer.from("EWDATA\r\n", "latin1");
export const archiveVersion = 1;
const entryTag = 0x45; // "E"
const trailerTag = 0x54; // "T"
const digestBytes = 32;
/** A JSON entry header longer than this is refused (a path of pathBytesMax fits easily). */
export const entryHeaderBytesMax = 16 * 1024;
/** Files are read and written in pieces of at most this size. */
export const fileChunkBytes = 64 * 1024;
/** Mode bits an archive carries: permissions only; setuid, setgid and sticky are dropped. */
export const modeMask = 0o777;

export interface DataArchiveLimits {
  /** Entries (files, directories, symlinks, the root) per archive. The receiver keeps one map
   * entry per path to check parents and duplicates, so this bounds its memory. */
  entryCountMax: number;
  /** UTF-8 bytes of an entry's path and of a symlink's target. */
  pathBytesMax: number;
  /** Bytes of file content in the whole archive. */
  totalBytesMax: number;
}

export const dataArchiveLimitsDefaults: DataArchiveLimits = {
  entryCountMax: 250_000,
  pathBytesMax: 4_096,
  totalBytesMax: 256 * 1024 ** 3,
};

export type ArchiveEntryType = "file" | "dir" | "symlink";

/** One entry's header, as written in the archive. `path` "." is the root directory itself. */
export interface ArchiveEntryHeader {
  path: string;
  type: ArchiveEntryType;
  mode: number;
  mtimeMs: number;
  /** Bytes of content following the header; 0 unless type is "file". */
  size: number;
  /** Only for symlinks: relative, and it must stay inside the archived directory. */
  linkTarget?: string;
}

export interface ArchiveSummary {
  /** Entries including the root. */
  entries: number;
  files: number;
  /** Bytes of file content. */
  contentBytes: number;
  /** Bytes of the archive stream. */
  archiveBytes: number;
}

export type DataArchiveErrorCode =
  | "not-a-directory"
  | "bad-format"
  | "unsupported-version"
  | "unsafe-path"
  | "limit-exceeded"
  | "truncated"
  | "checksum-mismatch"
  | "changed-while-reading"
  | "input-failed"
  | "io-failed";

export class DataArchiveError extends Error {
  override readonly name = "DataArchiveError";
  constructor(
    readonly code: DataArchiveErrorCode,
    message: string,
    /** The entry's path, when the problem is about one entry. */
    readonly entry?: string,
    options?: ErrorOptions,
  ) {
    super(entry === undefined ? message : `${message} (entry ${JSON.stringify(entry)})`, options);
  }
}

/** Why `path` may not be an entry path, or undefined if it may. */
export function entryPathProblem(path: unknown, limits: DataArchiveLimits): string | undefined {
  if (typeof path !== "string" || path === "") return "the path is empty or not a string";
  if (path === ".") return undefined;
  if (Buffer.byteLength(path) > limits.pathBytesMax) {
    return `the path is longer than ${limits.pathBytesMax} bytes`;
  }
  if (path.includes("\0")) return "the path contains a NUL byte";
  if (path.startsWith("/")) return "the path is absolute";
  for (const segment of path.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      return "the path is not a plain relative POSIX path (empty, '.' or '..' segment)";
    }
  }
  return undefined;
}

/**
 * Why a symlink at `path` may not point at `target`, or undefined if it may. The target must
 * be relative, climb out of the link's directory only with leading ".." segments and no
 * higher than the archive's root, and never climb again later: a ".." after a component that
 * might itself be a symlink could resolve outside the directory.
 */
export function linkTargetProblem(
  path: string,
  target: unknown,
  limits: DataArchiveLimits,
): string | undefined {
  if (typeof target !== "string" || target === "") return "the link target is empty";
  if (Buffer.byteLength(target) > limits.pathBytesMax) {
    return `the link target is longer than ${limits.pathBytesMax} bytes`;
  }
  if (target.includes("\0")) return "the link target contains a NUL byte";
  if (target.startsWith("/")) return "the link target is absolute";
  const segments = target.split("/").filter((segment) => segment !== "" && segment !== ".");
  let climbs = 0;
  while (segments[climbs] === "..") climbs += 1;
  if (segments.slice(climbs).includes("..")) {
    return "the link target has '..' after another segment";
  }
  const parentDepth = path.split("/").length - 1;
  if (climbs > parentDepth) return "the link target points outside the directory";
  return undefined;
}

function formatProblem(value: unknown, limits: DataArchiveLimits): ArchiveEntryHeader | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "the entry header is not a JSON object";
  }
  const { path, type, mode, mtimeMs, size, linkTarget, ...unknown } = value as Record<
    string,
    unknown
  >;
  const pathProblem = entryPathProblem(path, limits);
  if (pathProblem !== undefined) return pathProblem;
  const checkedPath = path as string;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) return `unknown header field ${extra}`;
  if (type !== "file" && type !== "dir" && type !== "symlink") return "unknown entry type";
  if (typeof mode !== "number" || !Number.isInteger(mode) || mode < 0 || mode > modeMask) {
    return "mode is not a permission mode";
  }
  if (typeof mtimeMs !== "number" || !Number.isFinite(mtimeMs)) return "mtimeMs is not a number";
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    return "size is not a whole number >= 0";
  }
  if (type !== "file" && size !== 0) return `a ${type} entry must have size 0`;
  if (checkedPath === "." && type !== "dir") return "the root entry must be a directory";
  if (type === "symlink") {
    const targetProblem = linkTargetProblem(checkedPath, linkTarget, limits);
    if (targetProblem !== undefined) return targetProblem;
    return { path: checkedPath, type, mode, mtimeMs, size, linkTarget: linkTarget as string };
  }
  if (linkTarget !== undefined) return "only a symlink has a linkTarget";
  return { path: checkedPath, type, mode, mtimeMs, size };
}

function headerRecord(header: ArchiveEntryHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(entryTag, 0);
  prefix.writeUInt32LE(json.length, 1);
  return Buffer.concat([prefix, json]);
}

/** The archive of `dir` as a byte stream; it reads files piece by piece as it is consumed. */
export function createArchiveStream(
  dir: string,
  limits: DataArchiveLimits = dataArchiveLimitsDefaults,
  summary: ArchiveSummary = { entries: 0, files: 0, contentBytes: 0, archiveBytes: 0 },
): Readable {
  return Readable.from(archiveChunks(resolve(dir), limits, summary), {
    objectMode: false,
    highWaterMark: fileChunkBytes,
  });
}

async function* archiveChunks(
  root: string,
  limits: DataArchiveLimits,
  summary: ArchiveSummary,
): AsyncGenerator<Buffer> {
  const streamHash = createHash("sha256");
  const emit = (chunk: Buffer): Buffer => {
    streamHash.update(chunk);
    summary.archiveBytes += chunk.length;
    return chunk;
  };
  const rootStats = await lstat(root).catch((error: unknown) => {
    throw new DataArchiveError("io-failed", `cannot read ${root}: ${(error as Error).message}`);
  });
  if (!rootStats.isDirectory()) {
    throw new DataArchiveError("not-a-directory", `${root} is not a directory`);
  }
  const preamble = Buffer.alloc(archiveMagic.length + 4);
  archiveMagic.copy(preamble);
  preamble.writeUInt32LE(archiveVersion, archiveMagic.length);
  yield emit(preamble);

  const countEntry = (path: string) => {
    summary.entries += 1;
    if (summary.entries > limits.entryCountMax) {
      throw new DataArchiveError(
        "limit-exceeded",
        `the directory has more than ${limits.entryCountMax} entries`,
        path,
      );
    }
  };
  countEntry(".");
  yield emit(
    headerRecord({
      path: ".",
      type: "dir",
      mode: rootStats.mode & modeMask,
      mtimeMs: rootStats.mtimeMs,
      size: 0,
    }),
  );

  async function* walk(relativeDir: string): AsyncGenerator<Buffer> {
    const names = (await readdir(join(root, relativeDir))).sort();
    for (const name of names) {
      const path = relativeDir === "" ? name : `${relativeDir}/${name}`;
      const absolute = join(root, path);
      const pathProblem = entryPathProblem(path, limits);
      if (pathProblem !== undefined) throw new DataArchiveError("unsafe-path", pathProblem, path);
      const stats = await lstat(absolute);
      const mode = stats.mode & modeMask;
      if (stats.isDirectory()) {
        countEntry(path);
        yield emit(headerRecord({ path, type: "dir", mode, mtimeMs: stats.mtimeMs, size: 0 }));
        yield* walk(path);
      } else if (stats.isSymbolicLink()) {
        countEntry(path);
        const linkTarget = await readlink(absolute);
        const targetProblem = linkTargetProblem(path, linkTarget, limits);
        if (targetProblem !== undefined) {
          throw new DataArchiveError("unsafe-path", targetProblem, path);
        }
        yield emit(
          headerRecord({
            path,
            type: "symlink",
            mode,
            mtimeMs: stats.mtimeMs,
            size: 0,
            linkTarget,
          }),
        );
      } else if (stats.isFile()) {
        countEntry(path);
        summary.files += 1;
        summary.contentBytes += stats.size;
        if (summary.contentBytes > limits.totalBytesMax) {
          throw new DataArchiveError(
            "limit-exceeded",
            `the files hold more than ${limits.totalBytesMax} bytes`,
            path,
          );
        }
        yield emit(
          headerRecord({ path, type: "file", mode, mtimeMs: stats.mtimeMs, size: stats.size }),
        );
        yield* fileChunks(absolute, path, stats.size, emit);
      }
      // Sockets, FIFOs and devices are not data; they are left out.
    }
  }
  yield* walk("");

  const trailer = Buffer.alloc(5);
  trailer.writeUInt8(trailerTag, 0);
  trailer.writeUInt32LE(summary.entries, 1);
  yield emit(trailer);
  const digest = streamHash.digest();
  summary.archiveBytes += digest.length;
  yield digest;
}

async function* fileChunks(
  absolute: string,
  path: string,
  size: number,
  emit: (chunk: Buffer) => Buffer,
): AsyncGenerator<Buffer> {
  const fileHash = createHash("sha256");
  const handle = await open(absolute, "r");
  try {
    let position = 0;
    while (position < size) {
      const piece = Buffer.allocUnsafe(Math.min(fileChunkBytes, size - position));
      const { bytesRead } = await handle.read(piece, 0, piece.length, position);
      if (bytesRead === 0) {
        throw new DataArchiveError(
          "changed-while-reading",
          "the file shrank while it was archived; quiesce the service first",
          path,
        );
      }
      position += bytesRead;
      const data = piece.subarray(0, bytesRead);
      fileHash.update(data);
      yield emit(data);
    }
    if ((await handle.stat()).size !== size) {
      throw new DataArchiveError(
        "changed-while-reading",
        "the file changed size while it was archived; quiesce the service first",
        path,
      );
    }
  } finally {
    await handle.close();
  }
  yield emit(fileHash.digest());
}

/** Streams the archive of `dir` into `output` and ends it; on failure `output` is destroyed. */
export async function writeArchive(
  dir: string,
  output: Writable,
  limits: DataArchiveLimits = dataArchiveLimitsDefaults,
): Promise<ArchiveSummary> {
  const summary: ArchiveSummary = { entries: 0, files: 0, contentBytes: 0, archiveBytes: 0 };
  await pipeline(createArchiveStream(dir, limits, summary), output);
  return summary;
}

/** Pulls exact byte counts off a stream and hashes everything it hands out. */
class ArchiveReader {
  readonly #iterator: AsyncIterator<unknown>;
  readonly #hash: Hash = createHash("sha256");
  #pending: Buffer = Buffer.alloc(0);
  bytesRead = 0;

  constructor(input: Readable) {
    this.#iterator = input[Symbol.asyncIterator]();
  }

  async #fill(what: string, entry: string | undefined): Promise<boolean> {
    let next: IteratorResult<unknown>;
    try {
      next = await this.#iterator.next();
    } catch (error) {
      throw new DataArchiveError(
        "input-failed",
        `the archive stream failed while reading ${what}: ${(error as Error).message}`,
        entry,
        { cause: error },
      );
    }
    if (next.done === true) return false;
    const value = next.value;
    const chunk = typeof value === "string" ? Buffer.from(value) : value;
    if (!Buffer.isBuffer(chunk))
      throw new TypeError("the archive stream yields neither bytes nor text");
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    return true;
  }

  #consume(length: number, hashed: boolean): Buffer {
    const piece = this.#pending.subarray(0, length);
    this.#pending = this.#pending.subarray(length);
    if (hashed) this.#hash.update(piece);
    this.bytesRead += length;
    return piece;
  }

  /** Exactly `length` bytes (small structures only: they are gathered in memory). */
  async exactly(length: number, what: string, entry?: string, hashed = true): Promise<Buffer> {
    while (this.#pending.length < length) {
      if (!(await this.#fill(what, entry))) {
        throw new DataArchiveError("truncated", `the archive ends inside ${what}`, entry);
      }
    }
    return this.#consume(length, hashed);
  }

  /** The next `length` bytes, piece by piece as they arrive. */
  async *pieces(length: number, what: string, entry: string): AsyncGenerator<Buffer> {
    let remaining = length;
    while (remaining > 0) {
      if (this.#pending.length === 0 && !(await this.#fill(what, entry))) {
        throw new DataArchiveError("truncated", `the archive ends inside ${what}`, entry);
      }
      const piece = this.#consume(Math.min(remaining, this.#pending.length), true);
      remaining -= piece.length;
      yield piece;
    }
  }

  /** SHA-256 of every hashed byte handed out so far. */
  digestSoFar(): Buffer {
    return this.#hash.copy().digest();
  }

  async atEnd(): Promise<boolean> {
    while (this.#pending.length === 0) {
      if (!(await this.#fill("the end of the archive", undefined))) return true;
    }
    return false;
  }
}

function sameDigest(left: Buffer, right: Buffer): boolean {
  return left.length === right.length && timingSafeEqual(left, right);
}

interface DirectoryToFinish {
  absolute: string;
  depth: number;
  mode: number;
  mtimeMs: number;
}

/**
 * Reads an archive from `input` into `<targetDir>.incoming-<random>`; once its trailer
 * verified, fsyncs the copy and swaps it in place of `targetDir` (whose old content is moved
 * aside, then removed). On any failure the incoming copy is removed and `targetDir` is left
 * exactly as it was.
 */
export async function extractArchive(
  input: Readable,
  targetDir: string,
  limits: DataArchiveLimits = dataArchiveLimitsDefaults,
): Promise<ArchiveSummary> {
  const target = resolve(targetDir);
  const suffix = randomBytes(6).toString("hex");
  const incoming = `${target}.incoming-${suffix}`;
  await mkdir(dirname(target), { recursive: true });
  await mkdir(incoming, { mode: 0o700 });
  try {
    const summary = await extractInto(new ArchiveReader(input), incoming, limits);
    await swapIn(incoming, target, suffix);
    return summary;
  } catch (error) {
    input.destroy();
    await rm(incoming, { recursive: true, force: true });
    if (error instanceof DataArchiveError) throw error;
    throw new DataArchiveError(
      "io-failed",
      `cannot install the data into ${target}: ${(error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
}

async function extractInto(
  reader: ArchiveReader,
  incoming: string,
  limits: DataArchiveLimits,
): Promise<ArchiveSummary> {
  const preamble = await reader.exactly(archiveMagic.length + 4, "the archive header");
  if (!sameDigest(preamble.subarray(0, archiveMagic.length), archiveMagic)) {
    throw new DataArchiveError("bad-format", "this is not an edgeward data archive");
  }
  const version = preamble.readUInt32LE(archiveMagic.length);
  if (version !== archiveVersion) {
    throw new DataArchiveError(
      "unsupported-version",
      `archive version ${version} is not supported (this agent reads version ${archiveVersion})`,
    );
  }
  const types = new Map<string, ArchiveEntryType>();
  const directories: DirectoryToFinish[] = [];
  const summary: ArchiveSummary = { entries: 0, files: 0, contentBytes: 0, archiveBytes: 0 };
  let previousPath = "(none)";
  for (;;) {
    const what = `the record after entry ${JSON.stringify(previousPath)}`;
    const tag = (await reader.exactly(1, what)).readUInt8(0);
    if (tag === trailerTag) break;
    if (tag !== entryTag)
      throw new DataArchiveError("bad-format", `${what} has an unknown tag ${tag}`);
    if (summary.entries >= limits.entryCountMax) {
      throw new DataArchiveError(
        "limit-exceeded",
        `the archive has more than ${limits.entryCountMax} entries`,
      );
    }
    const headerBytes = (await reader.exactly(4, what)).readUInt32LE(0);
    if (headerBytes > entryHeaderBytesMax) {
      throw new DataArchiveError("limit-exceeded", `${what} has a header of ${headerBytes} bytes`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse((await reader.exactly(headerBytes, what)).toString("utf8"));
    } catch (error) {
      if (error instanceof DataArchiveError) throw error;
      throw new DataArchiveError("bad-format", `${what} has a header that is not JSON`);
    }
    const header = formatProblem(parsed, limits);
    const pathForError =
      typeof parsed === "object" && parsed !== null && "path" in parsed
        ? String(parsed.path)
        : undefined;
    if (typeof header === "string") {
      const code = /path|link target/.test(header) ? "unsafe-path" : "bad-format";
      throw new DataArchiveError(code, header, pathForError);
    }
    await extractEntry(reader, header, incoming, types, directories, summary, limits);
    previousPath = header.path;
  }

  const count = (await reader.exactly(4, "the trailer")).readUInt32LE(0);
  const expected = reader.digestSoFar();
  const actual = await reader.exactly(digestBytes, "the trailer", undefined, false);
  if (!sameDigest(expected, actual)) {
    throw new DataArchiveError("checksum-mismatch", "the archive's checksum does not match");
  }
  if (count !== summary.entries) {
    throw new DataArchiveError(
      "bad-format",
      `the trailer counts ${count} entries but the archive has ${summary.entries}`,
    );
  }
  if (!(await reader.atEnd())) {
    throw new DataArchiveError("bad-format", "there are bytes after the archive's trailer");
  }
  summary.archiveBytes = reader.bytesRead;

  // Deepest first: a directory's mtime changes while its children are created, and a
  // read-only directory must stay writable until its children are done.
  directories.sort((left, right) => right.depth - left.depth);
  for (const directory of directories) await fsyncPath(directory.absolute);
  for (const directory of directories) {
    await chmod(directory.absolute, directory.mode);
    const seconds = directory.mtimeMs / 1000;
    await utimes(directory.absolute, seconds, seconds);
  }
  return summary;
}

async function extractEntry(
  reader: ArchiveReader,
  header: ArchiveEntryHeader,
  incoming: string,
  types: Map<string, ArchiveEntryType>,
  directories: DirectoryToFinish[],
  summary: ArchiveSummary,
  limits: DataArchiveLimits,
): Promise<void> {
  const { path } = header;
  if (types.has(path)) throw new DataArchiveError("bad-format", "the entry appears twice", path);
  if (path === "." && summary.entries > 0) {
    throw new DataArchiveError("bad-format", "the root entry must come first", path);
  }
  const parent = posix.dirname(path);
  if (path !== "." && parent !== "." && types.get(parent) !== "dir") {
    // Also keeps writes from following a symlink that an earlier entry created.
    throw new DataArchiveError(
      "unsafe-path",
      "its parent is not a directory listed earlier in the archive",
      path,
    );
  }
  summary.entries += 1;
  types.set(path, header.type);
  const absolute = path === "." ? incoming : join(incoming, ...path.split("/"));
  const seconds = header.mtimeMs / 1000;
  switch (header.type) {
    case "dir":
      if (path !== ".") await mkdir(absolute, { mode: 0o700 });
      directories.push({
        absolute,
        depth: path === "." ? 0 : path.split("/").length,
        mode: header.mode,
        mtimeMs: header.mtimeMs,
      });
      return;
    case "symlink":
      await symlink(header.linkTarget ?? "", absolute);
      await lutimes(absolute, seconds, seconds);
      return;
    case "file": {
      summary.files += 1;
      summary.contentBytes += header.size;
      if (summary.contentBytes > limits.totalBytesMax) {
        throw new DataArchiveError(
          "limit-exceeded",
          `the archive holds more than ${limits.totalBytesMax} bytes of files`,
          path,
        );
      }
      const fileHash = createHash("sha256");
      const handle = await open(absolute, "wx", 0o600);
      try {
        for await (const piece of reader.pieces(header.size, "a file's content", path)) {
          fileHash.update(piece);
          let written = 0;
          while (written < piece.length) {
            const { bytesWritten } = await handle.write(piece, written, piece.length - written);
            written += bytesWritten;
          }
        }
        const expected = await reader.exactly(digestBytes, "a file's checksum", path);
        if (!sameDigest(fileHash.digest(), expected)) {
          throw new DataArchiveError(
            "checksum-mismatch",
            "the file's checksum does not match",
            path,
          );
        }
        await handle.chmod(header.mode);
        await handle.utimes(seconds, seconds);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return;
    }
  }
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function swapIn(incoming: string, target: string, suffix: string): Promise<void> {
  const aside = `${target}.old-${suffix}`;
  let movedAside = true;
  try {
    await rename(target, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    movedAside = false;
  }
  try {
    await rename(incoming, target);
  } catch (error) {
    if (movedAside) await rename(aside, target);
    throw error;
  }
  await fsyncPath(dirname(target));
  if (movedAside) await removeTree(aside);
}

/** Removes a tree even where the copied modes left a directory read-only. */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

async function makeWritable(path: string): Promise<void> {
  const stats = await lstat(path);
  if (!stats.isDirectory()) return;
  await chmod(path, 0o700);
  for (const name of await readdir(path)) await makeWritable(join(path, name));
}
