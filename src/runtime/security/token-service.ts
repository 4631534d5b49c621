// Signed tokens (EdDSA JWTs via jose): user tokens, node credentials and single-use join
// tokens; verification (signature, claims, revocation); the revocation list, the hashed join
// tokens and the enrolled node keys persist as Store documents. The signing key is a sealed
// secret file (docs/formats/secrets-at-rest.md).

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  type KeyObject,
} from "node:crypto";
import { compactVerify, errors as joseErrors, SignJWT } from "jose";
import {
  checkClaims,
  edgewardAudience,
  type ClaimsRejection,
  type TokenClaims,
  type TokenKind,
} from "../../core/security/token-claims.ts";
import type { Clock } from "../../ports/clock.ts";
import type { Store } from "../../ports/store.ts";
import type { SecretFiles } from "./secret-files.ts";

/** Tokens longer than this are refused before any parsing. */
export const tokenCharactersMax = 4_096;
/** Longest life a user token may be given. */
export const userTokenTtlMsMax = 366 * 24 * 3_600_000;
/** Node credentials live a day; agents renew them at 2/3 of that. */
export const nodeCredentialTtlMs = 24 * 3_600_000;
/** Join tokens live 15 minutes unless asked otherwise. */
export const joinTokenTtlMsDefault = 15 * 60_000;
export const joinTokenTtlMsMax = 7 * 24 * 3_600_000;
/** The bootstrap admin credential lives a year; the server re-issues it when it has expired. */
export const bootstrapAdminTtlMs = 365 * 24 * 3_600_000;
/** Clock difference tolerated between issuer and verifier. */
export const tokenSkewMs = 30_000;
/** Revoked token ids remembered at once. */
export const revocationsMax = 100_000;
/** Join tokens outstanding at once (used ones are kept until they would have expired). */
export const joinTokensMax = 10_000;
/**
 * Tokens whose verified signature is remembered (oldest forgotten first): an Ed25519 check
 * costs ~0.4 ms of CPU per request, a SHA-256 of the token a few µs.
 */
export const verifiedTokensMax = 10_000;

export const tokenIssuer = "edgeward-server";
export const signingKeyFileName = "signing.key";

const documents = {
  revocations: "security.revocations",
  joinTokens: "security.join-tokens",
  enrolments: "security.enrolments",
} as const;

export type TokenRejection = ClaimsRejection | "bad_signature" | "revoked" | "too_long";

export type TokenCheck =
  | { readonly ok: true; readonly claims: TokenClaims }
  | { readonly ok: false; readonly rejection: TokenRejection; readonly message: string };

export interface IssuedToken {
  token: string;
  id: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

export interface IssueRequest {
  kind: TokenKind;
  subject: string;
  roles: readonly string[];
  ttlMs: number;
  caFingerprint?: string;
}

interface Revocations {
  /** token id -> when it may be forgotten (it would have expired by then). */
  tokens: Record<string, number>;
  /** subject -> tokens issued at or before this time (ms) are revoked. */
  subjects: Record<string, number>;
}

interface JoinTokenRecord {
  nodeId: string;
  expiresAtMs: number;
  usedAtMs: number | null;
}

export interface Enrolment {
  nodeId: string;
  /** The agent's Ed25519 public key, SPKI DER in base64. */
  publicKey: string;
  enrolledAtMs: number;
}

export type JoinRedemption =
  | { readonly ok: true; readonly nodeId: string; readonly claims: TokenClaims }
  | { readonly ok: false; readonly rejection: TokenRejection | "used"; readonly message: string };

/** A fact worth auditing: every token issued and every revocation (the ledger records them). */
export type TokenFact =
  | {
      readonly type: "issued";
      readonly id: string;
      readonly kind: TokenKind;
      readonly subject: string;
      readonly roles: readonly string[];
      readonly expiresAtMs: number;
    }
  | { readonly type: "revoked"; readonly id: string; readonly reason: string }
  | { readonly type: "subject-revoked"; readonly subject: string; readonly reason: string };

export type TokenFactListener = (fact: TokenFact) => void;

export class TokenLimitError extends Error {
  override readonly name = "TokenLimitError";
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export class TokenService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  #revocations: Revocations = { tokens: {}, subjects: {} };
  #joinTokens: Record<string, JoinTokenRecord> = {};
  #enrolments: Record<string, Enrolment> = {};
  #saving: Promise<void> = Promise.resolve();
  readonly #factListeners: TokenFactListener[] = [];
  /** Decoded payloads of tokens whose signature verified, by SHA-256 of the token. */
  readonly #verifiedPayloads = new Map<string, unknown>();

