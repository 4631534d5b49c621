// In one process: a server with a regional blob store and three real agents. A backup policy
// runs on demand into EDGE_LOCAL, EDGE_CLUSTER (erasure-coded over the peers) and REGIONAL, the
// catalogue lists it, a snapshot is restored on another node, and the cluster copy still
// restores after one holder (m = 1) is gone.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { testResources } from "../../agent/agent-test-support.ts";
import type {
  BackupListResponse,
  BackupRestoreResponse,
  BackupRunResponse,
  BackupVerifyResponse,
} from "../../api/contract.ts";
import { backupScheduleDefaults } from "../../core/backup/fleet-schedule.ts";
import type { BackupSpec } from "../../core/spec/backup-schema.ts";
import { testingRepositoryOptions } from "../../runtime/backup/testing.ts";
import { startTestFleet } from "../fleet-test-support.ts";

const { cleanups } = testResources("fleet-backups");

const logger = pino({ level: process.env["DEBUG_BACKUP_TEST"] === undefined ? "silent" : "info" });

const backupSpec: BackupSpec = {
  tiers: { edgeCluster: { dataShards: 1, parityShards: 1 }, regional: {} },
  policies: [
    {
      name: "plant_data",
      dataTypes: ["ledger", "configuration"],
      sources: {
        ledger: { type: "sqlite", path: "ledger.db" },
        configuration: { type: "configuration" },
      },
      levels: [
        { level: "EDGE_LOCAL", intervalSeconds: 300, retentionDays: 7 },
        { level: "EDGE_CLUSTER", intervalSeconds: 1_800, retentionDays: 30 },
        { level: "REGIONAL", intervalSeconds: 3_600, retentionDays: 365 },
      ],
      encryptionRequired: true,
    },
  ],
};

function writeLedger(path: string, rows: number): void {
  const database = new Database(path);
  database.pragma("journal_mode = WAL");
  database.exec("CREATE TABLE reading (id INTEGER PRIMARY KEY, value REAL)");
  const insert = database.prepare("INSERT INTO reading (value) VALUES (?)");
  database.transaction(() => {
    for (let row = 0; row < rows; row++) insert.run(row * 0.5);
  })();
  database.close();
}

function countRows(path: string): number {
  const database = new Database(path, { readonly: true });
  try {
    return (database.prepare("SELECT COUNT(*) AS rows FROM reading").get() as { rows: number })
      .rows;
  } finally {
    database.close();
  }
}

