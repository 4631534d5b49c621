// What the example services share: a durable append-only log (a write is acknowledged only
// after it is on disk) and a small HTTP server around it. Node built-ins only, so the agent can
// run the services anywhere Node runs.
//
// Environment: EDGEWARD_DATA_DIR (required) where the log lives, PORT (0 = any free port),
// HOST (default 127.0.0.1), EDGEWARD_GENERATION (the fencing generation the agent started this
// instance with, reported in /health and /stats), EDGEWARD_NODE_ID (the node it runs on;
// default the host name). Once listening, one JSON line goes to stdout:
// {"event":"listening","service":...,"port":...,"generation":...}.

import { Buffer } from "node:buffer";
import { mkdir, open, rename } from "node:fs/promises";
import { createServer } from "node:http";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { clearTimeout, setTimeout } from "node:timers";

/** Largest request body accepted; a reading is a few hundred bytes. */
const requestBodyBytesMax = 64 * 1024;
/** Writes waiting for the disk; beyond this the service answers 503 instead of queueing. */
const pendingWritesMax = 10_000;
/** How long SIGTERM waits for open requests before exiting anyway. */
const shutdownGraceMs = 5_000;
/** Read size when counting records on start. */
const recoveryChunkBytes = 1024 * 1024;

/** A request the client got wrong: answered with its status and message. */
export class RequestError extends Error {
  constructor(statusCode, message) {
    super(message);
    this.name = "RequestError";
    this.statusCode = statusCode;
  }
}

/** The environment is wrong: the service cannot start until someone fixes it (exit code 2). */
export class SettingsError extends Error {
  name = "SettingsError";
}

/** Ends a command that could not run, with a message instead of a stack trace. */
export function exitWithError(error) {
  console.error(JSON.stringify({ event: "failed", error: error.message ?? String(error) }));
  process.exit(error instanceof SettingsError ? 2 : 1);
}

/** The environment settings every example service reads. */
export function serviceSettings(environment = process.env) {
  const dataDir = environment.EDGEWARD_DATA_DIR;
  if (dataDir === undefined || dataDir === "") {
    throw new SettingsError("EDGEWARD_DATA_DIR must name the service's data directory");
  }
  return {
    dataDir,
    host: environment.HOST || "127.0.0.1",
    nodeId: environment.EDGEWARD_NODE_ID || hostname(),
    port: integerSetting(environment, "PORT", 0, 65_535),
    generation: integerSetting(environment, "EDGEWARD_GENERATION", 0, Number.MAX_SAFE_INTEGER),
  };
}

function integerSetting(environment, name, minimum, maximum) {
  const text = environment[name];
  if (text === undefined || text === "") return 0;
  const value = Number(text);
  if (!Number.isInteger(value) || value < minimum || value > maximum) {
    throw new SettingsError(
      `${name} must be an integer from ${minimum} to ${maximum}, got ${text}`,
    );
  }
  return value;
}

async function syncDirectory(path) {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * An append-only file of JSON lines. Appends are group-committed: every write queued while the
 * disk is busy goes out in the next write + fdatasync, and each is acknowledged only after it.
 */
export async function openDurableLog(path) {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, "a+");
  const count = await recoverCount(handle);
  // The file may be new: its directory entry must be durable before any write is acknowledged.
  await syncDirectory(dirname(path));

  let recordCount = count;
  let pending = [];
  /** The running flush, if any; set and cleared in the same turn as `pending` is checked. */
  let flushing;

  async function flush() {
    try {
      while (pending.length > 0) {
        const batch = pending;
        pending = [];
        const first = recordCount + 1;
        const lines = batch.map((entry, index) =>
          JSON.stringify({ sequence: first + index, ...entry.record }),
        );
        try {
          await handle.appendFile(lines.join("\n") + "\n");
          await handle.datasync();
        } catch (error) {
          // After a failed fsync the file's state is unknown (Linux may drop the dirty pages):
          // refuse everything and let the supervisor restart the service, which re-reads it.
          for (const entry of [...batch, ...pending]) entry.reject(error);
          pending = [];
          throw error;
        }
        recordCount += batch.length;
        batch.forEach((entry, index) => entry.resolve(first + index));
      }
    } finally {
      flushing = undefined;
    }
  }

  return {
    get count() {
      return recordCount;
    },
    /** Resolves with the record's sequence number once it is on disk. */
    append(record) {
      if (pending.length >= pendingWritesMax) {
        return Promise.reject(new RequestError(503, "too many writes waiting for the disk"));
      }
      const written = new Promise((resolve, reject) => pending.push({ record, resolve, reject }));
      if (flushing === undefined) {
        flushing = flush();
        flushing.catch(onFatal);
      }
      return written;
    },
    async close() {
      await flushing;
      await handle.close();
    },
  };
}