  private constructor(store: Store, clock: Clock, privateKey: KeyObject) {
    this.#store = store;
    this.#clock = clock;
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
  }

  /** Loads (or creates) the sealed `signing.key` and the persisted lists. */
  static async open(secrets: SecretFiles, store: Store, clock: Clock): Promise<TokenService> {
    let pem = secrets.readText(signingKeyFileName);
    if (pem === undefined) {
      const { privateKey } = generateKeyPairSync("ed25519");
      pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      secrets.write(signingKeyFileName, pem);
    }
    const service = new TokenService(store, clock, createPrivateKey(pem));
    const parse = async <Value>(name: string, fallback: Value): Promise<Value> => {
      const text = await store.loadDocument(name);
      return text === undefined ? fallback : (JSON.parse(text) as Value);
    };
    service.#revocations = await parse(documents.revocations, { tokens: {}, subjects: {} });
    service.#joinTokens = await parse(documents.joinTokens, {});
    service.#enrolments = await parse(documents.enrolments, {});
    return service;
  }

  /**
   * Tells `listener` of every token issued and every revocation, as soon as it is in force
   * (a revocation before it is stored: live sessions close at once; the ledger records it).
   */
  onFact(listener: TokenFactListener): void {
    this.#factListeners.push(listener);
  }

  #tell(fact: TokenFact): void {
    for (const listener of this.#factListeners) listener(fact);
  }

  async issue(request: IssueRequest): Promise<IssuedToken> {
    const issuedAtMs = this.#clock.nowMs();
    const expiresAtMs = issuedAtMs + request.ttlMs;
    const id = randomUUID();
    const token = await new SignJWT({
      kind: request.kind,
      roles: [...request.roles],
      ...(request.caFingerprint === undefined ? {} : { caFingerprint: request.caFingerprint }),
    })
      .setProtectedHeader({ alg: "EdDSA", typ: "JWT" })
      .setSubject(request.subject)
      .setJti(id)
      .setIssuer(tokenIssuer)
      .setAudience(edgewardAudience)
      .setIssuedAt(Math.floor(issuedAtMs / 1_000))
      .setNotBefore(Math.floor(issuedAtMs / 1_000))
      .setExpirationTime(Math.floor(expiresAtMs / 1_000))
      .sign(this.#privateKey);
    this.#tell({
      type: "issued",
      id,
      kind: request.kind,
      subject: request.subject,
      roles: request.roles,
      expiresAtMs,
    });
    return { token, id, issuedAtMs, expiresAtMs };
  }

