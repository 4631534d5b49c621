// Secrets at rest: what sealing costs per secret (in memory, and as a durable file write and
// read), how long a rotation of a real server data dir takes, and how opening a keyring grows
// with its versions.
// Usage: tsx bench/security/keyring.ts [iterations=2000]; writes bench/results/keyring.json.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pino from "pino";
import { detectorOptionsFor } from "../../src/core/membership/detector-options.ts";
import { openDataDirKeys, rotateDataKey } from "../../src/runtime/security/data-dir-keys.ts";
import { MemoryStore } from "../../src/runtime/store/memory-store.ts";
import { startServer } from "../../src/server/main.ts";
import { rotateServerKeys, serverSecretFileNames } from "../../src/server/server-keys.ts";

const iterations = Number(process.argv[2] ?? 2_000);
const rotations = 20;

const percentile = (sorted: number[], fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;

function timings(samples: number, run: (index: number) => void) {
  const durations: number[] = [];
  for (let index = 0; index < samples; index += 1) {
    const startedMs = performance.now();
    run(index);
    durations.push(performance.now() - startedMs);
  }
  durations.sort((left, right) => left - right);
  return {
    samples,
    medianUs: Math.round(percentile(durations, 0.5) * 1_000 * 10) / 10,
    p99Us: Math.round(percentile(durations, 0.99) * 1_000 * 10) / 10,
  };
}

const root = mkdtempSync(join(tmpdir(), "edgeward-bench-keyring-"));
try {
  const keys = openDataDirKeys({
    dataDir: join(root, "sealing"),
    environment: {},
    nowMs: Date.now(),
    secretFileNames: [],
    create: true,
  });
  // A token, a PEM key, and the peer identities of ~1,000 nodes.
  const sizes = { token: 400, pemKey: 1_700, peerIdentities: 64 * 1024 };
  const perSecret: Record<string, unknown> = {};
  for (const [name, sizeBytes] of Object.entries(sizes)) {
    const plaintext = randomBytes(sizeBytes);
    const sealed = keys.keyring.seal("file:bench", plaintext);
    perSecret[name] = {
      sizeBytes,
      sealInMemory: timings(iterations, () => keys.keyring.seal("file:bench", plaintext)),
      openInMemory: timings(iterations, () => keys.keyring.open("file:bench", sealed, "bench")),
      writeFileDurable: timings(Math.min(iterations, 300), () =>
        keys.files.write("bench.secret", plaintext),
      ),
      readFile: timings(Math.min(iterations, 2_000), () => keys.files.read("bench.secret")),
    };
  }

  // A real server data dir: CA, TLS key, signing key, admin token, ledger key, backup passwords.
  const serverDir = join(root, "server");
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir: serverDir,
    detection: detectorOptionsFor("lan"),
    logger: pino({ level: "silent" }),
    store: new MemoryStore(),
    security: { tls: true, enforce: true },
    backup: {
      tiers: { edgeCluster: { dataShards: 1, parityShards: 1 }, regional: {} },
      policies: [],
    },
  });
  await server.close();
  const serverKeys = openDataDirKeys({
    dataDir: serverDir,
    environment: {},
    nowMs: Date.now(),
    secretFileNames: serverSecretFileNames,
    create: false,
  });
  const rotation = timings(rotations, (index) => rotateServerKeys(serverKeys, Date.now() + index));
  const dataKeyOnly = timings(rotations, (index) =>
    rotateDataKey(serverKeys, serverSecretFileNames, Date.now() + index),
  );
  const openAfterRotations = {
    versions: serverKeys.keyring.versions().length,
    ...timings(50, () =>
      openDataDirKeys({
        dataDir: serverDir,
        environment: {},
        nowMs: Date.now(),
        secretFileNames: [],
        create: false,
      }),
    ),
  };
  const freshKeyringOpen = timings(50, () =>
    openDataDirKeys({
      dataDir: join(root, "sealing"),
      environment: {},
      nowMs: Date.now(),
      secretFileNames: [],
      create: false,
    }),
  );

  const results = {
    benchmark: "keyring",
    node: process.version,
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    iterations,
    cipher: "AES-256-GCM",
    perSecret,
    serverDataDir: {
      secretFiles: serverSecretFileNames.filter((name) => serverKeys.files.exists(name)).length,
      rotationDataKeyAndBackupPassword: rotation,
      rotationDataKeyOnly: dataKeyOnly,
    },
    keyringOpen: {
      oneVersion: { versions: 1, ...freshKeyringOpen },
      afterRotations: openAfterRotations,
    },
  };
  mkdirSync(join(import.meta.dirname, "..", "results"), { recursive: true });
  writeFileSync(
    join(import.meta.dirname, "..", "results", "keyring.json"),
    `${JSON.stringify(results, null, 2)}\n`,
  );
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