/**
 * Counts the complete records. A crash can tear only the last line (everything before it was
 * fsynced before its acknowledgement), so a tail without a newline is cut off.
 */
async function recoverCount(handle) {
  const buffer = Buffer.alloc(recoveryChunkBytes);
  let count = 0;
  let position = 0;
  let completeBytes = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    for (let index = 0; index < bytesRead; index++) {
      if (buffer[index] === 0x0a) {
        count += 1;
        completeBytes = position + index + 1;
      }
    }
    position += bytesRead;
  }
  if (completeBytes < position) {
    await handle.truncate(completeBytes);
    await handle.sync();
  }
  return count;
}

/** The service cannot go on safely (its log failed): crash, the supervisor restarts it. */
function onFatal(error) {
  console.error(JSON.stringify({ event: "fatal", error: String(error) }));
  process.exit(1);
}

async function readJsonBody(request) {
  const chunks = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += chunk.length;
    if (bytes > requestBodyBytesMax) {
      throw new RequestError(413, `request body over ${requestBodyBytesMax} bytes`);
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new RequestError(400, "request body is not JSON");
  }
}

function send(response, statusCode, body) {
  const text = JSON.stringify(body);
  response.writeHead(statusCode, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

/**
 * Runs a service that accepts records at `POST <collectionPath>`, checks each with
 * `validate(body)` (returns the record to store, or throws RequestError), and keeps them in
 * `<dataDir>/<logName>`. `extraStats()` adds fields to GET /stats.
 */
export async function runDurableService({ name, collectionPath, logName, validate, extraStats }) {
  const settings = serviceSettings();
  const startedAtMs = Date.now();
  const log = await openDurableLog(join(settings.dataDir, logName));

  async function handle(request, response) {
    const path = new URL(request.url ?? "/", "http://service").pathname;
    if (path === "/health" && request.method === "GET") {
      send(response, 200, { status: "ok", service: name, generation: settings.generation });
    } else if (path === "/stats" && request.method === "GET") {
      send(response, 200, {
        acknowledgedWrites: log.count,
        generation: settings.generation,
        startedAtMs,
        dataDir: settings.dataDir,
        ...(await extraStats?.(settings)),
      });
    } else if (path === collectionPath && request.method === "POST") {
      const record = validate(await readJsonBody(request));
      const sequence = await log.append({
        generation: settings.generation,
        receivedAtMs: Date.now(),
        ...record,
      });
      send(response, 201, { sequence, acknowledgedWrites: log.count });
    } else if (path === "/health" || path === "/stats" || path === collectionPath) {
      throw new RequestError(405, `${request.method} is not allowed on ${path}`);
    } else {
      throw new RequestError(404, `no such path: ${path}`);
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error) => {
      if (error instanceof RequestError) send(response, error.statusCode, { error: error.message });
      else send(response, 500, { error: String(error) });
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(settings.port, settings.host, resolve);
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : settings.port;
  console.log(
    JSON.stringify({ event: "listening", service: name, port, generation: settings.generation }),
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeIdleConnections();
    const grace = setTimeout(() => server.closeAllConnections(), shutdownGraceMs);
    await closed;
    clearTimeout(grace);
    await log.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop().catch(onFatal));
  process.on("SIGINT", () => void stop().catch(onFatal));
}

/**
 * Replaces `path` with `text` so that a crash leaves the old or the new file, never a torn one:
 * write a temporary file, fsync it, rename it over, fsync the directory.
 */
export async function writeFileDurably(path, text) {
  await mkdir(dirname(path), { recursive: true });
  const temporaryPath = `${path}.${process.pid}.tmp`;
  const handle = await open(temporaryPath, "w");
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporaryPath, path);
  await syncDirectory(dirname(path));
}
