import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { withTemporaryDirectory } from "../../runtime/backup/testing.ts";
import { stageSources } from "./staging.ts";

/** Accounts whose balances always sum to this; every write is a transfer between two. */
const accounts = 50;
const totalBalance = accounts * 1_000;

function openLedger(path: string): Database.Database {
  const database = new Database(path);
  database.pragma("journal_mode = WAL");
  database.exec("CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY, balance INTEGER)");
  database.exec("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, data BLOB)");
  const insert = database.prepare("INSERT INTO account (id, balance) VALUES (?, 1000)");
  database.transaction(() => {
    for (let id = 0; id < accounts; id++) insert.run(id);
  })();
  // Enough pages that the online backup takes several steps while the writer goes on.
  const filler = database.prepare("INSERT INTO filler (data) VALUES (randomblob(4000))");
  database.transaction(() => {
    for (let row = 0; row < 5_000; row++) filler.run();
  })();
  return database;
}

describe("stageSources", () => {
  it("copies a SQLite database under constant writes as one consistent state", async () => {
    await withTemporaryDirectory(async (directory) => {
      const dataDir = join(directory, "service");
      mkdirSync(dataDir);
      const database = openLedger(join(dataDir, "ledger.db"));
      writeFileSync(join(dataDir, "readings.json"), '{"temperature": 21}\n');
      const move = database.prepare("UPDATE account SET balance = balance + ? WHERE id = ?");
      const transfer = database.transaction((from: number, to: number, amount: number) => {
        move.run(-amount, from);
        move.run(amount, to);
      });
      let writes = 0;
      let writing = true;
      const writer = (async () => {
        while (writing) {
          transfer(writes % accounts, (writes * 7 + 1) % accounts, (writes % 13) + 1);
          writes++;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      })();
      const staging = join(directory, "staging");
      const result = await stageSources([{ dataType: "quality_data", path: dataDir }], staging);
      writing = false;
      await writer;
      database.close();

      expect(result.sqliteDatabases).toBe(1);
      expect(writes).toBeGreaterThan(0);
      const staged = join(staging, "quality_data");
      // The journal files are not copied raw; the database copy has their content.
      expect(readdirSync(staged).sort()).toEqual(["ledger.db", "readings.json"]);
      const copy = new Database(join(staged, "ledger.db"), { readonly: true });
      expect(copy.pragma("integrity_check", { simple: true })).toBe("ok");
      const sum = copy.prepare("SELECT SUM(balance) AS total FROM account").get() as {
        total: number;
      };
      expect(sum.total).toBe(totalBalance);
      copy.close();
      // Plain files are hard links: no copy, and the same inode for the next incremental run.
      expect(statSync(join(staged, "readings.json")).ino).toBe(
        statSync(join(dataDir, "readings.json")).ino,
      );
    });
  });

  it("brings the staging tree up to date and drops what the sources no longer hold", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "config");
      mkdirSync(join(source, "nested"), { recursive: true });
      writeFileSync(join(source, "a.json"), "1");
      writeFileSync(join(source, "nested", "b.json"), "2");
      const staging = join(directory, "staging");
      await stageSources(
        [
          { dataType: "configuration", path: source },
          { dataType: "missing", path: join(directory, "nothing-here") },
        ],
        staging,
      );
      const inode = statSync(join(staging, "configuration", "a.json")).ino;
      writeFileSync(join(source, "c.json"), "3");
      await import("node:fs/promises").then((fs) =>
        fs.rm(join(source, "nested"), { recursive: true }),
      );
      const result = await stageSources([{ dataType: "configuration", path: source }], staging);
      expect(result.dataTypes).toEqual(["configuration"]);
      expect(readdirSync(join(staging, "configuration")).sort()).toEqual(["a.json", "c.json"]);
      expect(statSync(join(staging, "configuration", "a.json")).ino).toBe(inode);
      expect(readdirSync(staging)).toEqual(["configuration"]);
    });
  });
});
