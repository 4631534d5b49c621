// The fleet's own certificate authority: created at the server's first start (ECDSA P-256,
// self-signed), it signs the server's TLS certificate for the hosts it listens on. Agents pin
// the CA's SHA-256 fingerprint, which their join token carries. Private keys are sealed secret
// files in <data-dir>/tls/ (docs/formats/secrets-at-rest.md); certificates are plain.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import {
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from "./der.ts";
import type { SecretFiles } from "./secret-files.ts";

/** The CA lives ten years; rotating it means re-enrolling every agent. */
export const caValidityMs = 10 * 365 * 24 * 3_600_000;
/** The server certificate is renewed at start when less than a month is left. */
export const serverCertificateValidityMs = 365 * 24 * 3_600_000;
const serverCertificateRenewBeforeMs = 30 * 24 * 3_600_000;
/** Certificates are valid from a little before their creation, for clock skew. */
const backdateMs = 5 * 60_000;

const oid = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extendedKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

export interface CertificateRequest {
  subjectCommonName: string;
  issuerCommonName: string;
  subjectPublicKey: KeyObject;
  issuerPublicKey: KeyObject;
  issuerPrivateKey: KeyObject;
  notBeforeMs: number;
  notAfterMs: number;
  isCa: boolean;
  /** DNS names and IP addresses the certificate is for (leaf certificates). */
  hosts: readonly string[];
}

const name = (commonName: string) =>
  sequence(
    set(sequence(objectIdentifier(oid.organization), utf8String("edgeward"))),
    set(sequence(objectIdentifier(oid.commonName), utf8String(commonName))),
  );

const extension = (id: string, critical: boolean, value: Buffer) =>
  sequence(objectIdentifier(id), ...(critical ? [boolean(true)] : []), octetString(value));

function keyIdentifier(publicKey: KeyObject): Buffer {
  return createHash("sha1")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest();
}

function ipBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split(".").map(Number));
  // IPv6: expand "::" and write eight 16-bit groups.
  const [head = "", tail = ""] = address.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::")
    ? [
        ...headGroups,
        ...Array<string>(8 - headGroups.length - tailGroups.length).fill("0"),
        ...tailGroups,
      ]
    : headGroups;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2));
  return bytes;
}

