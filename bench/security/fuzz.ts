// Fuzzing the real server over HTTPS: every route the app registered (and some it did not),
// random and wrong methods, mutated valid bodies, random JSON, broken JSON, deep nesting, huge
// bodies, wrong content types and every kind of credential, from a seeded generator, so a run
// replays from its seed. Any 5xx or a server that stops answering is a bug.

import { performance } from "node:perf_hooks";
import { SeededRandom } from "../../src/sim/random.ts";
import { requestBodyBytesMax } from "../../src/server/app.ts";
import { statusClass, type BenchRequest, type BenchServer } from "./bench-server.ts";

export interface FuzzOptions {
  requests: number;
  seed: number;
  concurrency: number;
  /** Credentials to send, by name: valid ones of every kind and broken ones. */
  credentials: Record<string, string | undefined>;
}

export interface FuzzFinding {
  method: string;
  path: string;
  statusCode: number;
  body: string;
  credential: string;
  bodyKind: string;
}

export interface FuzzResult {
  seed: number;
  requests: number;
  seconds: number;
  routes: number;
  byStatusClass: Record<string, number>;
  byStatus: Record<string, number>;
  byBodyKind: Record<string, number>;
  /** Requests that got no answer, by the client's error (connection closed after a 413, ...). */
  noAnswer: Record<string, number>;
  /** The same by method and body kind, to tell the server's doing from the client's. */
  noAnswerByRequest: Record<string, number>;
  serverErrors: number;
  /** The first few 5xx answers, to reproduce. */
  findings: FuzzFinding[];
  serverAlive: boolean;
  serverErrorLogLines: number;
}

const findingsKeptMax = 20;
const methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "TRACE"];
const contentTypes = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=utf-16",
  "text/plain",
  "application/octet-stream",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/xml",
  "*/*",
  "",
  "json",
  "application/json;;;",
];
const queryNames = [
  "limit",
  "afterId",
  "from",
  "leafIndex",
  "digest",
  "treeSize",
  "first",
  "second",
  "service",
  "policy",
  "node",
  "nodeId",
  "incarnation",
  "prefix",
  "after",
  "__proto__",
  "constructor",
];

/** Bodies each route accepts, as templates the fuzzer mutates. */
const validBodies: Record<string, unknown[]> = {
  "/v1/nodes/register": [
    { nodeId: "edge-1", incarnation: 1, agentUrl: "http://127.0.0.1:1", zone: "a", tier: "edge" },
  ],
  "/v1/nodes/enrol": [{ joinToken: "x.y.z", publicKey: "MCowBQYDK2VwAyEA" }],
  "/v1/nodes/credential/renew": [
    { timestampMs: 1_800_000_000_000, nonce: "0123456789abcdef", signature: "AAAA" },
  ],
  "/v1/heartbeats": [
    { nodeId: "edge-1", incarnation: 1, sequence: 1 },
    { heartbeats: [{ nodeId: "edge-1", incarnation: 1, sequence: 2 }] },
  ],
  "/v1/tokens": [{ role: "viewer", subject: "fuzz-user", ttlSeconds: 3_600 }],
  "/v1/tokens/revoke": [{ id: "00000000-0000-4000-8000-000000000000" }, { subject: "fuzz-user" }],
  "/v1/tokens/join": [{ nodeId: "edge-9", ttlSeconds: 600 }],
  "/v1/services/:name/failover": [{ to: "edge-2" }],
  "/v1/backups/run": [{ policy: "hourly", level: "REGIONAL", node: "edge-1" }],
  "/v1/backups/verify": [{ readData: true }],
  "/v1/backups/:id/restore": [{ service: "db", node: "edge-1" }],
};

class Fuzzer {
  readonly #random: SeededRandom;
  readonly #routes: readonly string[];
  readonly #credentialNames: readonly string[];

  constructor(seed: number, routes: readonly string[], credentialNames: readonly string[]) {
    this.#random = new SeededRandom(seed);
    this.#routes = routes;
    this.#credentialNames = credentialNames;
  }

