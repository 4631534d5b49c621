// No key or token reaches a log: a secure server and agents with capturing loggers go through
// enrolment, token creation, credential renewal, a backup, a key rotation (with the agent
// re-wrapping its repository key) and a restore of the pre-rotation snapshot; then every
// secret the data dirs hold, in hex, base64 and PEM form, is looked for in every captured line.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testResources } from "../agent/agent-test-support.ts";
import type {
  BackupListResponse,
  BackupRestoreResponse,
  BackupRunResponse,
} from "../api/contract.ts";
import type { JoinTokenResponse, UserTokenResponse } from "../api/security-contract.ts";
import type { LedgerEntriesResponse } from "../api/ledger-contract.ts";
import { AgentCredentials } from "../agent/agent-credentials.ts";
import { agentSecretFileNames } from "../agent/agent-keys.ts";
import { startAgent, type RunningAgent } from "../agent/main.ts";
import { createProcessLogger } from "../cli/logging.ts";
import { backupScheduleDefaults } from "../core/backup/fleet-schedule.ts";
import { detectorOptionsFor } from "../core/membership/detector-options.ts";
import { testingRepositoryOptions } from "../runtime/backup/testing.ts";
import { createJsonLineLogger } from "../runtime/json-line-logger.ts";
import { openDataDirKeys } from "../runtime/security/data-dir-keys.ts";
import { parseRootKey } from "../runtime/security/root-key.ts";
import { MemoryStore } from "../runtime/store/memory-store.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { startServer, type RunningServer } from "./main.ts";
import { serverSecretFileNames } from "./server-keys.ts";

const { cleanups } = testResources("secrets-in-logs");

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadlineMs = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The forms a secret could leak in: as is, and its bytes in hex, base64 and base64url. */
function leakForms(secret: string | Buffer): string[] {
  const forms = new Set<string>();
  const add = (form: string) => {
    if (form.length >= 16) forms.add(form);
  };
  if (typeof secret === "string") {
    add(secret.trim());
    // PEM bodies: every line of base64 on its own.
    for (const line of secret.split("\n"))
      if (!line.startsWith("-----") && line.trim().length >= 16) add(line.trim());
    // JSON documents (credential, backup passwords): every string value.
    if (secret.trim().startsWith("{"))
      for (const match of secret.matchAll(/"([^"]{16,})"/g)) add(match[1] ?? "");
  } else {
    add(secret.toString("hex"));
    add(secret.toString("base64"));
    add(secret.toString("base64url"));
  }
  return [...forms];
}

function secretsOf(dataDir: string, names: readonly string[], masterKey: Buffer): string[] {
  const keys = openDataDirKeys({
    dataDir,
    environment: {},
    nowMs: 0,
    secretFileNames: [],
    create: false,
  });
  const forms = leakForms(masterKey);
  for (const name of names) {
    const content = keys.files.readText(name);
    if (content !== undefined) forms.push(...leakForms(content));
  }
  return forms;
}

