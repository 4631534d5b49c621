// `edgeward repo …`: the backup engine on its own, restic-style, against a repository in a
// local directory or an S3 bucket (`--repo s3://host:port/bucket/prefix`). The fleet's
// scheduled, multi-tier backups use the same engine.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { Option } from "commander";
import type { Command } from "commander";
import { BackupError } from "../../core/backup/errors.ts";
import { parseDataSubset } from "../../core/backup/check-subset.ts";
import type { DataSubset } from "../../core/backup/check-subset.ts";
import { isEmptyPolicy } from "../../core/backup/retention.ts";
import type { RetentionPolicy } from "../../core/backup/retention.ts";
import { selectSnapshot } from "../../core/backup/snapshot-selection.ts";
import type { SnapshotSelector } from "../../core/backup/snapshot-selection.ts";
import { backup } from "../../runtime/backup/backup.ts";
import { check } from "../../runtime/backup/check.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { blobStoreAt } from "../../runtime/backup/blob-store-location.ts";
import { changePassword, rotateMasterKey } from "../../runtime/backup/keys.ts";
import { createProgressBar, formatBytes } from "../../runtime/backup/progress.ts";
import { forget, prune } from "../../runtime/backup/prune.ts";
import { initRepository, openRepository } from "../../runtime/backup/repository.ts";
import type { Repository } from "../../runtime/backup/repository.ts";
import { restore } from "../../runtime/backup/restore.ts";

interface RepositoryFlags {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
}

/** Passwords longer than this are surely the wrong file. */
const passwordBytesMax = 4096;
/** Threads used by default: every core, as restic does, up to where packing becomes the bottleneck. */
const defaultWorkerCount = Math.min(availableParallelism(), 4);

