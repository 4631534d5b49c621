// `edgeward audit verify` and `edgeward audit proof`: re-verify the ledger without trusting
// the server, from an export file or from the server's own export. `edgeward audit log` lists
// entries.

import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import type {
  LedgerEntriesResponse,
  LedgerEntryView,
  LedgerInclusionResponse,
  LedgerTreeHeadResponse,
} from "../../api/ledger-contract.ts";
import {
  auditLedgerExport,
  ledgerExportSchema,
  type AuditResult,
  type LedgerExport,
} from "../../core/ledger/audit.ts";
import { fromHex, sha256HexPattern, toHex, utf8 } from "../../core/ledger/bytes.ts";
import { decodeEntry } from "../../core/ledger/entries.ts";
import { leafHash, MemoryMerkleTree, verifyInclusion } from "../../core/ledger/merkle.ts";
import {
  signedTreeHeadSchema,
  treeHeadSigningInput,
  type SignedTreeHead,
} from "../../core/ledger/tree-head.ts";
import { ledgerVerifier } from "../../runtime/ledger/ledger-key.ts";
import { sha256 } from "../../runtime/ledger/sha256.ts";
import { ApiClient, resolveServerUrl, type ServerSelection } from "../api-client.ts";

/** Downloading a large export may take a while. */
export const ledgerExportTimeoutMs = 300_000;

interface AuditOptions extends ServerSelection {
  export?: string;
  publicKey?: string;
  trustedHead?: string;
  saveHead?: string;
  json?: boolean;
}

/** Entries `audit log` lists at most (the API's page size). */
export const auditLogEntriesMax = 1_000;

export class AuditInputError extends Error {
  override readonly name = "AuditInputError";
}

function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new AuditInputError(`cannot read ${what} ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new AuditInputError(`${what} ${path} is not JSON: ${(error as Error).message}`);
  }
}

/** Parses an export, naming the first fields that do not fit the format. */
export function parseLedgerExport(value: unknown, source: string): LedgerExport {
  const result = ledgerExportSchema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join(".") || "(top)"}: ${issue.message}`)
      .join("; ");
    throw new AuditInputError(`${source} is not a ledger export: ${issues}`);
  }
  return result.data;
}

async function loadExport(
  options: AuditOptions,
): Promise<{ exported: LedgerExport; source: string }> {
  if (options.export !== undefined)
    return {
      exported: parseLedgerExport(readJsonFile(options.export, "export file"), options.export),
      source: options.export,
    };
  const client = new ApiClient(resolveServerUrl(options));
  const body = await client.getJson<unknown>("/v1/ledger/export", ledgerExportTimeoutMs);
  return { exported: parseLedgerExport(body, `${client.baseUrl} export`), source: client.baseUrl };
}

/** The key to trust: the pinned one, else the one the export names (said so in the output). */
function trustedKey(
  options: AuditOptions,
  fromExport: string,
): {
  keyId: string;
  verify: ReturnType<typeof ledgerVerifier>["verify"];
  pinned: boolean;
} {
  if (options.publicKey === undefined) return { ...ledgerVerifier(fromExport), pinned: false };
  let pem: string;
  try {
    pem = readFileSync(options.publicKey, "utf8");
  } catch (error) {
    throw new AuditInputError(
      `cannot read the public key ${options.publicKey}: ${(error as Error).message}`,
    );
  }
  return { ...ledgerVerifier(pem), pinned: true };
}

function readTrustedHead(path: string): SignedTreeHead {
  const result = signedTreeHeadSchema.safeParse(readJsonFile(path, "trusted tree head"));
  if (!result.success)
    throw new AuditInputError(
      `${path} is not a signed tree head: ${result.error.issues[0]?.message}`,
    );
  return result.data;
}

