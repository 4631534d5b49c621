// Tests only: a loopback HTTP proxy in front of an S3-compatible server that checks every
// request's AWS Signature V4 (and payload hash) the way S3 does, because the fake S3 server
// the tests use (s3rver) accepts any V4 signature. It can also inject failures, so the S3
// store's retries are exercised against real sockets.
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { signature } from "../sigv4.ts";

export interface VerifyingProxy {
  endpoint: string;
  /** Requests that reached the proxy, and those it rejected for a bad signature. */
  counts: { requests: number; rejectedSignatures: number; injectedFailures: number };
  /** The next `count` requests get `statusCode` (e.g. 503) instead of being forwarded. */
  failNext(count: number, statusCode: number): void;
  /** The next `count` requests have their connection destroyed without an answer. */
  dropNext(count: number): void;
  close(): Promise<void>;
}

const requestBytesMax = 64 * 1024 * 1024;
const clockSkewMsMax = 15 * 60_000;

export async function startVerifyingProxy(
  upstream: string,
  secrets: Readonly<Record<string, string>>,
  region: string,
): Promise<VerifyingProxy> {
  const upstreamUrl = new URL(upstream);
  const counts = { requests: 0, rejectedSignatures: 0, injectedFailures: 0 };
  let failures: { count: number; statusCode: number } = { count: 0, statusCode: 503 };
  let drops = 0;

  const reject = (response: http.ServerResponse, code: string, message: string) => {
    counts.rejectedSignatures++;
    response.writeHead(403, { "content-type": "application/xml" });
    response.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
    );
  };

  const server = http.createServer((request, response) => {
    counts.requests++;
    if (drops > 0) {
      drops--;
      counts.injectedFailures++;
      request.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    request.on("data", (chunk: Buffer) => {
      total += chunk.length;
      if (total > requestBytesMax) request.destroy();
      else chunks.push(chunk);
    });
    request.on("end", () => {
      if (failures.count > 0) {
        failures = { ...failures, count: failures.count - 1 };
        counts.injectedFailures++;
        response.writeHead(failures.statusCode, { "content-type": "application/xml" });
        response.end("<Error><Code>InternalError</Code><Message>injected</Message></Error>");
        return;
      }
      const body = Buffer.concat(chunks);
      const problem = verify(request, body, secrets, region);
      if (problem !== undefined) {
        reject(response, problem.code, problem.message);
        return;
      }
      const forwarded = http.request(
        {
          hostname: upstreamUrl.hostname,
          port: upstreamUrl.port,
          method: request.method,
          path: request.url,
          headers: request.headers,
        },
        (upstreamResponse) => {
          response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
          upstreamResponse.pipe(response);
        },
      );
      forwarded.on("error", () => {
        response.writeHead(502);
        response.end();
      });
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    failNext: (count, statusCode) => {
      failures = { count, statusCode };
    },
    dropNext: (count) => {
      drops = count;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function verify(
  request: http.IncomingMessage,
  body: Buffer,
  secrets: Readonly<Record<string, string>>,
  region: string,
): { code: string; message: string } | undefined {
  const authorization = request.headers.authorization ?? "";
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (!match) return { code: "AccessDenied", message: "missing or malformed V4 Authorization" };
  const [, accessKeyId = "", date = "", credentialRegion = "", signedHeaders = "", given = ""] =
    match;
  const secret = secrets[accessKeyId];
  if (secret === undefined) return { code: "InvalidAccessKeyId", message: accessKeyId };
  if (credentialRegion !== region)
    return { code: "AuthorizationHeaderMalformed", message: `region ${credentialRegion}` };
  const dateTime = String(request.headers["x-amz-date"] ?? "");
  if (!dateTime.startsWith(date)) return { code: "AccessDenied", message: "date mismatch" };
  const timeMs = Date.parse(
    dateTime.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"),
  );
  if (!(Math.abs(Date.now() - timeMs) <= clockSkewMsMax))
    return { code: "RequestTimeTooSkewed", message: dateTime };
  const names = signedHeaders.split(";");
  for (const required of ["host", "x-amz-date", "x-amz-content-sha256"])
    if (!names.includes(required))
      return { code: "AccessDenied", message: `${required} is not signed` };
  const headers: Record<string, string> = {};
  for (const name of names) {
    const value = request.headers[name];
    if (value === undefined) return { code: "AccessDenied", message: `no ${name} header` };
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const payloadSha256Hex = headers["x-amz-content-sha256"] ?? "";
  if (
    payloadSha256Hex !== "UNSIGNED-PAYLOAD" &&
    createHash("sha256").update(body).digest("hex") !== payloadSha256Hex
  )
    return { code: "XAmzContentSHA256Mismatch", message: "the body does not match its hash" };
  const rawUrl = request.url ?? "/";
  const questionMark = rawUrl.indexOf("?");
  const path = questionMark === -1 ? rawUrl : rawUrl.slice(0, questionMark);
  const query =
    questionMark === -1
      ? []
      : rawUrl
          .slice(questionMark + 1)
          .split("&")
          .filter((pair) => pair !== "")
          .map((pair): [string, string] => {
            const equals = pair.indexOf("=");
            const key = equals === -1 ? pair : pair.slice(0, equals);
            const value = equals === -1 ? "" : pair.slice(equals + 1);
            return [decodeURIComponent(key), decodeURIComponent(value)];
          });
  const expected = signature(
    { method: request.method ?? "GET", path, query, headers, payloadSha256Hex },
    secret,
    { region, service: "s3" },
  ).signatureHex;
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(given)))
    return {
      code: "SignatureDoesNotMatch",
      message: "The request signature we calculated does not match the signature you provided.",
    };
  return undefined;
}
