// Claims of edgeward's signed tokens and their checks once the signature is known good: kind,
// audience, issue/expiry/not-before with a clock-skew allowance, and the fields each kind needs.

/** user: a person or script with roles; node: an enrolled agent; join: single-use enrolment. */
export const tokenKinds = ["user", "node", "join"] as const;
export type TokenKind = (typeof tokenKinds)[number];

/** The audience every edgeward token names, so tokens of other systems are refused. */
export const edgewardAudience = "edgeward";

/** The claims as carried in the JWT (times in seconds, as RFC 7519 says). */
export interface TokenClaims {
  readonly kind: TokenKind;
  /** User name or node id. */
  readonly sub: string;
  readonly roles: readonly string[];
  /** Token id: what revocation and single use refer to. */
  readonly jti: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly aud: string;
  readonly iss: string;
  /** Join tokens: SHA-256 fingerprint of the CA the agent must pin (hex). */
  readonly caFingerprint?: string;
}

export interface ClaimsExpectation {
  readonly audience: string;
  /** The issuer every accepted token names (RFC 8725 §3.8): this fleet's server. */
  readonly issuer: string;
  readonly kinds: readonly TokenKind[];
  readonly nowMs: number;
  /** Clock difference tolerated between issuer and verifier. */
  readonly skewMs: number;
}

export type ClaimsRejection =
  | "malformed"
  | "wrong_audience"
  | "wrong_issuer"
  | "wrong_kind"
  | "expired"
  | "not_yet_valid"
  | "issued_in_future";

export type ClaimsCheck =
  | { readonly ok: true; readonly claims: TokenClaims }
  | { readonly ok: false; readonly rejection: ClaimsRejection; readonly message: string };

/** Longest string claim accepted; ids and names are short. */
const claimCharactersMax = 256;
/** Most roles one token may carry. */
const rolesMax = 32;

const isShortString = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= claimCharactersMax;
const isSeconds = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 0;

function reject(rejection: ClaimsRejection, message: string): ClaimsCheck {
  return { ok: false, rejection, message };
}

/** Checks a decoded payload against what the verifier expects at `nowMs`. */
export function checkClaims(payload: unknown, expected: ClaimsExpectation): ClaimsCheck {
  if (typeof payload !== "object" || payload === null) return reject("malformed", "not an object");
  const claims = payload as Record<string, unknown>;
  const { kind, sub, roles, jti, iat, nbf, exp, aud, iss, caFingerprint } = claims;
  if (!tokenKinds.includes(kind as TokenKind)) return reject("malformed", "unknown token kind");
  if (!isShortString(sub) || !isShortString(jti) || !isShortString(iss))
    return reject("malformed", "sub, jti and iss must be short strings");
  if (
    !Array.isArray(roles) ||
    roles.length > rolesMax ||
    !roles.every((role) => isShortString(role))
  )
    return reject("malformed", "roles must be a short list of names");
  if (!isSeconds(iat) || !isSeconds(nbf) || !isSeconds(exp))
    return reject("malformed", "iat, nbf and exp must be whole seconds");
  if (caFingerprint !== undefined && !isShortString(caFingerprint))
    return reject("malformed", "caFingerprint must be a short string");
  if (aud !== expected.audience) return reject("wrong_audience", "token is for another audience");
  if (iss !== expected.issuer) return reject("wrong_issuer", "token was issued by someone else");
  if (!expected.kinds.includes(kind as TokenKind))
    return reject("wrong_kind", `a ${String(kind)} token cannot be used here`);
  const nowMs = expected.nowMs;
  if (exp * 1_000 + expected.skewMs <= nowMs) return reject("expired", "token has expired");
  if (nbf * 1_000 - expected.skewMs > nowMs)
    return reject("not_yet_valid", "token is not valid yet");
  if (iat * 1_000 - expected.skewMs > nowMs)
    return reject("issued_in_future", "token claims to be issued in the future");
  if (exp < iat) return reject("malformed", "token expires before it was issued");
  return {
    ok: true,
    claims: {
      kind: kind as TokenKind,
      sub,
      roles,
      jti,
      iat,
      nbf,
      exp,
      aud,
      iss,
      ...(caFingerprint === undefined ? {} : { caFingerprint }),
    },
  };
}

/** When a credential should be renewed: after 2/3 of its life. */
export function renewAtMs(issuedAtMs: number, expiresAtMs: number): number {
  return issuedAtMs + Math.floor(((expiresAtMs - issuedAtMs) * 2) / 3);
}
