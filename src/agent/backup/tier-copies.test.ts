// Fleet backups with copies between tiers: one backup to EDGE_LOCAL, a copy to REGIONAL; with
// REGIONAL offline the copy stays pending and is made once the tier is back, and another node
// restores the copied snapshot from REGIONAL. An operator's run does the same, also into a
// REGIONAL repository with a key ring of its own.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type {
  AgentServiceMessage,
  BackupCommandResult,
  BackupLevelName,
  BackupPolicyDefinition,
  BackupSnapshotReport,
} from "../../api/service-messages.ts";
import { backupScheduleDefaults } from "../../core/backup/fleet-schedule.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import { silentLogger } from "../../ports/logger.ts";
import { DirectoryBlobStore } from "../../runtime/backup/directory-blob-store.ts";
import { initRepository, openRepository } from "../../runtime/backup/repository.ts";
import {
  noise,
  testingRepositoryOptions,
  withTemporaryDirectory,
} from "../../runtime/backup/testing.ts";
import { offlineUrl, regionalTargets, startRegionalBlobServer } from "./backup-test-support.ts";
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
      const closedUrl = await offlineUrl();
      const regionalApi = await startRegionalBlobServer(directory);
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
          targets: regionalTargets(closedUrl),
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
          targets: regionalTargets(regionalApi.url),
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
          targets: regionalTargets(regionalApi.url),
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
        regionalApi.close();
      }
    });
  });

  it("an operator's run backs up once and copies, also into a tier with its own key ring", async () => {
    await withTemporaryDirectory(async (directory) => {
      const regionalApi = await startRegionalBlobServer(directory);
      const targets = regionalTargets(regionalApi.url);
      try {
        // REGIONAL of node a was created before copies existed: a key ring of its own.
        const regionalStore = new DirectoryBlobStore(join(directory, "regional", "nodes", "a"));
        const regionalBefore = await initRepository(
          regionalStore,
          targets.password,
          testingRepositoryOptions,
        );
        const dataDir = join(directory, "a");
        const serviceDir = join(dataDir, "services", "monitoring");
        mkdirSync(serviceDir, { recursive: true });
        writeFileSync(join(serviceDir, "metrics.jsonl"), '{"line":1,"count":42}\n'.repeat(5_000));
        writeFileSync(join(serviceDir, "calibration.bin"), noise(200_000, 7));
        const clock = new ManualClock();
        const sent: AgentServiceMessage[] = [];
        const agent = node("a", dataDir, clock, sent);
        await agent.handle({
          type: "backup-policies",
          policies: [policy],
          targets,
          restorePoints: {},
        });
        const run = async (id: number, level: BackupLevelName | null) => {
          await agent.handle({
            type: "backup-command",
            id,
            command: { type: "run", policy: "production_data", level },
          });
          const result = sent.find(
            (message) => message.type === "backup-command-result" && message.id === id,
          ) as BackupCommandResult | undefined;
          if (result === undefined) throw new Error("no result");
          return result;
        };

        const first = await run(1, null);
        expect(first.ok).toBe(true);
        expect(first.levels).toMatchObject([
          { level: "EDGE_LOCAL", outcome: "backup", fromLevel: null },
          { level: "REGIONAL", outcome: "copy", fromLevel: "EDGE_LOCAL" },
        ]);
        const [local, regional] = first.snapshots ?? [];
        if (local === undefined || regional === undefined) throw new Error("no snapshots");
        expect(regional.atMs).toBe(local.atMs);
        const regionalRepository = await openRepository(regionalStore, targets.password);
        const localRepository = await openRepository(
          new DirectoryBlobStore(join(dataDir, "backups", "local")),
          targets.password,
        );
        expect(regionalRepository.keys.blobIdKey.equals(regionalBefore.keys.blobIdKey)).toBe(true);
        expect(regionalRepository.keys.blobIdKey.equals(localRepository.keys.blobIdKey)).toBe(
          false,
        );
        expect((await regionalRepository.loadSnapshot(regional.snapshotId)).copiedFrom).toBe(
          local.snapshotId,
        );
        const firstCopied = first.levels?.[1]?.blobsCopied ?? 0;
        expect(firstCopied).toBeGreaterThan(10);

        // One file changes: the next copy moves only its new blobs.
        writeFileSync(join(serviceDir, "metrics.jsonl"), '{"line":2,"count":43}\n'.repeat(5_000));
        clock.nowMsValue += 1_000;
        const second = await run(2, null);
        expect(second.levels?.map((level) => level.outcome)).toEqual(["backup", "copy"]);
        expect(second.levels?.[1]?.blobsCopied).toBeGreaterThan(0);
        expect(second.levels?.[1]?.blobsCopied).toBeLessThan(firstCopied / 2);

        // --level names one level: backed up directly.
        clock.nowMsValue += 1_000;
        const direct = await run(3, "REGIONAL");
        expect(direct.levels).toMatchObject([{ level: "REGIONAL", outcome: "backup" }]);
        await agent.close();

        // Another node restores the second copy from REGIONAL, byte for byte.
        const secondRegional = second.snapshots?.[1];
        if (secondRegional === undefined) throw new Error("no second copy");
        const otherDir = join(directory, "b");
        const other = node("b", otherDir, clock, []);
        await other.handle({
          type: "backup-policies",
          policies: [policy],
          targets,
          restorePoints: {
            monitoring: [
              {
                repository: { level: "REGIONAL", owner: "a", holders: [] },
                snapshotId: secondRegional.snapshotId,
                policy: "production_data",
                dataType: "production_metrics",
                atMs: secondRegional.atMs,
              },
            ],
          },
        });
        expect((await other.restoreServiceData("monitoring")).ok).toBe(true);
        const restoredDir = join(otherDir, "services", "monitoring");
        expect(readFileSync(join(restoredDir, "metrics.jsonl"), "utf8")).toBe(
          '{"line":2,"count":43}\n'.repeat(5_000),
        );
        expect(readFileSync(join(restoredDir, "calibration.bin")).equals(noise(200_000, 7))).toBe(
          true,
        );
        await other.close();
      } finally {
        regionalApi.close();
      }
    });
  });

  it("an operator's run with a tier offline copies to it later", async () => {
    await withTemporaryDirectory(async (directory) => {
      const closedUrl = await offlineUrl();
      const dataDir = join(directory, "a");
      mkdirSync(join(dataDir, "services", "monitoring"), { recursive: true });
      writeFileSync(join(dataDir, "services", "monitoring", "metrics.jsonl"), "x\n");
      const clock = new ManualClock();
      const sent: AgentServiceMessage[] = [];
      const agent = node("a", dataDir, clock, sent);
      await agent.handle({
        type: "backup-policies",
        policies: [policy],
        targets: regionalTargets(closedUrl),
        restorePoints: {},
      });
      await agent.handle({
        type: "backup-command",
        id: 1,
        command: { type: "run", policy: "production_data", level: null },
      });
      const result = sent.find((message) => message.type === "backup-command-result") as
        BackupCommandResult | undefined;
      expect(result?.ok).toBe(false);
      expect(result?.levels?.map((level) => level.outcome)).toEqual(["backup", "failed"]);
      const local = result?.snapshots?.[0];
      const schedule = JSON.parse(
        readFileSync(join(dataDir, "backups", "schedule.json"), "utf8"),
      ) as { pendingCopies: Record<string, unknown> };
      expect(schedule.pendingCopies["production_data/REGIONAL"]).toMatchObject({
        fromLevel: "EDGE_LOCAL",
        snapshotId: local?.snapshotId,
      });
      expect(agent.scheduleState()["production_data/REGIONAL"]?.lastError).toBeTruthy();
      await agent.close();
    });
  });
});
