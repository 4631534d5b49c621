// The CLOUD tier end to end: a server whose fleet spec puts CLOUD in an S3 bucket (s3rver on
// loopback, behind a proxy that checks every Signature V4), two real agents, and the CLI's
// backup commands. `backup run` backs up to EDGE_LOCAL and copies the snapshot into the bucket,
// `backup list` catalogues it, and `backup restore` restores it on the other node.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startAgent, type RunningAgent } from "../../agent/main.ts";
import { ApiClient } from "../../cli/api-client.ts";
import { BackupApi, listCommand, restoreCommand, runCommand } from "../../cli/commands/backup.ts";
import type { CommandOutput } from "../../cli/command-io.ts";
import { backupScheduleDefaults } from "../../core/backup/fleet-schedule.ts";
import { detectorOptionsFor } from "../../core/membership/detector-options.ts";
import type { BackupSpec } from "../../core/spec/backup-schema.ts";
import { openRepository } from "../../runtime/backup/repository.ts";
import { S3BlobStore } from "../../runtime/backup/s3-blob-store.ts";
import { startS3rver } from "../../runtime/backup/testing/s3rver-process.ts";
import { startVerifyingProxy } from "../../runtime/backup/testing/sigv4-verifying-proxy.ts";
import { testingRepositoryOptions } from "../../runtime/backup/testing.ts";
import { MemoryStore } from "../../runtime/store/memory-store.ts";
import { startServer } from "../main.ts";
import { openDataDirKeys } from "../../runtime/security/data-dir-keys.ts";
import { loadOrCreateBackupPasswords } from "./fleet-backup-passwords.ts";

