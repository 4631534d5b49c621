import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { FleetEvent } from "../../api/contract.ts";
import type { BackupSnapshotReport, ServerServiceMessage } from "../../api/service-messages.ts";
import { dayMs } from "../../core/backup/fleet-schedule.ts";
import type { Clock } from "../../ports/clock.ts";
import { testSecretFiles } from "../../runtime/security/testing.ts";
import { MemoryStore } from "../../runtime/store/memory-store.ts";
import { EventLog } from "../event-log.ts";
import type { AgentLinks } from "../services/agent-links.ts";
import { BackupControl, backupControlDefaults } from "./backup-control.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true });
});

function snapshot(
  id: string,
  level: "EDGE_LOCAL" | "EDGE_CLUSTER",
  ageDays: number,
  nowMs: number,
): BackupSnapshotReport {
  return {
    snapshotId: id.repeat(64).slice(0, 64),
    treeId: "7".repeat(64),
    policy: "production_data",
    level,
    node: "edge-1",
    holders: level === "EDGE_CLUSTER" ? ["edge-2", "edge-3"] : [],
    atMs: nowMs - ageDays * dayMs,
    durationMs: 10,
    sizeBytes: 100,
    addedBytes: 10,
    filesNew: 1,
    filesUnchanged: 0,
    dataTypes: ["production_metrics"],
    services: { production_metrics: "production_monitoring" },
    encrypted: true,
  };
}

describe("BackupControl", () => {
  it("expires snapshots past retentionDays on their node and drops them from the catalogue", async () => {
    const directory = mkdtempSync(join(tmpdir(), "edgeward-backup-control-"));
    directories.push(directory);
    const nowMs = 100 * dayMs;
    const clock: Clock = { nowMs: () => nowMs, schedule: () => () => {} };
    const sent: ServerServiceMessage[] = [];
    const answering: { control?: BackupControl } = {};
    const links = {
      nodes: () => ["edge-1"][Symbol.iterator](),
      connected: () => true,
      send: (_nodeId: string, message: ServerServiceMessage) => {
        sent.push(message);
        // The agent forgets and prunes, then answers.
        if (message.type === "backup-command")
          queueMicrotask(() =>
            answering.control?.agentMessage("edge-1", {
              type: "backup-command-result",
              id: message.id,
              ok: true,
              message: "forgot",
            }),
          );
        return true;
      },
    } as unknown as AgentLinks;
    const store = new MemoryStore();
    const events = new EventLog(store, pino({ level: "silent" }));
    const control = new BackupControl(
      {
        ...backupControlDefaults,
        spec: {
          tiers: { edgeCluster: { dataShards: 2, parityShards: 2 }, regional: {} },
          policies: [
            {
              name: "production_data",
              dataTypes: ["production_metrics"],
              sources: {
                production_metrics: { type: "service_data", service: "production_monitoring" },
              },
              levels: [
                { level: "EDGE_LOCAL", intervalSeconds: 300, retentionDays: 7 },
                { level: "EDGE_CLUSTER", intervalSeconds: 1_800, retentionDays: 30 },
              ],
              encryptionRequired: true,
            },
          ],
        },
        secrets: testSecretFiles(directory),
        regionalEnabled: false,
        cloud: null,
      },
      {
        clock,
        logger: pino({ level: "silent" }),
        store,
        events,
        links,
        nodes: () => [],
        nodeOfService: () => null,
      },
    );
    answering.control = control;
    await control.start();
    // The fleet key is created private to the server.
    expect(statSync(join(directory, "backup.key")).mode & 0o777).toBe(0o600);

    for (const report of [
      snapshot("a", "EDGE_LOCAL", 10, nowMs),
      snapshot("b", "EDGE_LOCAL", 8, nowMs),
      snapshot("c", "EDGE_LOCAL", 1, nowMs),
      snapshot("d", "EDGE_CLUSTER", 10, nowMs),
      snapshot("e", "EDGE_CLUSTER", 1, nowMs),
    ])
      control.agentMessage("edge-1", { type: "backup-completed", snapshot: report });

    expect(await control.expire()).toBe(2);
    const forget = sent.find((message) => message.type === "backup-command");
    expect(forget).toMatchObject({
      command: {
        type: "forget",
        level: "EDGE_LOCAL",
        snapshotIds: ["a".repeat(64), "b".repeat(64)],
      },
    });
    expect(control.list().snapshots.map((entry) => entry.snapshotId[0])).toEqual(["c", "e", "d"]);

    // Agents learn each service's newest restore point beyond EDGE_LOCAL.
    const policies = sent.filter((message) => message.type === "backup-policies").at(-1);
    expect(policies?.type === "backup-policies" && policies.restorePoints).toMatchObject({
      production_monitoring: [
        { snapshotId: "e".repeat(64), dataType: "production_metrics" },
        { snapshotId: "d".repeat(64), repository: { level: "EDGE_CLUSTER", owner: "edge-1" } },
      ],
    });

    await events.settled();
    const types = (await events.read(0, 100)).map((event: FleetEvent) => event.type);
    expect(types.filter((type) => type === "backup.completed")).toHaveLength(5);
    expect(types).toContain("backup.expired");
    await control.close();
  });
});
