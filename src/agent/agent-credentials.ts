// The agent's identity: an Ed25519 key pair made at first start (private key 0600 in its data
// dir), enrolment with a single-use join token (whose CA fingerprint it pins), the node
// credential it sends as a Bearer token, and renewal at 2/3 of the credential's life with a
// signed, timestamped, single-use proof of its key.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { CancelTimer, Clock } from "../ports/clock.ts";
import type { Logger } from "../ports/logger.ts";
import { requestJson, type RequestJsonOptions } from "../runtime/http-json.ts";
import { writeSecretFile } from "../runtime/security/certificate-authority.ts";
import type { SecretFiles } from "../runtime/security/secret-files.ts";
import {
  createPeerRequestSigner,
  type PeerRequestSigner,
} from "../runtime/security/peer-signing.ts";

export const nodeKeyFileName = "node.key";
export const credentialFileName = "credential.json";

/** Enrolment and renewal requests give up after this long. */
export const credentialRequestTimeoutMs = 10_000;
/** A failed renewal is retried after this long (well within the credential's last third). */
export const renewRetryMs = 60_000;

export class EnrolmentError extends Error {
  override readonly name = "EnrolmentError";
}

interface StoredCredential {
  nodeId: string;
  credential: string;
  expiresAtMs: number;
  renewAtMs: number;
}

interface CredentialAnswer {
  nodeId: string;
  credential: string;
  expiresAtMs: number;
  renewAtMs: number;
}

/** The claims of a join token, read without verifying (the server verifies it). */
function joinTokenClaims(token: string): { sub?: unknown; caFingerprint?: unknown } {
  const payload = token.split(".")[1];
  if (payload === undefined) throw new EnrolmentError("the join token is not a JWT");
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      sub?: unknown;
      caFingerprint?: unknown;
    };
  } catch {
    throw new EnrolmentError("the join token's claims are not JSON");
  }
}

const fingerprintOf = (pem: string) =>
  createHash("sha256").update(new X509Certificate(pem).raw).digest("hex");

export class AgentCredentials {
  readonly #nodeId: string;
  readonly #serverUrl: URL;
  readonly #dataDir: string;
  readonly #secrets: SecretFiles;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #privateKey: KeyObject;
  #caPem: string | undefined;
  #stored: StoredCredential | undefined;
  #cancelRenewal: CancelTimer | undefined;

  private constructor(
    nodeId: string,
    serverUrl: string,
    dataDir: string,
    secrets: SecretFiles,
    clock: Clock,
    logger: Logger,
  ) {
    this.#nodeId = nodeId;
    this.#serverUrl = new URL(serverUrl);
    this.#dataDir = dataDir;
    this.#secrets = secrets;
    this.#clock = clock;
    this.#logger = logger;
    mkdirSync(dataDir, { recursive: true });
    let keyPem = secrets.readText(nodeKeyFileName);
    if (keyPem === undefined) {
      const { privateKey } = generateKeyPairSync("ed25519");
      keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      secrets.write(nodeKeyFileName, keyPem);
    }
    this.#privateKey = createPrivateKey(keyPem);
    const caPath = join(dataDir, "ca.crt");
    this.#caPem = existsSync(caPath) ? readFileSync(caPath, "utf8") : undefined;
    const credentialText = secrets.readText(credentialFileName);
    if (credentialText !== undefined) {
      try {
        const stored = JSON.parse(credentialText) as StoredCredential;
        if (stored.nodeId === nodeId) this.#stored = stored;
      } catch {
        this.#stored = undefined;
      }
    }
  }

