// Ledger throughput at a given size: build the log with batched appends (a head published
// every 10,000 entries, as a busy server would), then at that size measure durable single
// appends, batched appends, inclusion and consistency proofs (each verified), and the export
// and offline audit of the whole log. Used by bench/ledger/run.ts and bench/security/run.ts.

import { testSecretFiles } from "../../src/runtime/security/testing.ts";
import { mkdtempSync, rmSync } from "node:fs";
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

export interface LedgerBenchOptions {
  entries: number;
  /** Entries per transaction while building and in the batched measurement. */
  batchSize: number;
  /** Durable single appends measured at the final size. */
  singleAppends: number;
  /** Proofs of each kind generated and verified at the final size. */
  proofSamples: number;
  /** Export and audit the whole log offline (minutes at 1,000,000 entries). */
  audit: boolean;
}

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

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * fraction) - 1)]!;
}

export function measureLedger(options: LedgerBenchOptions) {
  const dataDir = mkdtempSync(join(tmpdir(), "edgeward-ledger-bench-"));
  try {
    const ledger = ServerLedger.open(dataDir, {
      clock: systemClock,
      logger: silentLogger,
      secrets: testSecretFiles(dataDir),
    });
    const store = ledger.store;
    const batch = (count: number) =>
      store.appendMany(Array.from({ length: count }, (_, offset) => draft(store.size + offset)));

    // Build: batches up to the full size, publishing a head every 10,000 entries.
    let started = performance.now();
    const cpu = process.cpuUsage();
    const buildRates: { atEntries: number; perSecond: number }[] = [];
    let stepStarted = started;
    const step = Math.max(options.batchSize, Math.floor(options.entries / 10));
    while (store.size < options.entries) {
      batch(Math.min(options.batchSize, options.entries - store.size));
      if (store.size % 10_000 === 0) ledger.publish();
      if (store.size % step === 0) {
        const now = performance.now();
        buildRates.push({
          atEntries: store.size,
          perSecond: Math.round(step / ((now - stepStarted) / 1_000)),
        });
        process.stderr.write(`ledger: ${store.size} entries, ${buildRates.at(-1)!.perSecond}/s\n`);
        stepStarted = now;
      }
    }
    const buildSeconds = (performance.now() - started) / 1_000;
    const buildCpu = process.cpuUsage(cpu);
    ledger.publish();

    // At the final size: one durable transaction (fsync) per append, then batches.
    started = performance.now();
    for (let index = 0; index < options.singleAppends; index++) store.append(draft(store.size));
    const singleSeconds = (performance.now() - started) / 1_000;
    const batchedCount = 20 * options.batchSize;
    started = performance.now();
    for (let index = 0; index < 20; index++) batch(options.batchSize);
    const batchedSeconds = (performance.now() - started) / 1_000;
    const head = ledger.publish();

    const inclusionMs: number[] = [];
    const consistencyMs: number[] = [];
    const root = fromHex(head.rootHash);
    for (let sample = 0; sample < options.proofSamples; sample++) {
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
        verifyConsistency(sha256, first, head.treeSize, consistency, store.root(first), root) !==
        null
      )
        throw new Error(`consistency proof ${first} did not verify`);
    }
    inclusionMs.sort((a, b) => a - b);
    consistencyMs.sort((a, b) => a - b);

    let exportResult: { bytes: number; seconds: number } | null = null;
    let auditResult: { seconds: number; treeHeads: number; consistencyProofs: number } | null =
      null;
    if (options.audit) {
      started = performance.now();
      const text = [...ledger.exportJson()].join("");
      exportResult = { bytes: text.length, seconds: (performance.now() - started) / 1_000 };
      started = performance.now();
      const exported = ledgerExportSchema.parse(JSON.parse(text));
      const key = ledgerVerifier(exported.publicKey);
      const audit = auditLedgerExport(exported, {
        hash: sha256,
        verifySignature: key.verify,
        keyId: key.keyId,
      });
      if (!audit.ok) throw new Error(`audit failed: ${audit.problems.join("; ")}`);
      auditResult = {
        seconds: (performance.now() - started) / 1_000,
        treeHeads: audit.treeHeadsChecked,
        consistencyProofs: audit.consistencyProofsChecked,
      };
    }
    ledger.close();
    return {
      entries: options.entries,
      build: {
        batchSize: options.batchSize,
        seconds: buildSeconds,
        perSecond: Math.round(options.entries / buildSeconds),
        cpuSeconds: (buildCpu.user + buildCpu.system) / 1e6,
        rates: buildRates,
      },
      appendsDurableEach: {
        atEntries: options.entries,
        count: options.singleAppends,
        perSecond: Math.round(options.singleAppends / singleSeconds),
      },
      appendsBatched: {
        atEntries: options.entries + options.singleAppends,
        batchSize: options.batchSize,
        count: batchedCount,
        perSecond: Math.round(batchedCount / batchedSeconds),
      },
      inclusionProofMs: {
        samples: options.proofSamples,
        p50: percentile(inclusionMs, 0.5),
        p99: percentile(inclusionMs, 0.99),
      },
      consistencyProofMs: {
        samples: options.proofSamples,
        p50: percentile(consistencyMs, 0.5),
        p99: percentile(consistencyMs, 0.99),
      },
      proofLength: { inclusion: Math.ceil(Math.log2(head.treeSize)) },
      export: exportResult,
      offlineAudit: auditResult,
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
