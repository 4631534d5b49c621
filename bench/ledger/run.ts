// Ledger throughput: appends per second (one durable transaction each, and batched), proof
// generation time at the final size, and the offline audit of the whole log.
// Usage: tsx bench/ledger/run.ts [entries=100000]; writes bench/results/ledger.json.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { auditLedgerExport, ledgerExportSchema } from "../../src/core/ledger/audit.ts";
import { fromHex, toHex, utf8 } from "../../src/core/ledger/bytes.ts";
import type { LedgerEntryDraft } from "../../src/core/ledger/entries.ts";
import { verifyConsistency, verifyInclusion } from "../../src/core/ledger/merkle.ts";
import { silentLogger } from "../../src/ports/logger.ts";
import { ledgerVerifier } from "../../src/runtime/ledger/ledger-key.ts";
import { sha256 } from "../../src/runtime/ledger/sha256.ts";
import { systemClock } from "../../src/runtime/system-clock.ts";
import { ServerLedger } from "../../src/server/ledger/server-ledger.ts";
import { testSecretFiles } from "../../src/runtime/security/testing.ts";

const entries = Number(process.argv[2] ?? 100_000);
const singleAppends = Math.min(2_000, entries);
const batchSize = 1_000;

function draft(index: number): LedgerEntryDraft {
  return {
    kind: "backup",
    atMs: 1_780_000_000_000 + index,
    data: {
      repository: "s3://edgeward-backups/line-a",
      snapshotId: `snap-${index}`,
      digest: toHex(sha256(utf8(`snapshot ${index}`))),
      sizeBytes: 1_048_576 + index,
    },
  };
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

const dataDir = mkdtempSync(join(tmpdir(), "edgeward-ledger-bench-"));
try {
  const ledger = ServerLedger.open(dataDir, {
    clock: systemClock,
    logger: silentLogger,
    secrets: testSecretFiles(dataDir),
  });
  const store = ledger.store;

  // One durable transaction (fsync) per append: what a single recorded event costs.
  let started = performance.now();
  for (let index = 0; index < singleAppends; index++) store.append(draft(index));
  const singleSeconds = (performance.now() - started) / 1_000;

  // Batches of 1,000 per transaction, up to the full size, publishing a head every 10,000.
  started = performance.now();
  while (store.size < entries) {
    const count = Math.min(batchSize, entries - store.size);
    store.appendMany(Array.from({ length: count }, (_, offset) => draft(store.size + offset)));
    if (store.size % 10_000 === 0) ledger.publish();
  }
  const batchedSeconds = (performance.now() - started) / 1_000;
  const head = ledger.publish();

  // Proofs at the final size, each verified.
  const samples = 2_000;
  const inclusionMs: number[] = [];
  const consistencyMs: number[] = [];
  const root = fromHex(head.rootHash);
  for (let sample = 0; sample < samples; sample++) {
    const leafIndex = Math.floor((sample * 7_919) % head.treeSize);
    let begin = performance.now();
    const proof = store.inclusionProof(leafIndex, head.treeSize);
    inclusionMs.push(performance.now() - begin);
    if (
      verifyInclusion(sha256, store.node(0, leafIndex), leafIndex, head.treeSize, proof, root) !==
      null
    )
      throw new Error(`inclusion proof ${leafIndex} did not verify`);
    const first = 1 + ((sample * 104_729) % (head.treeSize - 1));
    begin = performance.now();
    const consistency = store.consistencyProof(first, head.treeSize);
    consistencyMs.push(performance.now() - begin);
    if (
      verifyConsistency(sha256, first, head.treeSize, consistency, store.root(first), root) !== null
    )
      throw new Error(`consistency proof ${first} did not verify`);
  }
  inclusionMs.sort((a, b) => a - b);
  consistencyMs.sort((a, b) => a - b);

  // Export and offline audit of everything.
  started = performance.now();
  const text = [...ledger.exportJson()].join("");
  const exportSeconds = (performance.now() - started) / 1_000;
  started = performance.now();
  const exported = ledgerExportSchema.parse(JSON.parse(text));
  const key = ledgerVerifier(exported.publicKey);
  const audit = auditLedgerExport(exported, {
    hash: sha256,
    verifySignature: key.verify,
    keyId: key.keyId,
  });
  const auditSeconds = (performance.now() - started) / 1_000;
  if (!audit.ok) throw new Error(`audit failed: ${audit.problems.join("; ")}`);
  ledger.close();

  const results = {
    benchmark: "ledger",
    node: process.version,
    entries,
    appendsDurableEach: {
      count: singleAppends,
      perSecond: Math.round(singleAppends / singleSeconds),
    },
    appendsBatched: {
      batchSize,
      count: entries - singleAppends,
      perSecond: Math.round((entries - singleAppends) / batchedSeconds),
    },
    inclusionProofMs: {
      samples,
      p50: percentile(inclusionMs, 0.5),
      p99: percentile(inclusionMs, 0.99),
    },
    consistencyProofMs: {
      samples,
      p50: percentile(consistencyMs, 0.5),
      p99: percentile(consistencyMs, 0.99),
    },
    proofLength: { inclusion: store.size > 0 ? Math.ceil(Math.log2(entries)) : 0 },
    export: { bytes: text.length, seconds: exportSeconds },
    offlineAudit: {
      seconds: auditSeconds,
      treeHeads: audit.treeHeadsChecked,
      consistencyProofs: audit.consistencyProofsChecked,
    },
  };
  mkdirSync(join(import.meta.dirname, "..", "results"), { recursive: true });
  writeFileSync(
    join(import.meta.dirname, "..", "results", "ledger.json"),
    `${JSON.stringify(results, null, 2)}\n`,
  );
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
