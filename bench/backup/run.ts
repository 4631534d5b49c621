// Backup benchmark: edgeward against restic and borg (from Debian) on one generated dataset,
// side by side in one run. Writes bench/results/backup.json and prints a table.
//
//   npx tsx bench/backup/run.ts [--seed N] [--rounds N] [--only edgeward,restic] [--keep]
//
// The initial backup and the full restore, the phases where the machine's noise is as large
// as the difference between the tools, run `--rounds` times (default 3) with the tools in a
// rotating order; the table gives the median, and the JSON every sample. Before each measured
// command the page cache is flushed (`sync`), so no tool pays for another's writeback, and no
// restored tree is deleted until the end: on ext4 without a journal (this machine's disk) a
// file created soon after many were deleted costs up to 10x more to create (the allocator
// skips recently freed inodes), which used to fall on whichever tool restored after another's
// restore had been removed. Repositories are kept until the end too, so that no deletion's
// work (the disk is also mounted with `discard`) falls inside a measurement, and the dataset
// is read into the page cache before each backup (borg drops what it reads from the cache).
//
// Needs `restic`, `borg` and `/usr/bin/time` on the PATH (apt-get install restic borgbackup
// time). The dataset (≥ 1 GiB: logs, JSON, incompressible binaries, a SQLite database and
// 10,000 small files) is deterministic from the seed and cached between runs.
import { createCipheriv, createHash } from "node:crypto";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, readFile, readdir, rm, stat, writeFile, open } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const argumentsGiven = process.argv.slice(2);
const seed = Number(argumentsGiven[argumentsGiven.indexOf("--seed") + 1] ?? 1) || 1;
const keepWorkDirectory = argumentsGiven.includes("--keep");
const rounds = Math.max(
  1,
  Number(argumentsGiven[argumentsGiven.indexOf("--rounds") + 1] ?? 3) || 3,
);
const workDirectory = join(tmpdir(), "edgeward-bench-backup");
const datasetDirectory = join(workDirectory, `dataset-${seed}`);
const password = "benchmark password, not secret";

const mebibyte = 1024 * 1024;
/** Dataset composition; sizes sum to a little over 1 GiB. */
const layout = {
  logFiles: 30,
  logFileBytes: 10 * mebibyte,
  jsonFiles: 15,
  jsonFileBytes: 10 * mebibyte,
  binaryFiles: 10,
  binaryFileBytes: 50 * mebibyte,
  sqliteRows: 700_000,
  smallFiles: 10_000,
  smallFileDirectories: 100,
  smallFileBytesMax: 8 * 1024,
  changedFraction: 0.05,
};

