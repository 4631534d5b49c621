import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { MemoryStore } from "./memory-store.ts";
import { SqliteStore } from "./sqlite-store.ts";
import { describeStoreContract } from "./store-contract.ts";

describeStoreContract("MemoryStore", { open: () => Promise.resolve(new MemoryStore()) });

const directory = mkdtempSync(join(tmpdir(), "edgeward-store-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let databaseIndex = 0;
let currentPath = "";
describeStoreContract("SqliteStore", {
  open: () => {
    databaseIndex += 1;
    currentPath = join(directory, `state-${databaseIndex}.db`);
    return Promise.resolve(new SqliteStore(currentPath));
  },
  reopen: () => Promise.resolve(new SqliteStore(currentPath)),
});
