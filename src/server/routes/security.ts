// Credentials over HTTP: user tokens and revocation (admin), join tokens (admin), enrolment of
// an agent with a join token and its Ed25519 public key, renewal of a node credential with a
// signed, timestamped, single-use proof of its key, and the CA certificate agents pin.

import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { nodeIdSchema } from "../../api/contract.ts";
import type {
  CaResponse,
  EnrolResponse,
  JoinTokenResponse,
  NodeCredentialResponse,
  RevokeResponse,
  UserTokenResponse,
} from "../../api/security-contract.ts";
import { builtinRoles } from "../../core/security/access-policy.ts";
import { nonceCharactersMax } from "../../core/security/nonce-cache.ts";
import { renewAtMs } from "../../core/security/token-claims.ts";
import { identifierSchema } from "../../core/spec/schema-primitives.ts";
import {
  joinTokenTtlMsDefault,
  joinTokenTtlMsMax,
  nodeCredentialTtlMs,
  tokenCharactersMax,
  TokenLimitError,
  userTokenTtlMsMax,
} from "../../runtime/security/token-service.ts";
import type { ControlPlane } from "../control-plane.ts";
import { HttpError, parseOrReject } from "../http-error.ts";
import type { ServerSecurity } from "../server-security.ts";

/** A user token lives a day unless asked otherwise. */
export const userTokenTtlMsDefault = 24 * 3_600_000;

const createTokenSchema = z.strictObject({
  role: identifierSchema,
  subject: identifierSchema.optional(),
  ttlSeconds: z
    .int()
    .min(60)
    .max(userTokenTtlMsMax / 1_000)
    .optional(),
});
const revokeSchema = z.union([
  z.strictObject({ id: z.uuid() }),
  z.strictObject({ subject: z.string().min(1).max(128) }),
]);
const joinSchema = z.strictObject({
  nodeId: nodeIdSchema,
  ttlSeconds: z
    .int()
    .min(60)
    .max(joinTokenTtlMsMax / 1_000)
    .optional(),
});
const enrolSchema = z.strictObject({
  joinToken: z.string().min(1).max(tokenCharactersMax),
  /** The agent's Ed25519 public key: SPKI DER, base64. */
  publicKey: z.base64().max(256),
});
const renewSchema = z.strictObject({
  timestampMs: z.int().min(0),
  nonce: z.string().min(16).max(nonceCharactersMax),
  /** Ed25519 signature of renewProofText(...) by the enrolled key, base64. */
  signature: z.base64().max(256),
});

/** What an agent signs to prove it holds its enrolled key when renewing. */
export function renewProofText(nodeId: string, timestampMs: number, nonce: string): string {
  return `edgeward-renew\n${nodeId}\n${timestampMs}\n${nonce}`;
}

function ed25519Key(base64: string): KeyObject | undefined {
  try {
    const key = createPublicKey({
      key: Buffer.from(base64, "base64"),
      format: "der",
      type: "spki",
    });
    return key.asymmetricKeyType === "ed25519" ? key : undefined;
  } catch {
    return undefined;
  }
}

