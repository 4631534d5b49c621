// The repository's cryptography: scrypt for passwords, HMAC-SHA-256 blob ids, AES-256-GCM for
// everything stored, zstd inside the encryption. All primitives are node:crypto's (OpenSSL).
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scrypt } from "node:crypto";
import type { DecipherGCM } from "node:crypto";
import zstd from "zstd-napi";
import zstdBinding from "zstd-napi/binding.js";
import { CorruptObjectError, assert } from "../../core/backup/errors.ts";
import type { KeyFile, KeyRing } from "../../core/backup/objects.ts";

const nonceBytes = 12;
const tagBytes = 16;
const keyBytes = 32;
/** Sealed object: magic "EWO1", key generation u32 LE, nonce, ciphertext, tag. */
const objectMagic = Buffer.from("EWO1");
const objectPrefixBytes = objectMagic.length + 4;
/** AES-GCM bytes added to every sealed blob. */
export const sealOverheadBytes = nonceBytes + tagBytes;

/** A decrypted key ring, ready to use. */
export interface Keys {
  readonly blobIdKey: Buffer;
  readonly encryptionKeys: ReadonlyMap<number, Buffer>;
  readonly currentGeneration: number;
  readonly ring: KeyRing;
}

export function keysFromRing(ring: KeyRing): Keys {
  const encryptionKeys = new Map(
    ring.encryptionKeys.map((entry) => [entry.generation, Buffer.from(entry.key, "base64")]),
  );
  for (const key of encryptionKeys.values())
    assert(key.length === keyBytes, "encryption keys are 32 bytes");
  return {
    blobIdKey: Buffer.from(ring.blobIdKey, "base64"),
    encryptionKeys,
    currentGeneration: Math.max(...encryptionKeys.keys()),
    ring,
  };
}

export function createKeyRing(createdAt: string): KeyRing {
  return {
    version: 1,
    blobIdKey: randomBytes(keyBytes).toString("base64"),
    encryptionKeys: [{ generation: 0, key: randomBytes(keyBytes).toString("base64"), createdAt }],
  };
}

/** A blob's id: HMAC-SHA-256 of its plaintext, so ids reveal nothing without the key. */
export function computeBlobId(keys: Keys, plaintext: Uint8Array): string {
  return createHmac("sha256", keys.blobIdKey).update(plaintext).digest("hex");
}

/** nonce ‖ AES-256-GCM(plaintext) ‖ tag, with `associatedData` authenticated too. */
export function seal(key: Buffer, plaintext: Uint8Array, associatedData: Uint8Array): Buffer {
  const nonce = randomBytes(nonceBytes);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(associatedData);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  return Buffer.concat([nonce, body, final, cipher.getAuthTag()]);
}

/**
 * The same layout as `seal`, as three parts: nonce, ciphertext, tag. Blobs travel to packs
 * this way, so the ciphertext is never copied into a combined buffer.
 */
export function sealParts(
  key: Buffer,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): [Buffer, Buffer, Buffer] {
  const nonce = randomBytes(nonceBytes);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(associatedData);
  const body = cipher.update(plaintext);
  cipher.final();
  return [nonce, body, cipher.getAuthTag()];
}

/** A decipher for `sealed`'s body, with its nonce, tag and associated data set. */
function decipherOf(
  key: Buffer,
  sealed: Uint8Array,
  associatedData: Uint8Array,
  objectName: string,
): DecipherGCM {
  if (sealed.length < sealOverheadBytes)
    throw new CorruptObjectError(objectName, "too short to be encrypted data");
  const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, nonceBytes));
  decipher.setAAD(associatedData);
  decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
  return decipher;
}

/** Checks the tag; GCM's final() returns nothing, so the body needs no copy. */
function authenticate(decipher: DecipherGCM, objectName: string): Buffer {
  try {
    return decipher.final();
  } catch {
    throw new CorruptObjectError(
      objectName,
      "authentication failed (modified, truncated or not written with this key)",
    );
  }
}

export function unseal(
  key: Buffer,
  sealed: Uint8Array,
  associatedData: Uint8Array,
  objectName: string,
): Buffer {
  const decipher = decipherOf(key, sealed, associatedData, objectName);
  const body = decipher.update(sealed.subarray(nonceBytes, sealed.length - tagBytes));
  const rest = authenticate(decipher, objectName);
  return rest.length === 0 ? body : Buffer.concat([body, rest]);
}

