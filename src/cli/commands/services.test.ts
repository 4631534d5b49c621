import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FailoverRecord } from "../../core/failover/failover-protocol.ts";
import { detectorOptionsFor } from "../../core/membership/detector-options.ts";
import { loadFleetSpecFile } from "../../runtime/fleet-spec-file.ts";
import { MemoryStore } from "../../runtime/store/memory-store.ts";
import { startServer, type RunningServer } from "../../server/main.ts";
import { ApiClient, ApiClientError } from "../api-client.ts";
import {
  drillsCommand,
  failoverCommand,
  failoversCommand,
  resolveCommand,
  servicesCommand,
  startProgress,
  waitForFailoverEnd,
} from "./services.ts";
import type { CommandOutput } from "../command-io.ts";

/** Polling on a fake clock: each sleep moves time on instead of waiting. */
function fakeWait() {
  let nowMs = 0;
  return {
    pollIntervalMs: 500,
    nowMs: () => nowMs,
    sleep: (ms: number) => {
      nowMs += ms;
      return Promise.resolve();
    },
  };
}

/** Collects what a command writes. */
function capture(): CommandOutput & { out: () => string; err: () => string } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout: { write: (text: string) => stdout.push(text), isTTY: false },
    stderr: { write: (text: string) => stderr.push(text), isTTY: false },
    out: () => stdout.join(""),
    err: () => stderr.join(""),
  };
}

const exampleSpec = join(import.meta.dirname, "..", "..", "..", "examples", "industrial-iot.yaml");

describe("service commands against a real server", () => {
  let server: RunningServer;
  let dataDir: string;
  let client: ApiClient;

  beforeAll(async () => {
    const spec = await loadFleetSpecFile(exampleSpec);
    dataDir = mkdtempSync(join(tmpdir(), "edgeward-cli-services-"));
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir,
      detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
      services: spec.services,
      logger: pino({ level: "silent" }),
      store: new MemoryStore(),
      prober: () => Promise.resolve(undefined),
    });
    client = new ApiClient(server.url, { token: server.adminToken });
  });

  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("services --json prints the server's list: every spec service, unplaced without agents", async () => {
    const output = capture();
    expect(await servicesCommand(client, { json: true }, output)).toBe(0);
    const printed = JSON.parse(output.out()) as {
      services: Record<string, unknown>[];
      serverTimeMs: number;
    };
    expect(typeof printed.serverTimeMs).toBe("number");
    expect(printed.services.map((service) => service["name"])).toEqual([
      "production_monitoring",
      "quality_control",
    ]);
    for (const service of printed.services) {
      expect(Object.keys(service).sort()).toEqual(
        [
          "endpoint",
          "failoverId",
          "generation",
          "instances",
          "name",
          "node",
          "proxies",
          "status",
        ].sort(),
      );
      expect(service).toMatchObject({ node: null, endpoint: null, instances: [], proxies: [] });
    }
  });

  it("services prints the table", async () => {
    const output = capture();
    await servicesCommand(client, {}, output);
    const lines = output.out().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+NODE\s+GENERATION\s+STATUS\s+ENDPOINT\s+PROXY\s+INSTANCES$/);
    expect(lines[1]).toMatch(/^production_monitoring\s/);
    expect(output.out()).toContain("2 ");
  });

  it("services resolve fails with the server's advice while nothing serves the service", async () => {
    const attempt = resolveCommand(client, "production_monitoring", {}, capture());
    await expect(attempt).rejects.toThrow(ApiClientError);
    await expect(attempt).rejects.toThrow(
      /HTTP 503: production_monitoring is \w+; nothing serves it now/,
    );
  });

  it("an unknown service is an error that names it", async () => {
    await expect(resolveCommand(client, "no_such_service", {}, capture())).rejects.toThrow(
      /no_such_service/,
    );
  });

  it("failovers and drills --json print JSON arrays", async () => {
    const failovers = capture();
    expect(await failoversCommand(client, { json: true, limit: 10 }, failovers)).toBe(0);
    expect(Array.isArray(JSON.parse(failovers.out()))).toBe(true);
    const drills = capture();
    expect(await drillsCommand(client, { json: true, service: "quality_control" }, drills)).toBe(0);
    expect(JSON.parse(drills.out())).toEqual([]);
  });

  it("failover --wait follows the failover to its end and exits 1 when it failed", async () => {
    // No agent has registered, so no location can take the service: the failover fails.
    const output = capture();
    const code = await failoverCommand(
      client,
      "quality_control",
      { wait: true, json: true, timeoutMs: 20_000 },
      output,
      fakeWait(),
    );
    const record = JSON.parse(output.out()) as FailoverRecord;
    expect(record).toMatchObject({
      service: "quality_control",
      status: "failed",
      reason: "planned",
    });
    expect(record.steps.map((step) => step.ok)).not.toContain(true);
    expect(code).toBe(1);
  });

  it("failover --wait gives up after its timeout with advice", async () => {
    await expect(
      waitForFailoverEnd(client, "quality_control", 999_999, { timeoutMs: 1_000, ...fakeWait() }),
    ).rejects.toThrow(/has not ended after 1\.0s.*edgeward failovers --service quality_control/);
  });

  it("failover of an unknown service is an error that says how to list services", async () => {
    await expect(failoverCommand(client, "nope", {}, capture())).rejects.toThrow(
      /HTTP 404: .*edgeward services/,
    );
  });
});

describe("startProgress", () => {
  it("draws a spinner with the label on a terminal and erases it when stopped", () => {
    const written: string[] = [];
    const stop = startProgress(
      { write: (text: string) => written.push(text), isTTY: true },
      "drilling pm",
    );
    stop();
    expect(written[0]).toMatch(/^\r\S drilling pm 0s/);
    expect(written.at(-1)).toBe("\r\u001b[K");
  });

  it("writes nothing when stderr is not a terminal", () => {
    const written: string[] = [];
    startProgress({ write: (text: string) => written.push(text), isTTY: false }, "drilling pm")();
    expect(written).toEqual([]);
  });
});
