// Secrets at rest: the sealed envelope, the keyring, root keys, migration and rotation.

import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  isSealed,
  parseSealedEnvelope,
  SealedEnvelopeError,
  sealedHeaderBytes,
} from "../../core/security/sealed-envelope.ts";
import {
  dataDirKeysHolder,
  holdDataDirKeys,
  openDataDirKeys,
  rotateDataKey,
} from "./data-dir-keys.ts";
import { KeyringError } from "./keyring.ts";
import { RootKeyError, resolveRootKey } from "./root-key.ts";
import { open, seal, SealedSecretTamperedError } from "./sealing.ts";

const directories: string[] = [];
const tempDir = () => {
  const directory = mkdtempSync(join(tmpdir(), "edgeward-keyring-"));
  directories.push(directory);
  return directory;
};
afterEach(() => {
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

const names = ["signing.key", "admin.token", "tls/ca.key"];
const openKeys = (dataDir: string, nowMs = 1_000, environment: Record<string, string> = {}) =>
  openDataDirKeys({ dataDir, environment, nowMs, secretFileNames: names, create: true });

describe("sealed envelope", () => {
  const key = randomBytes(32);

  it("round-trips, and the layout is magic, version, key version, nonce, ciphertext, tag", () => {
    const plaintext = Buffer.from("the signing key");
    const sealed = seal(key, 7, "file:signing.key", plaintext);
    expect(isSealed(sealed)).toBe(true);
    expect(sealed.subarray(0, 4).toString()).toBe("EWSS");
    expect(sealed.length).toBe(sealedHeaderBytes + plaintext.length + 16);
    expect(parseSealedEnvelope(sealed, "x").keyVersion).toBe(7);
    expect(open(key, "file:signing.key", sealed, "x").toString()).toBe("the signing key");
    expect(seal(key, 7, "file:signing.key", plaintext)).not.toEqual(sealed);
  });

  it("a flipped byte anywhere, another purpose or another key is a typed error", () => {
    const sealed = seal(key, 1, "file:signing.key", Buffer.from("secret bytes"));
    for (let at = 4; at < sealed.length; at += 1) {
      const flipped = Buffer.from(sealed);
      flipped[at] = (flipped[at] ?? 0) ^ 0x01;
      expect(() => open(key, "file:signing.key", flipped, "x")).toThrow(
        at === 4 ? SealedEnvelopeError : SealedSecretTamperedError,
      );
    }
    expect(() => open(key, "file:admin.token", sealed, "x")).toThrow(SealedSecretTamperedError);
    expect(() => open(randomBytes(32), "file:signing.key", sealed, "x")).toThrow(
      SealedSecretTamperedError,
    );
    expect(() => open(key, "file:signing.key", sealed.subarray(0, 20), "x")).toThrow(
      SealedEnvelopeError,
    );
  });
});

describe("keyring and secret files", () => {
  it("seals files 0600, reads them back after a restart, and keeps the root key beside the data with a warning", () => {
    const dataDir = tempDir();
    const keys = openKeys(dataDir);
    expect(keys.rootKey.created).toBe(true);
    expect(keys.warning).toMatch(/master\.key, beside the data.*--master-key-file/);
    keys.files.write("tls/ca.key", "-----BEGIN PRIVATE KEY-----\nabc\n");
    const path = join(dataDir, "tls", "ca.key");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, "master.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).not.toContain("BEGIN PRIVATE KEY");
    const again = openKeys(dataDir);
    expect(again.rootKey.created).toBe(false);
    expect(again.files.readText("tls/ca.key")).toBe("-----BEGIN PRIVATE KEY-----\nabc\n");
  });

  it("a sealed file moved over another name does not open", () => {
    const keys = openKeys(tempDir());
    keys.files.write("signing.key", "signing");
    keys.files.write("admin.token", "token");
    writeFileSync(keys.files.pathOf("admin.token"), readFileSync(keys.files.pathOf("signing.key")));
    expect(() => keys.files.read("admin.token")).toThrow(SealedSecretTamperedError);
  });

  it("migrates plaintext files of an earlier version: sealed at start, plaintext gone", () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, "signing.key"), "PLAINTEXT-SIGNING-KEY\n", { mode: 0o600 });
    writeFileSync(join(dataDir, "admin.token"), "PLAINTEXT-TOKEN\n", { mode: 0o600 });
    const keys = openKeys(dataDir);
    expect(keys.migrated).toEqual(["signing.key", "admin.token"]);
    for (const name of ["signing.key", "admin.token"]) {
      const bytes = readFileSync(join(dataDir, name));
      expect(isSealed(bytes)).toBe(true);
      expect(bytes.toString("latin1")).not.toContain("PLAINTEXT");
    }
    expect(openKeys(dataDir).files.readText("signing.key")).toBe("PLAINTEXT-SIGNING-KEY\n");
    expect(openKeys(dataDir).migrated).toEqual([]);
  });

  it("a wrong or missing root key for an existing keyring is a typed error, never a new keyring", () => {
    const dataDir = tempDir();
    openKeys(dataDir).files.write("signing.key", "signing");
    const keyringBefore = readFileSync(join(dataDir, "keyring.json"), "utf8");
    const other = join(tempDir(), "other.key");
    writeFileSync(other, `${randomBytes(32).toString("base64")}\n`);
    expect(() => openKeys(dataDir, 1_000, { EDGEWARD_MASTER_KEY_FILE: other })).toThrow(
      /was made with root key [0-9a-f]{16}, but .*other\.key.*--master-key-file/,
    );
    expect(() => openKeys(dataDir, 1_000, { EDGEWARD_MASTER_KEY_FILE: other })).toThrow(
      KeyringError,
    );
    rmSync(join(dataDir, "master.key"));
    expect(() => openKeys(dataDir)).toThrow(RootKeyError);
    expect(() => openKeys(dataDir)).toThrow(/never makes a new one for an existing keyring/);
    expect(readFileSync(join(dataDir, "keyring.json"), "utf8")).toBe(keyringBefore);
  });

  it("finds the root key by option, environment, systemd credential, then data dir", () => {
    const dataDir = tempDir();
    const credentials = tempDir();
    const key = randomBytes(32);
    writeFileSync(join(credentials, "edgeward-master-key"), key);
    const hexFile = join(tempDir(), "hex.key");
    writeFileSync(hexFile, key.toString("hex"));
    const request = { dataDir, createInDataDir: true };
    const fromSystemd = resolveRootKey({
      ...request,
      environment: { CREDENTIALS_DIRECTORY: credentials },
    });
    expect(fromSystemd.source).toBe("systemd-credential");
    const fromEnvironment = resolveRootKey({
      ...request,
      environment: { CREDENTIALS_DIRECTORY: credentials, EDGEWARD_MASTER_KEY_FILE: hexFile },
    });
    expect(fromEnvironment).toMatchObject({ source: "environment", id: fromSystemd.id });
    expect(resolveRootKey({ ...request, masterKeyFile: hexFile, environment: {} }).source).toBe(
      "option",
    );
    const short = join(tempDir(), "short.key");
    writeFileSync(short, "c2hvcnQ=\n");
    expect(() => resolveRootKey({ ...request, masterKeyFile: short, environment: {} })).toThrow(
      /does not hold a root key/,
    );
    // A key from systemd gives no warning; the generated one beside the data does.
    const keys = openKeys(dataDir, 1_000, { CREDENTIALS_DIRECTORY: credentials });
    expect(keys.warning).toBeUndefined();
  });

  it("rotation re-seals with the new version and keeps the old one readable", () => {
    const dataDir = tempDir();
    const keys = openKeys(dataDir, 1_000);
    keys.files.write("signing.key", "signing");
    keys.files.write("admin.token", "token");
    // A copy sealed under version 1 that rotation does not touch.
    const sealedEarlier = keys.keyring.seal("file:elsewhere", Buffer.from("kept"));
    const report = rotateDataKey(keys, names, 2_000);
    expect(report).toMatchObject({
      keyId: "data-key-2",
      previousKeyId: "data-key-1",
      purpose: "secrets-at-rest",
      resealedFiles: 2,
    });
    for (const name of ["signing.key", "admin.token"])
      expect(parseSealedEnvelope(readFileSync(keys.files.pathOf(name)), name).keyVersion).toBe(2);
    keys.files.write("tls/ca.key", "ca");
    expect(
      parseSealedEnvelope(readFileSync(keys.files.pathOf("tls/ca.key")), "ca").keyVersion,
    ).toBe(2);
    const restarted = openKeys(dataDir, 3_000);
    expect(restarted.keyring.versions()).toEqual([
      { version: 1, createdAtMs: 1_000 },
      { version: 2, createdAtMs: 2_000 },
    ]);
    expect(restarted.keyring.open("file:elsewhere", sealedEarlier, "x").toString()).toBe("kept");
    expect(restarted.files.readText("signing.key")).toBe("signing");
  });

  it("a process sees versions another process added (the keyring is re-read on an unknown version)", () => {
    const dataDir = tempDir();
    const running = openKeys(dataDir);
    const offline = openKeys(dataDir);
    offline.files.write("signing.key", "before");
    rotateDataKey(offline, names, 5_000);
    expect(running.files.readText("signing.key")).toBe("before");
    expect(running.keyring.newest().version).toBe(2);
  });

  it("a tampered keyring entry is a typed error", () => {
    const dataDir = tempDir();
    openKeys(dataDir);
    const path = join(dataDir, "keyring.json");
    const file = JSON.parse(readFileSync(path, "utf8")) as { keys: { createdAtMs: number }[] };
    file.keys[0]!.createdAtMs += 1;
    writeFileSync(path, JSON.stringify(file));
    expect(() => openKeys(dataDir)).toThrow(KeyringError);
  });

  it("knows which live process holds a data dir", () => {
    const dataDir = tempDir();
    holdDataDirKeys(dataDir);
    expect(dataDirKeysHolder(dataDir)).toBeUndefined();
    writeFileSync(join(dataDir, "keys.pid"), `${process.ppid}\n`);
    expect(dataDirKeysHolder(dataDir)).toBe(process.ppid);
    writeFileSync(join(dataDir, "keys.pid"), "999999999\n");
    expect(dataDirKeysHolder(dataDir)).toBeUndefined();
  });
});