/**
 * Bytes decrypted per `update` by `unsealInto`. Each call returns a new buffer (Node 20 cannot
 * decrypt into one it is given); below glibc's 128 KiB mmap threshold it comes from the heap
 * and is reused, where a whole blob's output was a fresh mapping each time (a restore of the
 * benchmark tree: 355,000 page faults before, 175,000-190,000 with pieces).
 */
const unsealPieceBytes = 64 * 1024;

/**
 * `unseal` into `target`, returning the view of it that holds the plaintext. `target` may be
 * the memory `sealed` is in: each piece is decrypted before the bytes it lands on are
 * overwritten, and those bytes were read already. Nothing in `target` is authenticated until
 * the function returns.
 */
export function unsealInto(
  key: Buffer,
  sealed: Uint8Array,
  associatedData: Uint8Array,
  objectName: string,
  target: Buffer,
): Buffer {
  const decipher = decipherOf(key, sealed, associatedData, objectName);
  const bodyEnd = sealed.length - tagBytes;
  assert(target.length >= bodyEnd - nonceBytes, "the target holds the plaintext");
  let written = 0;
  for (let offset = nonceBytes; offset < bodyEnd; offset += unsealPieceBytes) {
    const piece = decipher.update(
      sealed.subarray(offset, Math.min(offset + unsealPieceBytes, bodyEnd)),
    );
    target.set(piece, written);
    written += piece.length;
  }
  written += authenticate(decipher, objectName).copy(target, written);
  return target.subarray(0, written);
}

export function encryptionKey(keys: Keys, generation: number, objectName: string): Buffer {
  const key = keys.encryptionKeys.get(generation);
  if (key === undefined)
    throw new CorruptObjectError(
      objectName,
      `encrypted with key generation ${generation}, which the key ring does not hold`,
    );
  return key;
}

/** What a stored metadata object is; bound into its encryption so objects cannot be swapped between kinds. */
export type ObjectKind = "config" | "index" | "snapshot";

/** Seals a JSON object: compressed, encrypted with the current key, kind authenticated. */
export function sealObject(keys: Keys, kind: ObjectKind, value: unknown): Buffer {
  const prefix = Buffer.alloc(objectPrefixBytes);
  objectMagic.copy(prefix);
  prefix.writeUInt32LE(keys.currentGeneration, objectMagic.length);
  const plaintext = zstd.compress(Buffer.from(JSON.stringify(value)), { compressionLevel: 3 });
  const key = encryptionKey(keys, keys.currentGeneration, kind);
  return Buffer.concat([prefix, seal(key, plaintext, Buffer.concat([prefix, Buffer.from(kind)]))]);
}

export function unsealObject(
  keys: Keys,
  kind: ObjectKind,
  stored: Uint8Array,
  objectName: string,
): unknown {
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  if (
    bytes.length < objectPrefixBytes ||
    !bytes.subarray(0, objectMagic.length).equals(objectMagic)
  ) {
    throw new CorruptObjectError(objectName, "not an edgeward repository object (bad magic)");
  }
  const prefix = bytes.subarray(0, objectPrefixBytes);
  const key = encryptionKey(keys, bytes.readUInt32LE(objectMagic.length), objectName);
  const plaintext = unseal(
    key,
    bytes.subarray(objectPrefixBytes),
    Buffer.concat([prefix, Buffer.from(kind)]),
    objectName,
  );
  try {
    return JSON.parse(decompressor.decompress(plaintext).toString("utf8"));
  } catch (error) {
    throw new CorruptObjectError(objectName, `authenticated but undecodable: ${String(error)}`);
  }
}

/** scrypt cost: N = 2^15, r = 8, p = 1 takes ~100 ms and 32 MiB, like restic's defaults. */
export interface KeyDerivationOptions {
  costN: number;
  blockSizeR: number;
  parallelizationP: number;
}

export const keyDerivationDefaults: KeyDerivationOptions = {
  costN: 2 ** 15,
  blockSizeR: 8,
  parallelizationP: 1,
};
/** Cheap parameters for tests only: a repository made with them is easy to brute-force. */
export const keyDerivationTesting: KeyDerivationOptions = {
  costN: 2 ** 10,
  blockSizeR: 8,
  parallelizationP: 1,
};
const saltBytes = 32;
/** scrypt needs 128·N·r·p bytes; the cap refuses key files that ask for absurd memory. */
const scryptMemoryBytesMax = 1024 * 1024 * 1024;

