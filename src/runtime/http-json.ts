// A small JSON-over-HTTP client on node:http. The agent uses it instead of fetch, whose
// implementation costs about 11 MB of resident memory in every agent process.

import { request } from "node:http";
import { request as secureRequest } from "node:https";

/** Response bodies larger than this are refused, so a broken peer cannot exhaust memory. */
export const responseBodyBytesMax = 1024 * 1024;

export interface JsonResponse {
  statusCode: number;
  body: unknown;
}

export interface RequestJsonOptions {
  /** Extra request headers, e.g. authorization. */
  headers?: Record<string, string>;
  /** PEM of the CA to trust for https (the fleet's own CA); default: the system's. */
  ca?: string;
  /** https only: skip certificate checks (used once, to fetch a CA that is then pinned). */
  insecureSkipVerify?: boolean;
}

export class HttpRequestError extends Error {
  override readonly name = "HttpRequestError";
}

export function requestJson(
  method: "GET" | "POST",
  url: URL,
  body: unknown,
  timeoutMs: number,
  options: RequestJsonOptions = {},
): Promise<JsonResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const send = url.protocol === "https:" ? secureRequest : request;
    const outgoing = send(
      url,
      {
        method,
        timeout: timeoutMs,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        ...(options.insecureSkipVerify === true ? { rejectUnauthorized: false } : {}),
        headers: {
          ...options.headers,
          ...(payload === undefined
            ? {}
            : {
                "content-type": "application/json",
                "content-length": Buffer.byteLength(payload),
              }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let receivedBytes = 0;
        response.on("data", (chunk: Buffer) => {
          receivedBytes += chunk.length;
          if (receivedBytes > responseBodyBytesMax) {
            outgoing.destroy(
              new HttpRequestError(
                `response from ${url.host} is larger than ${responseBodyBytesMax} bytes`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text === "" ? undefined : JSON.parse(text);
          } catch {
            parsed = text;
          }
          resolve({ statusCode: response.statusCode ?? 0, body: parsed });
        });
        response.on("error", reject);
      },
    );
    outgoing.on("timeout", () =>
      outgoing.destroy(new HttpRequestError(`no answer from ${url.host} within ${timeoutMs} ms`)),
    );
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
}