/** Runs the audit the `verify` command prints; exported for tests. */
export function verifyExport(
  exported: LedgerExport,
  options: Pick<AuditOptions, "publicKey" | "trustedHead">,
): AuditResult & { keyPinned: boolean } {
  const key = trustedKey(options, exported.publicKey);
  const trusted = options.trustedHead === undefined ? [] : [readTrustedHead(options.trustedHead)];
  if (
    trusted[0] !== undefined &&
    !key.verify(utf8(treeHeadSigningInput(trusted[0])), trusted[0].signature)
  )
    throw new AuditInputError(
      `the trusted tree head in ${options.trustedHead} is not signed by the ledger key`,
    );
  const result = auditLedgerExport(
    exported,
    { hash: sha256, verifySignature: key.verify, keyId: key.keyId },
    trusted,
  );
  return { ...result, keyPinned: key.pinned };
}

function printVerify(
  result: AuditResult & { keyPinned: boolean },
  source: string,
  json: boolean,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ source, ...result })}\n`);
    return;
  }
  const lines = [
    `ledger from ${source}`,
    `  entries checked:      ${result.entriesChecked}`,
    `  tree heads checked:   ${result.treeHeadsChecked}`,
    `  consistency proofs:   ${result.consistencyProofsChecked}`,
    `  root of all entries:  ${result.rootHash}`,
    result.latestVerified === undefined
      ? "  latest verified head: none"
      : `  latest verified head: size ${result.latestVerified.treeSize}, signed ${new Date(result.latestVerified.timestampMs).toISOString()}`,
  ];
  if (!result.keyPinned)
    lines.push(
      "  note: the signing key was taken from the export itself; pin it with --public-key FILE",
    );
  if (result.ok) lines.push("OK: every entry, tree head and proof verifies");
  else
    lines.push(
      `TAMPERED: ${result.problems.length} problem(s):`,
      ...result.problems.map((problem) => `  - ${problem}`),
    );
  process.stdout.write(`${lines.join("\n")}\n`);
}

interface ProofReport {
  entryIndex: number;
  kind: string;
  atMs: number;
  leafHash: string;
  treeSize: number;
  rootHash: string;
  proof: string[];
  treeHead: SignedTreeHead | null;
  verified: boolean;
  problem: string | null;
}

/** Checks an inclusion proof and the head it leads to; the problem says what failed. */
export function checkInclusion(
  answer: LedgerInclusionResponse,
  verify: ReturnType<typeof ledgerVerifier>,
): ProofReport {
  const report: ProofReport = {
    entryIndex: answer.entry.index,
    kind: answer.entry.kind,
    atMs: answer.entry.atMs,
    leafHash: answer.entry.leafHash,
    treeSize: answer.treeSize,
    rootHash: answer.rootHash,
    proof: answer.proof,
    treeHead: answer.treeHead,
    verified: false,
    problem: null,
  };
  const fail = (problem: string) => ({ ...report, problem });
  try {
    decodeEntry(answer.entry.encoded, answer.entry.index);
  } catch (error) {
    return fail(`entry ${answer.entry.index}: ${(error as Error).message}`);
  }
  const leaf = leafHash(sha256, utf8(answer.entry.encoded));
  if (toHex(leaf) !== answer.entry.leafHash)
    return fail(`entry ${answer.entry.index}: its contents do not hash to its leaf hash`);
  if (!answer.proof.every((item) => sha256HexPattern.test(item)))
    return fail("the proof holds a non-hash");
  const failure = verifyInclusion(
    sha256,
    leaf,
    answer.entry.index,
    answer.treeSize,
    answer.proof.map(fromHex),
    fromHex(answer.rootHash),
  );
  if (failure !== null) return fail(`the inclusion proof does not verify: ${failure}`);
  if (answer.treeHead === null) return fail(`no signed tree head covers size ${answer.treeSize}`);
  if (answer.treeHead.treeSize !== answer.treeSize || answer.treeHead.rootHash !== answer.rootHash)
    return fail("the signed tree head is for a different tree than the proof");
  if (
    answer.treeHead.keyId !== verify.keyId ||
    !verify.verify(utf8(treeHeadSigningInput(answer.treeHead)), answer.treeHead.signature)
  )
    return fail("the tree head's signature does not verify with the ledger key");
  return { ...report, verified: true };
}

/** The inclusion proof for `target` computed from an export (offline). */
export function inclusionFromExport(
  exported: LedgerExport,
  target: string,
): LedgerInclusionResponse {
  const tree = new MemoryMerkleTree(sha256);
  for (const entry of exported.entries) tree.appendLeafHash(leafHash(sha256, utf8(entry.encoded)));
  const head = exported.treeHeads.filter((each) => each.treeSize <= tree.size).at(-1);
  if (head === undefined)
    throw new AuditInputError("the export has no signed tree head to prove against");
  let index: number | undefined;
  if (/^\d+$/.test(target)) index = Number(target);
  else {
    const digest = target.toLowerCase();
    index = exported.entries.findIndex(
      (entry) => entry.leafHash === digest || entry.encoded.includes(`"${digest}"`),
    );
  }
  const entry = index === undefined ? undefined : exported.entries[index];
  if (entry === undefined || index === undefined)
    throw new AuditInputError(`no entry ${target} in the export`);
  if (index >= head.treeSize)
    throw new AuditInputError(
      `entry ${index} is newer than the export's last signed head (size ${head.treeSize})`,
    );
  const stored = decodeEntry(entry.encoded);
  return {
    entry: {
      index,
      kind: stored.kind,
      atMs: stored.atMs,
      encoded: entry.encoded,
      leafHash: entry.leafHash,
    },
    treeSize: head.treeSize,
    proof: tree.inclusionProof(index, head.treeSize).map(toHex),
    rootHash: toHex(tree.root(head.treeSize)),
    treeHead: head,
  };
}

