// The ledger over HTTP: entries, the signed tree head, inclusion and consistency proofs, and
// the export an auditor re-verifies offline. Read-only; thin over ServerLedger.

import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import {
  ledgerConsistencyQuerySchema,
  ledgerEntriesQuerySchema,
  ledgerExportQuerySchema,
  ledgerInclusionQuerySchema,
  type LedgerConsistencyResponse,
  type LedgerEntriesResponse,
  type LedgerInclusionResponse,
  type LedgerTreeHeadResponse,
} from "../../api/ledger-contract.ts";
import { toHex } from "../../core/ledger/bytes.ts";
import { HttpError, parseOrReject } from "../http-error.ts";
import type { ServerLedger } from "../ledger/server-ledger.ts";

const access = { access: { resource: "ledger", action: "read" } } as const;

function beyondTree(what: string, size: number, treeSize: number): HttpError {
  return new HttpError(
    422,
    "beyond_tree",
    `${what} ${size} is beyond the ledger's ${treeSize} entries; get the latest size from GET /v1/ledger/tree-head`,
  );
}

export function registerLedgerRoutes(app: FastifyInstance, ledger: ServerLedger): void {
  const store = ledger.store;

  app.get("/v1/ledger/entries", { config: access }, (request): LedgerEntriesResponse => {
    const query = parseOrReject(ledgerEntriesQuerySchema, request.query, "query");
    return { treeSize: store.size, entries: store.entries(query.from, query.limit) };
  });

  app.get("/v1/ledger/tree-head", { config: access }, (): LedgerTreeHeadResponse => {
    return { treeHead: ledger.publish(), publicKey: ledger.publicKeyPem };
  });

  app.get("/v1/ledger/proof/inclusion", { config: access }, (request): LedgerInclusionResponse => {
    const query = parseOrReject(ledgerInclusionQuerySchema, request.query, "query");
    const treeSize = query.treeSize ?? ledger.publish().treeSize;
    if (treeSize > store.size) throw beyondTree("treeSize", treeSize, store.size);
    let leafIndex = query.leafIndex;
    if (query.digest !== undefined) {
      leafIndex = store.findByDigest(query.digest);
      if (leafIndex === undefined)
        throw new HttpError(
          404,
          "unknown_digest",
          `no ledger entry has leaf hash or content digest ${query.digest}`,
        );
    }
    if (leafIndex === undefined || leafIndex >= store.size)
      throw new HttpError(
        404,
        "unknown_entry",
        `no ledger entry ${leafIndex}; the ledger has ${store.size}`,
      );
    if (leafIndex >= treeSize)
      throw new HttpError(
        422,
        "not_in_tree",
        `entry ${leafIndex} is not in the tree of size ${treeSize}; ask for a larger treeSize`,
      );
    const entry = store.entry(leafIndex);
    if (entry === undefined)
      throw new HttpError(404, "unknown_entry", `no ledger entry ${leafIndex}`);
    return {
      entry,
      treeSize,
      proof: store.inclusionProof(leafIndex, treeSize).map(toHex),
      rootHash: toHex(store.root(treeSize)),
      treeHead: store.treeHeadForSize(treeSize) ?? null,
    };
  });

  app.get(
    "/v1/ledger/proof/consistency",
    { config: access },
    (request): LedgerConsistencyResponse => {
      const query = parseOrReject(ledgerConsistencyQuerySchema, request.query, "query");
      const second = query.second ?? ledger.publish().treeSize;
      if (second > store.size) throw beyondTree("second", second, store.size);
      if (query.first > second)
        throw new HttpError(
          422,
          "first_after_second",
          `first (${query.first}) must not be larger than second (${second})`,
        );
      return {
        first: query.first,
        second,
        firstRootHash: toHex(store.root(query.first)),
        secondRootHash: toHex(store.root(second)),
        proof: store.consistencyProof(query.first, second).map(toHex),
        firstTreeHead: store.treeHeadForSize(query.first) ?? null,
        secondTreeHead: store.treeHeadForSize(second) ?? null,
      };
    },
  );

  app.get("/v1/ledger/export", { config: access }, async (request, reply) => {
    parseOrReject(ledgerExportQuerySchema, request.query, "query");
    return reply
      .type("application/json")
      .header("content-disposition", 'attachment; filename="ledger-export.json"')
      .send(Readable.from(ledger.exportJson()));
  });
}
