// What the ledger records: one entry per security or disaster-recovery fact, encoded as
// canonical JSON. The encoding is the leaf data the Merkle tree hashes (docs/formats/ledger.md).

import { z } from "zod";
import { sha256HexPattern } from "./bytes.ts";
import { canonicalJson, isCanonicalJson } from "./canonical-json.ts";

/** Version of the entry envelope; part of every leaf. */
export const ledgerEntryVersion = 1;
/** An encoded entry larger than this is refused: a ledger records facts, not data. */
export const ledgerEntryBytesMax = 16 * 1024;

const digest = z.string().regex(sha256HexPattern, "expected a SHA-256 digest in lowercase hex");
const name = z.string().min(1).max(256);
const text = z.string().max(2048);
const time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const jsonScalar = z.union([z.string().max(2048), z.number().int(), z.boolean(), z.null()]);

/** The payload of each entry kind. Fields are the facts someone auditing would ask for. */
export const ledgerEntryDataSchemas = {
  /** A node joined the fleet or came back as a new incarnation. */
  enrolment: z.strictObject({
    node: name,
    incarnation: z.number().int().min(0),
    /** How it proved itself: `register` (plain registration) or `join-token`. */
    method: z.enum(["register", "join-token"]),
    agentUrl: text.optional(),
    /** SHA-256 of the node's public key (SPKI DER), once nodes have keys. */
    publicKeyDigest: digest.optional(),
  }),
  "token.issued": z.strictObject({
    tokenId: name,
    subject: name,
    tokenKind: z.enum(["user", "node", "join"]),
    roles: z.array(name).max(64),
    expiresAtMs: time,
  }),
  /** One token by id, or every token of a subject issued until then (a quarantined node). */
  "token.revoked": z
    .strictObject({ tokenId: name.optional(), subject: name.optional(), reason: text })
    .refine((data) => (data.tokenId === undefined) !== (data.subject === undefined), {
      error: "expected exactly one of tokenId and subject",
    }),
  "config.changed": z.strictObject({
    /** What changed: `fleet-spec`, `policy:<name>`, ... */
    what: name,
    digest,
    previousDigest: digest.optional(),
    by: name.optional(),
  }),
  "security.event": z.strictObject({
    type: name,
    source: name,
    severity: z.enum(["low", "medium", "high", "critical"]),
    eventAtMs: time,
    details: z.record(z.string().max(128), jsonScalar),
  }),
  quarantine: z.strictObject({
    node: name,
    action: z.enum(["quarantined", "released"]),
    reason: text,
    by: name.optional(),
  }),
  failover: z.strictObject({
    service: name,
    failoverId: z.number().int().min(0),
    status: name,
    reason: name,
    from: name.nullable(),
    to: name.nullable(),
    generation: z.number().int().min(0).nullable(),
    startedAtMs: time,
    endedAtMs: time.nullable(),
    durationMs: z.number().int().min(0).nullable(),
    dataAgeMs: z.number().int().min(0).nullable(),
  }),
  /** A snapshot or data copy; the digests give any data item an integrity proof. */
  backup: z.strictObject({
    repository: text,
    snapshotId: name,
    /** Digest of the snapshot's content (its root object / manifest). */
    digest,
    sizeBytes: z.number().int().min(0).optional(),
    items: z
      .array(z.strictObject({ path: text, digest }))
      .max(256)
      .optional(),
  }),
  "key.rotation": z.strictObject({
    keyId: name,
    purpose: name,
    previousKeyId: name.nullable(),
  }),
} as const;

export type LedgerEntryKind = keyof typeof ledgerEntryDataSchemas;
export const ledgerEntryKinds = Object.keys(ledgerEntryDataSchemas) as LedgerEntryKind[];

export type LedgerEntryData<Kind extends LedgerEntryKind> = z.infer<
  (typeof ledgerEntryDataSchemas)[Kind]
>;

