// Signed tree heads: the server's Ed25519 signature over a tree size, its root and a time.
// The signature input is canonical JSON, so it can be rebuilt and checked with openssl.

import { z } from "zod";
import { sha256HexPattern } from "./bytes.ts";
import { canonicalJson } from "./canonical-json.ts";

/** Distinguishes what the ledger key signs from anything else the same key might sign. */
export const treeHeadSignatureDomain = "edgeward.ledger.tree-head";
export const treeHeadVersion = 1;

export interface TreeHead {
  readonly treeSize: number;
  /** MTH of the first treeSize entries, lowercase hex. */
  readonly rootHash: string;
  readonly timestampMs: number;
}

export interface SignedTreeHead extends TreeHead {
  /** SHA-256 of the signing key's SPKI DER encoding, lowercase hex. */
  readonly keyId: string;
  /** Ed25519 signature over treeHeadSigningInput, base64. */
  readonly signature: string;
}

export const signedTreeHeadSchema = z.strictObject({
  treeSize: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  rootHash: z.string().regex(sha256HexPattern),
  timestampMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  keyId: z.string().regex(sha256HexPattern),
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, "expected a base64 Ed25519 signature"),
});

/** The exact text the ledger key signs for a tree head (UTF-8, no trailing newline). */
export function treeHeadSigningInput(head: TreeHead): string {
  return canonicalJson({
    domain: treeHeadSignatureDomain,
    v: treeHeadVersion,
    treeSize: head.treeSize,
    rootHash: head.rootHash,
    timestampMs: head.timestampMs,
  });
}

/** Checks an Ed25519 signature over `message` by the key named `keyId`. */
export type SignatureVerifier = (message: Uint8Array, signatureBase64: string) => boolean;
