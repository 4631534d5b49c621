import { describe, expect, it } from "vitest";
import type { BackupTargets } from "../../api/service-messages.ts";
import { MemoryBlobStore } from "../../runtime/backup/memory-blob-store.ts";
import { initRepository, openRepository } from "../../runtime/backup/repository.ts";
import { testingRepositoryOptions } from "../../runtime/backup/testing.ts";
import { openWithFleetPasswords } from "./fleet-password-open.ts";

const targets = (password: string, previousPasswords: string[]): BackupTargets => ({
  password,
  previousPasswords,
  peers: {},
  clusterDataShards: 1,
  clusterParityShards: 1,
  regionalUrl: null,
  cloud: null,
});

describe("opening a repository with the fleet's backup passwords", () => {
  it("re-wraps a repository keyed to an earlier password under the current one, keeping its master key", async () => {
    const store = new MemoryBlobStore();
    const original = await initRepository(store, "password-1", testingRepositoryOptions);

    const readOnly = await openWithFleetPasswords(
      store,
      targets("password-3", ["password-2", "password-1"]),
      {
        rewrap: false,
      },
    );
    expect(readOnly.config.id).toBe(original.config.id);
    await expect(openRepository(store, "password-3")).rejects.toThrow(/wrong password/);

    const rewrapped = await openWithFleetPasswords(
      store,
      targets("password-3", ["password-2", "password-1"]),
      { rewrap: true },
    );
    expect(rewrapped.config.id).toBe(original.config.id);
    expect(rewrapped.keys.ring).toEqual(original.keys.ring);
    expect((await openRepository(store, "password-3")).config.id).toBe(original.config.id);
    await expect(openRepository(store, "password-1")).rejects.toThrow(/wrong password/);
  });

  it("none of the passwords: a typed wrong-password error", async () => {
    const store = new MemoryBlobStore();
    await initRepository(store, "other", testingRepositoryOptions);
    await expect(
      openWithFleetPasswords(store, targets("password-2", ["password-1"]), { rewrap: true }),
    ).rejects.toMatchObject({ code: "WRONG_PASSWORD" });
  });
});