async function fleet(nodeIds: readonly string[]) {
  const { root, server, agents } = await startTestFleet({
    prefix: "fleet-backups",
    nodeIds,
    logger,
    cleanups,
    server: { security: { tls: false, enforce: false }, backup: backupSpec },
    regionalBlobDir: true,
    agent: {
      backups: {
        // Only on demand in this test: the first scheduled run is an hour away.
        schedule: { ...backupScheduleDefaults, jitterMsMax: 0, tickIntervalMs: 3_600_000 },
        repositoryOptions: testingRepositoryOptions,
      },
    },
    prepareNode: (nodeId, dataDir) => writeLedger(join(dataDir, "ledger.db"), nodeId.length * 100),
  });
  const call = async <Body>(method: "GET" | "POST", url: string, payload?: object) => {
    const response = await server.app.inject({
      method,
      url,
      ...(payload === undefined ? {} : { payload }),
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<Body>();
  };
  return { root, server, agents, call };
}

describe("fleet backups", () => {
  it("run -> list -> restore on another node, and the cluster tier survives losing a holder", async () => {
    const { root, server, agents, call } = await fleet(["edge-a", "edge-b", "edge-c"]);

    const run = await call<BackupRunResponse>("POST", "/v1/backups/run", {
      policy: "plant_data",
      node: "edge-a",
    });
    expect(run.results).toHaveLength(1);
    expect(run.results[0]?.message ?? null).toBeNull();
    const levels = run.results[0]?.snapshots.map((snapshot) => snapshot.level);
    expect(levels).toEqual(["EDGE_LOCAL", "EDGE_CLUSTER", "REGIONAL"]);
    // The sources are read once, by the EDGE_LOCAL backup; the other tiers get copies of it.
    expect(run.results[0]?.levels).toMatchObject([
      { level: "EDGE_LOCAL", outcome: "backup", fromLevel: null },
      { level: "EDGE_CLUSTER", outcome: "copy", fromLevel: "EDGE_LOCAL" },
      { level: "REGIONAL", outcome: "copy", fromLevel: "EDGE_LOCAL" },
    ]);
    for (const level of run.results[0]?.levels ?? []) {
      expect(level.sizeBytes).toBeGreaterThan(0);
      expect(level.addedBytes).toBeGreaterThan(0);
    }
    expect(run.results[0]?.levels[1]?.blobsCopied).toBeGreaterThan(0);

    const list = await call<BackupListResponse>("GET", "/v1/backups");
    expect(list.snapshots.map((snapshot) => snapshot.level).sort()).toEqual([
      "EDGE_CLUSTER",
      "EDGE_LOCAL",
      "REGIONAL",
    ]);
    const cluster = list.snapshots.find((snapshot) => snapshot.level === "EDGE_CLUSTER");
    expect(cluster).toMatchObject({
      node: "edge-a",
      policy: "plant_data",
      encrypted: true,
      dataTypes: ["ledger", "configuration"],
      holders: ["edge-b", "edge-c"],
    });
    if (cluster === undefined) throw new Error("no cluster snapshot");
    // Each snapshot is in the ledger with its root tree id as the content digest (copies that
    // share the key ring have the same tree id: the same content).
    await server.plane.components.events.settled();
    const backupEntries = (server.plane.components.ledger?.store.entries(0, 1_000) ?? [])
      .map((entry) => JSON.parse(entry.encoded) as { kind: string; data: object })
      .filter((entry) => entry.kind === "backup")
      .map((entry) => entry.data);
    expect(backupEntries).toEqual(
      expect.arrayContaining(
        list.snapshots.map((snapshot) => ({
          repository: `edge-a/${snapshot.level}`,
          snapshotId: snapshot.snapshotId,
          digest: snapshot.treeId,
          sizeBytes: snapshot.sizeBytes,
        })),
      ),
    );
    expect(server.plane.components.ledger?.store.findByDigest(cluster.treeId)).toBeDefined();

    // Restored on edge-b from the shards held by edge-b and edge-c.
    const firstTarget = join(root, "restore-1");
    const restored = await call<BackupRestoreResponse>(
      "POST",
      `/v1/backups/${cluster.snapshotId.slice(0, 12)}/restore`,
      { target: firstTarget, node: "edge-b" },
    );
    expect(restored).toMatchObject({ ok: true, node: "edge-b" });
    expect(countRows(join(firstTarget, "ledger", "ledger.db"))).toBe(600);
    expect(
      JSON.parse(readFileSync(join(firstTarget, "configuration", "backup-policies.json"), "utf8")),
    ).toHaveLength(1);

    // edge-c (one of the two holders, m = 1) is lost: the cluster copy still restores.
    await agents.get("edge-c")?.stop(false);
    const secondTarget = join(root, "restore-2");
    const again = await call<BackupRestoreResponse>(
      "POST",
      `/v1/backups/${cluster.snapshotId}/restore`,
      { target: secondTarget, node: "edge-b" },
    );
    expect(again.ok, again.message ?? "").toBe(true);
    expect(countRows(join(secondTarget, "ledger", "ledger.db"))).toBe(600);

    // With a holder gone, a new cluster backup of edge-a is skipped and reported; the others run.
    const degraded = await call<BackupRunResponse>("POST", "/v1/backups/run", {
      policy: "plant_data",
      node: "edge-a",
    });
    expect(degraded.results[0]?.ok).toBe(false);
    expect(degraded.results[0]?.message).toMatch(/EDGE_CLUSTER/);
    expect(degraded.results[0]?.snapshots.map((snapshot) => snapshot.level)).toEqual([
      "EDGE_LOCAL",
      "REGIONAL",
    ]);
    expect(degraded.results[0]?.levels.map((level) => level.outcome)).toEqual([
      "backup",
      "failed",
      "copy",
    ]);
    const failures = (await call<BackupListResponse>("GET", "/v1/backups")).failures;
    expect(failures).toMatchObject([
      { node: "edge-a", policy: "plant_data", level: "EDGE_CLUSTER" },
    ]);

    const verify = await call<BackupVerifyResponse>("POST", "/v1/backups/verify", {
      readData: true,
    });
    const edgeA = verify.reports.filter((report) => report.node === "edge-a");
    expect(edgeA.find((report) => report.level === "EDGE_LOCAL")?.ok).toBe(true);
    expect(edgeA.find((report) => report.level === "REGIONAL")?.ok).toBe(true);
  }, 60_000);
});
