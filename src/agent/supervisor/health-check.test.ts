import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../runtime/system-clock.ts";
import { pickFreePort } from "./free-port.ts";
import { checkExec, checkHttp, checkTcp, runHealthCheck } from "./health-check.ts";

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** An HTTP server on a free loopback port answering every request with `statusCode`, or never. */
async function serve(statusCode: number | "never"): Promise<number> {
  const server = createServer((_request, response) => {
    if (statusCode !== "never") response.writeHead(statusCode).end();
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

const target = { host: "127.0.0.1", cwd: process.cwd(), environment: process.env };

describe("health checks", () => {
  it("tcp: healthy when something listens, a reason when the port is closed", async () => {
    const port = await serve(200);
    expect(await checkTcp("127.0.0.1", port, 1_000, systemClock)).toEqual({ healthy: true });
    const closedPort = await pickFreePort("127.0.0.1");
    const result = await checkTcp("127.0.0.1", closedPort, 1_000, systemClock);
    expect(result.healthy).toBe(false);
    expect(result.healthy ? "" : result.reason).toMatch(/ECONNREFUSED/);
  });

  it("http: healthy below 400, the status otherwise, the timeout when there is no answer", async () => {
    expect(await checkHttp("127.0.0.1", await serve(204), "/health", 1_000, systemClock)).toEqual({
      healthy: true,
    });
    expect(await checkHttp("127.0.0.1", await serve(503), "/health", 1_000, systemClock)).toEqual({
      healthy: false,
      reason: "GET /health answered HTTP 503",
    });
    expect(await checkHttp("127.0.0.1", await serve("never"), "/health", 100, systemClock)).toEqual(
      { healthy: false, reason: "no answer within 100 ms" },
    );
  });

  it("exec: healthy on exit 0, the exit code and output otherwise, killed at its timeout", async () => {
    const node = process.execPath;
    const port = 1;
    expect(
      await checkExec([node, "-e", "process.exit(0)"], { ...target, port }, 5_000, systemClock),
    ).toEqual({
      healthy: true,
    });
    expect(
      await checkExec(
        [node, "-e", "console.log('disk full'); process.exit(3)"],
        { ...target, port },
        5_000,
        systemClock,
      ),
    ).toEqual({ healthy: false, reason: "check exited with code 3: disk full" });
    expect(
      await checkExec(
        [node, "-e", "setInterval(() => {}, 1000)"],
        { ...target, port },
        200,
        systemClock,
      ),
    ).toEqual({ healthy: false, reason: "check timed out after 200 ms" });
  });

  it("without a defined check, a TCP connect decides", async () => {
    const port = await serve(500);
    expect(await runHealthCheck(null, { ...target, port }, systemClock)).toEqual({ healthy: true });
  });
});
