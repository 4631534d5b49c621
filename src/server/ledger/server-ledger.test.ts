import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import fc from "fast-check";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type {
  LedgerConsistencyResponse,
  LedgerEntriesResponse,
  LedgerInclusionResponse,
  LedgerTreeHeadResponse,
} from "../../api/ledger-contract.ts";
import { ledgerExportSchema, type LedgerExport } from "../../core/ledger/audit.ts";
import { fromHex, toHex, utf8 } from "../../core/ledger/bytes.ts";
import { canonicalJson } from "../../core/ledger/canonical-json.ts";
import { LedgerEntryError, type LedgerEntryDraft } from "../../core/ledger/entries.ts";
import {
  leafHash,
  MemoryMerkleTree,
  verifyConsistency,
  verifyInclusion,
} from "../../core/ledger/merkle.ts";
import { treeHeadSigningInput } from "../../core/ledger/tree-head.ts";
import type { Clock } from "../../ports/clock.ts";
import { silentLogger } from "../../ports/logger.ts";
import { ledgerKeyFileName, loadOrCreateLedgerKey } from "../../runtime/ledger/ledger-key.ts";
import { testSecretFiles } from "../../runtime/security/testing.ts";
import { sha256 } from "../../runtime/ledger/sha256.ts";
import { SqliteLedger } from "../../runtime/ledger/sqlite-ledger.ts";
import { checkInclusion, inclusionFromExport, verifyExport } from "../../cli/commands/audit.ts";
import { ledgerVerifier } from "../../runtime/ledger/ledger-key.ts";
import { HttpError } from "../http-error.ts";
import { registerLedgerRoutes } from "../routes/ledger.ts";
import { ServerLedger } from "./server-ledger.ts";

const directories: string[] = [];
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

function tempDir(): string {
  const directory = mkdtempSync(join(tmpdir(), "edgeward-ledger-"));
  directories.push(directory);
  return directory;
}

function fixedClock(startMs = 1_780_000_000_000): Clock & { advance(ms: number): void } {
  let nowMs = startMs;
  return {
    nowMs: () => nowMs,
    schedule: () => () => {},
    advance: (ms) => (nowMs += ms),
  };
}

function draft(index: number): LedgerEntryDraft {
  switch (index % 4) {
    case 0:
      return {
        kind: "enrolment",
        atMs: 1_780_000_000_000 + index,
        data: { node: `edge-${index}`, incarnation: index, method: "register" },
      };
    case 1:
      return {
        kind: "backup",
        atMs: 1_780_000_000_000 + index,
        data: {
          repository: "file:///backups",
          snapshotId: `snap-${index}`,
          digest: toHex(sha256(utf8(`snapshot ${index}`))),
          items: [{ path: "db/data.sqlite", digest: toHex(sha256(utf8(`item ${index}`))) }],
        },
      };
    case 2:
      return {
        kind: "security.event",
        atMs: 1_780_000_000_000 + index,
        data: {
          type: "auth.failed",
          source: "10.0.0.7",
          severity: "high",
          eventAtMs: 1_780_000_000_000 + index,
          details: { attempts: 5, route: "/v1/nodes" },
        },
      };
    default:
      return {
        kind: "token.issued",
        atMs: 1_780_000_000_000 + index,
        data: {
          tokenId: `t${index}`,
          subject: "alice",
          tokenKind: "user",
          roles: ["viewer"],
          expiresAtMs: 1_790_000_000_000,
        },
      };
  }
}

function openLedger(dataDir: string, clock: Clock = fixedClock()): ServerLedger {
  const ledger = ServerLedger.open(dataDir, {
    clock,
    logger: silentLogger,
    secrets: testSecretFiles(dataDir),
  });
  closers.push(() => ledger.close());
  return ledger;
}

function exportOf(ledger: ServerLedger): LedgerExport {
  return ledgerExportSchema.parse(JSON.parse([...ledger.exportJson()].join("")));
}

