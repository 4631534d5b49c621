// Starts and stops the security benchmark's servers (bench/security/server-process.ts, one
// process each) and talks to them over keep-alive HTTP or HTTPS, trusting the fleet's CA.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { readAdminTokenFile } from "../../src/runtime/security/admin-token-file.ts";
import { openDataDirKeys } from "../../src/runtime/security/data-dir-keys.ts";
import type { BenchServerOptions, BenchServerReady } from "./server-process.ts";

/** A server the benchmark may hammer: the rate limit is out of the way unless asked for. */
export const benchSecuritySpec = {
  network: { intrusionDetection: { requestsPerSecondMax: 10_000_000 } },
};

const guardedSockets = new WeakSet<object>();

/** How long a server may take to start (tsx compiles the sources first). */
const startTimeoutMs = 60_000;
/** A request without an answer (or progress) for this long is abandoned. */
const requestTimeoutMsDefault = 10_000;
/** Response bytes kept per request; the rest is read and dropped. */
const responseBytesKeptMax = 64 * 1024;

export interface BenchResponse {
  /** 0 when no response arrived (the connection failed or was closed). */
  statusCode: number;
  body: string;
  latencyMs: number;
  /** Why no response arrived, or why its body was cut short. */
  error?: string;
}

export interface BenchRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** No answer (or no progress) within this is recorded as a timeout. */
  timeoutMs?: number;
  /** The answer's body is abandoned after this (a stream never ends); the status is kept. */
  bodyTimeoutMs?: number;
}

export class BenchServer {
  readonly url: string;
  readonly routes: readonly string[];
  readonly dataDir: string;
  readonly #child: ChildProcess;
  readonly #agent: HttpAgent;
  readonly #ca: string | undefined;
  #stderr = "";
  #exit: { code: number | null; signal: string | null } | undefined;