export function registerSecurityRoutes(
  app: FastifyInstance,
  plane: ControlPlane,
  security: ServerSecurity,
): void {
  const { tokens } = security;
  const { clock, declaredNodes } = plane.components;
  const limited = async <Value>(work: () => Promise<Value>): Promise<Value> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof TokenLimitError) throw new HttpError(429, "too_many", error.message);
      throw error;
    }
  };

  app.get(
    "/v1/ca",
    { config: { access: { resource: "ca", action: "read", public: true } } },
    (): CaResponse => {
      if (security.tls === undefined)
        throw new HttpError(404, "no_tls", "this server speaks plain HTTP (--insecure); no CA");
      return {
        caCertificatePem: security.tls.caCertificatePem,
        caFingerprint: security.tls.caFingerprint,
      };
    },
  );

  app.post(
    "/v1/tokens",
    { config: { access: { resource: "tokens", action: "admin" } } },
    async (request): Promise<UserTokenResponse> => {
      const body = parseOrReject(createTokenSchema, request.body, "token request");
      if (!security.policy.roles.has(body.role) || body.role === builtinRoles.node)
        throw new HttpError(
          422,
          "unknown_role",
          `role ${body.role} is not a user role of this fleet; known: ${[...security.policy.roles].filter((role) => role !== builtinRoles.node).join(", ")}`,
        );
      const subject = body.subject ?? `${body.role}-user`;
      const issued = await tokens.issue({
        kind: "user",
        subject,
        roles: [body.role],
        ttlMs: (body.ttlSeconds ?? userTokenTtlMsDefault / 1_000) * 1_000,
      });
      return {
        token: issued.token,
        id: issued.id,
        subject,
        role: body.role,
        expiresAtMs: issued.expiresAtMs,
      };
    },
  );

  app.post(
    "/v1/tokens/revoke",
    { config: { access: { resource: "tokens", action: "admin" } } },
    async (request): Promise<RevokeResponse> => {
      const body = parseOrReject(revokeSchema, request.body, "revocation");
      const reason = `revoked by ${request.principal?.subject ?? "an open-access request"}`;
      if ("id" in body) {
        await limited(() => tokens.revokeToken(body.id, reason));
        return { revoked: { id: body.id } };
      }
      await tokens.revokeSubject(body.subject, reason);
      return { revoked: { subject: body.subject } };
    },
  );

  app.post(
    "/v1/tokens/join",
    { config: { access: { resource: "tokens", action: "admin" } } },
    async (request): Promise<JoinTokenResponse> => {
      const body = parseOrReject(joinSchema, request.body, "join token request");
      if (declaredNodes !== undefined && !declaredNodes.has(body.nodeId))
        throw new HttpError(
          422,
          "unknown_node",
          `node ${body.nodeId} is not in the fleet spec; add it there first`,
        );
      const issued = await limited(() =>
        tokens.createJoinToken(
          body.nodeId,
          body.ttlSeconds === undefined ? joinTokenTtlMsDefault : body.ttlSeconds * 1_000,
          security.caFingerprint,
        ),
      );
      return {
        token: issued.token,
        id: issued.id,
        nodeId: body.nodeId,
        expiresAtMs: issued.expiresAtMs,
        caFingerprint: security.caFingerprint ?? null,
      };
    },
  );

  app.post(
    "/v1/nodes/enrol",
    { config: { access: { resource: "enrolment", action: "write", public: true } } },
    async (request): Promise<EnrolResponse> => {
      const body = parseOrReject(enrolSchema, request.body, "enrolment");
      if (ed25519Key(body.publicKey) === undefined)
        throw new HttpError(400, "invalid_request", "publicKey must be an Ed25519 SPKI key");
      const redemption = await tokens.redeemJoinToken(body.joinToken);
      if (!redemption.ok) {
        if (redemption.rejection === "used")
          security.reportClient(request, "replay", "a used join token was presented again");
        else if (redemption.rejection === "bad_signature")
          security.reportClient(request, "bad_signature", "a forged join token was presented");
        throw new HttpError(
          401,
          redemption.rejection === "used" ? "join_token_used" : "invalid_join_token",
          `${redemption.message}; ask an admin for a new one (edgeward token join --node ID)`,
        );
      }
      await tokens.saveEnrolment({
        nodeId: redemption.nodeId,
        publicKey: body.publicKey,
        enrolledAtMs: clock.nowMs(),
      });
      const credential = await tokens.issue({
        kind: "node",
        subject: redemption.nodeId,
        roles: [builtinRoles.node],
        ttlMs: nodeCredentialTtlMs,
      });
      request.log.info({ node: redemption.nodeId }, "node enrolled");
      return {
        nodeId: redemption.nodeId,
        credential: credential.token,
        credentialId: credential.id,
        expiresAtMs: credential.expiresAtMs,
        renewAtMs: renewAtMs(credential.issuedAtMs, credential.expiresAtMs),
        caFingerprint: security.caFingerprint ?? null,
      };
    },
  );

  app.post(
    "/v1/nodes/credential/renew",
    { config: { access: { resource: "credentials", action: "write" } } },
    async (request): Promise<NodeCredentialResponse> => {
      const principal = request.principal;
      if (principal?.kind !== "node")
        throw new HttpError(403, "forbidden", "only a node credential can be renewed here");
      const body = parseOrReject(renewSchema, request.body, "renewal");
      const enrolment = tokens.enrolment(principal.subject);
      const key = enrolment === undefined ? undefined : ed25519Key(enrolment.publicKey);
      if (key === undefined)
        throw new HttpError(409, "not_enrolled", "this node has no enrolled key; enrol again");
      const proof = Buffer.from(renewProofText(principal.subject, body.timestampMs, body.nonce));
      if (!verify(null, proof, key, Buffer.from(body.signature, "base64"))) {
        security.reportActivity(principal, "bad_signature", "renewal proof signature is not valid");
        throw new HttpError(
          401,
          "bad_signature",
          "the renewal proof is not signed by this node's key",
        );
      }
      const fresh = security.nonces.check(body.nonce, body.timestampMs, clock.nowMs());
      if (!fresh.accepted) {
        if (fresh.reason === "replay")
          security.reportActivity(principal, "replay", "a renewal proof was replayed");
        if (fresh.reason === "full")
          throw new HttpError(429, "busy", "too many renewals at once; retry shortly");
        throw new HttpError(
          401,
          fresh.reason === "replay" ? "replay" : "stale_proof",
          fresh.reason === "replay"
            ? "this renewal proof was already used"
            : "the renewal proof's timestamp is too far from the server's clock",
        );
      }
      const credential = await tokens.issue({
        kind: "node",
        subject: principal.subject,
        roles: [builtinRoles.node],
        ttlMs: nodeCredentialTtlMs,
      });
      return {
        nodeId: principal.subject,
        credential: credential.token,
        credentialId: credential.id,
        expiresAtMs: credential.expiresAtMs,
        renewAtMs: renewAtMs(credential.issuedAtMs, credential.expiresAtMs),
      };
    },
  );
}