/** A ledger with heads signed at sizes 3, 6 and 10. */
function ledgerWithHistory(): {
  ledger: ServerLedger;
  dataDir: string;
  clock: ReturnType<typeof fixedClock>;
} {
  const dataDir = tempDir();
  const clock = fixedClock();
  const ledger = openLedger(dataDir, clock);
  for (const size of [3, 6, 10]) {
    while (ledger.store.size < size) ledger.record(draft(ledger.store.size));
    clock.advance(60_000);
    ledger.publish();
  }
  return { ledger, dataDir, clock };
}

describe("SqliteLedger", () => {
  it("keeps entries, subtrees and heads across a reopen; roots and proofs match a memory tree", () => {
    const path = join(tempDir(), "ledger.db");
    const memory = new MemoryMerkleTree(sha256);
    let ledger = new SqliteLedger(path);
    for (let index = 0; index < 37; index++) {
      const stored = ledger.append(draft(index));
      memory.appendLeafHash(fromHex(stored.leafHash));
      expect(stored.index).toBe(index);
    }
    ledger.close();
    ledger = new SqliteLedger(path);
    closers.push(() => ledger.close());
    expect(ledger.size).toBe(37);
    expect(toHex(ledger.root())).toBe(toHex(memory.root()));
    ledger.appendMany([draft(37), draft(38), draft(39)]);
    // After the reopen, appends continue from the stored frontier.
    const rebuilt = new MemoryMerkleTree(sha256);
    for (const entry of ledger.entries(0, 1_000)) rebuilt.appendLeafHash(fromHex(entry.leafHash));
    for (let size = 0; size <= 40; size++)
      expect(toHex(ledger.root(size))).toBe(toHex(rebuilt.root(size)));
    for (let index = 0; index < 40; index += 7) {
      expect(ledger.inclusionProof(index, 40).map(toHex)).toEqual(
        rebuilt.inclusionProof(index, 40).map(toHex),
      );
      expect(ledger.consistencyProof(index, 40).map(toHex)).toEqual(
        rebuilt.consistencyProof(index, 40).map(toHex),
      );
    }
  });

  it("encodes each entry as canonical JSON with its index, hashed as RFC 6962 leaf data", () => {
    const ledger = new SqliteLedger(join(tempDir(), "ledger.db"));
    closers.push(() => ledger.close());
    const stored = ledger.append(draft(0));
    expect(stored.encoded).toBe(
      '{"atMs":1780000000000,"data":{"incarnation":0,"method":"register","node":"edge-0"},"index":0,"kind":"enrolment","v":1}',
    );
    expect(stored.leafHash).toBe(toHex(sha256(Uint8Array.from([0, ...utf8(stored.encoded)]))));
  });

  it("refuses a bad entry without changing anything, and finds entries by content digest", () => {
    const ledger = new SqliteLedger(join(tempDir(), "ledger.db"));
    closers.push(() => ledger.close());
    ledger.append(draft(0));
    const root = toHex(ledger.root());
    expect(() =>
      ledger.appendMany([
        draft(1),
        {
          kind: "quarantine",
          atMs: 5,
          data: { node: "x", action: "maybe" },
        } as unknown as LedgerEntryDraft,
      ]),
    ).toThrow(LedgerEntryError);
    expect(ledger.size).toBe(1);
    expect(toHex(ledger.root())).toBe(root);
    const backup = ledger.append(draft(1));
    const itemDigest = toHex(sha256(utf8("item 1")));
    expect(ledger.findByDigest(itemDigest)).toBe(backup.index);
    expect(ledger.findByDigest(backup.leafHash)).toBe(backup.index);
    expect(ledger.findByDigest("00".repeat(32))).toBeUndefined();
  });

  it("finds digests before and after they are merged into the sorted index, and after a reopen", () => {
    const path = join(tempDir(), "ledger.db");
    // Each entry adds its leaf hash and the digests it names (a backup: two more).
    let ledger = new SqliteLedger(path, sha256, { recentDigestsMax: 5 });
    const stored = [...ledger.appendMany([draft(0), draft(1)]), ledger.append(draft(2))];
    for (let index = 3; index < 10; index++) stored.push(ledger.append(draft(index)));
    const check = (store: SqliteLedger) => {
      for (const entry of stored) {
        expect(store.findByDigest(entry.leafHash)).toBe(entry.index);
        if (entry.kind === "backup")
          expect(store.findByDigest(toHex(sha256(utf8(`item ${entry.index}`))))).toBe(entry.index);
      }
      expect(store.findByDigest("00".repeat(32))).toBeUndefined();
    };
    check(ledger);
    ledger.close();
    const database = new Database(path);
    const counts = database
      .prepare(
        "SELECT (SELECT COUNT(*) FROM digest_index) AS merged, (SELECT COUNT(*) FROM recent_digests) AS recent",
      )
      .get() as { merged: number; recent: number };
    database.close();
    expect(counts.merged).toBeGreaterThan(0);
    expect(counts.recent).toBeLessThan(5);
    ledger = new SqliteLedger(path, sha256, { recentDigestsMax: 5 });
    closers.push(() => ledger.close());
    check(ledger);
  });

  it("moves a version 1 ledger's leaf-hash index and digest table into the digest index", () => {
    const path = join(tempDir(), "ledger.db");
    const ledger = new SqliteLedger(path);
    const stored = [ledger.append(draft(0)), ledger.append(draft(1))];
    const root = toHex(ledger.root());
    ledger.close();
    // Rewrite it as version 1 stored it.
    const database = new Database(path);
    database.exec(`
      CREATE INDEX entries_by_leaf_hash ON entries (leaf_hash);
      CREATE TABLE entry_digests (
        digest TEXT NOT NULL, leaf_index INTEGER NOT NULL, PRIMARY KEY (digest, leaf_index)) WITHOUT ROWID;
      INSERT INTO entry_digests VALUES ('${toHex(sha256(utf8("item 1")))}', 1);
      DROP TABLE digest_index;
      DROP TABLE recent_digests;
      PRAGMA user_version = 1;
    `);
    database.close();
    const migrated = new SqliteLedger(path);
    closers.push(() => migrated.close());
    expect(toHex(migrated.root())).toBe(root);
    expect(migrated.findByDigest(stored[0]!.leafHash)).toBe(0);
    expect(migrated.findByDigest(stored[1]!.leafHash)).toBe(1);
    expect(migrated.findByDigest(toHex(sha256(utf8("item 1"))))).toBe(1);
    const after = new Database(path, { readonly: true });
    closers.push(() => after.close());
    expect(after.pragma("user_version", { simple: true })).toBe(2);
    expect(
      after
        .prepare(
          "SELECT name FROM sqlite_master WHERE name IN ('entry_digests', 'entries_by_leaf_hash')",
        )
        .all(),
    ).toEqual([]);
  });

  it("the tables are append-only even through SQLite directly", () => {
    const path = join(tempDir(), "ledger.db");
    const ledger = new SqliteLedger(path);
    ledger.append(draft(0));
    ledger.close();
    const database = new Database(path);
    closers.push(() => database.close());
    expect(() => database.prepare("UPDATE entries SET encoded = 'x'").run()).toThrow(/append-only/);
    expect(() => database.prepare("DELETE FROM entries").run()).toThrow(/append-only/);
  });
});

