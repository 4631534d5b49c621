import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { httpProber } from "./http-prober.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("HTTP prober", () => {
  it("says alive when the agent answers, whatever the status", async () => {
    const url = await listen((_request, response) => response.writeHead(503).end());
    expect(await httpProber(url, 1_000)).toBe("alive");
  });

  it("says refused when nothing listens at the agent's address", async () => {
    const url = await listen((_request, response) => response.end());
    const server = servers.pop();
    await new Promise((resolve) => server?.close(resolve));
    expect(await httpProber(url, 1_000)).toBe("refused");
  });

  it("gives no answer when the agent does not answer in time", async () => {
    const url = await listen(() => undefined);
    expect(await httpProber(url, 100)).toBeUndefined();
  });

  it("gives no answer for an address it cannot parse", async () => {
    expect(await httpProber("not a url", 100)).toBeUndefined();
  });
});