function deriveKey(password: string, kdf: KeyFile["kdf"]): Promise<Buffer> {
  const memoryBytes = 128 * kdf.costN * kdf.blockSizeR * kdf.parallelizationP;
  if (memoryBytes > scryptMemoryBytesMax)
    throw new CorruptObjectError(
      "key file",
      `scrypt parameters need ${memoryBytes} bytes of memory`,
    );
  return new Promise((resolve, reject) => {
    scrypt(
      password,
      Buffer.from(kdf.salt, "base64"),
      keyBytes,
      { N: kdf.costN, r: kdf.blockSizeR, p: kdf.parallelizationP, maxmem: 2 * memoryBytes },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

const keyRingAssociatedData = Buffer.from("edgeward key ring v1");

export async function wrapKeyRing(
  ring: KeyRing,
  password: string,
  options: KeyDerivationOptions,
  identity: { createdAt: string; hostname: string; username: string },
): Promise<KeyFile> {
  const kdf = {
    name: "scrypt" as const,
    ...options,
    salt: randomBytes(saltBytes).toString("base64"),
  };
  const wrappingKey = await deriveKey(password, kdf);
  return {
    version: 1,
    ...identity,
    kdf,
    keyRing: seal(wrappingKey, Buffer.from(JSON.stringify(ring)), keyRingAssociatedData).toString(
      "base64",
    ),
  };
}

/** The key ring in `keyFile`, or undefined when the password does not open it. */
export async function unwrapKeyRing(keyFile: KeyFile, password: string): Promise<unknown> {
  const wrappingKey = await deriveKey(password, keyFile.kdf);
  try {
    return JSON.parse(
      unseal(
        wrappingKey,
        Buffer.from(keyFile.keyRing, "base64"),
        keyRingAssociatedData,
        "key file",
      ).toString("utf8"),
    );
  } catch {
    return undefined;
  }
}

/**
 * Compresses with a reusable context into a reusable output buffer, so a backup allocates
 * nothing per chunk for compression. The returned view is valid until the next call.
 */
export class BlobCompressor {
  private readonly context = new zstdBinding.CCtx();
  private output = Buffer.alloc(0);
  constructor(compressionLevel: number) {
    this.context.setParameter(zstdBinding.CParameter.compressionLevel, compressionLevel);
  }
  /** The compressed bytes, or undefined when compression does not pay. */
  compress(plaintext: Uint8Array): Buffer | undefined {
    const boundBytes = zstdBinding.compressBound(plaintext.length);
    if (this.output.length < boundBytes) this.output = Buffer.allocUnsafe(boundBytes);
    const compressedBytes = this.context.compress2(this.output, plaintext);
    // Storing raw saves the decompression on restore when zstd gains less than 1/64.
    return compressedBytes < plaintext.length - (plaintext.length >> 6)
      ? this.output.subarray(0, compressedBytes)
      : undefined;
  }
}

/** One decompression context per thread, reused: a fresh one per blob churns native memory. */
const decompressor = new zstd.Decompressor();
const decompressionContext = new zstdBinding.DCtx();

/**
 * Decompresses a blob whose size the pack header states; into `scratch` when it is large
 * enough (restore reuses one per file being written, sparing an allocation per blob).
 */
export function decompressBlob(
  compressed: Uint8Array,
  rawLengthBytes: number,
  objectName: string,
  scratch?: Buffer,
): Buffer {
  const output =
    scratch !== undefined && scratch.length >= rawLengthBytes
      ? scratch.subarray(0, rawLengthBytes)
      : Buffer.allocUnsafe(rawLengthBytes);
  let producedBytes: number;
  try {
    producedBytes = decompressionContext.decompress(output, compressed);
  } catch (error) {
    throw new CorruptObjectError(objectName, `does not decompress: ${String(error)}`);
  }
  if (producedBytes !== rawLengthBytes)
    throw new CorruptObjectError(
      objectName,
      `decompressed to ${producedBytes} bytes, expected ${rawLengthBytes}`,
    );
  return output;
}