describe("ServerLedger", () => {
  it("creates its key with mode 0600 and keeps it across restarts", () => {
    const dataDir = tempDir();
    const first = openLedger(dataDir);
    const keyId = first.keyId;
    first.record(draft(0));
    const head = first.publish();
    first.close();
    expect(statSync(join(dataDir, ledgerKeyFileName)).mode & 0o777).toBe(0o600);
    const again = openLedger(dataDir);
    expect(again.keyId).toBe(keyId);
    expect(again.publish()).toEqual(head);
    expect(again.store.size).toBe(1);
  });

  it("records a finished failover as a failover entry", () => {
    const ledger = openLedger(tempDir());
    ledger.recordFailover({
      failoverId: 4,
      plan: null,
      service: "production_monitoring",
      reason: "node-failed",
      from: "line-a-edge-1",
      to: "line-a-edge-2",
      via: null,
      generation: 3,
      startedAtMs: 1_000,
      endedAtMs: 1_850.5,
      durationMs: 850.5,
      dataAgeMs: null,
      steps: [],
      status: "completed",
    } as unknown as Parameters<ServerLedger["recordFailover"]>[0]);
    const [entry] = ledger.store.entries(0, 1);
    expect(JSON.parse(entry!.encoded)).toMatchObject({
      kind: "failover",
      data: { service: "production_monitoring", to: "line-a-edge-2", durationMs: 851 },
    });
  });

  it("records tokens issued and revoked by id and by subject, never the token itself", () => {
    const ledger = openLedger(tempDir());
    ledger.recordToken({
      type: "issued",
      id: "t-1",
      kind: "user",
      subject: "alice",
      roles: ["quality_engineer"],
      expiresAtMs: 2_000.4,
    });
    ledger.recordToken({ type: "revoked", id: "t-1", reason: "revoked by admin" });
    ledger.recordToken({ type: "subject-revoked", subject: "edge-7", reason: "quarantined" });
    const kinds = ledger.store.entries(0, 10).map((entry) => JSON.parse(entry.encoded) as object);
    expect(kinds).toMatchObject([
      { kind: "token.issued", data: { tokenId: "t-1", subject: "alice", expiresAtMs: 2_000 } },
      { kind: "token.revoked", data: { tokenId: "t-1", reason: "revoked by admin" } },
      { kind: "token.revoked", data: { subject: "edge-7", reason: "quarantined" } },
    ]);
  });

  it("records a completed backup with its root tree id as the digest", async () => {
    const ledger = openLedger(tempDir());
    const treeId = "ab".repeat(32);
    ledger.recordFleetEvent({
      id: 3,
      type: "backup.completed",
      snapshotId: "cd".repeat(32),
      treeId,
      policy: "production_data",
      level: "EDGE_CLUSTER",
      node: "edge-1",
      holders: ["edge-2", "edge-3"],
      atMs: 9,
      durationMs: 1,
      sizeBytes: 4_096,
      addedBytes: 10,
      filesNew: 1,
      filesUnchanged: 0,
      dataTypes: ["production_metrics"],
      services: {},
      encrypted: true,
    });
    expect(ledger.store.size).toBe(0);
    await Promise.resolve(); // the batch's transaction runs a microtask later
    expect(ledger.store.findByDigest(treeId)).toBe(0);
    expect(JSON.parse(ledger.store.entry(0)!.encoded)).toMatchObject({
      kind: "backup",
      data: { repository: "edge-1/EDGE_CLUSTER", digest: treeId, sizeBytes: 4_096 },
    });
  });

  it("records security events and firewall denials, batched, and ignores other events", async () => {
    const ledger = openLedger(tempDir());
    ledger.recordFleetEvent({ id: 1, type: "node.removed", node: "edge-1", atMs: 5 });
    ledger.recordFleetEvent({
      id: 2,
      type: "security.event",
      source: "ip:10.0.0.9",
      atMs: 7,
      severity: "high",
      activity: "replay",
      details: "a renewal proof was replayed",
    });
    ledger.recordFleetEvent({
      id: 3,
      type: "firewall.denied",
      node: "edge-2",
      source: "ip:10.0.0.9",
      atMs: 8,
      severity: "medium",
      details: "connection to the agent API denied",
      count: 4,
    });
    expect(ledger.store.size).toBe(0);
    await Promise.resolve(); // the batch's transaction runs a microtask later
    expect(ledger.store.size).toBe(2);
    expect(JSON.parse(ledger.store.entry(1)!.encoded)).toMatchObject({
      kind: "security.event",
      data: { type: "firewall.denied", details: { node: "edge-2", count: 4 } },
    });
    expect(JSON.parse(ledger.store.entry(0)!.encoded)).toMatchObject({
      kind: "security.event",
      data: { type: "replay", source: "ip:10.0.0.9", severity: "high", eventAtMs: 7 },
    });
  });

  it("records a configuration only when its digest changes, naming the previous one", () => {
    const dataDir = tempDir();
    const [a, b] = ["a", "b"].map((text) => toHex(sha256(utf8(text))));
    const first = openLedger(dataDir);
    first.recordConfig("fleet-spec", a!);
    first.recordConfig("fleet-spec", a!);
    first.recordConfig("node-config", b!);
    first.close();
    const again = openLedger(dataDir);
    again.recordConfig("fleet-spec", a!);
    again.recordConfig("fleet-spec", b!);
    again.recordConfig("fleet-spec", a!);
    const data = again.store
      .entries(0, 10)
      .map((entry) => (JSON.parse(entry.encoded) as { data: object }).data);
    expect(data).toEqual([
      { what: "fleet-spec", digest: a },
      { what: "node-config", digest: b },
      { what: "fleet-spec", digest: b, previousDigest: a },
      { what: "fleet-spec", digest: a, previousDigest: b },
    ]);
  });

  it("an untouched export verifies, with every head and consistency proof", () => {
    const { ledger } = ledgerWithHistory();
    const result = verifyExport(exportOf(ledger), {});
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({
      ok: true,
      entriesChecked: 10,
      treeHeadsChecked: 3,
      consistencyProofsChecked: 2,
    });
  });
});

