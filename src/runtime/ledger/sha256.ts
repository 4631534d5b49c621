// SHA-256 for the ledger's Merkle tree, from node:crypto (the core takes it as a parameter).

import { createHash } from "node:crypto";
import type { HashFunction } from "../../core/ledger/merkle.ts";

export const sha256: HashFunction = (data) => createHash("sha256").update(data).digest();
