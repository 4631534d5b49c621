// Starts an example service as a real process on a free port and stops only what it started.

import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
/** A service that has not said it listens within this is reported as broken. */
const readyTimeoutMs = 10_000;

export interface RunningService {
  readonly child: ChildProcess;
  readonly url: string;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

/** Runs `examples/services/<script>` with PORT=0 and waits for its `listening` line. */
export async function startService(
  script: string,
  environment: Record<string, string>,
): Promise<RunningService> {
  const child = spawn(process.execPath, [join(root, "examples", "services", script)], {
    cwd: root,
    env: { ...process.env, PORT: "0", ...environment },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    }),
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} did not listen within ${readyTimeoutMs} ms: ${stderr}`)),
      readyTimeoutMs,
    );
    lines.on("line", (line) => {
      const message = JSON.parse(line) as { event?: string; port?: number };
      if (message.event === "listening" && typeof message.port === "number") {
        clearTimeout(timer);
        resolve(message.port);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before listening: ${stderr}`));
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, exited };
}

/** Runs a one-shot subcommand of an example service and returns its exit code and stdout. */
export async function runCommand(
  script: string,
  args: readonly string[],
  environment: Record<string, string>,
): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [join(root, "examples", "services", script), ...args], {
    cwd: root,
    env: { ...process.env, ...environment },
    stdio: ["ignore", "pipe", "inherit"],
  });
  started.add(child);
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  started.delete(child);
  return { code, stdout };
}

/** Kills whatever this module started and is still running (for afterEach). */
export async function stopStarted(): Promise<void> {
  const waits = [...started].map((child) => new Promise((resolve) => child.once("exit", resolve)));
  for (const child of started) child.kill("SIGKILL");
  await Promise.all(waits);
}

export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

export async function getJson<Body>(url: string): Promise<Body> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return (await response.json()) as Body;
}