  /** Verifies signature, claims and revocation; `kinds` are the kinds acceptable here. */
  async verify(token: string, kinds: readonly TokenKind[]): Promise<TokenCheck> {
    if (token.length > tokenCharactersMax)
      return { ok: false, rejection: "too_long", message: "token is too long" };
    // The signature is checked once per token; claims, expiry and revocation on every call.
    const key = sha256(token);
    let payload: unknown = this.#verifiedPayloads.get(key);
    if (payload === undefined) {
      try {
        const verified = await compactVerify(token, this.#publicKey, { algorithms: ["EdDSA"] });
        payload = JSON.parse(new TextDecoder().decode(verified.payload));
      } catch (error) {
        if (error instanceof joseErrors.JWSSignatureVerificationFailed)
          return { ok: false, rejection: "bad_signature", message: "token signature is not valid" };
        return { ok: false, rejection: "malformed", message: "not a well-formed edgeward token" };
      }
      if (this.#verifiedPayloads.size >= verifiedTokensMax) {
        const oldest = this.#verifiedPayloads.keys().next().value;
        if (oldest !== undefined) this.#verifiedPayloads.delete(oldest);
      }
      this.#verifiedPayloads.set(key, payload);
    }
    const checked = checkClaims(payload, {
      audience: edgewardAudience,
      issuer: tokenIssuer,
      kinds,
      nowMs: this.#clock.nowMs(),
      skewMs: tokenSkewMs,
    });
    if (!checked.ok) return checked;
    if (this.isRevoked(checked.claims))
      return { ok: false, rejection: "revoked", message: "token has been revoked" };
    return checked;
  }

  isRevoked(claims: TokenClaims): boolean {
    if (Object.hasOwn(this.#revocations.tokens, claims.jti)) return true;
    const before = Object.hasOwn(this.#revocations.subjects, claims.sub)
      ? this.#revocations.subjects[claims.sub]
      : undefined;
    return before !== undefined && claims.iat * 1_000 <= before;
  }

  /** Revokes one token by id; `reason` says who asked and why (the ledger keeps it). */
  async revokeToken(id: string, reason: string): Promise<void> {
    const nowMs = this.#clock.nowMs();
    this.#pruneRevocations(nowMs);
    if (Object.keys(this.#revocations.tokens).length >= revocationsMax)
      throw new TokenLimitError(`more than ${revocationsMax} revoked tokens are remembered`);
    this.#revocations.tokens[id] = nowMs + userTokenTtlMsMax;
    this.#tell({ type: "revoked", id, reason });
    await this.#save(documents.revocations, this.#revocations);
  }

  /** Revokes every token of `subject` issued until now (a quarantined node, a leaver). */
  async revokeSubject(subject: string, reason: string): Promise<void> {
    this.#revocations.subjects[subject] = this.#clock.nowMs();
    this.#tell({ type: "subject-revoked", subject, reason });
    await this.#save(documents.revocations, this.#revocations);
  }

  async createJoinToken(
    nodeId: string,
    ttlMs: number,
    caFingerprint: string | undefined,
  ): Promise<IssuedToken> {
    const nowMs = this.#clock.nowMs();
    for (const [hash, record] of Object.entries(this.#joinTokens))
      if (record.expiresAtMs + tokenSkewMs < nowMs) delete this.#joinTokens[hash];
    if (Object.keys(this.#joinTokens).length >= joinTokensMax)
      throw new TokenLimitError(`more than ${joinTokensMax} join tokens are outstanding`);
    const issued = await this.issue({
      kind: "join",
      subject: nodeId,
      roles: [],
      ttlMs,
      ...(caFingerprint === undefined ? {} : { caFingerprint }),
    });
    this.#joinTokens[sha256(issued.token)] = {
      nodeId,
      expiresAtMs: issued.expiresAtMs,
      usedAtMs: null,
    };
    await this.#save(documents.joinTokens, this.#joinTokens);
    return issued;
  }

  /** Redeems a join token: valid, issued here, never used before. Marks it used (durably). */
  async redeemJoinToken(token: string): Promise<JoinRedemption> {
    const checked = await this.verify(token, ["join"]);
    if (!checked.ok) return checked;
    const hash = sha256(token);
    const record = Object.hasOwn(this.#joinTokens, hash) ? this.#joinTokens[hash] : undefined;
    if (record === undefined)
      return { ok: false, rejection: "revoked", message: "join token is not known here" };
    if (record.usedAtMs !== null)
      return { ok: false, rejection: "used", message: "join token has already been used" };
    record.usedAtMs = this.#clock.nowMs();
    await this.#save(documents.joinTokens, this.#joinTokens);
    return { ok: true, nodeId: record.nodeId, claims: checked.claims };
  }

  async saveEnrolment(enrolment: Enrolment): Promise<void> {
    this.#enrolments[enrolment.nodeId] = enrolment;
    await this.#save(documents.enrolments, this.#enrolments);
  }

  /**
   * The public key of every enrolled node whose credentials were not revoked since it enrolled
   * (a quarantined node drops out until it enrols again): the peer identities agents verify.
   */
  enrolledKeys(): Record<string, string> {
    const keys: Record<string, string> = {};
    for (const nodeId of Object.keys(this.#enrolments)) {
      const key = this.enrolledKeyOf(nodeId);
      if (key !== undefined) keys[nodeId] = key;
    }
    return keys;
  }

  /** The enrolled key of a node that may act now (see `enrolledKeys`), SPKI DER in base64. */
  enrolledKeyOf(nodeId: string): string | undefined {
    const enrolment = this.enrolment(nodeId);
    if (enrolment === undefined) return undefined;
    const revokedAtMs = Object.hasOwn(this.#revocations.subjects, nodeId)
      ? this.#revocations.subjects[nodeId]
      : undefined;
    return revokedAtMs !== undefined && revokedAtMs >= enrolment.enrolledAtMs
      ? undefined
      : enrolment.publicKey;
  }

  enrolment(nodeId: string): Enrolment | undefined {
    return Object.hasOwn(this.#enrolments, nodeId) ? this.#enrolments[nodeId] : undefined;
  }

  #pruneRevocations(nowMs: number): void {
    for (const [id, forgetAtMs] of Object.entries(this.#revocations.tokens))
      if (forgetAtMs < nowMs) delete this.#revocations.tokens[id];
  }

  #save(name: string, value: unknown): Promise<void> {
    const json = JSON.stringify(value);
    this.#saving = this.#saving.then(() => this.#store.saveDocument(name, json));
    return this.#saving;
  }
}