/** A deterministic stream of pseudo-random bytes: AES-256-CTR keystream keyed by seed and name. */
function keystream(name: string, length: number): Buffer {
  const key = createHash("sha256").update(`${seed}:${name}`).digest();
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** Small deterministic PRNG for choices (mulberry32). */
function choices(name: string): () => number {
  let state = createHash("sha256").update(`${seed}:${name}`).digest().readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const services = ["line-controller", "plc-gateway", "vision-inspector", "historian", "mqtt-bridge"];

function logText(name: string, bytes: number): Buffer {
  const next = choices(name);
  const lines: string[] = [];
  let length = 0;
  let timeMs = Date.UTC(2026, 0, 1) + Math.floor(next() * 1e9);
  while (length < bytes) {
    timeMs += Math.floor(next() * 2000);
    const line = `${new Date(timeMs).toISOString()} ${levels[Math.floor(next() * levels.length)]} ${services[Math.floor(next() * services.length)]}[${1000 + Math.floor(next() * 50)}] request_id=${Math.floor(next() * 1e9).toString(16)} station=${Math.floor(next() * 40)} temperature_c=${(20 + next() * 60).toFixed(2)} latency_ms=${(next() * 250).toFixed(1)} status=${next() < 0.97 ? "ok" : "retry"}\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join("")).subarray(0, bytes);
}

function jsonText(name: string, bytes: number): Buffer {
  const next = choices(name);
  const records: string[] = [];
  let length = 0;
  while (length < bytes) {
    const record = JSON.stringify({
      sensor: `sensor-${Math.floor(next() * 5000)}`,
      site: `site-${Math.floor(next() * 12)}`,
      readings: Array.from({ length: 8 }, () => Math.round(next() * 100_000) / 100),
      quality: next() < 0.9 ? "good" : "suspect",
      calibratedAt: new Date(Date.UTC(2026, 0, 1) + Math.floor(next() * 1e10)).toISOString(),
    });
    records.push(record);
    length += record.length + 2;
  }
  return Buffer.from(`[\n${records.join(",\n")}\n]\n`).subarray(0, bytes);
}

async function generateDataset(): Promise<void> {
  const marker = join(datasetDirectory, ".complete");
  if (existsSync(marker)) return;
  await rm(datasetDirectory, { recursive: true, force: true });
  process.stderr.write(`generating dataset (seed ${seed}) in ${datasetDirectory}…\n`);
  const data = join(datasetDirectory, "data");
  for (const directory of ["logs", "json", "binaries", "db", "small"])
    await mkdir(join(data, directory), { recursive: true });
  for (let index = 0; index < layout.logFiles; index++)
    await writeFile(
      join(data, "logs", `app-${index}.log`),
      logText(`log${index}`, layout.logFileBytes),
    );
  for (let index = 0; index < layout.jsonFiles; index++)
    await writeFile(
      join(data, "json", `readings-${index}.json`),
      jsonText(`json${index}`, layout.jsonFileBytes),
    );
  for (let index = 0; index < layout.binaryFiles; index++)
    await writeFile(
      join(data, "binaries", `firmware-${index}.bin`),
      keystream(`binary${index}`, layout.binaryFileBytes),
    );
  const database = new Database(join(data, "db", "historian.sqlite"));
  database.pragma("journal_mode = DELETE");
  database.exec(
    "CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor TEXT, at INTEGER, value REAL, payload BLOB)",
  );
  const insert = database.prepare(
    "INSERT INTO readings (sensor, at, value, payload) VALUES (?, ?, ?, ?)",
  );
  const next = choices("sqlite");
  const payloads = keystream("sqlite-payloads", layout.sqliteRows * 48);
  database.transaction(() => {
    for (let row = 0; row < layout.sqliteRows; row++) {
      insert.run(
        `sensor-${Math.floor(next() * 5000)}`,
        1_767_225_600_000 + row * 1000,
        next() * 100,
        payloads.subarray(row * 48, row * 48 + 48 - Math.floor(next() * 32)),
      );
    }
  })();
  database.close();
  const nextSmall = choices("small");
  for (let directory = 0; directory < layout.smallFileDirectories; directory++)
    await mkdir(join(data, "small", `d${directory}`));
  for (let index = 0; index < layout.smallFiles; index++) {
    const sizeBytes = 64 + Math.floor(nextSmall() * layout.smallFileBytesMax);
    const content =
      nextSmall() < 0.5
        ? logText(`small${index}`, sizeBytes)
        : keystream(`small${index}`, sizeBytes);
    await writeFile(
      join(data, "small", `d${index % layout.smallFileDirectories}`, `item-${index}.dat`),
      content,
    );
  }
  await writeFile(marker, "");
}

async function listFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && !entry.name.startsWith("."))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** Changes 5 % of the files, chosen and changed deterministically, in a working copy. */
async function changeFivePercent(data: string): Promise<number> {
  const files = await listFiles(data);
  const next = choices("changes");
  const chosen = files.filter(() => next() < layout.changedFraction);
  for (const [position, file] of chosen.entries()) {
    const sizeBytes = (await stat(file)).size;
    if (sizeBytes > mebibyte) {
      // Large files: rewrite 64 KiB in the middle and append a tail (a log grows, a db page changes).
      const handle = await open(file, "r+");
      await handle.write(
        keystream(`change${position}`, 64 * 1024),
        0,
        64 * 1024,
        Math.floor(sizeBytes / 2),
      );
      await handle.close();
      await writeFile(file, logText(`append${position}`, 256 * 1024), { flag: "a" });
    } else await writeFile(file, keystream(`rewrite${position}`, sizeBytes));
  }
  return chosen.length;
}

async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

interface Measurement {
  seconds: number;
  /** User plus system CPU time: the fairer figure when other work shares the machine. */
  cpuSeconds: number;
  peakRssBytes: number;
}

/** Resident bytes of every process below `rootPid` (not `rootPid` itself), summed. */
function descendantsRssBytes(rootPid: number): number {
  const childrenOf = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name (which may hold spaces): state, ppid, …
      const parentPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      childrenOf.set(parentPid, [...(childrenOf.get(parentPid) ?? []), Number(entry)]);
    } catch {
      // The process ended while the list was read.
    }
  }
  let totalBytes = 0;
  const queue = [...(childrenOf.get(rootPid) ?? [])];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    queue.push(...(childrenOf.get(pid) ?? []));
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      totalBytes += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      // Ended meanwhile.
    }
  }
  return totalBytes;
}

/** How often the process tree's resident memory is sampled. */
const treeSampleIntervalMs = 50;

/**
 * Runs a command under /usr/bin/time. Peak RSS is the larger of time's figure (the largest
 * single process, exact, all threads included) and the sum over the whole process tree,
 * sampled every 50 ms, so a tool that starts helper processes is measured whole. The same
 * for every tool.
 */
function measure(
  command: string,
  commandArguments: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Measurement> {
  return new Promise((resolvePromise, reject) => {
    const startMs = performance.now();
    const child = spawn("/usr/bin/time", ["-f", "%M %U %S", command, ...commandArguments], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    let treePeakBytes = 0;
    const sampler = setInterval(() => {
      if (child.pid !== undefined)
        treePeakBytes = Math.max(treePeakBytes, descendantsRssBytes(child.pid));
    }, treeSampleIntervalMs);
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (error) => {
      clearInterval(sampler);
      reject(error);
    });
    child.on("close", (exitCode) => {
      clearInterval(sampler);
      const seconds = (performance.now() - startMs) / 1000;
      if (exitCode !== 0)
        return reject(
          new Error(
            `${command} ${commandArguments.join(" ")} exited ${exitCode}:\n${stderr.slice(-2000)}`,
          ),
        );
      const [peakRssKibibytes = "0", userSeconds = "0", systemSeconds = "0"] = (
        stderr.trim().split("\n").at(-1) ?? ""
      ).split(" ");
      resolvePromise({
        seconds,
        cpuSeconds: Number(userSeconds) + Number(systemSeconds),
        peakRssBytes: Math.max(Number(peakRssKibibytes) * 1024, treePeakBytes),
      });
    });
  });
}

/** A phase measured over several rounds: median time and CPU, the largest peak RSS. */
interface RepeatedMeasurement extends Measurement {
  samples: Measurement[];
}

interface ToolResult {
  initialBackup: RepeatedMeasurement;
  incrementalBackup: RepeatedMeasurement;
  noChangeBackup: RepeatedMeasurement;
  restore: RepeatedMeasurement;
  repositoryBytes: number;
  peakRssBytes: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function summarise(samples: Measurement[]): RepeatedMeasurement {
  return {
    seconds: median(samples.map((sample) => sample.seconds)),
    cpuSeconds: median(samples.map((sample) => sample.cpuSeconds)),
    peakRssBytes: Math.max(...samples.map((sample) => sample.peakRssBytes)),
    samples,
  };
}

/** How long ext4 treats a freed inode as recently deleted (30 s, 35 s while its block is dirty). */
const recentlyDeletedMs = 36_000;

/**
 * Reads every file of `directory` so that it is in the page cache. borg reads its sources with
 * `posix_fadvise(DONTNEED)`, which drops them from the cache: the tool after it read the
 * dataset from disk (10.5–13.9 s against 8.4–8.6 s in one run) unless the cache is refilled.
 */
function warmPageCache(directory: string): void {
  execFileSync("sh", [
    "-c",
    'find "$1" -type f -print0 | xargs -0 cat > /dev/null',
    "sh",
    directory,
  ]);
}

/** Writes the page cache out, so the next measured command starts without others' writeback. */
function flushPageCache(): void {
  execFileSync("sync");
}

interface Tool {
  name: string;
  version: string;
  init(repository: string): Promise<void>;
  backup(repository: string, source: string, runNumber: number): Promise<Measurement>;
  restore(repository: string, target: string): Promise<Measurement>;
}

/**
 * Builds dist/ with the project's own build, and returns the installed command, the launcher
 * that `npx edgeward` runs (it sets the memory settings of the repository commands).
 */
function buildEdgeward(): string {
  execFileSync(process.execPath, [join(root, "scripts/build.mjs")], { stdio: "inherit" });
  return join(root, "bin/edgeward");
}

async function main(): Promise<void> {
  const loadAverageAtStart = loadavg();
  await mkdir(workDirectory, { recursive: true });
  await generateDataset();
  const run = join(workDirectory, "run");
  const leftOver = existsSync(run);
  await rm(run, { recursive: true, force: true });
  const deletedAtMs = performance.now();
  await mkdir(run, { recursive: true });
  const passwordFile = join(run, "password");
  await writeFile(passwordFile, password);
  const source = join(run, "source");
  process.stderr.write("copying the dataset to a working copy…\n");
  execFileSync("cp", ["-a", join(datasetDirectory, "data"), source]);
  const datasetBytes = await directoryBytes(source);
  const datasetFiles = (await listFiles(source)).length;
  flushPageCache();
  // The inodes a left-over run freed count as recently deleted for 30 s (see the top).
  const settleMs = leftOver ? recentlyDeletedMs - (performance.now() - deletedAtMs) : 0;
  if (settleMs > 0) {
    process.stderr.write(
      `waiting ${(settleMs / 1000).toFixed(0)} s for the last run's deletion to settle…\n`,
    );
    await new Promise((resolve) => setTimeout(resolve, settleMs));
  }

  const bundle = buildEdgeward();
  const edgewardEnvironment = { EDGEWARD_PASSWORD_FILE: passwordFile };
  const tools: Tool[] = [
    {
      name: "edgeward",
      version: (
        JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { version: string }
      ).version,
      init: async (repository) =>
        void (await measure(bundle, ["repo", "init", "--repo", repository], {
          env: edgewardEnvironment,
        })),
      backup: (repository, path) =>
        measure(bundle, ["repo", "backup", "--repo", repository, path], {
          env: edgewardEnvironment,
        }),
      restore: (repository, target) =>
        measure(bundle, ["repo", "restore", "latest", "--repo", repository, "--target", target], {
          env: edgewardEnvironment,
        }),
    },
    {
      name: "restic",
      version: execFileSync("restic", ["version"]).toString().trim(),
      init: async (repository) =>
        void (await measure("restic", ["init", "--repo", repository], {
          env: { RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: join(run, "restic-cache") },
        })),
      backup: (repository, path) =>
        measure("restic", ["backup", "--repo", repository, "--quiet", path], {
          env: { RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: join(run, "restic-cache") },
        }),
      restore: (repository, target) =>
        measure("restic", ["restore", "latest", "--repo", repository, "--target", target], {
          env: { RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: join(run, "restic-cache") },
        }),
    },
    {
      name: "borg",
      version: execFileSync("borg", ["--version"]).toString().trim(),
      init: async (repository) =>
        void (await measure("borg", ["init", "--encryption=repokey-blake2", repository], {
          env: { BORG_PASSPHRASE: password, BORG_BASE_DIR: join(run, "borg-base") },
        })),
      backup: (repository, path, runNumber) =>
        measure(
          "borg",
          ["create", "--compression", "zstd,3", `${repository}::run-${runNumber}`, path],
          { env: { BORG_PASSPHRASE: password, BORG_BASE_DIR: join(run, "borg-base") } },
        ),
      restore: async (repository, target) => {
        await mkdir(target, { recursive: true });
        const archives = execFileSync("borg", ["list", "--short", repository], {
          env: { ...process.env, BORG_PASSPHRASE: password, BORG_BASE_DIR: join(run, "borg-base") },
        })
          .toString()
          .trim()
          .split("\n");
        return measure("borg", ["extract", `${repository}::${archives.at(-1)}`], {
          cwd: target,
          env: { BORG_PASSPHRASE: password, BORG_BASE_DIR: join(run, "borg-base") },
        });
      },
    },
  ];
  const onlyTools = argumentsGiven.includes("--only")
    ? (argumentsGiven[argumentsGiven.indexOf("--only") + 1] ?? "").split(",")
    : undefined;
  const selected = tools.filter((tool) => onlyTools === undefined || onlyTools.includes(tool.name));

  type Phase = "initialBackup" | "incrementalBackup" | "noChangeBackup" | "restore";
  const samples = new Map<string, Record<Phase, Measurement[]>>(
    selected.map((tool) => [
      tool.name,
      { initialBackup: [], incrementalBackup: [], noChangeBackup: [], restore: [] },
    ]),
  );
  /** Runs `work` for every tool, `roundCount` times, the first tool of a round rotating. */
  const phase = async (
    label: string,
    key: Phase,
    roundCount: number,
    work: (tool: Tool, round: number) => Promise<Measurement>,
  ) => {
    for (let round = 0; round < roundCount; round++) {
      const order = selected.map((_, index) => selected[(index + round) % selected.length] as Tool);
      for (const tool of order) {
        process.stderr.write(
          `${label}${roundCount > 1 ? ` ${round + 1}/${roundCount}` : ""}: ${tool.name}… `,
        );
        const measurement = await work(tool, round);
        samples.get(tool.name)?.[key].push(measurement);
        process.stderr.write(
          `${measurement.seconds.toFixed(1)} s, ${measurement.cpuSeconds.toFixed(1)} s CPU, ${(measurement.peakRssBytes / mebibyte).toFixed(0)} MiB peak RSS\n`,
        );
      }
    }
  };
  // Each round of the initial backup starts from an empty repository; the last round's
  // repositories go on to the incremental and no-change backups and the restores.
  const repositoryOf = (tool: Tool, round = rounds - 1) =>
    join(run, `repository-${tool.name}-${round}`);
  await phase("initial backup", "initialBackup", rounds, async (tool, round) => {
    await tool.init(repositoryOf(tool, round));
    warmPageCache(source);
    flushPageCache();
    return tool.backup(repositoryOf(tool, round), source, 1);
  });
  const changedFiles = await changeFivePercent(source);
  process.stderr.write(`changed ${changedFiles} of ${datasetFiles} files\n`);
  await phase("incremental backup", "incrementalBackup", 1, (tool) => {
    warmPageCache(source);
    flushPageCache();
    return tool.backup(repositoryOf(tool), source, 2);
  });
  await phase("no-change backup", "noChangeBackup", 1, (tool) => {
    warmPageCache(source);
    flushPageCache();
    return tool.backup(repositoryOf(tool), source, 3);
  });
  await phase("full restore", "restore", rounds, async (tool, round) => {
    const target = join(run, `restore-${tool.name}-${round}`);
    flushPageCache();
    const measurement = await tool.restore(repositoryOf(tool), target);
    if (tool.name === "edgeward" && round === 0) {
      // A fast wrong restore is worth nothing: compare every byte with the source.
      execFileSync("diff", [
        "-r",
        "--no-dereference",
        source,
        join(target, relative(dirname(source), source)),
      ]);
    }
    return measurement;
  });

  const results: Record<string, ToolResult> = {};
  for (const tool of selected) {
    const measured = samples.get(tool.name) as Record<Phase, Measurement[]>;
    const result: ToolResult = {
      initialBackup: summarise(measured.initialBackup),
      incrementalBackup: summarise(measured.incrementalBackup),
      noChangeBackup: summarise(measured.noChangeBackup),
      restore: summarise(measured.restore),
      repositoryBytes: await directoryBytes(repositoryOf(tool)),
      peakRssBytes: 0,
    };
    result.peakRssBytes = Math.max(
      result.initialBackup.peakRssBytes,
      result.incrementalBackup.peakRssBytes,
      result.noChangeBackup.peakRssBytes,
      result.restore.peakRssBytes,
    );
    results[tool.name] = result;
  }
  const edgeward = results.edgeward;
  const restic = results.restic;
  const targets =
    edgeward !== undefined && restic !== undefined
      ? {
          initialBackupFasterThanRestic:
            edgeward.initialBackup.seconds < restic.initialBackup.seconds,
          incrementalBackupFasterThanRestic:
            edgeward.incrementalBackup.seconds < restic.incrementalBackup.seconds,
          restoreFasterThanRestic: edgeward.restore.seconds < restic.restore.seconds,
          repositoryAtMostResticPlus5Percent:
            edgeward.repositoryBytes <= restic.repositoryBytes * 1.05,
          peakRssAtMostRestic: edgeward.peakRssBytes <= restic.peakRssBytes,
        }
      : undefined;
  const report = {
    benchmark: "backup",
    loadAverageAtStart,
    loadAverageAtEnd: loadavg(),
    date: new Date().toISOString(),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? "unknown",
      node: process.version,
    },
    versions: Object.fromEntries(selected.map((tool) => [tool.name, tool.version])),
    dataset: { seed, bytes: datasetBytes, files: datasetFiles, changedFiles, layout },
    method: `initial backup and full restore: ${rounds} rounds, tools in rotating order, median time and CPU, largest peak RSS; incremental and no-change: one run each; the dataset read into the page cache before each backup; sync before every measured command; repositories and restored trees kept until the end`,
    settings: {
      edgeward:
        "defaults (zstd 3, 512 KiB/1 MiB/8 MiB chunks, 16 MiB packs, --workers = cores: the main thread and cores - 1 worker threads), run through bin/edgeward",
      restic: "defaults (repository v2, compression auto)",
      borg: "repokey-blake2, --compression zstd,3",
    },
    results,
    targets,
  };
  await mkdir(join(root, "bench/results"), { recursive: true });
  await writeFile(join(root, "bench/results/backup.json"), `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${markdownTable(report.dataset, results)}\n`);
  if (targets !== undefined) process.stdout.write(`\ntargets: ${JSON.stringify(targets)}\n`);
  if (!keepWorkDirectory) await rm(run, { recursive: true, force: true });
}