describe("audit verify finds tampering", () => {
  const audit = (exported: LedgerExport, options: { trustedHead?: string } = {}) =>
    verifyExport(exported, options).problems.join("\n");

  it("an edited entry", () => {
    const { ledger } = ledgerWithHistory();
    const exported = exportOf(ledger);
    exported.entries[5]!.encoded = exported.entries[5]!.encoded.replace("snap-", "snaq-");
    expect(audit(exported)).toMatch(
      /entry 5: its contents hash to .* not its recorded leaf hash .*: the entry was edited/,
    );
    // Even with the leaf hash recomputed, the signed roots no longer match.
    exported.entries[5]!.leafHash = toHex(leafHash(sha256, utf8(exported.entries[5]!.encoded)));
    const problems = audit(exported);
    expect(problems).not.toMatch(/entry 5: its contents/);
    expect(problems).toMatch(
      /tree head #1 \(size 6, root .*\): the first 6 entries give root .*: an entry below 6 was edited/,
    );
  });

  it("a truncated log", () => {
    const { ledger, dataDir } = ledgerWithHistory();
    const exported = exportOf(ledger);
    exported.entries = exported.entries.slice(0, 8);
    expect(audit(exported)).toMatch(/the export claims 10 entries but holds 8/);
    expect(audit(exported)).toMatch(
      /tree head #2 \(size 10.*signed for 10 entries but only 8 are present: the log was truncated/,
    );
    // Truncated consistently, heads and all: a head saved by an earlier audit still catches it.
    const headFile = join(dataDir, "trusted-head.json");
    writeFileSync(headFile, JSON.stringify(exported.treeHeads.at(-1)));
    exported.treeSize = 8;
    exported.treeHeads = exported.treeHeads.slice(0, 2);
    exported.consistency = exported.consistency.slice(0, 1);
    expect(audit(exported, {})).toBe("");
    expect(audit(exported, { trustedHead: headFile })).toMatch(
      /the trusted tree head \(size 10, .*\) covers more entries than the 8 present: the log was truncated/,
    );
  });

  it("two entries reordered", () => {
    const { ledger } = ledgerWithHistory();
    const exported = exportOf(ledger);
    const [second, third] = [exported.entries[1]!, exported.entries[2]!];
    exported.entries[1] = third;
    exported.entries[2] = second;
    const problems = audit(exported);
    expect(problems).toMatch(/entry at position 1 is labelled index 2: entries were reordered/);
    expect(problems).toMatch(/entry 1: carries index 2 but sits at position 1/);
    expect(problems).toMatch(
      /tree head #0 \(size 3.*an entry below 3 was edited, removed or reordered/,
    );
  });

  it("a fork: two signed heads for one size with different roots", () => {
    const { ledger, dataDir, clock } = ledgerWithHistory();
    const exported = exportOf(ledger);
    const key = loadOrCreateLedgerKey(testSecretFiles(dataDir));
    const forged = { treeSize: 6, rootHash: "ab".repeat(32), timestampMs: clock.nowMs() + 1 };
    exported.treeHeads.push({
      ...forged,
      keyId: key.keyId,
      signature: key.sign(utf8(treeHeadSigningInput(forged))),
    });
    const problems = audit(exported);
    expect(problems).toMatch(/fork: tree heads #1 and #3 both sign size 6 with different roots/);
    expect(problems).toMatch(
      /tree head #3 \(size 6, root abababababab…\) is smaller than the earlier tree head #2/,
    );
  });

  it("a rewritten history: a later head that is not an extension of an earlier one", () => {
    const { ledger, dataDir, clock } = ledgerWithHistory();
    const exported = exportOf(ledger);
    // The server rewrites entry 1 and signs the new history, keeping the old heads.
    const rewritten = new MemoryMerkleTree(sha256);
    const entries = exported.entries.map((entry, index) => {
      const encoded = index === 1 ? entry.encoded.replace("snap-1", "snap-X") : entry.encoded;
      const hash = leafHash(sha256, utf8(encoded));
      rewritten.appendLeafHash(hash);
      return { index, encoded, leafHash: toHex(hash) };
    });
    const key = loadOrCreateLedgerKey(testSecretFiles(dataDir));
    const head = {
      treeSize: 10,
      rootHash: toHex(rewritten.root()),
      timestampMs: clock.nowMs() + 5,
    };
    exported.entries = entries;
    exported.treeHeads = [
      exported.treeHeads[1]!,
      { ...head, keyId: key.keyId, signature: key.sign(utf8(treeHeadSigningInput(head))) },
    ];
    exported.consistency = [
      { first: 6, second: 10, proof: rewritten.consistencyProof(6, 10).map(toHex) },
    ];
    const problems = audit(exported);
    expect(problems).toMatch(/tree head #0 \(size 6.*an entry below 6 was edited/);
    expect(problems).toMatch(
      /tree head #1 \(size 10.*is not an extension of tree head #0 \(size 6.*fork/,
    );
  });

  it("a forged signature and a foreign key", () => {
    const { ledger } = ledgerWithHistory();
    const exported = exportOf(ledger);
    const head = exported.treeHeads[2]!;
    exported.treeHeads[2] = { ...head, timestampMs: head.timestampMs + 1 };
    expect(audit(exported)).toMatch(/tree head #2 \(size 10.*the signature does not verify/);
    const otherKeyFile = join(tempDir(), "other.pem");
    const other = loadOrCreateLedgerKey(testSecretFiles(tempDir()));
    writeFileSync(otherKeyFile, other.publicKeyPem);
    expect(verifyExport(exportOf(ledger), { publicKey: otherKeyFile }).problems.join("\n")).toMatch(
      /the export names signing key .* but the trusted key is/,
    );
  });

  it("offline proofs from an export verify, and a changed entry fails", () => {
    const { ledger } = ledgerWithHistory();
    const exported = exportOf(ledger);
    const verifier = ledgerVerifier(exported.publicKey);
    const digest = toHex(sha256(utf8("item 5")));
    const answer = inclusionFromExport(exported, digest);
    expect(answer.entry.index).toBe(5);
    expect(checkInclusion(answer, verifier)).toMatchObject({ verified: true, treeSize: 10 });
    const bad = {
      ...answer,
      entry: { ...answer.entry, encoded: answer.entry.encoded.replace("snap-5", "snap-6") },
    };
    expect(checkInclusion(bad, verifier).problem).toMatch(/do not hash to its leaf hash/);
  });

  it("the CLI exits 1 naming the problem, 0 on an untouched export", () => {
    const { ledger, dataDir } = ledgerWithHistory();
    const exported = exportOf(ledger);
    const good = join(dataDir, "good.json");
    writeFileSync(good, JSON.stringify(exported));
    exported.entries[2]!.encoded = exported.entries[2]!.encoded.replace("high", "low");
    const bad = join(dataDir, "bad.json");
    writeFileSync(bad, JSON.stringify(exported));
    const run = (file: string) =>
      spawnSync(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "audit", "verify", "--export", file],
        {
          encoding: "utf8",
          cwd: join(import.meta.dirname, "..", "..", ".."),
        },
      );
    const ok = run(good);
    expect(ok.stdout).toMatch(/OK: every entry, tree head and proof verifies/);
    expect(ok.status).toBe(0);
    const tampered = run(bad);
    expect(tampered.stdout).toMatch(/TAMPERED: .*\n.*entry 2: its contents hash to/);
    expect(tampered.status).toBe(1);
  });
});

/** The app's error handling, without the rest of the control plane. */
async function ledgerApp(
  ledger: ServerLedger,
): Promise<{ app: FastifyInstance; declared: string[] }> {
  const app = Fastify({ logger: false });
  const declared: string[] = [];
  app.addHook("onRoute", (route) => {
    const access = (route.config as { access?: { resource: string; action: string } } | undefined)
      ?.access;
    if (route.method !== "HEAD")
      declared.push(`${String(route.method)} ${route.url} ${access?.resource}:${access?.action}`);
  });
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof HttpError)
      return reply.code(error.statusCode).send({ error: error.code, message: error.message });
    return reply.code(error.statusCode ?? 500).send({ error: "other", message: error.message });
  });
  registerLedgerRoutes(app, ledger);
  await app.ready();
  closers.push(() => app.close());
  return { app, declared };
}

