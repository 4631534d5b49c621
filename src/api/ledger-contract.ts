// The ledger's part of the API contract: query schemas the server validates and the answers
// the CLI reads. The export format itself is defined in src/core/ledger/audit.ts.

import { z } from "zod";
import type { SignedTreeHead } from "../core/ledger/tree-head.ts";

const index = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const digest = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, "expected a SHA-256 digest: 64 hex digits")
  .transform((value) => value.toLowerCase());

export const ledgerEntriesQuerySchema = z.strictObject({
  from: index.default(0),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
});

/** The export takes no parameters: it is everything up to a head signed for it. */
export const ledgerExportQuerySchema = z.strictObject({});

export const ledgerInclusionQuerySchema = z
  .strictObject({
    leafIndex: index.optional(),
    digest: digest.optional(),
    /** Prove against this size; default: the latest signed tree head. */
    treeSize: index.optional(),
  })
  .refine((query) => (query.leafIndex === undefined) !== (query.digest === undefined), {
    message: "give exactly one of leafIndex and digest",
  });

export const ledgerConsistencyQuerySchema = z.strictObject({
  first: index,
  /** Default: the latest signed tree head. */
  second: index.optional(),
});

export interface LedgerEntryView {
  index: number;
  kind: string;
  atMs: number;
  /** The canonical JSON text the leaf hash covers. */
  encoded: string;
  leafHash: string;
}

export interface LedgerEntriesResponse {
  treeSize: number;
  entries: LedgerEntryView[];
}

export interface LedgerTreeHeadResponse {
  treeHead: SignedTreeHead;
  /** The ledger's Ed25519 public key, SPKI PEM. */
  publicKey: string;
}

export interface LedgerInclusionResponse {
  entry: LedgerEntryView;
  treeSize: number;
  /** Audit path, hex, deepest first (RFC 6962 PATH). */
  proof: string[];
  rootHash: string;
  /** A signed head for exactly treeSize, when one was published. */
  treeHead: SignedTreeHead | null;
}

export interface LedgerConsistencyResponse {
  first: number;
  second: number;
  firstRootHash: string;
  secondRootHash: string;
  /** RFC 6962 PROOF(first, D[second]), hex. */
  proof: string[];
  firstTreeHead: SignedTreeHead | null;
  secondTreeHead: SignedTreeHead | null;
}
