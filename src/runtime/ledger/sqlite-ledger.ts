// The ledger's storage: its own SQLite file (ledger.db) with append-only tables for entries,
// the complete subtrees above them and signed tree heads, and a digest index for lookups. An
// append is one transaction, on disk (WAL, synchronous=FULL) before it returns; it hashes only
// the O(log n) frontier kept in memory, and proofs read O(log² n) stored subtree hashes.
//
// Digests are random, so a B-tree keyed by them takes every insert on a different page: kept
// up to date on every append, two such indexes cost about two page writes per entry each (WAL
// and checkpoint), 19 KB per entry at 300,000 entries in batches of 1,000. New digests are
// therefore appended to `recent_digests` in arrival order (no index) and merged into the
// sorted `digest_index` in one pass every `recentDigestsMax` rows (2 KB per entry); a lookup
// checks both.

import Database from "better-sqlite3";
import { fromHex, toHex, utf8 } from "../../core/ledger/bytes.ts";
import {
  encodeEntry,
  entryDigests,
  type LedgerEntryDraft,
  type LedgerEntryKind,
} from "../../core/ledger/entries.ts";
import {
  appendToFrontier,
  consistencyProof,
  frontierPositions,
  frontierRoot,
  inclusionProof,
  leafHash,
  rootHash,
  type HashFunction,
  type SubtreeSource,
} from "../../core/ledger/merkle.ts";
import type { SignedTreeHead } from "../../core/ledger/tree-head.ts";
import { sha256 } from "./sha256.ts";

/** 2: the digest index replaced `entries_by_leaf_hash` and `entry_digests` (version 1). */
const schemaVersion = 2;
/** Entries one page of `entries()` returns at most. */
export const ledgerPageSizeMax = 1_000;
/** Drafts one `appendMany` call takes at most. */
export const ledgerBatchMax = 10_000;

export interface SqliteLedgerOptions {
  /**
   * Digests waiting in arrival order before they are merged into the sorted index. More makes
   * merges rarer (each rewrites the index pages it touches) and lookups scan more rows.
   */
  recentDigestsMax: number;
}

export const sqliteLedgerDefaults: SqliteLedgerOptions = { recentDigestsMax: 100_000 };

export class LedgerStoreError extends Error {
  override readonly name = "LedgerStoreError";
}

/** An entry as stored: its canonical text is the leaf data. */
export interface StoredLedgerEntry {
  index: number;
  kind: string;
  atMs: number;
  encoded: string;
  leafHash: string;
}

interface EntryRow {
  leaf_index: number;
  kind: string;
  at_ms: number;
  encoded: string;
  leaf_hash: Buffer;
}

interface HeadRow {
  tree_size: number;
  timestamp_ms: number;
  root_hash: string;
  key_id: string;
  signature: string;
}

function entryFromRow(row: EntryRow): StoredLedgerEntry {
  return {
    index: row.leaf_index,
    kind: row.kind,
    atMs: row.at_ms,
    encoded: row.encoded,
    leafHash: toHex(row.leaf_hash),
  };
}

function headFromRow(row: HeadRow): SignedTreeHead {
  return {
    treeSize: row.tree_size,
    rootHash: row.root_hash,
    timestampMs: row.timestamp_ms,
    keyId: row.key_id,
    signature: row.signature,
  };
}

