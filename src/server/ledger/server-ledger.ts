// The server's ledger: the SQLite Merkle log in <data-dir>/ledger.db, its Ed25519 key, tree
// heads signed periodically and on demand, and the export an auditor verifies offline.

import { join } from "node:path";
import {
  ledgerExportFormat,
  ledgerExportVersion,
  type ConsistencyRecord,
} from "../../core/ledger/audit.ts";
import { toHex, utf8 } from "../../core/ledger/bytes.ts";
import type { LedgerEntryDraft } from "../../core/ledger/entries.ts";
import { treeHeadSigningInput, type SignedTreeHead } from "../../core/ledger/tree-head.ts";
import type { FleetEvent } from "../../api/contract.ts";
import type { FailoverRecord } from "../../core/failover/failover-protocol.ts";
import type { CancelTimer, Clock } from "../../ports/clock.ts";
import type { Logger } from "../../ports/logger.ts";
import { loadOrCreateLedgerKey, type LedgerSigner } from "../../runtime/ledger/ledger-key.ts";
import type { SecretFiles } from "../../runtime/security/secret-files.ts";
import {
  ledgerBatchMax,
  SqliteLedger,
  type StoredLedgerEntry,
} from "../../runtime/ledger/sqlite-ledger.ts";
import type { TokenFact } from "../../runtime/security/token-service.ts";

export interface ServerLedgerOptions {
  /**
   * A new tree head is signed this often when entries were added since the last one. Shorter
   * bounds how long an entry waits for a signed commitment; longer keeps the head table small.
   */
  publishIntervalMs: number;
}

export const serverLedgerDefaults: ServerLedgerOptions = { publishIntervalMs: 60_000 };

export interface ServerLedgerComponents {
  clock: Clock;
  logger: Logger;
  /** The data dir's sealed secret files: the signing key is ledger-key.pem. */
  secrets: SecretFiles;
}

export class ServerLedger {
  readonly #store: SqliteLedger;
  readonly #signer: LedgerSigner;
  readonly #components: ServerLedgerComponents;
  readonly #options: ServerLedgerOptions;
  #cancelPublish: CancelTimer = () => {};
  #closed = false;
  /** Facts from the event stream waiting for their batch's transaction. */
  #pendingFacts: LedgerEntryDraft[] = [];

  constructor(
    store: SqliteLedger,
    signer: LedgerSigner,
    components: ServerLedgerComponents,
    options: ServerLedgerOptions = serverLedgerDefaults,
  ) {
    this.#store = store;
    this.#signer = signer;
    this.#components = components;
    this.#options = options;
  }

  /** Opens <dataDir>/ledger.db and <dataDir>/ledger-key.pem, creating them at first start. */
  static open(
    dataDir: string,
    components: ServerLedgerComponents,
    options: ServerLedgerOptions = serverLedgerDefaults,
  ): ServerLedger {
    const signer = loadOrCreateLedgerKey(components.secrets);
    return new ServerLedger(
      new SqliteLedger(join(dataDir, "ledger.db")),
      signer,
      components,
      options,
    );
  }

  get store(): SqliteLedger {
    return this.#store;
  }

  get publicKeyPem(): string {
    return this.#signer.publicKeyPem;
  }

  get keyId(): string {
    return this.#signer.keyId;
  }

