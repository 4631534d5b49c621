// Failover's restore from backup, between two agents' backup parts: node a backs a service's
// data up to the REGIONAL tier (a blob server on loopback), node b restores the newest restore
// point into the service's data dir there and reports its age.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type {
  AgentServiceMessage,
  BackupPolicyDefinition,
  BackupSnapshotReport,
} from "../../api/service-messages.ts";
import { backupScheduleDefaults } from "../../core/backup/fleet-schedule.ts";
import { silentLogger } from "../../ports/logger.ts";
import { testingRepositoryOptions, withTemporaryDirectory } from "../../runtime/backup/testing.ts";
import { systemClock } from "../../runtime/system-clock.ts";
import { regionalTargets, startRegionalBlobServer } from "./backup-test-support.ts";
import { FleetBackups } from "./fleet-backups.ts";

const policy: BackupPolicyDefinition = {
  name: "production_data",
  dataTypes: ["production_metrics", "calibration_data"],
  sources: {
    production_metrics: { type: "service_data", service: "monitoring", path: null },
    calibration_data: { type: "service_data", service: "monitoring", path: "calibration" },
  },
  levels: [{ level: "REGIONAL", intervalSeconds: 3_600, retentionDays: 30 }],
  encryptionRequired: true,
};

function node(nodeId: string, dataDir: string, running: string[], sent: AgentServiceMessage[]) {
  return new FleetBackups(
    {
      nodeId,
      dataDir,
      schedule: { ...backupScheduleDefaults, tickIntervalMs: 3_600_000 },
      repositoryOptions: testingRepositoryOptions,
      requestTimeoutMs: 5_000,
    },
    {
      clock: systemClock,
      random: { nextFloat: () => 0 },
      logger: silentLogger,
      services: {
        dataDirOf: (service) => join(dataDir, "services", service),
        runningServices: () => running,
        logDir: join(dataDir, "logs"),
      },
      send: (message) => {
        sent.push(message);
        return true;
      },
    },
  );
}

describe("FleetBackups", () => {
  it("restores a service's newest backup on the failover target and reports its age", async () => {
    await withTemporaryDirectory(async (directory) => {
      const regionalApi = await startRegionalBlobServer(directory);
      const targets = regionalTargets(regionalApi.url);
      try {
        const primaryDir = join(directory, "a");
        const serviceDir = join(primaryDir, "services", "monitoring");
        mkdirSync(join(serviceDir, "calibration"), { recursive: true });
        writeFileSync(join(serviceDir, "metrics.jsonl"), '{"line":1,"count":42}\n');
        writeFileSync(join(serviceDir, "calibration", "offsets.json"), '{"x":0.5}\n');
        const sentByA: AgentServiceMessage[] = [];
        const primary = node("a", primaryDir, ["monitoring"], sentByA);
        await primary.handle({
          type: "backup-policies",
          policies: [policy],
          targets,
          restorePoints: {},
        });
        await primary.handle({
          type: "backup-command",
          id: 1,
          command: { type: "run", policy: "production_data", level: null },
        });
        const result = sentByA.find((message) => message.type === "backup-command-result");
        expect(result).toMatchObject({ id: 1, ok: true });
        const report = (result as { snapshots: BackupSnapshotReport[] }).snapshots[0];
        expect(report).toMatchObject({
          level: "REGIONAL",
          node: "a",
          dataTypes: ["production_metrics", "calibration_data"],
          services: { production_metrics: "monitoring", calibration_data: "monitoring" },
        });
        if (report === undefined) throw new Error("no snapshot");
        await primary.close();

        // Node a is gone; node b takes the service over and restores from REGIONAL.
        const targetDir = join(directory, "b");
        const target = node("b", targetDir, [], []);
        expect(await target.restoreServiceData("monitoring")).toEqual({
          ok: false,
          problem: "no fleet backup of monitoring exists yet",
        });
        await target.handle({
          type: "backup-policies",
          policies: [policy],
          targets,
          restorePoints: {
            monitoring: [
              {
                repository: { level: "REGIONAL", owner: "a", holders: [] },
                snapshotId: report.snapshotId,
                policy: "production_data",
                dataType: "production_metrics",
                atMs: report.atMs,
              },
            ],
          },
        });
        const restored = await target.restoreServiceData("monitoring");
        expect(restored.ok).toBe(true);
        if (!restored.ok) throw new Error(restored.problem);
        expect(restored.dataAgeMs).toBeGreaterThanOrEqual(0);
        expect(restored.dataAgeMs).toBeLessThan(60_000);
        const restoredDir = join(targetDir, "services", "monitoring");
        expect(readFileSync(join(restoredDir, "metrics.jsonl"), "utf8")).toContain('"count":42');
        expect(readFileSync(join(restoredDir, "calibration", "offsets.json"), "utf8")).toBe(
          '{"x":0.5}\n',
        );
        await target.close();
      } finally {
        regionalApi.close();
      }
    });
  });
});