export class SqliteLedger implements SubtreeSource {
  readonly #database: Database.Database;
  readonly #hash: HashFunction;
  readonly #options: SqliteLedgerOptions;
  #size: number;
  #recentDigests: number;
  #frontier: Uint8Array[];
  readonly #statements: {
    insertEntry: Database.Statement<[number, string, number, string, Buffer]>;
    insertNode: Database.Statement<[number, number, Buffer]>;
    insertDigest: Database.Statement<[Buffer, number]>;
    mergeDigests: Database.Statement<[]>;
    clearRecentDigests: Database.Statement<[]>;
    leaf: Database.Statement<[number]>;
    node: Database.Statement<[number, number]>;
    page: Database.Statement<[number, number]>;
    byDigest: Database.Statement<[Buffer, Buffer]>;
    insertHead: Database.Statement<[number, number, string, string, string]>;
    latestHead: Database.Statement<[]>;
    headsForSize: Database.Statement<[number]>;
  };
  readonly #appendTransaction: (drafts: readonly LedgerEntryDraft[]) => {
    stored: StoredLedgerEntry[];
    frontier: Uint8Array[];
    recentDigests: number;
  };

  constructor(
    path: string,
    hash: HashFunction = sha256,
    options: SqliteLedgerOptions = sqliteLedgerDefaults,
  ) {
    this.#hash = hash;
    this.#options = options;
    try {
      this.#database = new Database(path);
      this.#database.pragma("journal_mode = WAL");
      this.#database.pragma("synchronous = FULL");
      this.#database.pragma("busy_timeout = 5000");
    } catch (error) {
      throw new LedgerStoreError(`cannot open the ledger ${path}: ${(error as Error).message}`);
    }
    const version = this.#database.pragma("user_version", { simple: true }) as number;
    if (version > schemaVersion)
      throw new LedgerStoreError(
        `${path} was written by a newer edgeward (ledger schema ${version} > ${schemaVersion}); upgrade edgeward`,
      );
    // Triggers make the tables append-only for anyone using this file through SQLite.
    this.#database.exec(`
      CREATE TABLE IF NOT EXISTS entries (
        leaf_index INTEGER PRIMARY KEY, kind TEXT NOT NULL, at_ms INTEGER NOT NULL,
        encoded TEXT NOT NULL, leaf_hash BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS subtrees (
        level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS digest_index (
        digest BLOB NOT NULL, leaf_index INTEGER NOT NULL,
        PRIMARY KEY (digest, leaf_index)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS recent_digests (digest BLOB NOT NULL, leaf_index INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS tree_heads (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tree_size INTEGER NOT NULL,
        timestamp_ms INTEGER NOT NULL, root_hash TEXT NOT NULL, key_id TEXT NOT NULL,
        signature TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS tree_heads_by_size ON tree_heads (tree_size);
      CREATE TRIGGER IF NOT EXISTS entries_append_only_update BEFORE UPDATE ON entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS entries_append_only_delete BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS subtrees_append_only_update BEFORE UPDATE ON subtrees
        BEGIN SELECT RAISE(ABORT, 'ledger subtrees are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS subtrees_append_only_delete BEFORE DELETE ON subtrees
        BEGIN SELECT RAISE(ABORT, 'ledger subtrees are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS tree_heads_append_only_update BEFORE UPDATE ON tree_heads
        BEGIN SELECT RAISE(ABORT, 'tree heads are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS tree_heads_append_only_delete BEFORE DELETE ON tree_heads
        BEGIN SELECT RAISE(ABORT, 'tree heads are append-only'); END;
    `);
    if (version === 1) this.#migrateFromVersion1();
    this.#database.pragma(`user_version = ${schemaVersion}`);
    const database = this.#database;
    this.#statements = {
      insertEntry: database.prepare(
        "INSERT INTO entries (leaf_index, kind, at_ms, encoded, leaf_hash) VALUES (?, ?, ?, ?, ?)",
      ),
      insertNode: database.prepare("INSERT INTO subtrees (level, idx, hash) VALUES (?, ?, ?)"),
      insertDigest: database.prepare(
        "INSERT INTO recent_digests (digest, leaf_index) VALUES (?, ?)",
      ),
      // Sorted, so the merge walks the index once instead of jumping to a page per digest.
      mergeDigests: database.prepare(
        "INSERT OR IGNORE INTO digest_index (digest, leaf_index) SELECT digest, leaf_index FROM recent_digests ORDER BY digest, leaf_index",
      ),
      clearRecentDigests: database.prepare("DELETE FROM recent_digests"),
      leaf: database.prepare("SELECT leaf_hash FROM entries WHERE leaf_index = ?").pluck(),
      node: database.prepare("SELECT hash FROM subtrees WHERE level = ? AND idx = ?").pluck(),
      page: database.prepare(
        "SELECT leaf_index, kind, at_ms, encoded, leaf_hash FROM entries WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?",
      ),
      byDigest: database
        .prepare(
          "SELECT MIN(leaf_index) FROM (SELECT MIN(leaf_index) AS leaf_index FROM digest_index WHERE digest = ? " +
            "UNION ALL SELECT leaf_index FROM recent_digests WHERE digest = ?)",
        )
        .pluck(),
      insertHead: database.prepare(
        "INSERT INTO tree_heads (tree_size, timestamp_ms, root_hash, key_id, signature) VALUES (?, ?, ?, ?, ?)",
      ),
      latestHead: database.prepare(
        "SELECT tree_size, timestamp_ms, root_hash, key_id, signature FROM tree_heads ORDER BY id DESC LIMIT 1",
      ),
      headsForSize: database.prepare(
        "SELECT tree_size, timestamp_ms, root_hash, key_id, signature FROM tree_heads WHERE tree_size = ? ORDER BY id DESC LIMIT 1",
      ),
    };
    this.#size =
      (database.prepare("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM entries").pluck().get() as
        number | undefined) ?? 0;
    this.#recentDigests =
      (database.prepare("SELECT COUNT(*) FROM recent_digests").pluck().get() as
        number | undefined) ?? 0;
    this.#frontier = frontierPositions(this.#size).map(({ level, index }) =>
      this.node(level, index),
    );
    this.#appendTransaction = database.transaction((drafts: readonly LedgerEntryDraft[]) => {
      let size = this.#size;
      let frontier = this.#frontier;
      let recentDigests = this.#recentDigests;
      const stored: StoredLedgerEntry[] = [];
      for (const draft of drafts) {
        const encoded = encodeEntry(draft, size);
        const leaf = leafHash(this.#hash, utf8(encoded));
        const leafBuffer = Buffer.from(leaf);
        this.#statements.insertEntry.run(size, draft.kind, draft.atMs, encoded, leafBuffer);
        const digests = new Set([toHex(leaf), ...entryDigests(draft)]);
        for (const digest of digests)
          this.#statements.insertDigest.run(Buffer.from(fromHex(digest)), size);
        recentDigests += digests.size;
        const next = appendToFrontier(this.#hash, frontier, size, leaf);
        for (const node of next.created)
          this.#statements.insertNode.run(node.level, node.index, Buffer.from(node.hash));
        frontier = next.frontier;
        stored.push({
          index: size,
          kind: draft.kind,
          atMs: draft.atMs,
          encoded,
          leafHash: toHex(leaf),
        });
        size += 1;
      }
      if (recentDigests >= this.#options.recentDigestsMax) {
        this.#statements.mergeDigests.run();
        this.#statements.clearRecentDigests.run();
        recentDigests = 0;
      }
      return { stored, frontier, recentDigests };
    });
  }

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** Appends one entry; it is on disk when this returns. Throws LedgerEntryError on bad data. */
  append(draft: LedgerEntryDraft): StoredLedgerEntry {
    return this.appendMany([draft])[0]!;
  }

  /** Appends entries in one transaction: all or none; on disk when this returns. */
  appendMany(drafts: readonly LedgerEntryDraft[]): StoredLedgerEntry[] {
    if (drafts.length > ledgerBatchMax)
      throw new RangeError(`at most ${ledgerBatchMax} entries per batch, got ${drafts.length}`);
    const { stored, frontier, recentDigests } = this.#appendTransaction(drafts);
    // Only a committed transaction moves the in-memory frontier.
    this.#frontier = frontier;
    this.#recentDigests = recentDigests;
    this.#size += stored.length;
    return stored;
  }

  node(level: number, index: number): Uint8Array {
    const found = (
      level === 0 ? this.#statements.leaf.get(index) : this.#statements.node.get(level, index)
    ) as Buffer | undefined;
    if (found === undefined)
      throw new LedgerStoreError(
        `the ledger has no subtree at level ${level} index ${index}; ledger.db is damaged`,
      );
    return found;
  }

  /** MTH of the first `treeSize` entries (all of them by default). */
  root(treeSize = this.#size): Uint8Array {
    this.#checkSize(treeSize);
    if (treeSize === this.#size) return frontierRoot(this.#hash, this.#frontier);
    return rootHash(this.#hash, this, treeSize);
  }

  inclusionProof(leafIndex: number, treeSize: number): Uint8Array[] {
    this.#checkSize(treeSize);
    return inclusionProof(this.#hash, this, leafIndex, treeSize);
  }

  consistencyProof(first: number, second: number): Uint8Array[] {
    this.#checkSize(second);
    return consistencyProof(this.#hash, this, first, second);
  }

  /** Up to `limit` entries from index `from` on. */
  entries(from: number, limit: number): StoredLedgerEntry[] {
    const rows = this.#statements.page.all(from, Math.min(limit, ledgerPageSizeMax)) as EntryRow[];
    return rows.map(entryFromRow);
  }

  /** The first `treeSize` entries in order, read a page at a time (for exports). */
  *entriesUpTo(treeSize: number): Generator<StoredLedgerEntry> {
    for (let from = 0; from < treeSize; from += ledgerPageSizeMax)
      for (const entry of this.entries(from, Math.min(ledgerPageSizeMax, treeSize - from)))
        yield entry;
  }

  entry(index: number): StoredLedgerEntry | undefined {
    return this.entries(index, 1).find((entry) => entry.index === index);
  }

  /** Entries of one kind, newest first (a scan from the end; kinds that matter here are rare). */
  *newestOfKind(kind: LedgerEntryKind): Generator<StoredLedgerEntry> {
    const rows = this.#database
      .prepare(
        "SELECT leaf_index, kind, at_ms, encoded, leaf_hash FROM entries WHERE kind = ? ORDER BY leaf_index DESC",
      )
      .iterate(kind) as IterableIterator<EntryRow>;
    for (const row of rows) yield entryFromRow(row);
  }

  /** The first entry whose leaf hash or a content digest it names is `digestHex`. */
  findByDigest(digestHex: string): number | undefined {
    const digest = Buffer.from(fromHex(digestHex));
    return (this.#statements.byDigest.get(digest, digest) as number | null) ?? undefined;
  }

  addTreeHead(head: SignedTreeHead): void {
    this.#statements.insertHead.run(
      head.treeSize,
      head.timestampMs,
      head.rootHash,
      head.keyId,
      head.signature,
    );
  }

  latestTreeHead(): SignedTreeHead | undefined {
    const row = this.#statements.latestHead.get() as HeadRow | undefined;
    return row === undefined ? undefined : headFromRow(row);
  }

  /** The newest tree head signed for exactly `treeSize` entries. */
  treeHeadForSize(treeSize: number): SignedTreeHead | undefined {
    const row = this.#statements.headsForSize.get(treeSize) as HeadRow | undefined;
    return row === undefined ? undefined : headFromRow(row);
  }

  /** Every tree head, oldest first. */
  allTreeHeads(): SignedTreeHead[] {
    const rows = this.#database
      .prepare(
        "SELECT tree_size, timestamp_ms, root_hash, key_id, signature FROM tree_heads ORDER BY id",
      )
      .all() as HeadRow[];
    return rows.map(headFromRow);
  }

  close(): void {
    this.#database.close();
  }

  /** Version 1 indexed leaf hashes on `entries` and hex digests in `entry_digests`. */
  #migrateFromVersion1(): void {
    this.#database.transaction(() => {
      this.#database.exec(`
        INSERT OR IGNORE INTO digest_index (digest, leaf_index)
          SELECT leaf_hash, leaf_index FROM entries ORDER BY leaf_hash, leaf_index;
        INSERT OR IGNORE INTO digest_index (digest, leaf_index)
          SELECT unhex(digest), leaf_index FROM entry_digests ORDER BY digest, leaf_index;
        DROP INDEX IF EXISTS entries_by_leaf_hash;
        DROP TABLE IF EXISTS entry_digests;
      `);
    })();
  }

  #checkSize(treeSize: number): void {
    if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > this.#size)
      throw new RangeError(`tree size ${treeSize} is not between 0 and ${this.#size}`);
  }
}