/** Builds and signs one X.509 v3 certificate; returns it as PEM. */
export function createCertificate(request: CertificateRequest): string {
  const algorithm = sequence(objectIdentifier(oid.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const extensions = request.isCa
    ? [
        extension(oid.basicConstraints, true, sequence(boolean(true))),
        // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000_0110, one unused bit.
        extension(oid.keyUsage, true, bitString(Buffer.from([0x06]), 1)),
        extension(
          oid.subjectKeyIdentifier,
          false,
          octetString(keyIdentifier(request.subjectPublicKey)),
        ),
      ]
    : [
        extension(oid.basicConstraints, true, sequence()),
        // digitalSignature (bit 0): 0b1000_0000, seven unused bits.
        extension(oid.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
        extension(oid.extendedKeyUsage, false, sequence(objectIdentifier(oid.serverAuth))),
        extension(
          oid.subjectAltName,
          false,
          sequence(
            ...request.hosts.map((host) =>
              isIP(host) === 0
                ? implicitPrimitive(2, Buffer.from(host, "ascii"))
                : implicitPrimitive(7, ipBytes(host)),
            ),
          ),
        ),
        extension(
          oid.authorityKeyIdentifier,
          false,
          sequence(implicitPrimitive(0, keyIdentifier(request.issuerPublicKey))),
        ),
      ];
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serial),
    algorithm,
    name(request.issuerCommonName),
    sequence(time(request.notBeforeMs), time(request.notAfterMs)),
    name(request.subjectCommonName),
    request.subjectPublicKey.export({ type: "spki", format: "der" }),
    explicit(3, sequence(...extensions)),
  );
  const signature = sign("sha256", tbs, request.issuerPrivateKey);
  const der = sequence(tbs, algorithm, bitString(signature));
  const base64 = der.toString("base64").replace(/(.{64})/g, "$1\n");
  return `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

/** Lowercase hex SHA-256 of the certificate's DER: what agents pin. */
export function certificateFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(":", "").toLowerCase();
}

export interface TlsMaterial {
  caCertificatePem: string;
  caFingerprint: string;
  /** The server certificate followed by the CA's, as TLS sends the chain. */
  certificateChainPem: string;
  privateKeyPem: string;
}

/** Writes a secret file readable by its owner only, also when it already existed. */
export function writeSecretFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function newKeyPair() {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

/** The sealed private keys, relative to the data dir. */
export const tlsSecretFileNames = { caKey: "tls/ca.key", serverKey: "tls/server.key" } as const;

/**
 * The CA in `<data-dir>/tls` (created if missing) and a server certificate for `hosts`
 * (re-issued when missing, near expiry or not covering every host).
 */
export function loadOrCreateCertificateAuthority(
  secrets: SecretFiles,
  hosts: readonly string[],
  nowMs: number,
): TlsMaterial {
  const directory = join(secrets.directory, "tls");
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const caCertPath = join(directory, "ca.crt");
  const serverCertPath = join(directory, "server.crt");

  if (!secrets.exists(tlsSecretFileNames.caKey) || !existsSync(caCertPath)) {
    const { privateKey, publicKey } = newKeyPair();
    const certificate = createCertificate({
      subjectCommonName: "edgeward fleet CA",
      issuerCommonName: "edgeward fleet CA",
      subjectPublicKey: publicKey,
      issuerPublicKey: publicKey,
      issuerPrivateKey: privateKey,
      notBeforeMs: nowMs - backdateMs,
      notAfterMs: nowMs + caValidityMs,
      isCa: true,
      hosts: [],
    });
    secrets.write(
      tlsSecretFileNames.caKey,
      privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    );
    writeFileSync(caCertPath, certificate);
  }
  const caPrivateKey = createPrivateKey(requiredSecret(secrets, tlsSecretFileNames.caKey));
  const caCertificatePem = readFileSync(caCertPath, "utf8");
  const caCertificate = new X509Certificate(caCertificatePem);

  const wanted = [...new Set(["localhost", "127.0.0.1", "::1", ...hosts])].filter(
    (host) => host !== "0.0.0.0" && host !== "::",
  );
  if (
    !secrets.exists(tlsSecretFileNames.serverKey) ||
    !serverCertificateUsable(serverCertPath, caCertificate, wanted, nowMs)
  ) {
    const { privateKey, publicKey } = newKeyPair();
    const certificate = createCertificate({
      subjectCommonName: wanted[0] ?? "localhost",
      issuerCommonName: "edgeward fleet CA",
      subjectPublicKey: publicKey,
      issuerPublicKey: createPublicKey(caPrivateKey),
      issuerPrivateKey: caPrivateKey,
      notBeforeMs: nowMs - backdateMs,
      notAfterMs: nowMs + serverCertificateValidityMs,
      isCa: false,
      hosts: wanted,
    });
    secrets.write(
      tlsSecretFileNames.serverKey,
      privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    );
    writeFileSync(serverCertPath, certificate);
  }
  return {
    caCertificatePem,
    caFingerprint: certificateFingerprint(caCertificatePem),
    certificateChainPem: readFileSync(serverCertPath, "utf8") + caCertificatePem,
    privateKeyPem: requiredSecret(secrets, tlsSecretFileNames.serverKey).toString("utf8"),
  };
}

function requiredSecret(secrets: SecretFiles, name: string): Buffer {
  const content = secrets.read(name);
  if (content === undefined) throw new Error(`${name} was written just before`);
  return content;
}

function serverCertificateUsable(
  path: string,
  ca: X509Certificate,
  hosts: readonly string[],
  nowMs: number,
): boolean {
  if (!existsSync(path)) return false;
  try {
    const certificate = new X509Certificate(readFileSync(path, "utf8"));
    if (!certificate.verify(ca.publicKey)) return false;
    if (Date.parse(certificate.validTo) - serverCertificateRenewBeforeMs < nowMs) return false;
    return hosts.every((host) =>
      isIP(host) === 0
        ? certificate.checkHost(host) !== undefined
        : certificate.checkIP(host) !== undefined,
    );
  } catch {
    return false;
  }
}
