// Long-lived connections opened with a credential (an agent's channel, an event stream): a
// credential checked once at the upgrade would otherwise keep working after it is revoked.
// When any credential is revoked (by id, by subject, or by a quarantine), every session whose
// credential is now revoked is closed at once.

import type { TokenClaims } from "../core/security/token-claims.ts";

/** Sessions held at once; the agent channels of a full fleet and some operators' streams fit. */
export const liveSessionsMax = 100_000;

/** WebSocket close code and reason for a session whose credential was revoked. */
export const credentialRevokedClose = {
  code: 4401,
  reason: "credential revoked; get a new credential",
} as const;

interface Session {
  readonly claims: TokenClaims;
  readonly close: () => void;
}

export class LiveSessionsFullError extends Error {
  override readonly name = "LiveSessionsFullError";
}

export class LiveSessions {
  readonly #sessions = new Set<Session>();
  readonly #isRevoked: (claims: TokenClaims) => boolean;

  constructor(isRevoked: (claims: TokenClaims) => boolean) {
    this.#isRevoked = isRevoked;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Holds a session; `close` ends it (called at most once, at once if the credential is
   * already revoked). Returns the release to call when the session ends by itself. Throws
   * LiveSessionsFullError beyond liveSessionsMax.
   */
  hold(claims: TokenClaims, close: () => void): () => void {
    // Revoked between the upgrade's check and now: it never becomes a session.
    if (this.#isRevoked(claims)) {
      close();
      return () => {};
    }
    if (this.#sessions.size >= liveSessionsMax)
      throw new LiveSessionsFullError(`more than ${liveSessionsMax} live sessions`);
    const session: Session = { claims, close };
    this.#sessions.add(session);
    return () => this.#sessions.delete(session);
  }

  /** Closes every session whose credential is revoked now; returns how many. */
  closeRevoked(): number {
    let closed = 0;
    for (const session of [...this.#sessions]) {
      if (!this.#isRevoked(session.claims)) continue;
      this.#sessions.delete(session);
      closed += 1;
      session.close();
    }
    return closed;
  }
}
