import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { detectorOptionsFor } from "../core/membership/detector-options.ts";
import { silentLogger } from "../ports/logger.ts";
import { requestJson } from "../runtime/http-json.ts";
import { MemoryStore } from "../runtime/store/memory-store.ts";
import { systemClock } from "../runtime/system-clock.ts";
import { startServer, type RunningServer } from "../server/main.ts";
import { testSecretFiles } from "../runtime/security/testing.ts";
import { AgentCredentials } from "./agent-credentials.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(prefix: string): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

async function tlsServer(): Promise<RunningServer> {
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir: tempDir("edgeward-agent-credentials-server-"),
    detection: detectorOptionsFor("lan", { startupGraceMs: 0 }),
    logger: pino({ level: "silent" }),
    store: new MemoryStore(),
    prober: () => Promise.resolve(undefined),
    security: { tls: true, enforce: true },
  });
  cleanups.push(() => server.close());
  return server;
}

async function joinToken(server: RunningServer, nodeId: string): Promise<string> {
  const response = await server.app.inject({
    method: "POST",
    url: "/v1/tokens/join",
    headers: { authorization: `Bearer ${server.adminToken}` },
    payload: { nodeId },
  });
  return response.json<{ token: string }>().token;
}

const logger = silentLogger;
const withSecrets = (dataDir: string) => ({ dataDir, secrets: testSecretFiles(dataDir) });

describe("agent credentials", () => {
  it("enrols over TLS pinning the CA from the join token, registers as itself and renews", async () => {
    const server = await tlsServer();
    const dataDir = tempDir("edgeward-agent-credentials-");
    const open = (token: string | undefined) =>
      AgentCredentials.open({
        nodeId: "edge-1",
        serverUrl: server.url,
        dataDir,
        secrets: testSecretFiles(dataDir),
        joinToken: token,
        clock: systemClock,
        logger,
      });
    const credentials = await open(await joinToken(server, "edge-1"));
    expect(credentials.token).toBeDefined();
    expect(credentials.ca).toContain("BEGIN CERTIFICATE");
    for (const file of ["node.key", "credential.json", "ca.crt"])
      expect(statSync(join(dataDir, file)).mode & 0o777).toBe(0o600);

    const register = await requestJson(
      "POST",
      new URL("/v1/nodes/register", server.url),
      { nodeId: "edge-1", incarnation: 1, agentUrl: "http://127.0.0.1:1" },
      5_000,
      credentials.requestOptions(),
    );
    expect(register.statusCode).toBe(200);

    const before = credentials.token;
    await credentials.renew();
    expect(credentials.token).not.toBe(before);

    // A restart reuses the stored credential; the (used) join token is not needed.
    const restarted = await open(undefined);
    expect(restarted.token).toBe(credentials.token);
  });

  it("refuses to enrol with a join token for another node or a CA that does not match", async () => {
    const server = await tlsServer();
    const other = await tlsServer();
    const attempt = async (token: string, serverUrl: string) =>
      AgentCredentials.open({
        nodeId: "edge-1",
        serverUrl,
        ...withSecrets(tempDir("edgeward-agent-credentials-")),
        joinToken: token,
        clock: systemClock,
        logger,
      });
    await expect(attempt(await joinToken(server, "edge-2"), server.url)).rejects.toThrow(
      /for node edge-2/,
    );
    // A join token of `server` presented to `other`: the other CA's fingerprint does not match.
    await expect(attempt(await joinToken(server, "edge-1"), other.url)).rejects.toThrow(
      /does not match the fingerprint/,
    );
    // No credential and no join token: an https server cannot be trusted, so say what to do.
    await expect(
      AgentCredentials.open({
        nodeId: "edge-1",
        serverUrl: server.url,
        ...withSecrets(tempDir("edgeward-agent-credentials-")),
        joinToken: undefined,
        clock: systemClock,
        logger,
      }),
    ).rejects.toThrow(/pass a join token/);
  });
});