function readPassword(file: string | undefined, purpose: string): string {
  if (file === undefined)
    throw new BackupError(
      "INVALID_ARGUMENT",
      `${purpose}: give --password-file FILE or set EDGEWARD_PASSWORD_FILE`,
    );
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new BackupError(
      "INVALID_ARGUMENT",
      `cannot read password file ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (text.length > passwordBytesMax)
    throw new BackupError(
      "INVALID_ARGUMENT",
      `password file ${file} is larger than ${passwordBytesMax} bytes`,
    );
  const password = text.replace(/\r?\n$/, "");
  if (password.length === 0)
    throw new BackupError("INVALID_ARGUMENT", `password file ${file} is empty`);
  return password;
}

function storeOf(flags: RepositoryFlags): BlobStore {
  if (flags.repo === undefined)
    throw new BackupError(
      "INVALID_ARGUMENT",
      "give --repo PATH or --repo s3://host:port/bucket/prefix, or set EDGEWARD_REPOSITORY",
    );
  return blobStoreAt(flags.repo, process.env);
}

function open(flags: RepositoryFlags): Promise<Repository> {
  return openRepository(storeOf(flags), readPassword(flags.passwordFile, "opening the repository"));
}

function print(flags: RepositoryFlags, value: unknown, text: () => string): void {
  process.stdout.write(flags.json === true ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Runs a command body; operating errors print one clear line and set exit code 1. */
function run<Arguments extends unknown[]>(
  body: (...commandArguments: Arguments) => Promise<void>,
): (...commandArguments: Arguments) => Promise<void> {
  return async (...commandArguments) => {
    try {
      await body(...commandArguments);
    } catch (error) {
      if (!(error instanceof BackupError)) throw error;
      process.stderr.write(`edgeward repo: ${error.message}\n`);
      process.exitCode = 1;
    }
  };
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new BackupError("INVALID_ARGUMENT", `expected a non-negative integer, got "${value}"`);
  return parsed;
}

/** More threads than this would only cost memory (each worker ~20-30 MiB) on any edge node. */
const workerCountMax = 64;

function workerCount(value: string): number {
  const parsed = positiveInteger(value);
  if (parsed > workerCountMax)
    throw new BackupError(
      "INVALID_ARGUMENT",
      `--workers takes at most ${workerCountMax} threads, got ${parsed}`,
    );
  return parsed;
}

const durationUnitsMs: Record<string, number> = {
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

function parseDuration(text: string): number {
  const match = /^(\d+)([mhdwy])$/.exec(text);
  if (!match)
    throw new BackupError(
      "INVALID_ARGUMENT",
      `expected a duration like 90m, 36h, 7d, 4w or 1y, got "${text}"`,
    );
  return Number(match[1]) * (durationUnitsMs[match[2] as string] as number);
}

function parseTime(text: string): number {
  const timeMs = Date.parse(text);
  if (Number.isNaN(timeMs))
    throw new BackupError(
      "INVALID_ARGUMENT",
      `expected an ISO 8601 time such as 2026-05-01T12:00:00Z, got "${text}"`,
    );
  return timeMs;
}

/** The options every repository command takes, declared once. */
function repositoryCommand(parent: Command, name: string, description: string): Command {
  return parent
    .command(name)
    .description(description)
    .addOption(
      new Option(
        "-r, --repo <path>",
        "repository directory, or s3://host:port/bucket/prefix (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
      ).env("EDGEWARD_REPOSITORY"),
    )
    .addOption(
      new Option("-p, --password-file <file>", "file holding the repository password").env(
        "EDGEWARD_PASSWORD_FILE",
      ),
    );
}

const examples = `
Examples:
  printf '%s' 'long secret' > ~/.edgeward-pw
  export EDGEWARD_REPOSITORY=/mnt/backup/repo EDGEWARD_PASSWORD_FILE=~/.edgeward-pw
  edgeward repo init
  edgeward repo backup /srv/data /etc/edgeward --tag nightly
  edgeward repo snapshots --json
  edgeward repo restore latest --target /srv/restore --include /data/db
  edgeward repo restore --at 2026-05-01T12:00:00Z --target /srv/restore
  edgeward repo check --read-data-subset 1/10
  edgeward repo forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --prune
  edgeward repo key add --new-password-file ~/.colleague-pw

Exit codes: 0 success, 1 an error (wrong password, damaged repository, bad arguments).
The on-disk format is described in docs/formats/backup-repository.md.`;

/** Registers `repo init|backup|snapshots|restore|check|forget|prune|key`. */
export function registerRepoCommands(program: Command): void {
  const repo = program
    .command("repo")
    .summary("encrypted, deduplicated backups into a repository (restic-style)")
    .description(
      "Encrypted, deduplicated, compressed backups into a repository directory (restic-style).",
    )
    .addHelpText("after", examples);

  repositoryCommand(
    repo,
    "init",
    "Create a new repository protected by the password in --password-file.",
  )
    .option("--json", "print the result as JSON")
    .action(
      run(async (flags: RepositoryFlags) => {
        const repository = await initRepository(
          storeOf(flags),
          readPassword(flags.passwordFile, "creating the repository"),
        );
        print(
          flags,
          { id: repository.config.id, location: repository.store.location },
          () =>
            `created repository ${repository.config.id.slice(0, 8)} at ${repository.store.location}\nKeep the password safe: without it the data cannot be recovered.`,
        );
      }),
    );

  repositoryCommand(repo, "backup", "Back up files and directories into a new snapshot.")
    .argument("<paths...>", "files or directories to back up")
    .option("--tag <tag...>", "tags to attach to the snapshot")
    .option("--host <name>", "host name to record (default: this machine's)")
    .option(
      "--parent <snapshot>",
      "snapshot to compare against for unchanged files (default: the newest of this host and paths)",
    )
    .option("--force", "read every file again, ignoring the parent snapshot")
    .option(
      "--workers <count>",
      "threads that chunk, hash, compress and encrypt, this one included (0 or 1: this one alone)",
      workerCount,
      defaultWorkerCount,
    )
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nUnchanged files (same size, mtime, ctime and inode as in the parent snapshot) are not read again.\nAn interrupted backup leaves the repository valid; rerunning it reuses what was already stored.",
    )
    .action(
      run(
        async (
          paths: string[],
          flags: RepositoryFlags & {
            tag?: string[];
            host?: string;
            parent?: string;
            force?: boolean;
            workers: number;
          },
        ) => {
          const repository = await open(flags);
          const bar = createProgressBar("backup");
          const result = await backup(repository, {
            paths,
            tags: flags.tag ?? [],
            ...(flags.host !== undefined ? { hostname: flags.host } : {}),
            ...(flags.force === true
              ? { parentSnapshotId: null }
              : flags.parent !== undefined
                ? { parentSnapshotId: await resolveSnapshotId(repository, flags.parent) }
                : {}),
            workerCount: flags.workers,
            onProgress: (progress) =>
              bar.update(progress.bytesDone, undefined, progress.currentPath),
            onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
          });
          bar.finish();
          const summary = result.snapshot.summary;
          print(
            flags,
            { id: result.snapshotId, ...result.snapshot, packsRecovered: result.packsRecovered },
            () =>
              [
                `snapshot ${result.snapshotId.slice(0, 8)} saved`,
                `  files: ${summary.filesNew} new, ${summary.filesChanged} changed, ${summary.filesUnmodified} unmodified; ${summary.directories} directories`,
                `  read ${formatBytes(summary.bytesProcessed)}, added ${summary.blobsAdded} blobs, ${formatBytes(summary.bytesAddedStored)} stored, in ${(summary.durationMs / 1000).toFixed(1)} s`,
                ...(result.packsRecovered > 0
                  ? [`  indexed ${result.packsRecovered} pack(s) left by an interrupted backup`]
                  : []),
              ].join("\n"),
          );
        },
      ),
    );

  repositoryCommand(repo, "snapshots", "List the snapshots, oldest first.")
    .option("--json", "print the snapshots as JSON")
    .action(
      run(async (flags: RepositoryFlags) => {
        const snapshots = await (await open(flags)).listSnapshots();
        print(
          flags,
          snapshots.map(({ id, snapshot }) => ({ id, ...snapshot })),
          () =>
            snapshots.length === 0
              ? "no snapshots"
              : [
                  "ID        Time                      Host            Size        Paths",
                  ...snapshots.map(
                    ({ id, snapshot }) =>
                      `${id.slice(0, 8)}  ${snapshot.time.padEnd(24)}  ${snapshot.hostname.slice(0, 14).padEnd(14)}  ${formatBytes(snapshot.summary.bytesAddedStored).padStart(10)}  ${snapshot.paths.join(", ")}${snapshot.tags.length > 0 ? `  [${snapshot.tags.join(", ")}]` : ""}`,
                  ),
                  `${snapshots.length} snapshot(s); Size is what each added to the repository`,
                ].join("\n"),
        );
      }),
    );

  repositoryCommand(
    repo,
    "restore",
    "Restore a snapshot, or the paths selected with --include, into a directory.",
  )
    .argument("[snapshot]", 'snapshot id (or unique prefix), or "latest"; omit with --at')
    .requiredOption("-t, --target <directory>", "directory to restore into (created if missing)")
    .option(
      "-i, --include <path...>",
      'restore only these snapshot paths, e.g. /data/db or "/data/*.log"',
    )
    .option("--at <time>", "restore the newest snapshot taken at or before this ISO 8601 time")
    .option(
      "--workers <count>",
      "threads that read, verify and write, this one included (0 or 1: this one alone; more only for a repository in a local directory)",
      workerCount,
      defaultWorkerCount,
    )
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nEvery blob is authenticated and its id recomputed before it is written; a file appears\nunder its name only when all of it has been verified. Paths inside a snapshot start with\nthe base name of each backed-up path: backing up /srv/data gives /data/...",
    )
    .action(
      run(
        async (
          snapshotArgument: string | undefined,
          flags: RepositoryFlags & {
            target: string;
            include?: string[];
            at?: string;
            workers: number;
          },
        ) => {
          const repository = await open(flags);
          if ((snapshotArgument === undefined) === (flags.at === undefined))
            throw new BackupError(
              "INVALID_ARGUMENT",
              'give either a snapshot (id prefix or "latest") or --at TIME',
            );
          const snapshotId = await resolveSnapshotId(repository, snapshotArgument ?? "", flags.at);
          const bar = createProgressBar("restore");
          const result = await restore(repository, {
            snapshotId,
            targetDirectory: resolve(flags.target),
            includes: flags.include ?? [],
            workerCount: flags.workers,
            onProgress: (progress) => bar.update(progress.bytesDone, progress.bytesTotal),
          });
          bar.finish();
          print(
            flags,
            { snapshotId, target: resolve(flags.target), ...result },
            () =>
              `restored snapshot ${snapshotId.slice(0, 8)} to ${resolve(flags.target)}: ${result.filesRestored} files (${formatBytes(result.bytesRestored)}), ${result.directoriesRestored} directories, ${result.symlinksRestored} symlinks`,
          );
        },
      ),
    );

  repositoryCommand(repo, "check", "Verify the repository's structure and, optionally, its data.")
    .option("--read-data", "also read and verify every pack (slow: reads the whole repository)")
    .option(
      "--read-data-subset <subset>",
      'read only part of the data: "n/m" (the n-th of m slices) or "p%" (a random sample)',
    )
    .option("--json", "print the report as JSON")
    .addHelpText(
      "after",
      "\nExits with code 1 if any problem is found; each problem names the damaged object.",
    )
    .action(
      run(async (flags: RepositoryFlags & { readData?: boolean; readDataSubset?: string }) => {
        const repository = await open(flags);
        const readData: DataSubset | undefined =
          flags.readDataSubset !== undefined
            ? parseDataSubset(flags.readDataSubset)
            : flags.readData === true
              ? { kind: "all" }
              : undefined;
        const bar = createProgressBar("check", process.stderr, (value) => value.toFixed(0));
        const report = await check(repository, {
          ...(readData !== undefined ? { readData } : {}),
          onProgress: (progress) => bar.update(progress.done, progress.total, progress.stage),
        });
        bar.finish();
        if (report.errors.length > 0) process.exitCode = 1;
        print(flags, report, () =>
          [
            `checked ${report.indexFiles} index file(s), ${report.packs} pack(s), ${report.snapshots} snapshot(s), ${report.trees} tree(s)${readData !== undefined ? `; read ${report.packsRead} pack(s), ${report.blobsRead} blob(s)` : ""}`,
            ...report.warnings.map((warning) => `warning: ${warning.object}: ${warning.message}`),
            ...report.errors.map((error) => `error: ${error.object}: ${error.message}`),
            report.errors.length === 0
              ? "no errors were found"
              : `${report.errors.length} error(s) found`,
          ].join("\n"),
        );
      }),
    );

  repositoryCommand(
    repo,
    "forget",
    "Remove snapshots by a retention policy (add --prune to free their data).",
  )
    .option("--keep-last <n>", "keep the n newest snapshots", positiveInteger)
    .option(
      "--keep-hourly <n>",
      "keep the newest snapshot of each of the last n hours",
      positiveInteger,
    )
    .option(
      "--keep-daily <n>",
      "keep the newest snapshot of each of the last n days",
      positiveInteger,
    )
    .option(
      "--keep-weekly <n>",
      "keep the newest snapshot of each of the last n ISO weeks",
      positiveInteger,
    )
    .option(
      "--keep-monthly <n>",
      "keep the newest snapshot of each of the last n months",
      positiveInteger,
    )
    .option(
      "--keep-yearly <n>",
      "keep the newest snapshot of each of the last n years",
      positiveInteger,
    )
    .option(
      "--keep-within <duration>",
      "keep all snapshots within this duration of the newest (e.g. 7d, 36h)",
    )
    .option("--prune", "prune unreferenced data afterwards")
    .option("--dry-run", "show what would be removed, remove nothing")
    .option("--json", "print the decisions as JSON")
    .addHelpText(
      "after",
      "\nPolicies apply per host and set of paths; periods are calendar periods in UTC.",
    )
    .action(
      run(
        async (
          flags: RepositoryFlags &
            Omit<RetentionPolicy, "keepWithinMs"> & {
              keepWithin?: string;
              prune?: boolean;
              dryRun?: boolean;
            },
        ) => {
          const policy: RetentionPolicy = {
            ...(flags.keepLast !== undefined ? { keepLast: flags.keepLast } : {}),
            ...(flags.keepHourly !== undefined ? { keepHourly: flags.keepHourly } : {}),
            ...(flags.keepDaily !== undefined ? { keepDaily: flags.keepDaily } : {}),
            ...(flags.keepWeekly !== undefined ? { keepWeekly: flags.keepWeekly } : {}),
            ...(flags.keepMonthly !== undefined ? { keepMonthly: flags.keepMonthly } : {}),
            ...(flags.keepYearly !== undefined ? { keepYearly: flags.keepYearly } : {}),
            ...(flags.keepWithin !== undefined
              ? { keepWithinMs: parseDuration(flags.keepWithin) }
              : {}),
          };
          if (isEmptyPolicy(policy))
            throw new BackupError(
              "INVALID_ARGUMENT",
              "no --keep-* option given: refusing to forget every snapshot",
            );
          const result = await forget(await open(flags), policy, { dryRun: flags.dryRun === true });
          const pruned =
            flags.prune === true && flags.dryRun !== true
              ? await prune(await open(flags))
              : undefined;
          print(flags, { ...result, prune: pruned }, () =>
            [
              ...result.decisions.map(
                (decision) =>
                  `${decision.keep ? "keep  " : "remove"}  ${decision.id.slice(0, 8)}  ${decision.time}  ${decision.reasons.join(", ")}`,
              ),
              `${flags.dryRun === true ? "would remove" : "removed"} ${result.removed.length} snapshot(s)`,
              ...(pruned !== undefined ? [pruneText(pruned)] : []),
            ].join("\n"),
          );
        },
      ),
    );

  repositoryCommand(
    repo,
    "prune",
    "Delete data no snapshot references and repack mostly unused packs.",
  )
    .option("--dry-run", "show what would be done, change nothing")
    .option("--json", "print the plan as JSON")
    .action(
      run(async (flags: RepositoryFlags & { dryRun?: boolean }) => {
        const result = await prune(await open(flags), {
          unusedFractionMax: 0.05,
          packSizeBytesSmall: 0,
          dryRun: flags.dryRun === true,
        });
        print(flags, result, () => pruneText(result));
      }),
    );

  const key = repo
    .command("key")
    .description("Manage the repository's passwords and encryption keys.");
  repositoryCommand(key, "list", "List the key files (one per password).")
    .option("--json", "print the keys as JSON")
    .action(
      run(async (flags: RepositoryFlags) => {
        const keys = await (await open(flags)).listKeys();
        const rows = keys.map(({ id, current, keyFile }) => ({
          id,
          current,
          createdAt: keyFile.createdAt,
          hostname: keyFile.hostname,
          username: keyFile.username,
        }));
        print(flags, rows, () =>
          rows
            .map(
              (row) =>
                `${row.current ? "*" : " "} ${row.id.slice(0, 8)}  ${row.createdAt}  ${row.username}@${row.hostname}`,
            )
            .join("\n"),
        );
      }),
    );
  repositoryCommand(key, "add", "Add another password.")
    .requiredOption("--new-password-file <file>", "file holding the new password")
    .action(
      run(async (flags: RepositoryFlags & { newPasswordFile: string }) => {
        const id = await (
          await open(flags)
        ).addKey(readPassword(flags.newPasswordFile, "the new password"));
        process.stdout.write(`added key ${id.slice(0, 8)}\n`);
      }),
    );
  repositoryCommand(key, "remove", "Remove a password by key id (not the one in use).")
    .argument("<key-id>", "key id or unique prefix")
    .action(
      run(async (keyId: string, flags: RepositoryFlags) => {
        const id = await (await open(flags)).removeKey(keyId);
        process.stdout.write(`removed key ${id.slice(0, 8)}\n`);
      }),
    );
  repositoryCommand(key, "passwd", "Change the password given in --password-file.")
    .requiredOption("--new-password-file <file>", "file holding the new password")
    .action(
      run(async (flags: RepositoryFlags & { newPasswordFile: string }) => {
        const id = await changePassword(
          await open(flags),
          readPassword(flags.newPasswordFile, "the new password"),
        );
        process.stdout.write(`password changed (key ${id.slice(0, 8)})\n`);
      }),
    );
  repositoryCommand(
    key,
    "rotate-master",
    "Start a new encryption key generation; old data stays readable.",
  )
    .option(
      "--also-password-file <file...>",
      "other passwords to keep (every other key file is removed)",
    )
    .addHelpText(
      "after",
      "\nNew data is encrypted with the new key. Key files can only be rewritten with their password,\nso passwords not given here lose access: that is the point of rotating after a leak.",
    )
    .action(
      run(async (flags: RepositoryFlags & { alsoPasswordFile?: string[] }) => {
        const repository = await open(flags);
        const passwords = [
          readPassword(flags.passwordFile, "the current password"),
          ...(flags.alsoPasswordFile ?? []).map((file) =>
            readPassword(file, "--also-password-file"),
          ),
        ];
        const result = await rotateMasterKey(repository, passwords);
        process.stdout.write(
          `encryption key generation ${result.generation} in use; ${result.keyIdsWritten.length} password(s) kept, ${result.keyIdsRemoved.length} old key file(s) removed\n`,
        );
      }),
    );
}

async function resolveSnapshotId(
  repository: Repository,
  argument: string,
  atText?: string,
): Promise<string> {
  const snapshots = (await repository.listSnapshots()).map(({ id, snapshot }) => ({
    id,
    timeMs: snapshot.timeMs,
    hostname: snapshot.hostname,
    paths: snapshot.paths,
  }));
  const selector: SnapshotSelector =
    atText !== undefined
      ? { kind: "at", timeMs: parseTime(atText), timeText: atText }
      : argument === "latest"
        ? { kind: "latest" }
        : { kind: "id", prefix: argument };
  return selectSnapshot(snapshots, selector).id;
}

function pruneText(result: Awaited<ReturnType<typeof prune>>): string {
  const { plan } = result;
  return `prune: ${plan.keep.length} pack(s) kept, ${plan.repack.length} repacked into ${result.packsWritten}, ${plan.remove.length} removed; ${formatBytes(plan.bytesFreed)} freed`;
}
