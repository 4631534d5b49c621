// Copy benchmark: one backup, then its copy into a repository sharing the key ring (sealed
// blobs move undecrypted) and into one with its own keys (every blob re-keyed, trees
// rewritten), then one changed file and the incremental copies. Prints a table.
//
//   npx tsx bench/backup/copy.ts [--mib N]
//
// The dataset (default 160 MiB: incompressible files, JSON logs, 2,000 small files) is
// generated into a temporary directory and removed afterwards.
import { createCipheriv, createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { backup } from "../../src/runtime/backup/backup.ts";
import { copySnapshot, initRepositoryLike } from "../../src/runtime/backup/copy-snapshot.ts";
import type { CopySnapshotResult } from "../../src/runtime/backup/copy-snapshot.ts";
import { DirectoryBlobStore } from "../../src/runtime/backup/directory-blob-store.ts";
import { initRepository, repositoryDefaults } from "../../src/runtime/backup/repository.ts";

const argumentsGiven = process.argv.slice(2);
const mebibytes = Number(argumentsGiven[argumentsGiven.indexOf("--mib") + 1] ?? 160) || 160;
const mebibyte = 1024 * 1024;

function keystream(name: string, length: number): Buffer {
  const key = createHash("sha256").update(name).digest();
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

async function writeDataset(source: string): Promise<void> {
  const binaryFiles = Math.max(1, Math.floor((mebibytes * 0.6) / 16));
  const logFiles = Math.max(1, Math.floor((mebibytes * 0.35) / 16));
  await mkdir(join(source, "small"), { recursive: true });
  for (let index = 0; index < binaryFiles; index++)
    await writeFile(
      join(source, `binary-${index}.bin`),
      keystream(`binary-${index}`, 16 * mebibyte),
    );
  for (let index = 0; index < logFiles; index++) {
    const line = (n: number) =>
      `{"t":${1_700_000_000_000 + n * 250},"level":"INFO","service":"line-${index}","value":${(n * 7) % 1_000}}\n`;
    const lines: string[] = [];
    let bytes = 0;
    for (let n = 0; bytes < 16 * mebibyte; n++) {
      const text = line(n);
      lines.push(text);
      bytes += text.length;
    }
    await writeFile(join(source, `log-${index}.jsonl`), lines.join(""));
  }
  for (let index = 0; index < 2_000; index++)
    await writeFile(join(source, "small", `file-${index}`), keystream(`small-${index}`, 2_048));
}

function row(name: string, result: CopySnapshotResult): string {
  return [
    name.padEnd(34),
    `${(result.durationMs / 1_000).toFixed(2)} s`.padStart(9),
    String(result.blobsCopied).padStart(8),
    String(result.blobsDecrypted).padStart(10),
    String(result.blobsSkipped).padStart(8),
    `${(result.bytesCopied / mebibyte).toFixed(1)} MiB`.padStart(12),
  ].join("  ");
}

const directory = await mkdtemp(join(tmpdir(), "edgeward-bench-copy-"));
try {
  const source = join(directory, "source");
  await writeDataset(source);
  const password = "benchmark password, not secret";
  const from = await initRepository(new DirectoryBlobStore(join(directory, "from")), password);
  const first = await backup(from, { paths: [source] });
  const sameKeys = await initRepositoryLike(
    new DirectoryBlobStore(join(directory, "same-keys")),
    password,
    from,
    repositoryDefaults,
  );
  const ownKeys = await initRepository(
    new DirectoryBlobStore(join(directory, "own-keys")),
    password,
  );
  const rows = [
    row("copy, shared key ring", await copySnapshot(from, sameKeys, first.snapshotId)),
    row("copy, own keys (ids rewritten)", await copySnapshot(from, ownKeys, first.snapshotId)),
  ];
  await writeFile(join(source, "binary-0.bin"), keystream("binary-0-changed", 16 * mebibyte));
  const second = await backup(from, { paths: [source] });
  rows.push(
    row("incremental, shared key ring", await copySnapshot(from, sameKeys, second.snapshotId)),
    row("incremental, own keys", await copySnapshot(from, ownKeys, second.snapshotId)),
  );
  process.stdout.write(
    `dataset ${mebibytes} MiB, backup ${(first.snapshot.summary.durationMs / 1_000).toFixed(2)} s, load average ${loadavg()[0]?.toFixed(1)}\n` +
      `${"".padEnd(34)}  ${"time".padStart(9)}  ${"stored".padStart(8)}  ${"decrypted".padStart(10)}  ${"skipped".padStart(8)}  ${"bytes".padStart(12)}\n` +
      `${rows.join("\n")}\n`,
  );
} finally {
  await rm(directory, { recursive: true, force: true });
}
