// Fleet backups with copies between tiers: one backup to EDGE_LOCAL, a copy to REGIONAL; with
// REGIONAL offline the copy stays pending and is made once the tier is back, and another node
// restores the copied snapshot from REGIONAL.

import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type {
  AgentServiceMessage,
  BackupPolicyDefinition,
  BackupSnapshotReport,
  BackupTargets,
} from "../../api/service-messages.ts";
import { backupScheduleDefaults } from "../../core/backup/fleet-schedule.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import { silentLogger } from "../../ports/logger.ts";
import {
  allowEveryRequest,
  createBlobStoreHttpHandler,
} from "../../runtime/backup/blob-store-http-handler.ts";
import { DirectoryBlobStore } from "../../runtime/backup/directory-blob-store.ts";
import { testingRepositoryOptions, withTemporaryDirectory } from "../../runtime/backup/testing.ts";
import { FleetBackups } from "./fleet-backups.ts";

/** Time moves only when the test says; the scheduler's tick runs when the test fires it. */
class ManualClock implements Clock {
  nowMsValue = 1_000_000;
  readonly timers: Array<() => void> = [];
  nowMs(): number {
    return this.nowMsValue;
  }
  schedule(_delayMs: number, callback: () => void): CancelTimer {
    this.timers.push(callback);
    return () => {};
  }
  fire(): void {
    const timers = this.timers.splice(0);
    for (const timer of timers) timer();
  }
}

const policy: BackupPolicyDefinition = {
  name: "production_data",
  dataTypes: ["production_metrics"],
  sources: { production_metrics: { type: "service_data", service: "monitoring", path: null } },
  levels: [
    { level: "EDGE_LOCAL", intervalSeconds: 3_600, retentionDays: 7 },
    { level: "REGIONAL", intervalSeconds: 3_600, retentionDays: 30 },
  ],
  encryptionRequired: true,
};

function node(nodeId: string, dataDir: string, clock: Clock, sent: AgentServiceMessage[]) {
  return new FleetBackups(
    {
      nodeId,
      dataDir,
      schedule: { ...backupScheduleDefaults, tickIntervalMs: 1_000 },
      repositoryOptions: testingRepositoryOptions,
      requestTimeoutMs: 5_000,
    },
    {
      clock,
      random: { nextFloat: () => 0 },
      logger: silentLogger,
      services: {
        dataDirOf: (service) => join(dataDir, "services", service),
        runningServices: () => ["monitoring"],
        logDir: join(dataDir, "logs"),
      },
      send: (message) => {
        sent.push(message);
        return true;
      },
    },
  );
}

const completed = (sent: AgentServiceMessage[], level: string): BackupSnapshotReport[] =>
  sent.flatMap((message) =>
    message.type === "backup-completed" && message.snapshot.level === level
      ? [message.snapshot]
      : [],
  );

describe("fleet backups with tier copies", () => {
  it("backs up once, copies to an offline tier when it is back, and the copy restores", async () => {
    await withTemporaryDirectory(async (directory) => {
      // A port nothing listens on: REGIONAL is offline.
      const closed = createServer();
      closed.listen(0, "127.0.0.1");
      await once(closed, "listening");
      const closedPort = (closed.address() as AddressInfo).port;
      closed.close();
      const blobServer = createServer(
        createBlobStoreHttpHandler(new DirectoryBlobStore(join(directory, "regional")), {
          authorize: allowEveryRequest,
        }),
      );
      blobServer.listen(0, "127.0.0.1");
      await once(blobServer, "listening");
      const { port } = blobServer.address() as AddressInfo;
      const targets = (regionalPort: number): BackupTargets => ({
        password: "fleet key for the test",
        peers: {},
        clusterDataShards: 2,
        clusterParityShards: 2,
        regionalUrl: `http://127.0.0.1:${regionalPort}`,
        cloud: null,
      });
      try {
        const dataDir = join(directory, "a");
        const serviceDir = join(dataDir, "services", "monitoring");
        mkdirSync(serviceDir, { recursive: true });
        const content = `${'{"line":1,"count":42}\n'.repeat(5_000)}`;
        writeFileSync(join(serviceDir, "metrics.jsonl"), content);
        const clock = new ManualClock();
        const sent: AgentServiceMessage[] = [];
        const agent = node("a", dataDir, clock, sent);
        await agent.handle({
          type: "backup-policies",
          policies: [policy],
          targets: targets(closedPort),
          restorePoints: {},
        });
        agent.start();
        clock.fire();
        await vi.waitFor(
          () => expect(agent.scheduleState()["production_data/REGIONAL"]?.lastError).toBeTruthy(),
          { timeout: 20_000, interval: 50 },
        );
        expect(completed(sent, "EDGE_LOCAL")).toHaveLength(1);
        expect(completed(sent, "REGIONAL")).toHaveLength(0);

        // REGIONAL is back (at a new address): the pending copy, not a new backup, is made.
        await agent.handle({
          type: "backup-policies",
          policies: [policy],
          targets: targets(port),
          restorePoints: {},
        });
        clock.nowMsValue += 60_000;
        clock.fire();
        await vi.waitFor(() => expect(completed(sent, "REGIONAL")).toHaveLength(1), {
          timeout: 20_000,
          interval: 50,
        });
        expect(completed(sent, "EDGE_LOCAL")).toHaveLength(1);
        expect(agent.scheduleState()["production_data/REGIONAL"]?.lastError).toBeNull();
        const local = completed(sent, "EDGE_LOCAL")[0] as BackupSnapshotReport;
        const regional = completed(sent, "REGIONAL")[0] as BackupSnapshotReport;
        expect(regional.atMs).toBe(local.atMs);
        expect(regional.dataTypes).toEqual(["production_metrics"]);
        expect(regional.services).toEqual({ production_metrics: "monitoring" });
        const schedule = JSON.parse(
          readFileSync(join(dataDir, "backups", "schedule.json"), "utf8"),
        ) as { pendingCopies: object };
        expect(schedule.pendingCopies).toEqual({});
        await agent.close();

        // Another node restores the copy from REGIONAL, byte for byte.
        const otherDir = join(directory, "b");
        const other = node("b", otherDir, clock, []);
        await other.handle({
          type: "backup-policies",
          policies: [policy],
          targets: targets(port),
          restorePoints: {
            monitoring: [
              {
                repository: { level: "REGIONAL", owner: "a", holders: [] },
                snapshotId: regional.snapshotId,
                policy: "production_data",
                dataType: "production_metrics",
                atMs: regional.atMs,
              },
            ],
          },
        });
        const restored = await other.restoreServiceData("monitoring");
        expect(restored.ok).toBe(true);
        expect(
          readFileSync(join(otherDir, "services", "monitoring", "metrics.jsonl"), "utf8"),
        ).toBe(content);
        await other.close();
      } finally {
        blobServer.closeAllConnections();
        blobServer.close();
      }
    });
  });
});
