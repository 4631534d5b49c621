// The HTTP blob API over loopback: client and handler pass the contract together, and the
// handler guards names, sizes, hashes and authorization.
import { createServer, request as httpRequest } from "node:http";
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupError } from "../../core/backup/errors.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { describeBlobStoreContract } from "./blob-store-contract.ts";
import { allowEveryRequest, createBlobStoreHttpHandler } from "./blob-store-http-handler.ts";
import type { BlobAccess } from "./blob-store-http-handler.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { ErasureBlobStore } from "./erasure-blob-store.ts";
import { HttpBlobStore } from "./http-blob-store.ts";
import { MemoryBlobStore } from "./memory-blob-store.ts";
import { noise, withTemporaryDirectory } from "./testing.ts";

interface Served {
  url: string;
  close: () => Promise<void>;
}

async function serve(
  store: BlobStore,
  authorize: (request: IncomingMessage, access: BlobAccess) => boolean = allowEveryRequest,
  blobBytesMax?: number,
): Promise<Served> {
  const handler = createBlobStoreHttpHandler(store, {
    authorize,
    listPageNamesMax: 7,
    ...(blobBytesMax === undefined ? {} : { blobBytesMax }),
  });
  const server: Server = createServer((request, response) => {
    if (handler.handles(request.url ?? "")) handler(request, response);
    else {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeBlobStoreContract("http over loopback, directory behind", async () => {
  let release: () => void = () => undefined;
  let ready: (directory: string) => void = () => undefined;
  const directoryReady = new Promise<string>((resolve) => (ready = resolve));
  const finished = withTemporaryDirectory(
    (directory) =>
      new Promise<void>((resolve) => {
        release = resolve;
        ready(directory);
      }),
  );
  const served = await serve(new DirectoryBlobStore(await directoryReady));
  const client = new HttpBlobStore({ baseUrl: served.url, pendingBufferBytesMax: 16 });
  return {
    store: client,
    cleanup: async () => {
      client.close();
      await served.close();
      release();
      await finished;
    },
  };
});

describe("HTTP blob API", () => {
  let backing: MemoryBlobStore;
  let served: Served;
  let client: HttpBlobStore;
  const tokens: string[] = [];

  beforeAll(async () => {
    backing = new MemoryBlobStore();
    served = await serve(
      backing,
      (request, access) =>
        request.headers.authorization === "Bearer reader"
          ? access.operation === "read" || access.operation === "list"
          : request.headers.authorization === "Bearer writer",
      1024 * 1024,
    );
    client = new HttpBlobStore({
      baseUrl: served.url,
      headers: () => ({ authorization: `Bearer ${tokens[0] ?? "writer"}` }),
      retryDelayMsInitial: 1,
      retryCountMax: 1,
    });
  });
  afterAll(async () => {
    client.close();
    await served.close();
  });

  const raw = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const outgoing = httpRequest(`${served.url}${path}`, { method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      });
      outgoing.on("error", reject);
      outgoing.end(body);
    });

  it("asks the authorize hook for every request", async () => {
    await client.put("keys/a", new Uint8Array([1]));
    tokens[0] = "reader";
    expect([...(await client.get("keys/a"))]).toEqual([1]);
    await expect(client.put("keys/b", new Uint8Array([2]))).rejects.toSatisfy(
      (error) =>
        error instanceof BackupError &&
        error.code === "STORAGE_FAILED" &&
        error.message.includes("not authorized"),
    );
    await expect(client.delete("keys/a")).rejects.toThrow(/not allowed to delete keys\/a/);
    tokens.length = 0;
    expect((await raw("GET", "/v1/blobs/keys/a")).status).toBe(403);
  });

  it("refuses invalid names, oversized and damaged bodies, and unknown methods", async () => {
    const writer = { authorization: "Bearer writer" };
    expect((await raw("GET", "/v1/blobs/..%2Fetc%2Fpasswd", writer)).status).toBe(400);
    expect((await raw("GET", "/v1/blobs/a//b", writer)).status).toBe(400);
    expect(
      (await raw("PUT", "/v1/blobs/data/big", { ...writer, "content-length": "2000000" })).status,
    ).toBe(413);
    const damaged = await raw(
      "PUT",
      "/v1/blobs/data/x",
      { ...writer, "content-length": "3", "x-edgeward-content-sha256": "00" },
      Buffer.from("abc"),
    );
    expect(damaged.status).toBe(400);
    expect(damaged.body).toContain("SHA-256");
    expect(backing.blobs.has("data/x")).toBe(false);
    expect((await raw("POST", "/v1/blobs/data/x", writer)).status).toBe(405);
    await expect(client.put("data/too-big", noise(2 * 1024 * 1024, 1))).rejects.toThrow(
      /more than the limit/,
    );
  });

  it("pages through long lists", async () => {
    const names = Array.from(
      { length: 30 },
      (_, index) => `snapshots/${String(index).padStart(3, "0")}`,
    );
    await Promise.all(names.map((name) => client.put(name, new Uint8Array([1]))));
    expect((await client.list("snapshots/")).sort()).toEqual(names);
  });

  it("retries when the server is briefly away, then reports it unreachable", async () => {
    const lonely = new HttpBlobStore({
      baseUrl: "http://127.0.0.1:1",
      retryCountMax: 2,
      retryDelayMsInitial: 1,
    });
    await expect(lonely.get("config")).rejects.toSatisfy(
      (error) =>
        error instanceof BackupError &&
        error.code === "STORAGE_FAILED" &&
        error.message.includes("after 3 attempts"),
    );
    lonely.close();
  });
});

describe("erasure coding over HTTP shard holders", () => {
  it("reads every blob after two of six holders' servers stop", async () => {
    await withTemporaryDirectory(async (root) => {
      const servers = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          serve(new DirectoryBlobStore(join(root, `peer-${index}`))),
        ),
      );
      const clients = servers.map(
        (server) =>
          new HttpBlobStore({ baseUrl: server.url, retryCountMax: 1, retryDelayMsInitial: 1 }),
      );
      try {
        const store = new ErasureBlobStore(clients);
        const data = noise(500_000, 4);
        await store.put("data/aa/pack", data);
        await servers[1]?.close();
        await servers[4]?.close();
        const reader = new ErasureBlobStore(clients);
        expect(Buffer.from(await reader.get("data/aa/pack")).equals(data)).toBe(true);
        expect(await reader.list("data/")).toEqual(["data/aa/pack"]);
      } finally {
        for (const client of clients) client.close();
        await Promise.all(servers.map((server) => server.close()));
      }
    });
  });
});