  below(count: number): number {
    return Math.floor(this.#random.nextFloat() * count);
  }

  chance(probability: number): boolean {
    return this.#random.nextFloat() < probability;
  }

  pick<Value>(values: readonly Value[]): Value {
    return values[this.below(values.length)]!;
  }

  text(lengthMax: number): string {
    const alphabets = [
      "abcdefghijklmnopqrstuvwxyz0123456789-_",
      "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ",
      "\u0000\u0001\u001f\u007f\u00e9\u00ff\u2028\u202e\ud83d\ude00\ud800",
    ];
    const alphabet = this.pick(alphabets);
    const length = this.below(lengthMax + 1);
    let text = "";
    for (let index = 0; index < length; index++) text += alphabet[this.below(alphabet.length)];
    return text;
  }

  number(): number {
    return this.pick([
      0,
      -1,
      1,
      2 ** 31,
      2 ** 53,
      -(2 ** 63),
      1e308,
      0.5,
      Number.MAX_SAFE_INTEGER,
      this.below(1_000_000),
    ]);
  }

  json(depth: number): unknown {
    const kind = this.below(depth <= 0 ? 4 : 7);
    switch (kind) {
      case 0:
        return this.number();
      case 1:
        return this.text(40);
      case 2:
        return this.pick([true, false, null]);
      case 3:
        return this.pick(["", "edge-1", "admin", "__proto__", "x".repeat(5_000)]);
      case 4:
      case 5: {
        const value: Record<string, unknown> = {};
        for (let count = this.below(6); count > 0; count--)
          value[this.pick(["nodeId", "role", "__proto__", "constructor", this.text(12)])] =
            this.json(depth - 1);
        return value;
      }
      default:
        return Array.from({ length: this.below(6) }, () => this.json(depth - 1));
    }
  }

  mutate(value: unknown, depth = 0): unknown {
    if (typeof value !== "object" || value === null) return this.chance(0.5) ? this.json(2) : value;
    if (Array.isArray(value))
      return this.chance(0.2)
        ? Array.from({ length: this.below(2_000) }, (): unknown => value[0] as unknown)
        : value.map((item: unknown) => this.mutate(item, depth + 1));
    const result: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      const roll = this.below(6);
      if (roll === 0) continue;
      result[key] = roll === 1 ? this.json(2) : roll === 2 ? this.mutate(inner, depth + 1) : inner;
    }
    if (this.chance(0.2)) result[this.text(10)] = this.json(1);
    return result;
  }

  segment(): string {
    return this.pick([
      "edge-1",
      "edge-2",
      "factory-1-line-a-edge-1",
      "db",
      "snap-1",
      encodeText(this.text(30)),
      "..%2F..%2Fetc%2Fpasswd",
      "%00",
      "%",
      "x".repeat(129),
      "x".repeat(2_000),
      "__proto__",
      "",
    ]);
  }

  path(template: string): string {
    const filled = template
      .split("/")
      .map((part) => (part.startsWith(":") || part === "*" ? this.segment() : part))
      .join("/");
    if (!this.chance(0.3)) return filled;
    const pairs = Array.from({ length: 1 + this.below(4) }, () => {
      const value = this.pick([String(this.number()), encodeText(this.text(20)), "", "NaN"]);
      return `${this.pick(queryNames)}=${value}`;
    });
    return `${filled}?${pairs.join("&")}`;
  }

  body(template: string): { body: Buffer | string | undefined; kind: string } {
    const roll = this.below(100);
    const samples = validBodies[template];
    if (roll < 15) return { body: undefined, kind: "none" };
    if (roll < 45 && samples !== undefined)
      return { body: JSON.stringify(this.mutate(this.pick(samples))), kind: "mutated-valid" };
    if (roll < 60 && samples !== undefined)
      return { body: JSON.stringify(this.pick(samples)), kind: "valid" };
    if (roll < 80) return { body: JSON.stringify(this.json(4)), kind: "random-json" };
    if (roll < 90) {
      const text = JSON.stringify(samples === undefined ? this.json(3) : this.pick(samples));
      return { body: text.slice(0, this.below(text.length)), kind: "truncated-json" };
    }
    if (roll < 95) return { body: this.text(200), kind: "random-text" };
    if (roll < 98) {
      const depth = 1 + this.below(200_000);
      return { body: `${"[".repeat(depth)}${"]".repeat(depth)}`, kind: "deep-nesting" };
    }
    const sizeBytes = this.pick([
      requestBodyBytesMax - 1_000,
      requestBodyBytesMax + 1,
      4 * requestBodyBytesMax,
    ]);
    return {
      body: Buffer.from(`{"nodeId":"${"a".repeat(Math.max(0, sizeBytes - 14))}"}`),
      kind: "huge",
    };
  }

