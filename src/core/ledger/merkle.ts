// RFC 6962 Merkle tree hashing, audit paths and consistency proofs, and the RFC 9162
// verification algorithms. Pure: the hash function is handed in (SHA-256 in every shell), and
// tree nodes come from a SubtreeSource, so the same code proves from an in-memory tree, from
// SQLite, or from an export file.

import { bytesEqual } from "./bytes.ts";

/** A cryptographic hash of a byte string (SHA-256 for the ledger). */
export type HashFunction = (data: Uint8Array) => Uint8Array;

/** MTH({d}) = HASH(0x00 || d). */
export function leafHash(hash: HashFunction, data: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + data.length);
  input[0] = 0x00;
  input.set(data, 1);
  return hash(input);
}

/** HASH(0x01 || left || right). */
export function nodeHash(hash: HashFunction, left: Uint8Array, right: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + left.length + right.length);
  input[0] = 0x01;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return hash(input);
}

/** MTH({}) = HASH(), the root of the empty tree. */
export function emptyRoot(hash: HashFunction): Uint8Array {
  return hash(new Uint8Array(0));
}

/**
 * Hashes of complete, aligned subtrees: `node(level, index)` is the MTH of leaves
 * [index * 2^level, (index + 1) * 2^level). Level 0 is the leaf hashes. A source is only
 * asked for subtrees that lie wholly inside the tree it stores.
 */
export interface SubtreeSource {
  node(level: number, index: number): Uint8Array;
}

/** The largest power of two strictly less than `size` (size >= 2): RFC 6962's k. */
export function splitPoint(size: number): number {
  let k = 1;
  while (k * 2 < size) k *= 2;
  return k;
}

function isPowerOfTwo(size: number): boolean {
  return size >= 1 && Number.isInteger(Math.log2(size)) && 2 ** Math.log2(size) === size;
}

/**
 * MTH of leaves [start, start + size). RFC 6962's recursion only asks for ranges whose start
 * is a multiple of the smallest power of two >= size, so each is a complete subtree or splits
 * into one complete subtree and a smaller such range: O(log size) source lookups.
 */
export function rangeHash(
  hash: HashFunction,
  source: SubtreeSource,
  start: number,
  size: number,
): Uint8Array {
  if (size === 0) return emptyRoot(hash);
  if (isPowerOfTwo(size) && start % size === 0) return source.node(Math.log2(size), start / size);
  if (size === 1) throw new Error(`unaligned range [${start}, ${start + size})`);
  const k = splitPoint(size);
  return nodeHash(
    hash,
    rangeHash(hash, source, start, k),
    rangeHash(hash, source, start + k, size - k),
  );
}

/** MTH(D[0:size]). */
export function rootHash(hash: HashFunction, source: SubtreeSource, size: number): Uint8Array {
  return rangeHash(hash, source, 0, size);
}

function checkSize(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`${what} must be a non-negative integer, got ${value}`);
}

/** PATH(m, D[0:size]) of RFC 6962 §2.1.1: the audit path of leaf `leafIndex`, deepest first. */
export function inclusionProof(
  hash: HashFunction,
  source: SubtreeSource,
  leafIndex: number,
  treeSize: number,
): Uint8Array[] {
  checkSize("leafIndex", leafIndex);
  checkSize("treeSize", treeSize);
  if (leafIndex >= treeSize)
    throw new RangeError(`leaf ${leafIndex} is not in a tree of size ${treeSize}`);
  const path: Uint8Array[] = [];
  const walk = (m: number, start: number, size: number): void => {
    if (size === 1) return;
    const k = splitPoint(size);
    if (m < k) {
      walk(m, start, k);
      path.push(rangeHash(hash, source, start + k, size - k));
    } else {
      walk(m - k, start + k, size - k);
      path.push(rangeHash(hash, source, start, k));
    }
  };
  walk(leafIndex, 0, treeSize);
  return path;
}

/** PROOF(m, D[0:n]) of RFC 6962 §2.1.2: proves the tree of size `first` is a prefix of `second`. */
export function consistencyProof(
  hash: HashFunction,
  source: SubtreeSource,
  first: number,
  second: number,
): Uint8Array[] {
  checkSize("first", first);
  checkSize("second", second);
  if (first > second) throw new RangeError(`first size ${first} is larger than second ${second}`);
  const proof: Uint8Array[] = [];
  if (first === 0 || first === second) return proof;
  const subproof = (m: number, start: number, size: number, complete: boolean): void => {
    if (m === size) {
      if (!complete) proof.push(rangeHash(hash, source, start, size));
      return;
    }
    const k = splitPoint(size);
    if (m <= k) {
      subproof(m, start, k, complete);
      proof.push(rangeHash(hash, source, start + k, size - k));
    } else {
      subproof(m - k, start + k, size - k, false);
      proof.push(rangeHash(hash, source, start, k));
    }
  };
  subproof(first, 0, second, true);
  return proof;
}

/** Why a proof did not verify; `null` means it did. */
export type ProofFailure = string | null;