/** The fleet's current backup password, from the server's sealed backup.key. */
function currentBackupPassword(serverDataDir: string): string {
  const { files } = openDataDirKeys({
    dataDir: serverDataDir,
    environment: {},
    nowMs: Date.now(),
    secretFileNames: [],
    create: false,
  });
  const password = loadOrCreateBackupPasswords(files, Date.now()).at(-1)?.password;
  if (password === undefined) throw new Error("the server has no backup password");
  return password;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const logger = pino({ level: process.env["DEBUG_BACKUP_TEST"] === undefined ? "silent" : "info" });
// s3rver's built-in account; the proxy checks signatures against the same secret.
const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
const bucket = "edgeward-fleet";
const region = "us-east-1";

function capture(): CommandOutput & { out: () => string } {
  const stdout: string[] = [];
  return {
    stdout: { write: (text: string) => stdout.push(text), isTTY: false },
    stderr: { write: () => true, isTTY: false },
    out: () => stdout.splice(0).join(""),
  };
}

function ledgerRows(path: string): number[] {
  const database = new Database(path, { readonly: true });
  try {
    return (
      database.prepare("SELECT value FROM reading ORDER BY id").all() as { value: number }[]
    ).map((row) => row.value);
  } finally {
    database.close();
  }
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadlineMs = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the CLOUD tier in a fleet", () => {
  it("run copies into S3, list catalogues the snapshot, restore brings it back on another node", async () => {
    const root = mkdtempSync(join(tmpdir(), "edgeward-cloud-tier-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const s3rver = await startS3rver(join(root, "s3rver"), [bucket]);
    cleanups.push(() => s3rver.close());
    const proxy = await startVerifyingProxy(
      s3rver.endpoint,
      { [credentials.accessKeyId]: credentials.secretAccessKey },
      region,
    );
    cleanups.push(() => proxy.close());
    const credentialsFile = join(root, "cloud-credentials.json");
    writeFileSync(credentialsFile, JSON.stringify(credentials), { mode: 0o600 });
    const prefix = `run-${randomBytes(4).toString("hex")}`;
    const backupSpec: BackupSpec = {
      tiers: {
        edgeCluster: { dataShards: 1, parityShards: 1 },
        regional: {},
        cloud: {
          endpoint: proxy.endpoint,
          region,
          bucket,
          prefix,
          forcePathStyle: true,
          credentials: { source: "file", path: credentialsFile },
        },
      },
      policies: [
        {
          name: "plant_data",
          dataTypes: ["ledger"],
          sources: { ledger: { type: "sqlite", path: "ledger.db" } },
          levels: [
            { level: "EDGE_LOCAL", intervalSeconds: 300, retentionDays: 7 },
            { level: "CLOUD", intervalSeconds: 86_400, retentionDays: 365 },
          ],
          encryptionRequired: true,
        },
      ],
    };
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(root, "server"),
      detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
      logger,
      store: new MemoryStore(),
      security: { tls: false, enforce: false },
      backup: backupSpec,
    });
    cleanups.push(() => server.close());
    const agents: RunningAgent[] = [];
    for (const nodeId of ["edge-a", "edge-b"]) {
      const dataDir = join(root, nodeId);
      mkdirSync(dataDir, { recursive: true });
      if (nodeId === "edge-a") {
        const database = new Database(join(dataDir, "ledger.db"));
        database.exec("CREATE TABLE reading (id INTEGER PRIMARY KEY, value REAL)");
        const insert = database.prepare("INSERT INTO reading (value) VALUES (?)");
        database.transaction(() => {
          for (let row = 0; row < 2_000; row++) insert.run(row * 0.25);
        })();
        database.close();
      }
      const agent = await startAgent({
        nodeId,
        serverUrl: server.url,
        dataDir,
        listenHost: "127.0.0.1",
        listenPort: 0,
        logger,
        backups: {
          // On demand only: the first scheduled run is an hour away.
          schedule: { ...backupScheduleDefaults, jitterMsMax: 0, tickIntervalMs: 3_600_000 },
          repositoryOptions: testingRepositoryOptions,
        },
      });
      agents.push(agent);
      cleanups.push(() => agent.stop(false));
    }
    const { links } = server.plane.components;
    await waitFor(
      () => links.connected("edge-a") && links.connected("edge-b"),
      "agents to connect",
    );
    const api = new BackupApi(new ApiClient(server.url, { token: server.adminToken }));
    const output = capture();

    // `edgeward backup run plant_data --node edge-a`: one backup, one copy into the bucket.
    expect(await runCommand(api, "plant_data", { node: "edge-a" }, output)).toBe(0);
    const printed = output.out();
    expect(printed).toMatch(/edge-a\s+EDGE_LOCAL\s+backup\s/);
    expect(printed).toMatch(/edge-a\s+CLOUD\s+copy of EDGE_LOCAL\s/);
    const run = await api.run({ policy: "plant_data", node: "edge-a" });
    expect(run.results[0]?.levels).toMatchObject([
      { level: "EDGE_LOCAL", outcome: "backup" },
      { level: "CLOUD", outcome: "copy", fromLevel: "EDGE_LOCAL" },
    ]);

    // `edgeward backup list`: the CLOUD snapshots are catalogued.
    expect(await listCommand(api, {}, output)).toBe(0);
    expect(output.out()).toMatch(/plant_data\s+CLOUD\s+edge-a\s/);
    const list = await api.list();
    const cloud = list.snapshots.filter((snapshot) => snapshot.level === "CLOUD");
    expect(cloud).toHaveLength(2);
    const newest = cloud[0];
    if (newest === undefined) throw new Error("no CLOUD snapshot");
    expect(newest).toMatchObject({ node: "edge-a", policy: "plant_data", dataTypes: ["ledger"] });
    // The second copy is incremental: the unchanged ledger's blobs are in the bucket already.
    expect(newest.addedBytes).toBeLessThan((cloud[1]?.addedBytes ?? 0) / 2);

    // The repository is really in the bucket, under <prefix>/edge-a, and every request was signed.
    const bucketStore = new S3BlobStore({
      endpoint: proxy.endpoint,
      bucket,
      prefix: `${prefix}/edge-a`,
      credentials,
      region,
    });
    cleanups.push(() => bucketStore.close());
    const repository = await openRepository(
      bucketStore,
      currentBackupPassword(join(root, "server")),
    );
    const snapshots = await repository.listSnapshots();
    expect(snapshots).toHaveLength(2);
    expect(snapshots.every((entry) => entry.snapshot.tags.includes("level:CLOUD"))).toBe(true);
    expect(snapshots.every((entry) => entry.snapshot.copiedFrom !== undefined)).toBe(true);
    expect(proxy.counts.requests).toBeGreaterThan(10);
    expect(proxy.counts.rejectedSignatures).toBe(0);

    // `edgeward backup restore <id> --target DIR --node edge-b`: from the bucket, on edge-b.
    const target = join(root, "restored");
    expect(
      await restoreCommand(api, newest.snapshotId.slice(0, 12), { target, node: "edge-b" }, output),
    ).toBe(0);
    expect(output.out()).toMatch(/restored snapshot .* on edge-b/);
    expect(ledgerRows(join(target, "ledger", "ledger.db"))).toEqual(
      ledgerRows(join(root, "edge-a", "ledger.db")),
    );
  }, 90_000);
});