/** What a caller appends: a kind, its data and when it happened. */
export type LedgerEntryDraft = {
  [Kind in LedgerEntryKind]: { kind: Kind; atMs: number; data: LedgerEntryData<Kind> };
}[LedgerEntryKind];

/** An entry as stored: the draft plus its position and envelope version. */
export type LedgerEntry = LedgerEntryDraft & { v: number; index: number };

export class LedgerEntryError extends Error {
  override readonly name = "LedgerEntryError";
}

const envelopeSchema = z.strictObject({
  v: z.literal(ledgerEntryVersion),
  index: z.number().int().min(0),
  kind: z.enum(ledgerEntryKinds as [LedgerEntryKind, ...LedgerEntryKind[]]),
  atMs: time,
  data: z.record(z.string(), z.unknown()),
});

/** Checks a draft's data against its kind's schema; throws a LedgerEntryError naming the field. */
export function checkDraft(draft: LedgerEntryDraft): LedgerEntryDraft {
  const schema = ledgerEntryDataSchemas[draft.kind] as z.ZodType | undefined;
  if (schema === undefined) throw new LedgerEntryError(`unknown ledger entry kind ${draft.kind}`);
  const result = schema.safeParse(draft.data);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new LedgerEntryError(
      `${draft.kind} entry: ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
    );
  }
  if (!Number.isSafeInteger(draft.atMs) || draft.atMs < 0)
    throw new LedgerEntryError(`${draft.kind} entry: atMs must be a non-negative integer`);
  return { kind: draft.kind, atMs: draft.atMs, data: result.data } as LedgerEntryDraft;
}

/** The canonical JSON of the entry at `index`: exactly the leaf data the tree hashes. */
export function encodeEntry(draft: LedgerEntryDraft, index: number): string {
  const checked = checkDraft(draft);
  const encoded = canonicalJson({
    v: ledgerEntryVersion,
    index,
    kind: checked.kind,
    atMs: checked.atMs,
    data: checked.data,
  });
  if (encoded.length > ledgerEntryBytesMax)
    throw new LedgerEntryError(
      `${draft.kind} entry is ${encoded.length} bytes, more than ${ledgerEntryBytesMax}`,
    );
  return encoded;
}

/**
 * Parses stored or exported entry text, checking it is canonical, well-formed for its kind
 * and (when given) at the expected position. Throws a LedgerEntryError saying what is wrong.
 */
export function decodeEntry(encoded: string, expectedIndex?: number): LedgerEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(encoded);
  } catch {
    throw new LedgerEntryError("not JSON");
  }
  if (!isCanonicalJson(encoded)) throw new LedgerEntryError("not in canonical JSON form");
  const envelope = envelopeSchema.safeParse(parsed);
  if (!envelope.success) {
    const issue = envelope.error.issues[0];
    throw new LedgerEntryError(`bad envelope: ${issue?.path.join(".") ?? ""}: ${issue?.message}`);
  }
  const draft = checkDraft(envelope.data as unknown as LedgerEntryDraft);
  if (expectedIndex !== undefined && envelope.data.index !== expectedIndex)
    throw new LedgerEntryError(
      `carries index ${envelope.data.index} but sits at position ${expectedIndex}`,
    );
  return { ...draft, v: envelope.data.v, index: envelope.data.index };
}

/**
 * The content digests an entry names (its `digest`, `previousDigest`, `publicKeyDigest` and
 * backup item digests): each can be looked up to find the entry that proves it.
 */
export function entryDigests(draft: LedgerEntryDraft): string[] {
  const found = new Set<string>();
  const visit = (value: unknown, key: string): void => {
    if (typeof value === "string") {
      if (/digest$/i.test(key) && sha256HexPattern.test(value)) found.add(value);
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, key);
    } else if (typeof value === "object" && value !== null) {
      for (const [member, inner] of Object.entries(value)) visit(inner, member);
    }
  };
  visit(draft.data, "");
  return [...found];
}
