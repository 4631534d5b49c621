// The export file and the offline audit: everything needed to re-verify the ledger without
// trusting the server, and the checks that find an edited, truncated, reordered or forked log.

import { z } from "zod";
import { bytesEqual, fromHex, sha256HexPattern, toHex, utf8 } from "./bytes.ts";
import { decodeEntry, LedgerEntryError } from "./entries.ts";
import { leafHash, MemoryMerkleTree, verifyConsistency, type HashFunction } from "./merkle.ts";
import {
  signedTreeHeadSchema,
  treeHeadSigningInput,
  type SignatureVerifier,
  type SignedTreeHead,
} from "./tree-head.ts";

export const ledgerExportFormat = "edgeward.ledger.export";
export const ledgerExportVersion = 1;

const hex = z.string().regex(sha256HexPattern);

export const exportedEntrySchema = z.strictObject({
  index: z.number().int().min(0),
  /** The canonical JSON text the leaf hash covers, byte for byte. */
  encoded: z.string(),
  leafHash: hex,
});

export const consistencyRecordSchema = z.strictObject({
  first: z.number().int().min(0),
  second: z.number().int().min(0),
  proof: z.array(hex).max(128),
});

export const ledgerExportSchema = z.strictObject({
  format: z.literal(ledgerExportFormat),
  v: z.literal(ledgerExportVersion),
  hashAlgorithm: z.literal("sha256"),
  signatureAlgorithm: z.literal("ed25519"),
  /** The ledger's public key, SPKI in PEM. */
  publicKey: z.string().max(1024),
  keyId: hex,
  treeSize: z.number().int().min(0),
  entries: z.array(exportedEntrySchema),
  /** Every tree head the server published, oldest first. */
  treeHeads: z.array(signedTreeHeadSchema),
  /** Consistency proofs between each pair of successive tree heads of different sizes. */
  consistency: z.array(consistencyRecordSchema),
});

export type ExportedEntry = z.infer<typeof exportedEntrySchema>;
export type ConsistencyRecord = z.infer<typeof consistencyRecordSchema>;
export type LedgerExport = z.infer<typeof ledgerExportSchema>;

export interface AuditTools {
  hash: HashFunction;
  /** Checks a signature with the key the auditor trusts (pinned, or the export's own). */
  verifySignature: SignatureVerifier;
  /** The SHA-256 of that key's SPKI DER, hex. */
  keyId: string;
}

export interface AuditResult {
  ok: boolean;
  /** One sentence per problem, naming the entry or tree head and what is wrong. */
  problems: string[];
  entriesChecked: number;
  treeHeadsChecked: number;
  consistencyProofsChecked: number;
  /** The newest tree head whose signature and root both verified. */
  latestVerified: SignedTreeHead | undefined;
  /** The root the entries give. */
  rootHash: string;
}

/** Problems reported at most; the rest are counted. */
export const auditProblemsMax = 100;

function describeHead(position: number, head: SignedTreeHead): string {
  return `tree head #${position} (size ${head.treeSize}, root ${head.rootHash.slice(0, 12)}…)`;
}

/**
 * Re-verifies an export: every entry's encoding, position and leaf hash; the tree; every tree
 * head's signature and root; consistency between successive heads; and that heads the auditor
 * trusted earlier (`trustedHeads`) are still consistent with the log.
 */