  private constructor(
    child: ChildProcess,
    ready: BenchServerReady,
    dataDir: string,
    connections: number,
  ) {
    this.#child = child;
    this.url = ready.url;
    this.routes = ready.routes;
    this.dataDir = dataDir;
    const tls = ready.url.startsWith("https:");
    this.#ca = tls ? readFileSync(join(dataDir, "tls", "ca.crt"), "utf8") : undefined;
    const agentOptions = { keepAlive: true, maxSockets: connections, maxFreeSockets: connections };
    this.#agent = tls
      ? new HttpsAgent({ ...agentOptions, ca: this.#ca })
      : new HttpAgent(agentOptions);
    child.stderr?.on("data", (chunk: Buffer) => {
      if (this.#stderr.length < 1_000_000) this.#stderr += chunk.toString();
    });
    child.once("exit", (code, signal) => (this.#exit = { code, signal }));
    // The server must not outlive the benchmark, however it ends.
    const stopChild = () => child.kill("SIGKILL");
    process.once("exit", stopChild);
    child.once("exit", () => process.removeListener("exit", stopChild));
  }

  static async start(
    options: Omit<BenchServerOptions, "dataDir">,
    connections = 16,
  ): Promise<BenchServer> {
    const dataDir = mkdtempSync(join(tmpdir(), "edgeward-bench-security-"));
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(import.meta.dirname, "server-process.ts"),
        JSON.stringify({ ...options, dataDir }),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const ready = await new Promise<BenchServerReady>((resolve, reject) => {
      let text = "";
      let errors = "";
      const timer = setTimeout(
        () => reject(new Error("bench server did not start")),
        startTimeoutMs,
      );
      child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        const newline = text.indexOf("\n");
        if (newline < 0) return;
        clearTimeout(timer);
        resolve(JSON.parse(text.slice(0, newline)) as BenchServerReady);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`bench server exited with ${code}: ${errors.slice(0, 2_000)}`));
      });
    });
    return new BenchServer(child, ready, dataDir, connections);
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  /** Set once the process has exited; while the benchmark runs, that is a crash. */
  get exit(): { code: number | null; signal: string | null } | undefined {
    return this.#exit;
  }

  /** Lines the server logged at level error (a failed request, an unhandled rejection). */
  get errorLines(): string[] {
    return this.#stderr.split("\n").filter((line) => line.trim() !== "");
  }

  /** The bootstrap admin credential the server sealed (mode 0600) into its data dir. */
  get adminToken(): string {
    const token = readAdminTokenFile(this.dataDir, {});
    if (token === undefined) throw new Error(`no admin.token in ${this.dataDir}`);
    return token;
  }

  /** A secret file the server sealed into its data dir (e.g. signing.key), opened with its root key. */
  secretFile(name: string): string {
    const text = openDataDirKeys({
      dataDir: this.dataDir,
      environment: {},
      nowMs: 0,
      secretFileNames: [],
      create: false,
    }).files.readText(name);
    if (text === undefined) throw new Error(`no ${name} in ${this.dataDir}`);
    return text;
  }

  /** Seconds of CPU (user + system) the server process has used, from /proc. */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  request(request: BenchRequest): Promise<BenchResponse> {
    const started = performance.now();
    const url = new URL(request.path.startsWith("/") ? request.path : `/${request.path}`, this.url);
    const send = this.#ca === undefined ? httpRequest : httpsRequest;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (response: Omit<BenchResponse, "latencyMs">) => {
        if (settled) return;
        settled = true;
        resolve({ ...response, latencyMs: performance.now() - started });
      };
      let outgoing: ReturnType<typeof send>;
      try {
        outgoing = send(
          {
            hostname: url.hostname,
            port: url.port,
            path: `${url.pathname}${url.search}`,
            method: request.method,
            agent: this.#agent,
            headers: request.headers,
          },
          (response: IncomingMessage) => {
            const statusCode = response.statusCode ?? 0;
            const chunks: Buffer[] = [];
            let kept = 0;
            const timer =
              request.bodyTimeoutMs === undefined
                ? undefined
                : setTimeout(() => {
                    response.destroy();
                    finish({ statusCode, body: "", error: "body abandoned (stream)" });
                  }, request.bodyTimeoutMs);
            response.on("data", (chunk: Buffer) => {
              if (kept < responseBytesKeptMax) chunks.push(chunk);
              kept += chunk.length;
            });
            response.on("end", () => {
              clearTimeout(timer);
              finish({ statusCode, body: Buffer.concat(chunks).toString() });
            });
            response.on("error", (error) => {
              clearTimeout(timer);
              finish({ statusCode, body: "", error: error.message });
            });
          },
        );
      } catch (error) {
        // The client itself refused the request (a method or header Node will not send).
        finish({ statusCode: 0, body: "", error: `not sent: ${(error as Error).message}` });
        return;
      }
      outgoing.on("error", (error) => finish({ statusCode: 0, body: "", error: error.message }));
      outgoing.setTimeout(request.timeoutMs ?? requestTimeoutMsDefault, () => {
        finish({ statusCode: 0, body: "", error: "no answer within the timeout" });
        outgoing.destroy();
      });
      // A server may answer (413) and reset the connection while a huge body is still being
      // written; the socket's late error then has no request to go to and must not kill us.
      outgoing.once("socket", (socket) => {
        if (guardedSockets.has(socket)) return;
        guardedSockets.add(socket);
        socket.on("error", () => {});
      });
      outgoing.end(request.body);
    });
  }

  /** GET /healthz answers 200: the server is alive and serving. */
  async healthy(): Promise<boolean> {
    return (await this.request({ method: "GET", path: "/healthz" })).statusCode === 200;
  }

  async stop(): Promise<void> {
    this.#agent.destroy();
    if (this.#exit === undefined) {
      const exited = new Promise((resolve) => this.#child.once("exit", resolve));
      this.#child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The value below which `fraction` of the sorted samples lie. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * fraction) - 1)]!;
}

/** Counts of answers by status class (`0` for no answer). */
export function statusClass(statusCode: number): string {
  return statusCode === 0 ? "none" : `${Math.floor(statusCode / 100)}xx`;
}