  /**
   * Loads the agent's key (making one at first start) and its stored credential; enrols with
   * `joinToken` when there is no credential that is still valid.
   */
  static async open(options: {
    nodeId: string;
    serverUrl: string;
    dataDir: string;
    /** The agent's sealed secret files: node.key and credential.json. */
    secrets: SecretFiles;
    joinToken: string | undefined;
    clock: Clock;
    logger: Logger;
  }): Promise<AgentCredentials> {
    const credentials = new AgentCredentials(
      options.nodeId,
      options.serverUrl,
      options.dataDir,
      options.secrets,
      options.clock,
      options.logger,
    );
    const usable =
      credentials.#stored !== undefined &&
      credentials.#stored.expiresAtMs > options.clock.nowMs() &&
      (credentials.#serverUrl.protocol !== "https:" || credentials.#caPem !== undefined);
    if (!usable && options.joinToken !== undefined) await credentials.#enrol(options.joinToken);
    else if (!usable && credentials.#serverUrl.protocol === "https:")
      throw new EnrolmentError(
        "this node has no valid credential and the server speaks https with the fleet's own CA: " +
          "pass a join token (--join-token or $EDGEWARD_JOIN_TOKEN; an admin issues one with " +
          "`edgeward token join --node ID`)",
      );
    else if (!usable)
      options.logger.warn(
        {},
        "no credential and no join token: only a server started with --open-access will accept this agent",
      );
    return credentials;
  }

  /** The Bearer token to send, if the agent has one. */
  get token(): string | undefined {
    return this.#stored?.credential;
  }

  /** The pinned fleet CA (PEM) for https, once known. */
  get ca(): string | undefined {
    return this.#caPem;
  }

  /** Options for requests to the server: credential and pinned CA. */
  requestOptions(): RequestJsonOptions {
    return {
      ...(this.token === undefined ? {} : { headers: { authorization: `Bearer ${this.token}` } }),
      ...(this.#caPem === undefined ? {} : { ca: this.#caPem }),
    };
  }

  /** Signs this node's requests to peers with its enrolled key (ADR 0006, "Peer requests"). */
  peerRequestSigner(): PeerRequestSigner {
    return createPeerRequestSigner(this.#nodeId, this.#privateKey, this.#clock);
  }

  /** Renews the credential at 2/3 of its life, and keeps doing so. */
  startRenewing(): void {
    const stored = this.#stored;
    if (stored === undefined) return;
    this.#schedule(Math.max(0, stored.renewAtMs - this.#clock.nowMs()));
  }

  stop(): void {
    this.#cancelRenewal?.();
  }

  #schedule(delayMs: number): void {
    this.#cancelRenewal?.();
    this.#cancelRenewal = this.#clock.schedule(delayMs, () => {
      this.renew().then(
        () => this.startRenewing(),
        (error: unknown) => {
          this.#logger.warn(
            { err: (error as Error).message },
            "could not renew the node credential; retrying",
          );
          this.#schedule(renewRetryMs);
        },
      );
    });
  }

  /** Gets a fresh credential by proving possession of the enrolled key. */
  async renew(): Promise<void> {
    const timestampMs = this.#clock.nowMs();
    const nonce = randomUUID();
    const proof = `edgeward-renew\n${this.#nodeId}\n${timestampMs}\n${nonce}`;
    const signature = sign(null, Buffer.from(proof), this.#privateKey).toString("base64");
    const response = await requestJson(
      "POST",
      new URL("/v1/nodes/credential/renew", this.#serverUrl),
      { timestampMs, nonce, signature },
      credentialRequestTimeoutMs,
      this.requestOptions(),
    );
    if (response.statusCode !== 200)
      throw new EnrolmentError(
        `renewal refused: HTTP ${response.statusCode} ${describe(response.body)}`,
      );
    this.#save(response.body as CredentialAnswer);
    this.#logger.info({ expiresAtMs: this.#stored?.expiresAtMs }, "node credential renewed");
  }

  async #enrol(joinToken: string): Promise<void> {
    const claims = joinTokenClaims(joinToken);
    if (claims.sub !== this.#nodeId)
      throw new EnrolmentError(
        `the join token is for node ${String(claims.sub)}, not ${this.#nodeId}`,
      );
    if (this.#serverUrl.protocol === "https:") await this.#pinCa(claims.caFingerprint);
    const publicKey = createPublicKey(this.#privateKey)
      .export({ type: "spki", format: "der" })
      .toString("base64");
    const response = await requestJson(
      "POST",
      new URL("/v1/nodes/enrol", this.#serverUrl),
      { joinToken, publicKey },
      credentialRequestTimeoutMs,
      this.#caPem === undefined ? {} : { ca: this.#caPem },
    );
    if (response.statusCode !== 200)
      throw new EnrolmentError(
        `enrolment refused: HTTP ${response.statusCode} ${describe(response.body)}`,
      );
    this.#save(response.body as CredentialAnswer);
    this.#logger.info({ node: this.#nodeId }, "enrolled with the server");
  }

  /** Fetches the server's CA once and keeps it only if its fingerprint is the pinned one. */
  async #pinCa(pinned: unknown): Promise<void> {
    if (typeof pinned !== "string")
      throw new EnrolmentError(
        "the server speaks https but the join token carries no CA fingerprint to pin",
      );
    const response = await requestJson(
      "GET",
      new URL("/v1/ca", this.#serverUrl),
      undefined,
      credentialRequestTimeoutMs,
      { insecureSkipVerify: true },
    );
    const pem = (response.body as { caCertificatePem?: unknown } | undefined)?.caCertificatePem;
    if (response.statusCode !== 200 || typeof pem !== "string")
      throw new EnrolmentError(`could not fetch the server's CA: HTTP ${response.statusCode}`);
    if (fingerprintOf(pem) !== pinned.toLowerCase())
      throw new EnrolmentError(
        "the server's CA does not match the fingerprint in the join token; refusing to enrol",
      );
    writeSecretFile(join(this.#dataDir, "ca.crt"), pem);
    this.#caPem = pem;
  }

  #save(answer: CredentialAnswer): void {
    this.#stored = {
      nodeId: answer.nodeId,
      credential: answer.credential,
      expiresAtMs: answer.expiresAtMs,
      renewAtMs: answer.renewAtMs,
    };
    this.#secrets.write(credentialFileName, JSON.stringify(this.#stored));
  }
}

function describe(body: unknown): string {
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : "";
}
