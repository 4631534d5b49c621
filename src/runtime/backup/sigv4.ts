// AWS Signature Version 4 for S3 requests (header-based, single-chunk payloads), on
// node:crypto alone. Used by the S3 blob store, and by the tests' verifying proxy to check it.
import { createHash, createHmac } from "node:crypto";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials' token, sent as x-amz-security-token. */
  sessionToken?: string;
}

export interface RequestToSign {
  method: string;
  /** The path exactly as sent, already URI-encoded (see `encodeS3Path`). */
  path: string;
  /** Query parameters, decoded; they are sorted and encoded for the canonical request. */
  query: readonly (readonly [string, string])[];
  /** Headers to sign (lower- or mixed-case names); must include `host` and `x-amz-date`. */
  headers: Readonly<Record<string, string>>;
  /** Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". */
  payloadSha256Hex: string;
}

export interface SigningScope {
  region: string;
  service: string;
}

/** SHA-256 of the empty string, the payload hash of every body-less request. */
export const emptyPayloadSha256Hex =
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** RFC 3986 encoding as SigV4 wants it: only A-Z a-z 0-9 - _ . ~ stay as they are. */
export function uriEncode(text: string, encodeSlash: boolean): string {
  let encoded = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const character = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(character) || (character === "/" && !encodeSlash))
      encoded += character;
    else encoded += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** An S3 path (`/bucket/key`) encoded segment by segment; S3 does not normalise paths. */
export function encodeS3Path(path: string): string {
  return uriEncode(path, false);
}

/** `20130524T000000Z`, the x-amz-date format. */
export function amzDate(time: Date): string {
  return time
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

export function canonicalQueryString(query: readonly (readonly [string, string])[]): string {
  return query
    .map(([key, value]) => [uriEncode(key, true), uriEncode(value, true)] as const)
    .sort(([keyA, valueA], [keyB, valueB]) =>
      keyA < keyB ? -1 : keyA > keyB ? 1 : valueA < valueB ? -1 : valueA > valueB ? 1 : 0,
    )
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
}

function normalisedHeaders(headers: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(headers)
    .map(([name, value]): [string, string] => [
      name.toLowerCase(),
      value.trim().replace(/\s+/g, " "),
    ])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function canonicalRequest(request: RequestToSign): string {
  const headers = normalisedHeaders(request.headers);
  return [
    request.method,
    request.path,
    canonicalQueryString(request.query),
    ...headers.map(([name, value]) => `${name}:${value}`),
    "",
    headers.map(([name]) => name).join(";"),
    request.payloadSha256Hex,
  ].join("\n");
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

export function signingKey(secretAccessKey: string, date: string, scope: SigningScope): Buffer {
  const dateKey = hmac(`AWS4${secretAccessKey}`, date);
  return hmac(hmac(hmac(dateKey, scope.region), scope.service), "aws4_request");
}

/** The signature, hex, of a request whose headers carry `x-amz-date`. */
export function signature(
  request: RequestToSign,
  secretAccessKey: string,
  scope: SigningScope,
): { signatureHex: string; credentialScope: string; signedHeaders: string } {
  const headers = normalisedHeaders(request.headers);
  const dateTime = headers.find(([name]) => name === "x-amz-date")?.[1];
  if (dateTime === undefined || !/^\d{8}T\d{6}Z$/.test(dateTime))
    throw new Error("assertion failed: a request to sign needs an x-amz-date header");
  const date = dateTime.slice(0, 8);
  const credentialScope = `${date}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    dateTime,
    credentialScope,
    createHash("sha256").update(canonicalRequest(request), "utf8").digest("hex"),
  ].join("\n");
  return {
    signatureHex: createHmac("sha256", signingKey(secretAccessKey, date, scope))
      .update(stringToSign, "utf8")
      .digest("hex"),
    credentialScope,
    signedHeaders: headers.map(([name]) => name).join(";"),
  };
}

/** The Authorization header's value for `request`. */
export function authorizationHeader(
  request: RequestToSign,
  credentials: AwsCredentials,
  scope: SigningScope,
): string {
  const { signatureHex, credentialScope, signedHeaders } = signature(
    request,
    credentials.secretAccessKey,
    scope,
  );
  return `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signatureHex}`;
}
