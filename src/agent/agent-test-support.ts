// Helpers shared by the agent's socket tests: temporary directories and loopback servers that
// are removed and closed after each test (call `testResources` once, at the top of the file).

import { mkdtempSync, rmSync } from "node:fs";
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

export interface TestResources {
  /** Run in reverse order after each test. */
  cleanups: (() => Promise<void> | void)[];
  /** A fresh temporary directory, removed after the test. */
  scratch: () => string;
  /** Listens on a free loopback port; returns the server's http URL; closed after the test. */
  listen: (server: Server) => Promise<string>;
}

export function testResources(prefix: string): TestResources {
  const cleanups: TestResources["cleanups"] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    cleanups,
    scratch: () => {
      const directory = mkdtempSync(join(tmpdir(), `edgeward-${prefix}-`));
      cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
      return directory;
    },
    listen: async (server) => {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      cleanups.push(async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      });
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
  };
}