/** RFC 9162 §2.1.3.2: does `proof` show `leaf` at `leafIndex` in the tree with `root`? */
export function verifyInclusion(
  hash: HashFunction,
  leaf: Uint8Array,
  leafIndex: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): ProofFailure {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0)
    return "leaf index and tree size must be non-negative integers";
  if (leafIndex >= treeSize) return `leaf index ${leafIndex} is not below tree size ${treeSize}`;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return "the proof is longer than the tree is deep";
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(hash, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(hash, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return "the proof is shorter than the tree is deep";
  if (!bytesEqual(r, root)) return "the proof leads to a different root";
  return null;
}

/** RFC 9162 §2.1.4.2: does `proof` show the tree (first, firstRoot) is a prefix of (second, secondRoot)? */
export function verifyConsistency(
  hash: HashFunction,
  first: number,
  second: number,
  proof: readonly Uint8Array[],
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
): ProofFailure {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0)
    return "tree sizes must be non-negative integers";
  if (first > second) return `first size ${first} is larger than second size ${second}`;
  if (first === second) {
    if (proof.length !== 0) return "a proof between equal sizes must be empty";
    return bytesEqual(firstRoot, secondRoot) ? null : "equal sizes with different roots";
  }
  if (first === 0) {
    if (proof.length !== 0) return "a proof from the empty tree must be empty";
    return bytesEqual(firstRoot, emptyRoot(hash)) ? null : "the empty tree has a different root";
  }
  if (proof.length === 0) return "the proof is empty";
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return "the proof is longer than the tree is deep";
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(hash, c, fr);
      sr = nodeHash(hash, c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(hash, sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return "the proof is shorter than the tree is deep";
  if (!bytesEqual(fr, firstRoot)) return "the proof does not lead to the first root";
  if (!bytesEqual(sr, secondRoot)) return "the proof does not lead to the second root";
  return null;
}

/** A complete subtree created by an append, to be stored (level >= 1). */
export interface CreatedNode {
  readonly level: number;
  readonly index: number;
  readonly hash: Uint8Array;
}

/**
 * The compact frontier of a tree: the roots of the complete subtrees its size decomposes
 * into, largest first (one per set bit of the size). Appending touches only these, so an
 * append costs O(log n) hashes at worst and two on average.
 */
export function appendToFrontier(
  hash: HashFunction,
  frontier: readonly Uint8Array[],
  treeSize: number,
  leaf: Uint8Array,
): { frontier: Uint8Array[]; created: CreatedNode[] } {
  const next = [...frontier];
  const created: CreatedNode[] = [];
  let carry = leaf;
  let level = 0;
  let index = treeSize;
  while (index % 2 === 1) {
    const left = next.pop();
    if (left === undefined) throw new Error(`frontier too short for tree size ${treeSize}`);
    carry = nodeHash(hash, left, carry);
    level += 1;
    index = (index - 1) / 2;
    created.push({ level, index, hash: carry });
  }
  next.push(carry);
  return { frontier: next, created };
}

/** The root of a tree from its frontier: the subtrees folded right to left. */
export function frontierRoot(hash: HashFunction, frontier: readonly Uint8Array[]): Uint8Array {
  let root = frontier.at(-1);
  if (root === undefined) return emptyRoot(hash);
  for (let position = frontier.length - 2; position >= 0; position--)
    root = nodeHash(hash, frontier[position]!, root);
  return root;
}

/** The (level, index) of each frontier subtree of a tree of `treeSize` leaves, largest first. */
export function frontierPositions(treeSize: number): { level: number; index: number }[] {
  const positions: { level: number; index: number }[] = [];
  let start = 0;
  for (let level = Math.floor(Math.log2(Math.max(treeSize, 1))); level >= 0; level--) {
    const width = 2 ** level;
    if (treeSize - start >= width) {
      positions.push({ level, index: start / width });
      start += width;
    }
  }
  return positions;
}

/** A whole tree in memory, every level kept: for tests, offline audits and small logs. */
export class MemoryMerkleTree implements SubtreeSource {
  readonly #hash: HashFunction;
  readonly #levels: Uint8Array[][] = [[]];
  #frontier: Uint8Array[] = [];

  constructor(hash: HashFunction) {
    this.#hash = hash;
  }

  get size(): number {
    return this.#levels[0]!.length;
  }

  /** Appends a leaf hash (already MTH({d})); returns its index. */
  appendLeafHash(leaf: Uint8Array): number {
    const index = this.size;
    const { frontier, created } = appendToFrontier(this.#hash, this.#frontier, index, leaf);
    this.#frontier = frontier;
    this.#levels[0]!.push(leaf);
    for (const node of created) {
      const level = (this.#levels[node.level] ??= []);
      level[node.index] = node.hash;
    }
    return index;
  }

  appendData(data: Uint8Array): number {
    return this.appendLeafHash(leafHash(this.#hash, data));
  }

  node(level: number, index: number): Uint8Array {
    const found = this.#levels[level]?.[index];
    if (found === undefined)
      throw new Error(`no complete subtree at level ${level} index ${index}`);
    return found;
  }

  root(size = this.size): Uint8Array {
    if (size === this.size) return frontierRoot(this.#hash, this.#frontier);
    if (size > this.size) throw new RangeError(`tree has ${this.size} leaves, not ${size}`);
    return rootHash(this.#hash, this, size);
  }

  inclusionProof(leafIndex: number, treeSize = this.size): Uint8Array[] {
    if (treeSize > this.size) throw new RangeError(`tree has ${this.size} leaves, not ${treeSize}`);
    return inclusionProof(this.#hash, this, leafIndex, treeSize);
  }

  consistencyProof(first: number, second = this.size): Uint8Array[] {
    if (second > this.size) throw new RangeError(`tree has ${this.size} leaves, not ${second}`);
    return consistencyProof(this.#hash, this, first, second);
  }
}
