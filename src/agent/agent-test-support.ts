// Helpers shared by tests that open sockets or start servers and agents: temporary directories,
// loopback servers and anything else registered in `cleanups`, removed and closed after each
// test (call `testResources` once, at the top of the file), and nodes' signing keys.

import { generateKeyPairSync, type KeyObject } from "node:crypto";
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

/** A node's Ed25519 key pair, the public key as the server hands it out (SPKI DER, base64). */
export interface TestNodeKeys {
  nodeId: string;
  privateKey: KeyObject;
  publicKey: string;
}

export function testNodeKeys(nodeId: string): TestNodeKeys {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    nodeId,
    privateKey,
    publicKey: publicKey.export({ type: "spki", format: "der" }).toString("base64"),
  };
}
