// The agent's listener on real sockets (loopback, port 0) under abuse: bodies it refuses are not
// read, and a host that opens more connections than its share is cut off at accept while the
// server's probe (another address) and verified peers still get in.

import { request, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../ports/logger.ts";
import { waitFor } from "../server/fleet-test-support.ts";
import { createAgentHttpServer } from "./agent-http.ts";
import { testResources } from "./agent-test-support.ts";
import { ConnectionLimits } from "./connection-limits.ts";
import { createDataTransferHandler } from "./data-transfer/data-transfer-http.ts";

const { cleanups, listen } = testResources("agent-http");
const identity = { nodeId: "self", incarnation: 1 };
const bodyBytes = 64 * 1024 * 1024;

/** Sends a request with a `bodyBytes` body as fast as the server takes it; its answer. */
function sendHugeBody(
  url: string,
  method: string,
  path: string,
): Promise<{ statusCode: number; connection: string | undefined; bytesWritten: number }> {
  return new Promise((resolve, reject) => {
    let bytesWritten = 0;
    const outgoing = request(`${url}${path}`, {
      method,
      agent: false,
      // Keep-alive: a client asking to close would be answered with a close anyway.
      headers: { "content-length": String(bodyBytes), connection: "keep-alive" },
    });
    outgoing.on("response", (response) => {
      response.resume();
      response.on("end", () =>
        resolve({
          statusCode: response.statusCode ?? 0,
          connection: response.headers.connection,
          bytesWritten,
        }),
      );
    });
    // The server answers and closes while the body is still on its way: the write side fails.
    outgoing.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (bytesWritten < bodyBytes && !outgoing.destroyed) {
        bytesWritten += chunk.length;
        if (!outgoing.write(chunk)) {
          outgoing.once("drain", pump);
          return;
        }
      }
      outgoing.end();
    };
    pump();
  });
}

function getStatus(url: string, path: string, localAddress = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    request(`${url}${path}`, { agent: false, localAddress }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    })
      .on("error", reject)
      .end();
  });
}

/** A raw connection from `localAddress`; resolves once connected (or closed by the server). */
function openRaw(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    socket.on("error", () => {});
    socket.once("connect", () => resolve(socket));
    socket.once("close", () => resolve(socket));
    cleanups.push(() => void socket.destroy());
  });
}

/** One request on an open raw connection; the status line of the answer. */
function exchange(socket: Socket, path: string): Promise<string> {
  const answered = new Promise<string>((resolve) =>
    socket.once("data", (chunk) => resolve(String(chunk).split("\r\n")[0] ?? "")),
  );
  socket.write(`GET ${path} HTTP/1.1\r\nhost: agent\r\n\r\n`);
  return answered;
}

function openConnections(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

describe("the agent's listener", () => {
  it("answers 4xx to a request whose body it will not read, closes, and reads almost none of it", async () => {
    const data = createDataTransferHandler({
      dataDirOf: () => "/nonexistent",
      quiesce: () => Promise.resolve(),
      logger: silentLogger,
      authorize: () => ({ ok: false, statusCode: 401, message: "unsigned request" }),
    });
    const server = createAgentHttpServer(identity, [data]);
    const serverSockets: Socket[] = [];
    server.on("connection", (socket: Socket) => serverSockets.push(socket));
    const url = await listen(server);

    for (const [method, path, status] of [
      ["POST", "/v1/nothing-here", 404],
      ["GET", "/v1/services/historian/data", 401],
      ["PUT", "/v1/services/historian/data", 405],
    ] as const) {
      const answer = await sendHugeBody(url, method, path);
      expect(answer.statusCode).toBe(status);
      expect(answer.connection).toBe("close");
      const socket = serverSockets.at(-1);
      if (socket === undefined) throw new Error("no connection reached the listener");
      await waitFor(() => socket.destroyed, `the ${path} connection to close`, 10_000);
      expect(socket.bytesRead).toBeLessThan(8 * 1024 * 1024);
    }
    // Nothing of that took the listener down, and a request without a body stays kept alive.
    expect(await getStatus(url, "/healthz")).toBe(200);
  });

  it("cuts off a host past its share of unverified connections; the probe and verified peers get in", async () => {
    const limits = new ConnectionLimits({ unverifiedPerSourceMax: 4, sourcesMax: 16 });
    const server = createAgentHttpServer(
      identity,
      [
        (incoming, response) => {
          if (incoming.url !== "/verified") return false;
          limits.verified(incoming.socket);
          response.writeHead(200).end("peer");
          return true;
        },
      ],
      undefined,
      limits,
    );
    const url = await listen(server);
    const port = Number(new URL(url).port);

    const held = await Promise.all(Array.from({ length: 4 }, () => openRaw(port, "127.0.0.2")));
    await waitFor(async () => (await openConnections(server)) === 4, "4 held connections");
    const extra = await openRaw(port, "127.0.0.2");
    await waitFor(() => extra.destroyed, "the fifth connection to be closed", 5_000);
    // Another address (the server's probe) is not held to 127.0.0.2's share.
    expect(await getStatus(url, "/healthz", "127.0.0.1")).toBe(200);

    // A connection that carried a verified request is a peer's: it no longer counts.
    const peer = held[0];
    if (peer === undefined) throw new Error("no held connection");
    expect(await exchange(peer, "/verified")).toBe("HTTP/1.1 200 OK");
    expect(await getStatus(url, "/healthz", "127.0.0.2")).toBe(200);
    // Closing a held one frees its place too.
    held[1]?.destroy();
    await waitFor(async () => (await openConnections(server)) === 3, "the closed one to leave");
    expect(await exchange(await openRaw(port, "127.0.0.2"), "/healthz")).toBe("HTTP/1.1 200 OK");
  });
});
