// Helpers shared by the agent's fleet-backup tests: the server's REGIONAL blob API on loopback
// (every request allowed), a URL where nothing listens (a tier that is offline), and targets.

import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { BackupTargets } from "../../api/service-messages.ts";
import {
  allowEveryRequest,
  createBlobStoreHttpHandler,
} from "../../runtime/backup/blob-store-http-handler.ts";
import { DirectoryBlobStore } from "../../runtime/backup/directory-blob-store.ts";

/** A REGIONAL blob API serving `<directory>/regional` on a free loopback port. */
export async function startRegionalBlobServer(
  directory: string,
): Promise<{ url: string; close(): void }> {
  const server = createServer(
    createBlobStoreHttpHandler(new DirectoryBlobStore(join(directory, "regional")), {
      authorize: allowEveryRequest,
    }),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** An http URL on a loopback port that was free a moment ago and nothing listens on. */
export async function offlineUrl(): Promise<string> {
  const closed = createServer();
  closed.listen(0, "127.0.0.1");
  await once(closed, "listening");
  const { port } = closed.address() as AddressInfo;
  closed.close();
  return `http://127.0.0.1:${port}`;
}

/** Targets with a REGIONAL tier at `regionalUrl` and no peers or CLOUD. */
export function regionalTargets(regionalUrl: string): BackupTargets {
  return {
    password: "fleet key for the test",
    peers: {},
    clusterDataShards: 2,
    clusterParityShards: 2,
    regionalUrl,
    cloud: null,
  };
}
