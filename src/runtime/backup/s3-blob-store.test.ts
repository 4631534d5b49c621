// The S3 store against a real S3-compatible server (s3rver) on loopback, behind a proxy that
// verifies every Signature V4, plus the signer against AWS's published examples.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerRepoCommands } from "../../cli/commands/repo.ts";
import { BackupError } from "../../core/backup/errors.ts";
import { describeBlobStoreContract } from "./blob-store-contract.ts";
import {
  S3BlobStore,
  parseListObjectsV2,
  parseS3Url,
  s3BlobStoreFromUrl,
} from "./s3-blob-store.ts";
import type { S3BlobStoreOptions } from "./s3-blob-store.ts";
import { authorizationHeader, canonicalRequest, emptyPayloadSha256Hex } from "./sigv4.ts";
import { startS3rver } from "./testing/s3rver-process.ts";
import type { S3rverProcess } from "./testing/s3rver-process.ts";
import { startVerifyingProxy } from "./testing/sigv4-verifying-proxy.ts";
import type { VerifyingProxy } from "./testing/sigv4-verifying-proxy.ts";
import {
  describeTree,
  initTestingRepository,
  noise,
  testingPassword,
  withTemporaryDirectory,
} from "./testing.ts";
import { openRepository } from "./repository.ts";

// s3rver's built-in account; the proxy checks signatures against the same secret.
const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
const bucket = "edgeward-test";
const region = "us-east-1";

let s3rver: S3rverProcess;
let s3rverDirectory: string;
let proxy: VerifyingProxy;
const stores: S3BlobStore[] = [];

beforeAll(async () => {
  s3rverDirectory = await mkdtemp(join(tmpdir(), "edgeward-s3rver-"));
  s3rver = await startS3rver(s3rverDirectory, [bucket]);
  proxy = await startVerifyingProxy(
    s3rver.endpoint,
    { [credentials.accessKeyId]: credentials.secretAccessKey },
    region,
  );
});

afterAll(async () => {
  for (const store of stores) store.close();
  await proxy.close();
  await s3rver.close();
  await rm(s3rverDirectory, { recursive: true, force: true });
});

/** A store under a fresh prefix of the shared bucket, with quick retries. */
function freshStore(overrides: Partial<S3BlobStoreOptions> = {}): S3BlobStore {
  const store = new S3BlobStore({
    endpoint: proxy.endpoint,
    bucket,
    prefix: `run-${randomBytes(6).toString("hex")}/repo`,
    credentials,
    region,
    retryDelayMsInitial: 5,
    retryDelayMsMax: 20,
    ...overrides,
  });
  stores.push(store);
  return store;
}

describeBlobStoreContract("s3 (s3rver on loopback, SigV4 verified)", () =>
  Promise.resolve({ store: freshStore(), cleanup: () => Promise.resolve() }),
);

describe("Signature V4", () => {
  // The "GET Object" example of the S3 API reference's SigV4 header-signing examples.
  it("matches AWS's published example", () => {
    const request = {
      method: "GET",
      path: "/test.txt",
      query: [],
      headers: {
        host: "examplebucket.s3.amazonaws.com",
        range: "bytes=0-9",
        "x-amz-content-sha256": emptyPayloadSha256Hex,
        "x-amz-date": "20130524T000000Z",
      },
      payloadSha256Hex: emptyPayloadSha256Hex,
    };
    expect(createHash("sha256").update(canonicalRequest(request)).digest("hex")).toBe(
      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
    );
    expect(
      authorizationHeader(
        request,
        {
          accessKeyId: "AKIAIOSFODNN7EXAMPLE",
          secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        },
        { region: "us-east-1", service: "s3" },
      ),
    ).toBe(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
  });

  it("is checked by the proxy: a wrong secret is refused with a clear error", async () => {
    const store = freshStore({
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: "wrong" },
    });
    const rejectedBefore = proxy.counts.rejectedSignatures;
    await expect(store.put("config", new Uint8Array([1]))).rejects.toSatisfy(
      (error) =>
        error instanceof BackupError &&
        error.code === "STORAGE_FAILED" &&
        error.message.includes("SignatureDoesNotMatch") &&
        error.message.includes("AWS_SECRET_ACCESS_KEY"),
    );
    expect(proxy.counts.rejectedSignatures).toBe(rejectedBefore + 1);
  });
});

