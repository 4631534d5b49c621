// Tests of the pure Merkle algorithms in src/core/ledger, here because they need a real SHA-256
// and the core may not import node:crypto.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../core/ledger/bytes.ts";
import { canonicalJson, CanonicalJsonError } from "../../core/ledger/canonical-json.ts";
import {
  consistencyProof,
  emptyRoot,
  frontierPositions,
  inclusionProof,
  leafHash,
  MemoryMerkleTree,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from "../../core/ledger/merkle.ts";
import { sha256 } from "./sha256.ts";

const hex = (bytes: Uint8Array) => toHex(bytes);

// The RFC 6962 test vectors of the Certificate Transparency implementations, recomputed by hand
// (python hashlib) for this file.
const vectorLeaves = [
  "",
  "00",
  "10",
  "2021",
  "3031",
  "40414243",
  "5051525354555657",
  "606162636465666768696a6b6c6d6e6f",
].map(fromHex);
const vectorRoots = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

function vectorTree(size = vectorLeaves.length): MemoryMerkleTree {
  const tree = new MemoryMerkleTree(sha256);
  for (const leaf of vectorLeaves.slice(0, size)) tree.appendData(leaf);
  return tree;
}

function treeOf(size: number): MemoryMerkleTree {
  const tree = new MemoryMerkleTree(sha256);
  for (let index = 0; index < size; index++) tree.appendData(new TextEncoder().encode(`e${index}`));
  return tree;
}

describe("RFC 6962 hashing", () => {
  it("the empty tree is SHA-256 of the empty string", () => {
    expect(hex(emptyRoot(sha256))).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(hex(new MemoryMerkleTree(sha256).root())).toBe(vectorRoots[0]);
  });

  it("a leaf is SHA-256(0x00 || data) and a node SHA-256(0x01 || left || right)", () => {
    // sha256 of the single byte 0x00, and of 0x01 || that twice (computed with sha256sum).
    const leaf = leafHash(sha256, new Uint8Array(0));
    expect(hex(leaf)).toBe("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    expect(hex(nodeHash(sha256, leaf, leaf))).toBe(
      hex(sha256(Uint8Array.from([1, ...leaf, ...leaf]))),
    );
  });

  it("roots of every prefix of the test vectors, from the frontier and from stored subtrees", () => {
    const tree = vectorTree();
    for (let size = 0; size <= vectorLeaves.length; size++) {
      expect(hex(tree.root(size))).toBe(vectorRoots[size]);
      expect(hex(vectorTree(size).root())).toBe(vectorRoots[size]);
    }
  });

  it("a tree of three is H(1 || H(1 || l0 || l1) || l2): the RFC's unbalanced split", () => {
    const [l0, l1, l2] = vectorLeaves.slice(0, 3).map((data) => leafHash(sha256, data));
    expect(hex(nodeHash(sha256, nodeHash(sha256, l0!, l1!), l2!))).toBe(vectorRoots[3]);
  });

  it("audit paths match the published vectors", () => {
    const tree = vectorTree();
    expect(tree.inclusionProof(0, 8).map(hex)).toEqual([
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
    expect(tree.inclusionProof(5, 8).map(hex)).toEqual([
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    expect(tree.inclusionProof(2, 3).map(hex)).toEqual([vectorRoots[2]]);
    expect(tree.inclusionProof(0, 1)).toEqual([]);
  });

  it("consistency proofs match the published vectors", () => {
    const tree = vectorTree();
    expect(tree.consistencyProof(1, 8).map(hex)).toEqual([
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
    expect(tree.consistencyProof(6, 8).map(hex)).toEqual([
      "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    expect(tree.consistencyProof(2, 5).map(hex)).toEqual([
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]);
    expect(tree.consistencyProof(0, 8)).toEqual([]);
    expect(tree.consistencyProof(8, 8)).toEqual([]);
  });

  it("the frontier of 13 = 8 + 4 + 1 is three subtrees", () => {
    expect(frontierPositions(13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(frontierPositions(0)).toEqual([]);
  });

  it("refuses proofs outside the tree", () => {
    const tree = treeOf(5);
    expect(() => tree.inclusionProof(5, 5)).toThrow(RangeError);
    expect(() => tree.consistencyProof(4, 3)).toThrow(RangeError);
    expect(() => inclusionProof(sha256, tree, -1, 5)).toThrow(RangeError);
    expect(() => consistencyProof(sha256, tree, 1, 6)).toThrow();
  });
});

function flipBit(proof: Uint8Array[], position: number): Uint8Array[] {
  const copy = proof.map((item) => Uint8Array.from(item));
  const bit = position % (copy.length * 256);
  const item = copy[Math.floor(bit / 256)]!;
  item[Math.floor((bit % 256) / 8)]! ^= 1 << (bit % 8);
  return copy;
}

function flipRootBit(root: Uint8Array, position: number): Uint8Array {
  const copy = Uint8Array.from(root);
  copy[Math.floor((position % 256) / 8)]! ^= 1 << (position % 8);
  return copy;
}

describe("proof properties (fast-check, seed 20260605)", () => {
  const largest = 300;
  const big = treeOf(largest);
  const runs = { seed: 20260605, numRuns: 400 };

  it("every inclusion proof verifies, and one flipped bit anywhere fails it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: largest }),
        fc.nat(),
        fc.nat(),
        (size, leafSeed, bitSeed) => {
          const leafIndex = leafSeed % size;
          const root = big.root(size);
          const leaf = big.node(0, leafIndex);
          const proof = big.inclusionProof(leafIndex, size);
          expect(verifyInclusion(sha256, leaf, leafIndex, size, proof, root)).toBeNull();
          if (proof.length > 0)
            expect(
              verifyInclusion(sha256, leaf, leafIndex, size, flipBit(proof, bitSeed), root),
            ).not.toBeNull();
          expect(
            verifyInclusion(sha256, flipRootBit(leaf, bitSeed), leafIndex, size, proof, root),
          ).not.toBeNull();
          expect(
            verifyInclusion(sha256, leaf, leafIndex, size, proof, flipRootBit(root, bitSeed)),
          ).not.toBeNull();
          // The same proof does not prove another position.
          if (size > 1)
            expect(
              verifyInclusion(sha256, leaf, (leafIndex + 1) % size, size, proof, root),
            ).not.toBeNull();
          if (proof.length > 0)
            expect(
              verifyInclusion(sha256, leaf, leafIndex, size, proof.slice(1), root),
            ).not.toBeNull();
        },
      ),
      runs,
    );
  });

  it("every consistency proof verifies, and one flipped bit anywhere fails it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: largest }),
        fc.nat(),
        fc.nat(),
        (second, firstSeed, bitSeed) => {
          const first = 1 + (firstSeed % second);
          const firstRoot = big.root(first);
          const secondRoot = big.root(second);
          const proof = big.consistencyProof(first, second);
          expect(verifyConsistency(sha256, first, second, proof, firstRoot, secondRoot)).toBeNull();
          if (proof.length > 0) {
            expect(
              verifyConsistency(
                sha256,
                first,
                second,
                flipBit(proof, bitSeed),
                firstRoot,
                secondRoot,
              ),
            ).not.toBeNull();
            expect(
              verifyConsistency(sha256, first, second, proof.slice(0, -1), firstRoot, secondRoot),
            ).not.toBeNull();
          }
          expect(
            verifyConsistency(
              sha256,
              first,
              second,
              proof,
              flipRootBit(firstRoot, bitSeed),
              secondRoot,
            ),
          ).not.toBeNull();
          expect(
            verifyConsistency(
              sha256,
              first,
              second,
              proof,
              firstRoot,
              flipRootBit(secondRoot, bitSeed),
            ),
          ).not.toBeNull();
          // A different tree of the same size (one changed leaf) is not consistent.
          if (first < second) {
            const forked = treeOf(second);
            const other = new MemoryMerkleTree(sha256);
            for (let index = 0; index < second; index++)
              other.appendLeafHash(
                index === first - 1 ? flipRootBit(forked.node(0, index), 0) : forked.node(0, index),
              );
            expect(
              verifyConsistency(
                sha256,
                first,
                second,
                other.consistencyProof(first, second),
                firstRoot,
                other.root(),
              ),
            ).not.toBeNull();
          }
        },
      ),
      { ...runs, numRuns: 200 },
    );
  });

  it("roots from the frontier equal roots recomputed from stored subtrees", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: largest }), (size) => {
        expect(hex(treeOf(size).root())).toBe(hex(big.root(size)));
      }),
      { ...runs, numRuns: 100 },
    );
  });
});

describe("canonical JSON", () => {
  it("sorts keys, drops whitespace and undefined members", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], c: undefined, é: { z: 0, y: -0 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"é":{"y":0,"z":0}}',
    );
  });

  it("refuses floats, lone surrogates and non-plain objects", () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow(CanonicalJsonError);
    expect(() => canonicalJson("\ud800")).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(new Map())).toThrow(CanonicalJsonError);
    expect(canonicalJson("😀")).toBe('"😀"');
  });
});
