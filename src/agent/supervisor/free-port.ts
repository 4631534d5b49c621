// A port for a service that did not ask for a fixed one: the kernel picks a free one for a
// moment, and the service gets it as PORT. Another process could take it in between; the start
// then fails with the service's own "address in use", reported like any failed start.

import { createServer } from "node:net";

export function pickFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}