function markdownTable(
  dataset: { bytes: number; files: number; changedFiles: number },
  results: Record<string, ToolResult>,
): string {
  const names = Object.keys(results);
  const row = (label: string, value: (result: ToolResult) => string) =>
    `| ${label} | ${names.map((name) => value(results[name] as ToolResult)).join(" | ")} |`;
  const seconds = (measurement: RepeatedMeasurement) =>
    `${measurement.seconds.toFixed(1)} s (${measurement.cpuSeconds.toFixed(1)} s CPU)${
      measurement.samples.length > 1
        ? ` [${measurement.samples.map((sample) => sample.seconds.toFixed(1)).join(", ")}]`
        : ""
    }`;
  return [
    `Dataset: ${(dataset.bytes / mebibyte / 1024).toFixed(2)} GiB in ${dataset.files} files; incremental after changing ${dataset.changedFiles} files.`,
    "",
    `| | ${names.join(" | ")} |`,
    `|---|${names.map(() => "---:").join("|")}|`,
    row("initial backup", (result) => seconds(result.initialBackup)),
    row("incremental backup (5 % changed)", (result) => seconds(result.incrementalBackup)),
    row("no-change backup", (result) => seconds(result.noChangeBackup)),
    row("full restore", (result) => seconds(result.restore)),
    row("repository size", (result) => `${(result.repositoryBytes / mebibyte).toFixed(0)} MiB`),
    row("peak RSS", (result) => `${(result.peakRssBytes / mebibyte).toFixed(0)} MiB`),
  ].join("\n");
}

await main();