describe("S3BlobStore", () => {
  it("signs the query strings of every list page (prefix and continuation tokens)", async () => {
    const store = freshStore({ listPageKeysMax: 3 });
    const names = Array.from({ length: 10 }, (_, index) => `snapshots/a-b_c.d.${index}`);
    await Promise.all(names.map((name) => store.put(name, new TextEncoder().encode(name))));
    await store.put("index/other", new Uint8Array([7]));
    expect((await store.list("snapshots/")).sort()).toEqual([...names].sort());
    expect((await store.list("")).length).toBe(11);
  });

  it("retries 5xx answers and dropped connections, then gives up with a typed error", async () => {
    const store = freshStore({ retryCountMax: 3 });
    proxy.failNext(2, 503);
    await store.put("data/00/retried", new Uint8Array([1, 2, 3]));
    proxy.dropNext(2);
    expect([...(await store.get("data/00/retried"))]).toEqual([1, 2, 3]);
    proxy.failNext(4, 500);
    await expect(store.get("data/00/retried")).rejects.toSatisfy(
      (error) =>
        error instanceof BackupError &&
        error.code === "STORAGE_FAILED" &&
        error.message.includes("after 4 attempts"),
    );
    proxy.failNext(0, 503);
  });

  it("streams a large pending blob through a temporary file and reads it back whole and by stream", async () => {
    const store = freshStore({ pendingBufferBytesMax: 256 * 1024 });
    const data = noise(3 * 1024 * 1024 + 17, 7);
    const pending = await store.begin();
    for (let offset = 0; offset < data.length; offset += 100_000)
      await pending.append(data.subarray(offset, offset + 100_000));
    await pending.commit("data/ab/large");
    expect(await store.sizeBytes("data/ab/large")).toBe(data.length);
    expect(Buffer.from(await store.get("data/ab/large")).equals(data)).toBe(true);
    expect(
      Buffer.from(await store.getRange("data/ab/large", 1_000_000, 10)).equals(
        data.subarray(1_000_000, 1_000_010),
      ),
    ).toBe(true);
    const hash = createHash("sha256");
    for await (const chunk of await store.openReadStream("data/ab/large"))
      hash.update(chunk as Buffer);
    expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("holds a whole repository: init, reopen with the password", async () => {
    const store = freshStore();
    await initTestingRepository(store);
    const repository = await openRepository(store, testingPassword);
    expect(repository).toBeDefined();
    expect((await store.list("keys/")).length).toBe(1);
  });

  it("reports a missing bucket clearly", async () => {
    const store = freshStore({ bucket: "no-such-bucket" });
    await expect(store.get("config")).rejects.toSatisfy(
      (error) =>
        error instanceof BackupError &&
        error.code === "STORAGE_FAILED" &&
        error.message.includes("bucket no-such-bucket does not exist"),
    );
  });
});

describe("s3:// locations", () => {
  it("parses host, port, bucket and prefix, with HTTP for loopback hosts", () => {
    expect(parseS3Url("s3://127.0.0.1:9000/backups/site-a/edge-07")).toEqual({
      endpoint: "http://127.0.0.1:9000",
      bucket: "backups",
      prefix: "site-a/edge-07",
    });
    expect(parseS3Url("s3://s3.eu-west-1.amazonaws.com/backups")).toEqual({
      endpoint: "https://s3.eu-west-1.amazonaws.com",
      bucket: "backups",
      prefix: "",
    });
    expect(parseS3Url("s3+http://minio.lan:9000/bk1/").endpoint).toBe("http://minio.lan:9000");
    expect(parseS3Url("s3+https://localhost/bk1").endpoint).toBe("https://localhost");
    expect(() => parseS3Url("s3://host-only")).toThrow(BackupError);
    expect(() => parseS3Url("s3://host/UPPER")).toThrow(/bucket name/);
  });

  it("needs credentials from the environment", () => {
    expect(() => s3BlobStoreFromUrl("s3://127.0.0.1:1/bk1", {})).toThrow(/AWS_ACCESS_KEY_ID/);
    const store = s3BlobStoreFromUrl("s3://127.0.0.1:1/bk1/p", {
      AWS_ACCESS_KEY_ID: "a",
      AWS_SECRET_ACCESS_KEY: "b",
    });
    expect(store.location).toBe("s3://127.0.0.1:1/bk1/p");
    store.close();
  });

  it("parses ListObjectsV2 pages", () => {
    expect(
      parseListObjectsV2(
        "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key></Contents><NextContinuationToken>t=1</NextContinuationToken></ListBucketResult>",
      ),
    ).toEqual({ keys: ["a&b"], truncated: true, nextContinuationToken: "t=1" });
  });
});

describe("edgeward repo --repo s3://…", () => {
  it("initialises, backs up, restores and checks a repository in the bucket", async () => {
    await withTemporaryDirectory(async (directory) => {
      const source = join(directory, "source");
      await mkdir(join(source, "nested"), { recursive: true });
      await writeFile(join(source, "nested", "data.bin"), noise(200_000, 5));
      await writeFile(join(source, "notes.txt"), "hello from the cloud tier\n");
      const passwordFile = join(directory, "password");
      await writeFile(passwordFile, "a long enough password");
      const location = `s3://${new URL(proxy.endpoint).host}/${bucket}/cli-${randomBytes(4).toString("hex")}`;
      vi.stubEnv("AWS_ACCESS_KEY_ID", credentials.accessKeyId);
      vi.stubEnv("AWS_SECRET_ACCESS_KEY", credentials.secretAccessKey);
      const output: string[] = [];
      const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
        output.push(String(chunk));
        return true;
      });
      const edgeward = async (...commandArguments: string[]) => {
        const program = new Command().exitOverride();
        registerRepoCommands(program);
        await program.parseAsync(
          [...commandArguments, "--repo", location, "--password-file", passwordFile],
          { from: "user" },
        );
        expect(process.exitCode ?? 0, commandArguments.join(" ")).toBe(0);
      };
      try {
        await edgeward("repo", "init");
        await edgeward("repo", "backup", source);
        await edgeward("repo", "snapshots", "--json");
        const target = join(directory, "target");
        await edgeward("repo", "restore", "latest", "--target", target);
        await edgeward("repo", "check", "--read-data");
        expect(await describeTree(join(target, "source"))).toEqual(await describeTree(source));
        expect(output.join("")).toContain(location);
      } finally {
        write.mockRestore();
        vi.unstubAllEnvs();
        process.exitCode = undefined;
      }
    });
  });
});
