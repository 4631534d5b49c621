// Prepares what a backup reads: a staging tree with one directory per data type. Plain files
// are hard links to the live ones (no copy; same inode, so the next backup still recognises
// unchanged files), SQLite databases are copied through SQLite's online backup API so the copy
// is a consistent state even while the service writes, and their -wal/-shm/-journal files are
// left out. The tree is kept between runs and brought up to date, not rebuilt.

import { constants } from "node:fs";
import {
  copyFile,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  utimes,
} from "node:fs/promises";
import { join } from "node:path";

/** One data type and the file or directory it is read from. */
export interface StagedSource {
  dataType: string;
  path: string;
}

export interface StagingResult {
  /** Staged directory per data type, in the order given (missing sources left out). */
  paths: string[];
  dataTypes: string[];
  sqliteDatabases: number;
  warnings: string[];
}

/** Entries one staged directory may hold; a bound on a runaway source. */
export const stagedEntriesPerDirectoryMax = 1_000_000;

/** Pages copied per online-backup step before the agent's event loop gets a turn. */
export const sqlitePagesPerStep = 1_024;

const sqliteHeader = Buffer.from("SQLite format 3\u0000", "latin1");
const sqliteCompanionSuffixes = ["-wal", "-shm", "-journal"] as const;

function errorCodeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path, { bigint: true });
  } catch (error) {
    if (errorCodeOf(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** True when the file starts with the SQLite header. */
export async function isSqliteDatabase(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY);
    const header = Buffer.alloc(sqliteHeader.length);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    return bytesRead === header.length && header.equals(sqliteHeader);
  } catch {
    return false;
  } finally {
    await handle?.close();
  }
}

/**
 * Copies a live SQLite database with the online backup API (better-sqlite3's `db.backup`):
 * the copy is one consistent state of the database, whatever the writers do meanwhile.
 * better-sqlite3 is loaded only here, so an agent without databases never loads it.
 */
export async function copySqliteDatabase(sourcePath: string, targetPath: string): Promise<void> {
  const { default: Database } = await import("better-sqlite3");
  const partialPath = `${targetPath}.partial`;
  await rm(partialPath, { force: true });
  const database = new Database(sourcePath, { readonly: true, fileMustExist: true });
  try {
    // Steps of a few pages keep the event loop free, but a write from another connection
    // restarts the copy; under constant writes it would never end. After twice the steps a
    // quiet copy needs, the rest goes in one step, which holds a read lock for its duration.
    let steps = 0;
    await database.backup(partialPath, {
      progress: ({ totalPages }) => {
        steps++;
        return steps > 2 * Math.ceil(totalPages / sqlitePagesPerStep) + 2
          ? 0x7fffffff
          : sqlitePagesPerStep;
      },
    });
  } finally {
    database.close();
  }
  await rename(partialPath, targetPath);
}

async function linkOrCopy(sourcePath: string, targetPath: string, mtimeMs: number): Promise<void> {
  try {
    await link(sourcePath, targetPath);
  } catch (error) {
    // Another file system, or links not allowed: a copy with the same mtime.
    if (errorCodeOf(error) !== "EXDEV" && errorCodeOf(error) !== "EPERM") throw error;
    await copyFile(sourcePath, targetPath);
    await utimes(targetPath, new Date(mtimeMs), new Date(mtimeMs));
  }
}

interface Counters {
  sqliteDatabases: number;
  warnings: string[];
}

async function syncEntry(
  sourcePath: string,
  targetPath: string,
  counters: Counters,
): Promise<void> {
  const source = await lstatOrUndefined(sourcePath);
  const target = await lstatOrUndefined(targetPath);
  if (source === undefined) {
    if (target !== undefined) await rm(targetPath, { recursive: true, force: true });
    return;
  }
  if (source.isDirectory()) {
    if (target !== undefined && !target.isDirectory()) await rm(targetPath, { force: true });
    await mkdir(targetPath, { recursive: true });
    const names = await readdir(sourcePath);
    if (names.length > stagedEntriesPerDirectoryMax)
      throw new Error(
        `${sourcePath} has ${names.length} entries, more than ${stagedEntriesPerDirectoryMax}`,
      );
    const present = new Set(names);
    const wanted = new Set<string>();
    for (const name of names) {
      const companion = sqliteCompanionSuffixes.find((suffix) => name.endsWith(suffix));
      // The online backup has the journal's content already; a raw copy of it would be torn.
      if (companion !== undefined && present.has(name.slice(0, -companion.length))) continue;
      wanted.add(name);
      await syncEntry(join(sourcePath, name), join(targetPath, name), counters);
    }
    for (const name of await readdir(targetPath))
      if (!wanted.has(name)) await rm(join(targetPath, name), { recursive: true, force: true });
    await utimes(targetPath, source.atime, source.mtime);
    return;
  }
  if (source.isSymbolicLink()) {
    const destination = await readlink(sourcePath);
    if (target?.isSymbolicLink() === true && (await readlink(targetPath)) === destination) return;
    if (target !== undefined) await rm(targetPath, { recursive: true, force: true });
    await symlink(destination, targetPath);
    return;
  }
  if (!source.isFile()) {
    counters.warnings.push(`${sourcePath}: not a regular file, directory or symlink; skipped`);
    return;
  }
  if (await isSqliteDatabase(sourcePath)) {
    if (target !== undefined) await rm(targetPath, { recursive: true, force: true });
    await copySqliteDatabase(sourcePath, targetPath);
    counters.sqliteDatabases++;
    return;
  }
  if (target?.isFile() === true && target.ino === source.ino && target.dev === source.dev) return;
  if (target !== undefined) await rm(targetPath, { recursive: true, force: true });
  await linkOrCopy(sourcePath, targetPath, Number(source.mtimeMs));
}

/** Brings `stagingDir` up to date with `sources`; data types no longer listed are removed. */
export async function stageSources(
  sources: readonly StagedSource[],
  stagingDir: string,
): Promise<StagingResult> {
  await mkdir(stagingDir, { recursive: true });
  const counters: Counters = { sqliteDatabases: 0, warnings: [] };
  const paths: string[] = [];
  const dataTypes: string[] = [];
  for (const source of sources) {
    const targetPath = join(stagingDir, source.dataType);
    const stat = await lstatOrUndefined(source.path);
    if (stat === undefined) {
      counters.warnings.push(`${source.dataType}: ${source.path} does not exist; skipped`);
      await rm(targetPath, { recursive: true, force: true });
      continue;
    }
    if (stat.isDirectory()) await syncEntry(source.path, targetPath, counters);
    else {
      // A single file (a database, say) is staged inside its data type's directory.
      await mkdir(targetPath, { recursive: true });
      const name = source.path.split("/").pop() ?? "file";
      for (const entry of await readdir(targetPath))
        if (entry !== name) await rm(join(targetPath, entry), { recursive: true, force: true });
      await syncEntry(source.path, join(targetPath, name), counters);
    }
    paths.push(targetPath);
    dataTypes.push(source.dataType);
  }
  const wanted = new Set(dataTypes);
  for (const name of await readdir(stagingDir))
    if (!wanted.has(name)) await rm(join(stagingDir, name), { recursive: true, force: true });
  return { paths, dataTypes, ...counters };
}
