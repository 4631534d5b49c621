// The default Store: one SQLite file in WAL mode with synchronous=FULL, so a write is on disk
// before the promise resolves. Records are kept as JSON next to the columns we query by.

import Database from "better-sqlite3";
import type { FleetEvent, FleetEventDraft } from "../../api/contract.ts";
import {
  checkDocumentSize,
  storedEventsMax,
  StoreError,
  type NodeRecord,
  type Store,
} from "../../ports/store.ts";

const schemaVersion = 2;

export class SqliteStore implements Store {
  readonly #database: Database.Database;
  readonly #upsertNode: Database.Statement<[string, string]>;
  readonly #insertEvent: Database.Statement<[string, number, string]>;
  readonly #trimEvents: Database.Statement<[number]>;

  constructor(path: string) {
    try {
      this.#database = new Database(path);
    } catch (error) {
      throw new StoreError(`cannot open the state database ${path}: ${(error as Error).message}`);
    }
    this.#database.pragma("journal_mode = WAL");
    this.#database.pragma("synchronous = FULL");
    this.#database.pragma("busy_timeout = 5000");
    const version = this.#database.pragma("user_version", { simple: true }) as number;
    if (version > schemaVersion) {
      throw new StoreError(
        `${path} was written by a newer edgeward (schema ${version} > ${schemaVersion}); upgrade edgeward`,
      );
    }
    this.#database.exec(`
      CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, at_ms INTEGER NOT NULL, event TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS documents (name TEXT PRIMARY KEY, json TEXT NOT NULL);
      PRAGMA user_version = ${schemaVersion};
    `);
    this.#upsertNode = this.#database.prepare(
      "INSERT INTO nodes (id, record) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET record = excluded.record",
    );
    this.#insertEvent = this.#database.prepare(
      "INSERT INTO events (type, at_ms, event) VALUES (?, ?, ?)",
    );
    this.#trimEvents = this.#database.prepare("DELETE FROM events WHERE id <= ?");
  }

  loadNodes(): Promise<NodeRecord[]> {
    return this.#settle(() => {
      const rows = this.#database.prepare("SELECT record FROM nodes ORDER BY id").all() as {
        record: string;
      }[];
      return rows.map((row) => JSON.parse(row.record) as NodeRecord);
    });
  }

  saveNodes(records: readonly NodeRecord[]): Promise<void> {
    return this.#settle(() => {
      const save = this.#database.transaction((batch: readonly NodeRecord[]) => {
        for (const record of batch) this.#upsertNode.run(record.id, JSON.stringify(record));
      });
      save(records);
    });
  }

  deleteNode(nodeId: string): Promise<boolean> {
    return this.#settle(
      () => this.#database.prepare("DELETE FROM nodes WHERE id = ?").run(nodeId).changes > 0,
    );
  }

  appendEvents(drafts: readonly FleetEventDraft[]): Promise<FleetEvent[]> {
    return this.#settle(() => {
      const append = this.#database.transaction((batch: readonly FleetEventDraft[]) => {
        const appended: FleetEvent[] = [];
        for (const draft of batch) {
          const result = this.#insertEvent.run(draft.type, draft.atMs, JSON.stringify(draft));
          appended.push({ ...draft, id: Number(result.lastInsertRowid) });
        }
        // Trim once per thousand events rather than on every append.
        const firstId = appended[0]?.id ?? 0;
        const lastId = appended.at(-1)?.id ?? 0;
        if (
          lastId > storedEventsMax &&
          Math.floor(lastId / 1_000) > Math.floor((firstId - 1) / 1_000)
        ) {
          this.#trimEvents.run(lastId - storedEventsMax);
        }
        return appended;
      });
      return append(drafts);
    });
  }

  readEvents(afterId: number, limit: number): Promise<FleetEvent[]> {
    return this.#settle(() => {
      const rows = this.#database
        .prepare("SELECT id, event FROM events WHERE id > ? ORDER BY id LIMIT ?")
        .all(afterId, limit) as { id: number; event: string }[];
      return rows.map((row) => ({ ...(JSON.parse(row.event) as FleetEventDraft), id: row.id }));
    });
  }

  loadDocument(name: string): Promise<string | undefined> {
    return this.#settle(() => {
      const row = this.#database.prepare("SELECT json FROM documents WHERE name = ?").get(name) as
        { json: string } | undefined;
      return row?.json;
    });
  }

  saveDocument(name: string, json: string): Promise<void> {
    return this.#settle(() => {
      checkDocumentSize(name, json);
      this.#database
        .prepare(
          "INSERT INTO documents (name, json) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET json = excluded.json",
        )
        .run(name, json);
    });
  }

  close(): Promise<void> {
    return this.#settle(() => {
      this.#database.close();
    });
  }

  /** better-sqlite3 works synchronously; the port promises, so failures become rejections. */
  #settle<Result>(work: () => Result): Promise<Result> {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(new StoreError(`state database: ${(error as Error).message}`));
    }
  }
}