  next(): { request: BenchRequest; credential: string; bodyKind: string } {
    const route = this.#routes[this.below(this.#routes.length)]!;
    const [routeMethod, template] = route.split(" ") as [string, string];
    const method = this.chance(0.15) ? this.pick(methods) : routeMethod;
    const path = this.chance(0.03)
      ? `/v1/${encodeText(this.text(20))}/${this.segment()}`
      : this.path(template);
    const credential = this.pick(this.#credentialNames);
    const { body, kind } =
      method === "GET" && !this.chance(0.1)
        ? { body: undefined, kind: "none" }
        : this.body(template);
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers["content-type"] = this.pick(contentTypes);
      // Node sends a GET, HEAD or DELETE body without a length unless told.
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    if (this.chance(0.05)) headers["content-encoding"] = this.pick(["gzip", "br", "identity", "x"]);
    if (this.chance(0.05)) headers["x-edgeward-node"] = this.segment();
    return {
      request: { method, path, headers, ...(body === undefined ? {} : { body }) },
      credential,
      bodyKind: kind,
    };
  }
}

/** Percent-encodes any text, lone surrogates included (they become U+FFFD first). */
function encodeText(text: string): string {
  return encodeURIComponent(Buffer.from(text, "utf8").toString("utf8"));
}

function count(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

export async function fuzzServer(server: BenchServer, options: FuzzOptions): Promise<FuzzResult> {
  const fuzzer = new Fuzzer(options.seed, server.routes, Object.keys(options.credentials));
  const result: FuzzResult = {
    seed: options.seed,
    requests: 0,
    seconds: 0,
    routes: server.routes.length,
    byStatusClass: {},
    byStatus: {},
    byBodyKind: {},
    noAnswer: {},
    noAnswerByRequest: {},
    serverErrors: 0,
    findings: [],
    serverAlive: true,
    serverErrorLogLines: 0,
  };
  const started = performance.now();
  let issued = 0;
  // Requests are generated in order from the seed, whichever worker sends them.
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (issued < options.requests && server.exit === undefined) {
        issued += 1;
        const { request, credential, bodyKind } = fuzzer.next();
        const token = options.credentials[credential];
        if (token !== undefined) request.headers = { ...request.headers, authorization: token };
        const response = await server.request({ ...request, bodyTimeoutMs: 2_000 });
        result.requests += 1;
        count(result.byStatusClass, statusClass(response.statusCode));
        count(result.byStatus, String(response.statusCode));
        count(result.byBodyKind, bodyKind);
        if (response.statusCode === 0) {
          count(result.noAnswer, response.error ?? "unknown");
          count(result.noAnswerByRequest, `${request.method} ${bodyKind}: ${response.error ?? ""}`);
        }
        if (response.statusCode >= 500) {
          result.serverErrors += 1;
          if (result.findings.length < findingsKeptMax)
            result.findings.push({
              method: request.method,
              path: request.path.slice(0, 300),
              statusCode: response.statusCode,
              body: response.body.slice(0, 300),
              credential,
              bodyKind,
            });
        }
        if (result.requests % 10_000 === 0)
          process.stderr.write(`fuzz: ${result.requests} requests, ${result.serverErrors} 5xx\n`);
      }
    }),
  );
  result.seconds = (performance.now() - started) / 1_000;
  result.serverAlive = server.exit === undefined && (await server.healthy());
  result.serverErrorLogLines = server.errorLines.length;
  return result;
}