  /** Signs a head now and again every publishIntervalMs while entries keep coming. */
  start(): void {
    this.publish();
    const schedule = () => {
      this.#cancelPublish = this.#components.clock.schedule(this.#options.publishIntervalMs, () => {
        if (this.#closed) return;
        try {
          this.publish();
        } catch (error) {
          this.#components.logger.error({ err: error }, "could not publish a ledger tree head");
        }
        schedule();
      });
    };
    schedule();
  }

  /**
   * Appends an entry, durable when this returns. A fact that cannot be recorded is logged,
   * never thrown at the failover or request that produced it.
   */
  record(draft: LedgerEntryDraft): StoredLedgerEntry | undefined {
    if (this.#closed) return undefined;
    try {
      return this.#store.append(draft);
    } catch (error) {
      this.#components.logger.error(
        { err: error, kind: draft.kind },
        "could not record a ledger entry",
      );
      return undefined;
    }
  }

  /** A finished failover, as the failover entry kind records it. */
  recordFailover(record: FailoverRecord): void {
    const whole = (value: number | null) =>
      value === null ? null : Math.max(0, Math.round(value));
    this.record({
      kind: "failover",
      atMs: Math.round(record.endedAtMs ?? this.#components.clock.nowMs()),
      data: {
        service: record.service,
        failoverId: record.failoverId,
        status: record.status,
        reason: record.reason,
        from: record.from,
        to: record.to,
        generation: record.generation,
        startedAtMs: Math.round(record.startedAtMs),
        endedAtMs: whole(record.endedAtMs),
        durationMs: whole(record.durationMs),
        dataAgeMs: whole(record.dataAgeMs),
      },
    });
  }

  /** A token issued or revoked (never the token itself: its id, subject and roles). */
  recordToken(fact: TokenFact): void {
    const atMs = Math.round(this.#components.clock.nowMs());
    switch (fact.type) {
      case "issued":
        this.record({
          kind: "token.issued",
          atMs,
          data: {
            tokenId: fact.id,
            subject: fact.subject,
            tokenKind: fact.kind,
            roles: [...fact.roles],
            expiresAtMs: Math.round(fact.expiresAtMs),
          },
        });
        return;
      case "revoked":
        this.record({
          kind: "token.revoked",
          atMs,
          data: { tokenId: fact.id, reason: fact.reason.slice(0, 2_048) },
        });
        return;
      case "subject-revoked":
        this.record({
          kind: "token.revoked",
          atMs,
          data: { subject: fact.subject, reason: fact.reason.slice(0, 2_048) },
        });
        return;
    }
  }

  /**
   * The fleet events the ledger keeps: security events, firewall denials and backups. Events
   * arrive in the event log's batches; the facts of one batch are appended in one durable
   * transaction (a microtask later), so a burst of events costs one fsync, not one each.
   */
  recordFleetEvent(event: FleetEvent): void {
    const draft = ledgerDraftOf(event);
    if (draft === undefined || this.#closed) return;
    this.#pendingFacts.push(draft);
    if (this.#pendingFacts.length === 1) queueMicrotask(() => this.#appendPendingFacts());
  }

  #appendPendingFacts(): void {
    const drafts = this.#pendingFacts.splice(0);
    if (this.#closed) return;
    try {
      for (let from = 0; from < drafts.length; from += ledgerBatchMax)
        this.#store.appendMany(drafts.slice(from, from + ledgerBatchMax));
    } catch (error) {
      // One bad draft fails its whole transaction: record the others one by one.
      this.#components.logger.warn({ err: error }, "a batch of ledger facts failed; one by one");
      for (const draft of drafts) this.record(draft);
    }
  }

  /**
   * Records `what` (e.g. `fleet-spec`) as changed when its digest differs from the one the
   * ledger holds last for it; the first digest ever seen is recorded too.
   */
  recordConfig(what: string, digest: string): void {
    let previousDigest: string | undefined;
    for (const entry of this.#store.newestOfKind("config.changed")) {
      const data = (JSON.parse(entry.encoded) as { data: { what: string; digest: string } }).data;
      if (data.what !== what) continue;
      previousDigest = data.digest;
      break;
    }
    if (previousDigest === digest) return;
    this.record({
      kind: "config.changed",
      atMs: Math.round(this.#components.clock.nowMs()),
      data: { what, digest, ...(previousDigest === undefined ? {} : { previousDigest }) },
    });
  }

  /** The latest head, signing a new one first when entries were added since. */
  publish(): SignedTreeHead {
    const latest = this.#store.latestTreeHead();
    const treeSize = this.#store.size;
    if (latest !== undefined && latest.treeSize === treeSize) return latest;
    const head = {
      treeSize,
      rootHash: toHex(this.#store.root(treeSize)),
      timestampMs: Math.max(Math.round(this.#components.clock.nowMs()), latest?.timestampMs ?? 0),
    };
    const signed: SignedTreeHead = {
      ...head,
      keyId: this.#signer.keyId,
      signature: this.#signer.sign(utf8(treeHeadSigningInput(head))),
    };
    this.#store.addTreeHead(signed);
    return signed;
  }

  /**
   * The export as JSON text in pieces (see docs/formats/ledger.md): a snapshot at the size of
   * a head signed on the spot, so every entry in it is covered by a signature.
   */
  *exportJson(): Generator<string> {
    const head = this.publish();
    const treeSize = head.treeSize;
    const heads = this.#store.allTreeHeads().filter((each) => each.treeSize <= treeSize);
    const consistency: ConsistencyRecord[] = [];
    for (let position = 1; position < heads.length; position++) {
      const first = heads[position - 1]!.treeSize;
      const second = heads[position]!.treeSize;
      if (first >= second) continue;
      consistency.push({
        first,
        second,
        proof: this.#store.consistencyProof(first, second).map(toHex),
      });
    }
    yield (
      `{"format":${JSON.stringify(ledgerExportFormat)},"v":${ledgerExportVersion},` +
      `"hashAlgorithm":"sha256","signatureAlgorithm":"ed25519",` +
      `"publicKey":${JSON.stringify(this.#signer.publicKeyPem)},"keyId":"${this.#signer.keyId}",` +
      `"treeSize":${treeSize},"entries":[`
    );
    let first = true;
    let page: string[] = [];
    for (const entry of this.#store.entriesUpTo(treeSize)) {
      page.push(
        `${first ? "" : ","}${JSON.stringify({ index: entry.index, encoded: entry.encoded, leafHash: entry.leafHash })}`,
      );
      first = false;
      if (page.length >= 1_000) {
        yield page.join("");
        page = [];
      }
    }
    yield page.join("");
    yield `],"treeHeads":${JSON.stringify(heads)},"consistency":${JSON.stringify(consistency)}}\n`;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelPublish();
    this.#store.close();
  }
}

/** The ledger entry a fleet event becomes, if it is one the ledger keeps. */
function ledgerDraftOf(event: FleetEvent): LedgerEntryDraft | undefined {
  const atMs = Math.round(event.atMs);
  switch (event.type) {
    case "backup.completed":
      return {
        kind: "backup",
        atMs,
        data: {
          repository: `${event.node}/${event.level}`,
          snapshotId: event.snapshotId,
          digest: event.treeId,
          sizeBytes: event.sizeBytes,
        },
      };
    case "firewall.denied":
      return {
        kind: "security.event",
        atMs,
        data: {
          type: "firewall.denied",
          source: event.source,
          severity: event.severity,
          eventAtMs: atMs,
          details: { node: event.node, count: event.count, text: event.details.slice(0, 2_048) },
        },
      };
    case "security.event":
      return {
        kind: "security.event",
        atMs,
        data: {
          type: event.activity,
          source: event.source,
          severity: event.severity,
          eventAtMs: atMs,
          details: { text: event.details.slice(0, 2_048) },
        },
      };
    // Failovers and quarantines are recorded by their own callers; the rest are not facts an
    // audit asks for.
    case "node.status":
    case "node.removed":
    case "service.failover":
    case "service.alert":
    case "service.instance":
    case "service.drill":
    case "backup.failed":
    case "backup.expired":
      return undefined;
  }
}
