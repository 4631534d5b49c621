import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../ports/logger.ts";
import { requestJson } from "../../runtime/http-json.ts";
import { createArchiveStream, DataArchiveError } from "./data-archive.ts";
import {
  createDataTransferHandler,
  DataTransferError,
  pullServiceData,
  type DataTransferHandlerComponents,
} from "./data-transfer-http.ts";
import { testResources } from "../agent-test-support.ts";

const { scratch, listen } = testResources("data-transfer");

interface TestAgent {
  url: string;
  servicesDir: string;
  quiesced: string[];
}

/** An agent-like node:http server: the data route, and its own 404 for everything else. */
async function startAgent(
  overrides: Partial<DataTransferHandlerComponents> = {},
): Promise<TestAgent> {
  const servicesDir = scratch();
  const quiesced: string[] = [];
  const handle = createDataTransferHandler({
    dataDirOf: (service) => (service === "ghost" ? undefined : join(servicesDir, service)),
    quiesce: (service) => {
      quiesced.push(service);
      return Promise.resolve();
    },
    logger: silentLogger,
    ...overrides,
  });
  const server = createServer((request, response) => {
    if (handle(request, response)) return;
    response
      .writeHead(404, { "content-type": "application/json" })
      .end(JSON.stringify({ error: "not_found", message: "agent's own 404", statusCode: 404 }));
  });
  return { url: await listen(server), servicesDir, quiesced };
}

function writeServiceData(directory: string): void {
  mkdirSync(join(directory, "wal"), { recursive: true });
  writeFileSync(join(directory, "db.sqlite"), Buffer.alloc(300_000, 7));
  writeFileSync(join(directory, "wal", "0001.log"), "entries");
  writeFileSync(join(directory, "empty"), "");
}

function tree(directory: string): Record<string, string> {
  const result: Record<string, string> = {};
  const visit = (relative: string) => {
    for (const name of readdirSync(join(directory, relative), { withFileTypes: true })) {
      const path = relative === "" ? name.name : `${relative}/${name.name}`;
      if (name.isDirectory()) {
        result[path] = "<dir>";
        visit(path);
      } else {
        result[path] = readFileSync(join(directory, path)).toString("base64");
      }
    }
  };
  visit("");
  return result;
}

describe("data transfer over HTTP", () => {
  it("pulls a quiesced copy from one agent to another, and on to a third place", async () => {
    const first = await startAgent();
    const second = await startAgent();
    writeServiceData(join(first.servicesDir, "historian"));
    const summary = await pullServiceData({
      fromUrl: first.url,
      fromNode: "edge-a",
      service: "historian",
      quiesce: true,
      targetDir: join(second.servicesDir, "historian"),
      timeoutMs: 5_000,
    });
    expect(first.quiesced).toEqual(["historian"]);
    expect(summary).toMatchObject({ files: 3, contentBytes: 300_007 });
    expect(summary.bytes).toBeGreaterThan(300_007);
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(tree(join(second.servicesDir, "historian"))).toEqual(
      tree(join(first.servicesDir, "historian")),
    );

    const third = join(scratch(), "historian");
    await pullServiceData({
      fromUrl: second.url,
      fromNode: "edge-a",
      service: "historian",
      quiesce: false,
      targetDir: third,
      timeoutMs: 5_000,
    });
    expect(second.quiesced).toEqual([]);
    expect(tree(third)).toEqual(tree(join(first.servicesDir, "historian")));
  });

  it("answers 404 for an unknown service or one without data, and leaves the target alone", async () => {
    const agent = await startAgent();
    const target = join(scratch(), "data");
    mkdirSync(target);
    writeFileSync(join(target, "keep"), "mine");
    for (const [service, message] of [
      ["ghost", /no data for service ghost/],
      ["historian", /has no data directory here yet/],
    ] as const) {
      const error = await pullServiceData({
        fromUrl: agent.url,
        fromNode: "edge-a",
        service,
        quiesce: false,
        targetDir: target,
        timeoutMs: 5_000,
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DataTransferError);
      expect(error).toMatchObject({ statusCode: 404 });
      expect((error as Error).message).toMatch(message);
    }
    expect(tree(target)).toEqual({ keep: Buffer.from("mine").toString("base64") });
  });

  it.each([
    ["/v1/services/historian/data?quiesce=yes", 400, /quiesce must be 0 or 1/],
    ["/v1/services/historian/data?quiesce=1&quiesce=0", 400, /more than once/],
    ["/v1/services/historian/data?other=1", 400, /unknown query parameter other/],
    ["/v1/services/Bad%20Name/data", 400, /is not a service name/],
    ["/v1/services/%E0%A4%A/data", 400, /not valid URL encoding/],
    ["/v1/services/historian/other", 404, /agent's own 404/],
  ])("answers GET %s with %d", async (path, statusCode, message) => {
    const agent = await startAgent();
    writeServiceData(join(agent.servicesDir, "historian"));
    const response = await requestJson("GET", new URL(path, agent.url), undefined, 5_000);
    expect(response.statusCode).toBe(statusCode);
    expect((response.body as { message: string }).message).toMatch(message);
    expect(agent.quiesced).toEqual([]);
  });

  it("answers 405 to anything but GET", async () => {
    const agent = await startAgent();
    const response = await requestJson(
      "POST",
      new URL("/v1/services/historian/data", agent.url),
      {},
      5_000,
    );
    expect(response.statusCode).toBe(405);
  });

  it("answers 503 when the instance cannot be quiesced", async () => {
    const agent = await startAgent({
      quiesce: () => Promise.reject(new Error("instance would not stop")),
    });
    writeServiceData(join(agent.servicesDir, "historian"));
    await expect(
      pullServiceData({
        fromUrl: agent.url,
        fromNode: "edge-a",
        service: "historian",
        quiesce: true,
        targetDir: join(scratch(), "data"),
        timeoutMs: 5_000,
      }),
    ).rejects.toMatchObject({ statusCode: 503, message: /instance would not stop/ });
  });

  it("rejects a copy cut off halfway and leaves the target alone", async () => {
    const source = scratch();
    writeServiceData(source);
    const chunks: Buffer[] = [];
    for await (const chunk of createArchiveStream(source)) chunks.push(chunk as Buffer);
    const archive = Buffer.concat(chunks);
    const server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/octet-stream" });
      response.write(archive.subarray(0, archive.length >> 1), () => response.destroy());
    });
    const url = await listen(server);
    const parent = scratch();
    const target = join(parent, "data");
    mkdirSync(target);
    writeFileSync(join(target, "keep"), "mine");
    const error = await pullServiceData({
      fromUrl: url,
      fromNode: "edge-a",
      service: "historian",
      quiesce: false,
      targetDir: target,
      timeoutMs: 5_000,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataArchiveError);
    expect(tree(target)).toEqual({ keep: Buffer.from("mine").toString("base64") });
    expect(readdirSync(parent)).toEqual(["data"]);
  });

  it("gives up on a peer that stops sending", async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "application/octet-stream" });
      response.write(Buffer.from("EWDATA\r\n"));
    });
    const url = await listen(server);
    const error = await pullServiceData({
      fromUrl: url,
      fromNode: "edge-a",
      service: "historian",
      quiesce: false,
      targetDir: join(scratch(), "data"),
      timeoutMs: 200,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DataTransferError);
    expect((error as Error).message).toMatch(/stopped sending the data of historian for 200 ms/);
  });
});