function printProof(report: ProofReport, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const lines = [
    `entry ${report.entryIndex} (${report.kind}, ${new Date(report.atMs).toISOString()})`,
    `  leaf hash: ${report.leafHash}`,
    `  tree size: ${report.treeSize}`,
    `  root hash: ${report.rootHash}`,
    report.treeHead === null
      ? "  signed:    no"
      : `  signed:    ${new Date(report.treeHead.timestampMs).toISOString()} by key ${report.treeHead.keyId.slice(0, 16)}…`,
    `  audit path (${report.proof.length} hashes, deepest first):`,
    ...report.proof.map((item, position) => `    ${position}: ${item}`),
    report.verified
      ? "OK: the entry is in the signed tree"
      : `NOT VERIFIED: ${report.problem ?? "unknown"}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

function parseEntryCount(text: string): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 1 || count > auditLogEntriesMax)
    throw new AuditInputError(`expected a count from 1 to ${auditLogEntriesMax}, got ${text}`);
  return count;
}

function parseEntryIndex(text: string): number {
  const index = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(index))
    throw new AuditInputError(`expected an entry index (0, 1, ...), got ${text}`);
  return index;
}

/** One line per entry: index, time, kind and the entry's data as compact JSON. */
function printEntries(entries: readonly LedgerEntryView[], treeSize: number): void {
  const lines = entries.map((entry) => {
    const { data } = JSON.parse(entry.encoded) as { data: unknown };
    return `${String(entry.index).padStart(6)}  ${new Date(entry.atMs).toISOString()}  ${entry.kind.padEnd(14)}  ${JSON.stringify(data)}`;
  });
  lines.push(`${entries.length} of ${treeSize} entries`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command("audit")
    .summary("verify the tamper-evident ledger")
    .description(
      "The ledger is an append-only Merkle log (RFC 6962) of enrolments, tokens, config " +
        "changes, security events, quarantines, failovers, backups and key rotations, with tree " +
        "heads signed by the server's Ed25519 key. These commands check it without trusting the " +
        "server. Format: docs/formats/ledger.md.",
    );
  const serverOptions = (command: Command) =>
    command
      .option(
        "--dir <dir>",
        "find the server of the local fleet in this directory (default .edgeward)",
      )
      .option(
        "--server <url>",
        "the server's URL (default: the local fleet, then $EDGEWARD_SERVER)",
      )
      .option("--export <file>", "work offline from an export file (GET /v1/ledger/export)")
      .option("--public-key <file>", "trust only this Ed25519 public key (PEM)")
      .option("--json", "print one JSON object");

  serverOptions(audit.command("verify"))
    .summary("re-verify every entry, tree head and consistency proof")
    .description(
      "Recomputes every leaf hash and the Merkle root, checks each signed tree head's signature " +
        "and root, and the consistency of each head with the one before it. Exits 1 and names " +
        "each problem when the log was edited, truncated, reordered or forked.",
    )
    .option("--trusted-head <file>", "a tree head saved by an earlier run; the log must extend it")
    .option("--save-head <file>", "save the latest verified tree head here for the next run")
    .addHelpText(
      "after",
      "\nExamples:\n  edgeward audit verify\n  curl -s $SERVER/v1/ledger/export > ledger.json && edgeward audit verify --export ledger.json\n  edgeward audit verify --trusted-head last-head.json --save-head last-head.json",
    )
    .action(async (options: AuditOptions) => {
      const { exported, source } = await loadExport(options);
      const result = verifyExport(exported, options);
      printVerify(result, source, options.json === true);
      if (options.saveHead !== undefined && result.ok && result.latestVerified !== undefined)
        writeFileSync(options.saveHead, `${JSON.stringify(result.latestVerified, null, 2)}\n`);
      if (!result.ok) process.exitCode = 1;
    });

  audit
    .command("log")
    .summary("list ledger entries, newest last")
    .description(
      "Lists entries with their index, time, kind and data: the last 20 by default, or --limit " +
        "entries from --from on. Use `audit proof <index>` to prove one of them.",
    )
    .option(
      "--dir <dir>",
      "find the server of the local fleet in this directory (default .edgeward)",
    )
    .option("--server <url>", "the server's URL (default: the local fleet, then $EDGEWARD_SERVER)")
    .option("--from <index>", "first entry to list", parseEntryIndex)
    .option(
      "--limit <count>",
      `entries to list, at most ${auditLogEntriesMax}`,
      parseEntryCount,
      20,
    )
    .option(
      "--json",
      "print the API's answer: {treeSize, entries: [{index, kind, atMs, encoded, leafHash}]}",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  edgeward audit log\n  edgeward audit log --from 0 --limit 1000 --json | jq '.entries[] | select(.kind == \"token.revoked\")'",
    )
    .action(async (options: ServerSelection & { from?: number; limit: number; json?: boolean }) => {
      const client = new ApiClient(resolveServerUrl(options));
      const read = (from: number) =>
        client.getJson<LedgerEntriesResponse>(
          `/v1/ledger/entries?from=${from}&limit=${options.limit}`,
        );
      let answer = await read(options.from ?? 0);
      if (options.from === undefined && answer.treeSize > options.limit)
        answer = await read(answer.treeSize - options.limit);
      if (options.json === true) process.stdout.write(`${JSON.stringify(answer)}\n`);
      else printEntries(answer.entries, answer.treeSize);
    });

  serverOptions(audit.command("proof <entry>"))
    .summary("print and verify the inclusion proof of an entry")
    .description(
      "<entry> is an entry index, an entry's leaf hash, or a content digest an entry names (a " +
        "backup snapshot's digest, a config digest). Prints the audit path and checks it leads to " +
        "the root of a signed tree head.",
    )
    .action(async (target: string, options: AuditOptions) => {
      if (!/^\d+$/.test(target) && !/^[0-9a-fA-F]{64}$/.test(target))
        throw new AuditInputError(`${target} is neither an entry index nor a 64-digit hex digest`);
      let answer: LedgerInclusionResponse;
      let publicKey: string;
      if (options.export !== undefined) {
        const { exported } = await loadExport(options);
        answer = inclusionFromExport(exported, target);
        publicKey = exported.publicKey;
      } else {
        const client = new ApiClient(resolveServerUrl(options));
        const query = /^\d+$/.test(target) ? `leafIndex=${target}` : `digest=${target}`;
        answer = await client.getJson<LedgerInclusionResponse>(
          `/v1/ledger/proof/inclusion?${query}`,
        );
        publicKey = (await client.getJson<LedgerTreeHeadResponse>("/v1/ledger/tree-head"))
          .publicKey;
      }
      const verifier =
        options.publicKey === undefined
          ? ledgerVerifier(publicKey)
          : ledgerVerifier(readFileSync(options.publicKey, "utf8"));
      const report = checkInclusion(answer, verifier);
      printProof(report, options.json === true);
      if (!report.verified) process.exitCode = 1;
    });
}