describe("secrets and logs", () => {
  it("no token, key or password reaches any log line through enrolment, tokens, renewal, backups and rotation", async () => {
    const root = mkdtempSync(join(tmpdir(), "edgeward-secrets-in-logs-"));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const lines: string[] = [];
    const capture = { write: (line: string) => void lines.push(line) };
    const serverDir = join(root, "server");
    const server: RunningServer = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: serverDir,
      detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
      logger: createProcessLogger("edgeward-server", "trace", capture),
      store: new MemoryStore(),
      security: { tls: true, enforce: true },
      // REGIONAL: the server's blob API, over https with the fleet CA the agent pinned.
      blobDir: join(root, "regional"),
      backup: {
        tiers: { edgeCluster: { dataShards: 1, parityShards: 1 }, regional: {} },
        policies: [
          {
            name: "plant_data",
            dataTypes: ["configuration"],
            sources: { configuration: { type: "configuration" } },
            levels: [
              { level: "EDGE_LOCAL", intervalSeconds: 300, retentionDays: 7 },
              { level: "REGIONAL", intervalSeconds: 3_600, retentionDays: 30 },
            ],
            encryptionRequired: true,
          },
        ],
      },
    });
    cleanups.push(() => server.close());
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const post = async <Body>(url: string, payload: object) => {
      const response = await server.app.inject({ method: "POST", url, payload, headers: admin });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<Body>();
    };
    const get = async <Body>(url: string) => {
      const response = await server.app.inject({ method: "GET", url, headers: admin });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<Body>();
    };

    const userToken = await post<UserTokenResponse>("/v1/tokens", { role: "operator" });
    const joinA = await post<JoinTokenResponse>("/v1/tokens/join", { nodeId: "edge-a" });
    const joinB = await post<JoinTokenResponse>("/v1/tokens/join", { nodeId: "edge-b" });

    const agentLogger = createJsonLineLogger("edgeward-agent", "trace", (line) => {
      lines.push(line);
    });
    const agentDir = join(root, "edge-a");
    mkdirSync(agentDir, { recursive: true });
    const agent: RunningAgent = await startAgent({
      nodeId: "edge-a",
      serverUrl: server.url,
      dataDir: agentDir,
      listenHost: "127.0.0.1",
      listenPort: 0,
      logger: agentLogger,
      joinToken: joinA.token,
      backups: {
        schedule: { ...backupScheduleDefaults, jitterMsMax: 0, tickIntervalMs: 3_600_000 },
        repositoryOptions: testingRepositoryOptions,
      },
    });
    cleanups.push(() => agent.stop(false));
    const { links } = server.plane.components;
    await waitFor(() => links.connected("edge-a"), "edge-a to connect");

    // Enrolment and renewal of a second node's credential, with the same kind of logger.
    const nodeBDir = join(root, "edge-b");
    const credentialsB = await AgentCredentials.open({
      nodeId: "edge-b",
      serverUrl: server.url,
      dataDir: nodeBDir,
      secrets: openDataDirKeys({
        dataDir: nodeBDir,
        environment: {},
        nowMs: systemClock.nowMs(),
        secretFileNames: agentSecretFileNames,
        create: true,
      }).files,
      joinToken: joinB.token,
      clock: systemClock,
      logger: agentLogger,
    });
    const firstCredential = credentialsB.token;
    await credentialsB.renew();
    expect(credentialsB.token).not.toBe(firstCredential);

    const before = await post<BackupRunResponse>("/v1/backups/run", {
      policy: "plant_data",
      node: "edge-a",
    });
    expect(before.results[0]?.ok, before.results[0]?.message ?? "").toBe(true);
    expect(before.results[0]?.levels.map((level) => [level.level, level.outcome])).toEqual([
      ["EDGE_LOCAL", "backup"],
      ["REGIONAL", "copy"],
    ]);
    const oldPasswords = readFileSync(join(serverDir, "backup.key"));

    const rotations = server.rotateKeys();
    expect(rotations.map((rotation) => rotation.purpose)).toEqual([
      "secrets-at-rest",
      "backup-repository-password",
    ]);
    expect(readFileSync(join(serverDir, "backup.key"))).not.toEqual(oldPasswords);
    // The agent has the new password once the pushed policies arrive; its next backup
    // re-wraps each repository's key under it.
    const after = await post<BackupRunResponse>("/v1/backups/run", {
      policy: "plant_data",
      node: "edge-a",
    });
    expect(after.results[0]?.ok, after.results[0]?.message ?? "").toBe(true);
    expect(lines.some((line) => line.includes("re-wrapped the repository key"))).toBe(true);
    const entries = await get<LedgerEntriesResponse>("/v1/ledger/entries");
    const rotationEntries = entries.entries.filter((entry) => entry.kind === "key.rotation");
    expect(rotationEntries.map((entry) => entry.encoded).join("\n")).toMatch(
      /data-key-2.*secrets-at-rest[\s\S]*backup-password-2.*backup-repository-password/,
    );

    // A snapshot taken before the rotation still restores.
    const list = await get<BackupListResponse>("/v1/backups");
    const oldLocal = list.snapshots.find((snapshot) =>
      before.results[0]?.snapshots.some((taken) => taken.snapshotId === snapshot.snapshotId),
    );
    if (oldLocal === undefined) throw new Error("no snapshot from before the rotation");
    const restored = await post<BackupRestoreResponse>(
      `/v1/backups/${oldLocal.snapshotId}/restore`,
      { target: join(root, "restored"), node: "edge-a" },
    );
    expect(restored.ok, restored.message ?? "").toBe(true);

    const secrets = [
      ...leakForms(server.adminToken),
      ...leakForms(userToken.token),
      ...leakForms(joinA.token),
      ...leakForms(joinB.token),
      ...leakForms(firstCredential ?? ""),
      ...leakForms(credentialsB.token ?? ""),
      ...secretsOf(
        serverDir,
        serverSecretFileNames,
        parseRootKey(readFileSync(join(serverDir, "master.key")), "master.key"),
      ),
      ...secretsOf(
        agentDir,
        agentSecretFileNames,
        parseRootKey(readFileSync(join(agentDir, "master.key")), "master.key"),
      ),
      ...leakForms(oldPasswords.toString("base64")),
    ];
    expect(secrets.length).toBeGreaterThan(20);
    for (const message of [
      "enrolled with the server",
      "node credential renewed",
      "rotated a key",
      "re-wrapped the repository key",
      "beside the data",
    ])
      expect(
        lines.some((line) => line.includes(message)),
        message,
      ).toBe(true);
    const text = lines.join("");
    const leaked = secrets.filter((secret) => text.includes(secret));
    expect(leaked.map((secret) => `${secret.slice(0, 8)}…`)).toEqual([]);
  });

  it("the loggers redact fields named like secrets, at any depth", () => {
    const lines: string[] = [];
    const pinoLogger = createProcessLogger("test", "info", {
      write: (line: string) => void lines.push(line),
    });
    const jsonLogger = createJsonLineLogger("test", "info", (line) => void lines.push(line));
    const fields = {
      token: "tok-SECRET-1",
      password: "pw-SECRET-2",
      nested: { key: "key-SECRET-3", Authorization: "Bearer SECRET-4" },
      node: "edge-1",
    };
    pinoLogger.info(fields, "pino");
    jsonLogger.info(fields, "json");
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toMatch(/SECRET/);
      expect(line).toContain("edge-1");
      expect(line).toContain("[redacted]");
    }
  });
});
