import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { once } from "node:events";
import { createServer, request } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadOrCreateCertificateAuthority } from "./certificate-authority.ts";
import { testSecretFiles } from "./testing.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0))
    rmSync(directory, { recursive: true, force: true });
});

function tempDir(): string {
  const directory = mkdtempSync(join(tmpdir(), "edgeward-ca-"));
  directories.push(directory);
  return directory;
}

function get(port: number, host: string, ca: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host, port, path: "/", ...(ca === undefined ? {} : { ca }), timeout: 5_000 },
      (response) => {
        response.resume();
        response.on("end", () => resolve(String(response.statusCode)));
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

describe("certificate authority", () => {
  it("creates a CA and a server certificate that verify, with sealed 0600 keys, and reuses them", () => {
    const dataDir = tempDir();
    const directory = join(dataDir, "tls");
    const secrets = testSecretFiles(dataDir);
    const material = loadOrCreateCertificateAuthority(
      secrets,
      ["127.0.0.1", "edge.example"],
      Date.now(),
    );
    const ca = new X509Certificate(material.caCertificatePem);
    expect(ca.ca).toBe(true);
    const server = new X509Certificate(material.certificateChainPem);
    expect(server.ca).toBe(false);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(server.checkHost("localhost")).toBe("localhost");
    expect(server.checkHost("edge.example")).toBe("edge.example");
    expect(material.caFingerprint).toMatch(/^[0-9a-f]{64}$/);
    for (const file of ["ca.key", "server.key"]) {
      expect(statSync(join(directory, file)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(directory, file)).subarray(0, 4).toString()).toBe("EWSS");
    }
    expect(readFileSync(join(directory, "ca.crt"), "utf8")).toMatch(/^-----BEGIN CERTIFICATE/);
    const again = loadOrCreateCertificateAuthority(secrets, ["127.0.0.1"], Date.now());
    expect(again.caFingerprint).toBe(material.caFingerprint);
    expect(again.privateKeyPem).toBe(material.privateKeyPem);
    const otherHost = loadOrCreateCertificateAuthority(secrets, ["10.1.2.3"], Date.now());
    expect(otherHost.caFingerprint).toBe(material.caFingerprint);
    expect(otherHost.privateKeyPem).not.toBe(material.privateKeyPem);
    expect(new X509Certificate(otherHost.certificateChainPem).checkIP("10.1.2.3")).toBe("10.1.2.3");
  });

  it("serves TLS that a client trusting the CA accepts and others refuse", async () => {
    const material = loadOrCreateCertificateAuthority(testSecretFiles(tempDir()), [], Date.now());
    const server = createServer(
      { key: material.privateKeyPem, cert: material.certificateChainPem },
      (_request, response) => response.end("ok"),
    );
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      expect(await get(port, "127.0.0.1", material.caCertificatePem)).toBe("200");
      expect(await get(port, "localhost", material.caCertificatePem)).toBe("200");
      await expect(get(port, "127.0.0.1", undefined)).rejects.toThrow(/certificate/i);
    } finally {
      server.close();
    }
  });
});
