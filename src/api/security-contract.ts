// The security routes' request and answer shapes, shared by server, agent and CLI.

/** `POST /v1/tokens` (admin): a user token with one role. */
export interface UserTokenResponse {
  token: string;
  /** What `POST /v1/tokens/revoke {id}` takes. */
  id: string;
  subject: string;
  role: string;
  expiresAtMs: number;
}

/** `POST /v1/tokens/join` (admin): a single-use join token bound to one node. */
export interface JoinTokenResponse {
  token: string;
  id: string;
  nodeId: string;
  expiresAtMs: number;
  /** SHA-256 of the fleet CA's certificate (hex), also inside the token; null over plain HTTP. */
  caFingerprint: string | null;
}

/** `POST /v1/tokens/revoke`: one token by id, or every token of a subject issued so far. */
export type RevokeRequest = { id: string } | { subject: string };

export interface RevokeResponse {
  revoked: RevokeRequest;
}

/** `POST /v1/nodes/enrol` and `POST /v1/nodes/credential/renew`: a node credential. */
export interface NodeCredentialResponse {
  nodeId: string;
  credential: string;
  credentialId: string;
  expiresAtMs: number;
  /** When the agent should renew: 2/3 of the credential's life. */
  renewAtMs: number;
}

export interface EnrolResponse extends NodeCredentialResponse {
  caFingerprint: string | null;
}

/** `GET /v1/ca` (public): the fleet CA's certificate, for agents that pin its fingerprint. */
export interface CaResponse {
  caCertificatePem: string;
  caFingerprint: string;
}

/** One key rotation, as the ledger's `key.rotation` entry records it. */
export interface KeyRotationView {
  purpose: string;
  keyId: string;
  previousKeyId: string | null;
  atMs: number;
}

/** `POST /v1/keys/rotate` (admin): the server rotated its data key and the fleet backup password. */
export interface KeysRotateResponse {
  rotations: KeyRotationView[];
}