describe("ledger routes", () => {
  it("every route declares ledger read access", async () => {
    const { ledger } = ledgerWithHistory();
    const { declared } = await ledgerApp(ledger);
    expect(declared).toHaveLength(5);
    for (const route of declared) expect(route).toMatch(/ ledger:read$/);
  });

  it("entries, tree head, proofs and the export answer and verify", async () => {
    const { ledger } = ledgerWithHistory();
    const { app } = await ledgerApp(ledger);
    const get = async <Body>(url: string) => {
      const response = await app.inject({ method: "GET", url });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<Body>();
    };
    const entries = await get<LedgerEntriesResponse>("/v1/ledger/entries?from=8&limit=5");
    expect(entries.treeSize).toBe(10);
    expect(entries.entries.map((entry) => entry.index)).toEqual([8, 9]);
    const { treeHead, publicKey } = await get<LedgerTreeHeadResponse>("/v1/ledger/tree-head");
    expect(treeHead.treeSize).toBe(10);
    const verifier = ledgerVerifier(publicKey);
    expect(verifier.verify(utf8(treeHeadSigningInput(treeHead)), treeHead.signature)).toBe(true);

    const inclusion = await get<LedgerInclusionResponse>("/v1/ledger/proof/inclusion?leafIndex=7");
    expect(checkInclusion(inclusion, verifier)).toMatchObject({ verified: true });
    const byDigest = await get<LedgerInclusionResponse>(
      `/v1/ledger/proof/inclusion?digest=${toHex(sha256(utf8("snapshot 5"))).toUpperCase()}&treeSize=6`,
    );
    expect(byDigest.entry.index).toBe(5);
    expect(
      verifyInclusion(
        sha256,
        fromHex(byDigest.entry.leafHash),
        5,
        6,
        byDigest.proof.map(fromHex),
        fromHex(byDigest.rootHash),
      ),
    ).toBeNull();
    expect(byDigest.treeHead?.treeSize).toBe(6);

    const consistency = await get<LedgerConsistencyResponse>(
      "/v1/ledger/proof/consistency?first=3",
    );
    expect(consistency.second).toBe(10);
    expect(
      verifyConsistency(
        sha256,
        3,
        10,
        consistency.proof.map(fromHex),
        fromHex(consistency.firstTreeHead!.rootHash),
        fromHex(consistency.secondTreeHead!.rootHash),
      ),
    ).toBeNull();

    const exportResponse = await app.inject({ method: "GET", url: "/v1/ledger/export" });
    expect(exportResponse.statusCode).toBe(200);
    const exported = ledgerExportSchema.parse(exportResponse.json());
    expect(verifyExport(exported, {}).ok).toBe(true);
  });

  it("bad input is a 4xx that says what is wrong", async () => {
    const { ledger } = ledgerWithHistory();
    const { app } = await ledgerApp(ledger);
    const cases: [string, number, RegExp][] = [
      ["/v1/ledger/entries?from=-1", 400, /from/],
      ["/v1/ledger/entries?limit=100000", 400, /limit/],
      ["/v1/ledger/entries?colour=blue", 400, /colour|unrecognized/i],
      ["/v1/ledger/proof/inclusion", 400, /exactly one of leafIndex and digest/],
      ["/v1/ledger/proof/inclusion?leafIndex=1&digest=" + "0".repeat(64), 400, /exactly one/],
      ["/v1/ledger/proof/inclusion?digest=xyz", 400, /SHA-256/],
      ["/v1/ledger/proof/inclusion?leafIndex=99", 404, /no ledger entry 99/],
      ["/v1/ledger/proof/inclusion?digest=" + "0".repeat(64), 404, /no ledger entry has leaf hash/],
      ["/v1/ledger/proof/inclusion?leafIndex=5&treeSize=3", 422, /not in the tree of size 3/],
      ["/v1/ledger/proof/inclusion?leafIndex=1&treeSize=11", 422, /beyond the ledger's 10 entries/],
      ["/v1/ledger/proof/consistency", 400, /first/],
      ["/v1/ledger/proof/consistency?first=7&second=4", 422, /must not be larger/],
      ["/v1/ledger/proof/consistency?first=1&second=12", 422, /beyond/],
      ["/v1/ledger/proof/consistency?first=1.5", 400, /first/],
      ["/v1/ledger/export?all=1", 400, /all|unrecognized/i],
    ];
    for (const [url, status, message] of cases) {
      const response = await app.inject({ method: "GET", url });
      expect(response.statusCode, url).toBe(status);
      expect(response.json<{ message: string }>().message, url).toMatch(message);
    }
  });

  it("fuzzed queries never get a 5xx (fast-check, seed 5)", async () => {
    const { ledger } = ledgerWithHistory();
    const { app } = await ledgerApp(ledger);
    const value = fc.oneof(
      fc.integer({ min: -5, max: 20 }).map(String),
      fc.constantFrom(
        "",
        "1e3",
        "0x10",
        "NaN",
        "Infinity",
        "9007199254740993",
        "a".repeat(64),
        "0".repeat(64),
        "%00",
        "[]",
      ),
      fc.string({ maxLength: 70 }),
    );
    const path = fc.constantFrom(
      "entries",
      "tree-head",
      "proof/inclusion",
      "proof/consistency",
      "export",
    );
    const key = fc.constantFrom(
      "from",
      "limit",
      "leafIndex",
      "digest",
      "treeSize",
      "first",
      "second",
      "x",
    );
    await fc.assert(
      fc.asyncProperty(
        path,
        fc.array(fc.tuple(key, value), { maxLength: 4 }),
        async (route, pairs) => {
          const query = pairs
            .map(([name, text]) => `${name}=${encodeURIComponent(text)}`)
            .join("&");
          const response = await app.inject({ method: "GET", url: `/v1/ledger/${route}?${query}` });
          expect(response.statusCode, `${route}?${query}: ${response.body}`).toBeLessThan(500);
        },
      ),
      { seed: 5, numRuns: 500 },
    );
  });
});

describe("canonical encoding is what openssl and sha256sum see", () => {
  it("the STH signing input is canonical JSON of its fields", () => {
    expect(treeHeadSigningInput({ treeSize: 2, rootHash: "ab".repeat(32), timestampMs: 7 })).toBe(
      canonicalJson({
        domain: "edgeward.ledger.tree-head",
        rootHash: "ab".repeat(32),
        timestampMs: 7,
        treeSize: 2,
        v: 1,
      }),
    );
  });
});