export function auditLedgerExport(
  exported: LedgerExport,
  tools: AuditTools,
  trustedHeads: readonly SignedTreeHead[] = [],
): AuditResult {
  const problems: string[] = [];
  let dropped = 0;
  const problem = (message: string) => {
    if (problems.length < auditProblemsMax) problems.push(message);
    else dropped += 1;
  };
  const tree = new MemoryMerkleTree(tools.hash);

  if (exported.keyId !== tools.keyId)
    problem(
      `the export names signing key ${exported.keyId.slice(0, 12)}… but the trusted key is ${tools.keyId.slice(0, 12)}…`,
    );

  exported.entries.forEach((entry, position) => {
    const computed = leafHash(tools.hash, utf8(entry.encoded));
    if (entry.index !== position)
      problem(
        `entry at position ${position} is labelled index ${entry.index}: entries were reordered, removed or inserted`,
      );
    try {
      decodeEntry(entry.encoded, position);
    } catch (error) {
      if (!(error instanceof LedgerEntryError)) throw error;
      problem(`entry ${position}: ${error.message}`);
    }
    if (toHex(computed) !== entry.leafHash)
      problem(
        `entry ${position}: its contents hash to ${toHex(computed).slice(0, 12)}…, not its recorded leaf hash ${entry.leafHash.slice(0, 12)}…: the entry was edited`,
      );
    tree.appendLeafHash(computed);
  });
  if (exported.treeSize !== exported.entries.length)
    problem(
      `the export claims ${exported.treeSize} entries but holds ${exported.entries.length}: it was truncated or padded`,
    );

  const verifiedHeads: { position: number; head: SignedTreeHead }[] = [];
  let consistencyProofsChecked = 0;
  exported.treeHeads.forEach((head, position) => {
    const message = utf8(treeHeadSigningInput(head));
    if (head.keyId !== tools.keyId || !tools.verifySignature(message, head.signature)) {
      problem(`${describeHead(position, head)}: the signature does not verify with the ledger key`);
      return;
    }
    if (head.treeSize > tree.size) {
      problem(
        `${describeHead(position, head)}: signed for ${head.treeSize} entries but only ${tree.size} are present: the log was truncated`,
      );
      verifiedHeads.push({ position, head });
      return;
    }
    const root = toHex(tree.root(head.treeSize));
    if (root !== head.rootHash) {
      problem(
        `${describeHead(position, head)}: the first ${head.treeSize} entries give root ${root.slice(0, 12)}…: an entry below ${head.treeSize} was edited, removed or reordered after it was signed`,
      );
    }
    verifiedHeads.push({ position, head });
  });

  // Forks: two validly signed heads for one size with different roots.
  const bySize = new Map<number, { position: number; head: SignedTreeHead }>();
  for (const signed of verifiedHeads) {
    const earlier = bySize.get(signed.head.treeSize);
    if (earlier === undefined) bySize.set(signed.head.treeSize, signed);
    else if (earlier.head.rootHash !== signed.head.rootHash)
      problem(
        `fork: tree heads #${earlier.position} and #${signed.position} both sign size ${signed.head.treeSize} with different roots (${earlier.head.rootHash.slice(0, 12)}… and ${signed.head.rootHash.slice(0, 12)}…)`,
      );
  }

  // Successive heads: sizes never shrink, and each is an extension of the one before.
  const proofs = new Map(
    exported.consistency.map((record) => [`${record.first}:${record.second}`, record]),
  );
  for (let step = 1; step < verifiedHeads.length; step++) {
    const before = verifiedHeads[step - 1]!;
    const after = verifiedHeads[step]!;
    if (after.head.treeSize < before.head.treeSize) {
      problem(
        `${describeHead(after.position, after.head)} is smaller than the earlier ${describeHead(before.position, before.head)}: the log was rolled back`,
      );
      continue;
    }
    if (after.head.timestampMs < before.head.timestampMs)
      problem(`${describeHead(after.position, after.head)} is dated before the head preceding it`);
    if (after.head.treeSize === before.head.treeSize) continue;
    const record = proofs.get(`${before.head.treeSize}:${after.head.treeSize}`);
    let proof: Uint8Array[] | undefined;
    if (record !== undefined) proof = record.proof.map(fromHex);
    else if (after.head.treeSize <= tree.size)
      proof = tree.consistencyProof(before.head.treeSize, after.head.treeSize);
    if (proof === undefined) {
      problem(
        `no consistency proof between ${describeHead(before.position, before.head)} and ${describeHead(after.position, after.head)}`,
      );
      continue;
    }
    consistencyProofsChecked += 1;
    const failure = verifyConsistency(
      tools.hash,
      before.head.treeSize,
      after.head.treeSize,
      proof,
      fromHex(before.head.rootHash),
      fromHex(after.head.rootHash),
    );
    if (failure !== null)
      problem(
        `${describeHead(after.position, after.head)} is not an extension of ${describeHead(before.position, before.head)}: ${failure}; the log was rewritten between them (fork)`,
      );
  }

  for (const trusted of trustedHeads) {
    const label = `the trusted tree head (size ${trusted.treeSize}, root ${trusted.rootHash.slice(0, 12)}…)`;
    if (trusted.treeSize > tree.size) {
      problem(`${label} covers more entries than the ${tree.size} present: the log was truncated`);
    } else if (!bytesEqual(tree.root(trusted.treeSize), fromHex(trusted.rootHash))) {
      problem(
        `${label} does not match the first ${trusted.treeSize} entries: the log was rewritten since (fork)`,
      );
    }
  }

  if (dropped > 0) problems.push(`… and ${dropped} more problems`);
  const latestVerified = verifiedHeads
    .map((signed) => signed.head)
    .filter(
      (head) => head.treeSize <= tree.size && toHex(tree.root(head.treeSize)) === head.rootHash,
    )
    .reduce<SignedTreeHead | undefined>(
      (latest, head) => (latest === undefined || head.treeSize >= latest.treeSize ? head : latest),
      undefined,
    );
  return {
    ok: problems.length === 0,
    problems,
    entriesChecked: exported.entries.length,
    treeHeadsChecked: exported.treeHeads.length,
    consistencyProofsChecked,
    latestVerified,
    rootHash: toHex(tree.root()),
  };
}
