// A server data dir: plaintext secrets of an earlier edgeward are sealed at start and keep
// working; `edgeward keys status` and `keys rotate` on a stopped server.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { keysStatus, rotateKeys } from "../cli/commands/keys.ts";
import { isSealed, parseSealedEnvelope } from "../core/security/sealed-envelope.ts";
import { detectorOptionsFor } from "../core/membership/detector-options.ts";
import { openDataDirKeys } from "../runtime/security/data-dir-keys.ts";
import { MemoryStore } from "../runtime/store/memory-store.ts";
import { loadOrCreateBackupPasswords } from "./backup/fleet-backup-passwords.ts";
import { startServer } from "./main.ts";
import { serverSecretFileNames } from "./server-keys.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

const start = (dataDir: string) =>
  startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir,
    detection: detectorOptionsFor("lan"),
    logger: pino({ level: "silent" }),
    store: new MemoryStore(),
    security: { tls: true, enforce: true },
    backup: {
      tiers: { edgeCluster: { dataShards: 1, parityShards: 1 }, regional: {} },
      policies: [],
    },
  });

const openKeys = (dataDir: string) =>
  openDataDirKeys({ dataDir, environment: {}, nowMs: 0, secretFileNames: [], create: false });

describe("server keys", () => {
  it("an earlier version's plaintext data dir is sealed at start and keeps its identity", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgeward-server-keys-"));
    directories.push(dataDir);
    const first = await start(dataDir);
    const adminToken = first.adminToken;
    const caFingerprint = first.security.caFingerprint;
    await first.close();
    // Turn it into what an earlier edgeward left: every secret in plaintext, no keyring.
    const keys = openKeys(dataDir);
    const password = loadOrCreateBackupPasswords(keys.files, 0)[0]?.password ?? "";
    for (const name of serverSecretFileNames) {
      const content = keys.files.read(name);
      if (content !== undefined) writeFileSync(keys.files.pathOf(name), content, { mode: 0o600 });
    }
    writeFileSync(join(dataDir, "backup.key"), `${password}\n`, { mode: 0o600 });
    rmSync(join(dataDir, "keyring.json"));
    rmSync(join(dataDir, "master.key"));

    const upgraded = await start(dataDir);
    try {
      expect(upgraded.adminToken).toBe(adminToken);
      expect(upgraded.security.caFingerprint).toBe(caFingerprint);
      for (const name of serverSecretFileNames)
        expect(isSealed(readFileSync(join(dataDir, name))), name).toBe(true);
      expect(readFileSync(join(dataDir, "backup.key"), "latin1")).not.toContain(password);
      expect(loadOrCreateBackupPasswords(openKeys(dataDir).files, 0)[0]?.password).toBe(password);
    } finally {
      await upgraded.close();
    }
  });

  it("keys status and keys rotate on a stopped server; the old data stays readable", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgeward-server-keys-"));
    directories.push(dataDir);
    const server = await start(dataDir);
    const adminToken = server.adminToken;
    await server.close();
    // Another live process (this test's parent) holds the data dir: rotation waits for it.
    writeFileSync(join(dataDir, "keys.pid"), `${process.ppid}\n`);
    await expect(rotateKeys({ dataDir }, Date.now())).rejects.toThrow(
      /process \d+ is running on .* and holds its keys/,
    );
    rmSync(join(dataDir, "keys.pid"));

    const nowMs = Date.now();
    const before = await keysStatus({ dataDir }, nowMs);
    expect(before).toMatchObject({
      kind: "server",
      rotationPolicy: "monthly",
      rotationDue: false,
      versions: [{ keyId: "data-key-1", version: 1, current: true }],
      backupPasswords: { versions: 1 },
      rootKey: { source: "data-dir" },
    });
    expect(Date.parse(before.nextRotationDueAt) - nowMs).toBeGreaterThan(29 * 86_400_000);

    const rotation = await rotateKeys({ dataDir }, nowMs);
    expect(
      rotation.rotations.map((report) => [report.purpose, report.previousKeyId, report.keyId]),
    ).toEqual([
      ["secrets-at-rest", "data-key-1", "data-key-2"],
      ["backup-repository-password", "backup-password-1", "backup-password-2"],
    ]);
    for (const name of ["signing.key", "admin.token", "tls/ca.key"])
      expect(parseSealedEnvelope(readFileSync(join(dataDir, name)), name).keyVersion).toBe(2);
    const after = await keysStatus({ dataDir }, nowMs);
    expect(after.versions.map((version) => version.current)).toEqual([false, true]);
    expect(after.backupPasswords?.versions).toBe(2);

    const restarted = await start(dataDir);
    try {
      expect(restarted.adminToken).toBe(adminToken);
      const entries = await restarted.app.inject({
        method: "GET",
        url: "/v1/ledger/entries",
        headers: { authorization: `Bearer ${adminToken}` },
      });
      const rotations = entries
        .json<{ entries: { kind: string; encoded: string }[] }>()
        .entries.filter((entry) => entry.kind === "key.rotation");
      expect(rotations).toHaveLength(2);
    } finally {
      await restarted.close();
    }
  });

  it("POST /v1/keys/rotate rotates a running server for an admin only", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "edgeward-server-keys-"));
    directories.push(dataDir);
    const server = await start(dataDir);
    try {
      const asViewer = await server.app.inject({
        method: "POST",
        url: "/v1/tokens",
        payload: { role: "viewer" },
        headers: { authorization: `Bearer ${server.adminToken}` },
      });
      const viewerToken = asViewer.json<{ token: string }>().token;
      const refused = await server.app.inject({
        method: "POST",
        url: "/v1/keys/rotate",
        headers: { authorization: `Bearer ${viewerToken}` },
      });
      expect(refused.statusCode).toBe(403);
      const rotated = await server.app.inject({
        method: "POST",
        url: "/v1/keys/rotate",
        headers: { authorization: `Bearer ${server.adminToken}` },
      });
      expect(rotated.statusCode, rotated.body).toBe(200);
      expect(
        rotated.json<{ rotations: { keyId: string }[] }>().rotations.map((report) => report.keyId),
      ).toEqual(["data-key-2", "backup-password-2"]);
      expect(parseSealedEnvelope(readFileSync(join(dataDir, "signing.key")), "x").keyVersion).toBe(
        2,
      );
    } finally {
      await server.close();
    }
  });
});
