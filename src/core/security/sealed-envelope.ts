// The sealed-secret envelope (docs/formats/secrets-at-rest.md): the byte layout of a secret
// encrypted at rest with AES-256-GCM, and the associated data that binds it to its purpose.
// Pure: the cipher itself runs in src/runtime/security/sealing.ts.

/** "EWSS": edgeward sealed secret. */
export const sealedMagic = Uint8Array.of(0x45, 0x57, 0x53, 0x53);
export const sealedFormatVersion = 1;
export const sealedNonceBytes = 12;
export const sealedTagBytes = 16;
/** magic (4) + format version (1) + key version (4, big-endian) + nonce (12). */
export const sealedHeaderBytes = sealedMagic.length + 1 + 4 + sealedNonceBytes;
/** Largest secret sealed at once (the fleet's peer identities are the biggest). */
export const sealedPlaintextBytesMax = 16 * 1024 * 1024;
/** Longest purpose string; purposes are short names such as `file:tls/ca.key`. */
export const sealedPurposeCharactersMax = 256;
/** Key versions are 1 … 2^32 - 1; version 0 means the root key (it wraps the data keys). */
export const keyVersionMax = 0xffff_ffff;

export type SealedEnvelopeProblem =
  "too-short" | "too-long" | "not-sealed" | "unsupported-version" | "bad-purpose";

/** A sealed file or value is malformed before any decryption was tried. */
export class SealedEnvelopeError extends Error {
  override readonly name = "SealedEnvelopeError";
  constructor(
    readonly problem: SealedEnvelopeProblem,
    message: string,
  ) {
    super(message);
  }
}

export interface SealedEnvelope {
  readonly keyVersion: number;
  /** The first sealedHeaderBytes bytes, authenticated as part of the associated data. */
  readonly header: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

/** True when `bytes` start with the envelope's magic (a sealed file, not a legacy plaintext one). */
export function isSealed(bytes: Uint8Array): boolean {
  return bytes.length >= sealedMagic.length && sealedMagic.every((byte, at) => bytes[at] === byte);
}

export function sealedHeader(keyVersion: number, nonce: Uint8Array): Uint8Array {
  if (!Number.isInteger(keyVersion) || keyVersion < 0 || keyVersion > keyVersionMax)
    throw new RangeError(`key version ${keyVersion} is outside 0…${keyVersionMax}`);
  if (nonce.length !== sealedNonceBytes)
    throw new RangeError(`a nonce has ${sealedNonceBytes} bytes, not ${nonce.length}`);
  const header = new Uint8Array(sealedHeaderBytes);
  header.set(sealedMagic, 0);
  header[sealedMagic.length] = sealedFormatVersion;
  new DataView(header.buffer).setUint32(sealedMagic.length + 1, keyVersion, false);
  header.set(nonce, sealedMagic.length + 5);
  return header;
}

/** header ‖ ciphertext ‖ tag. */
export function encodeSealedEnvelope(
  header: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Uint8Array {
  if (tag.length !== sealedTagBytes) throw new RangeError(`a tag has ${sealedTagBytes} bytes`);
  const bytes = new Uint8Array(header.length + ciphertext.length + tag.length);
  bytes.set(header, 0);
  bytes.set(ciphertext, header.length);
  bytes.set(tag, header.length + ciphertext.length);
  return bytes;
}

/** Splits an envelope into its fields; `where` names the file or value in errors. */
export function parseSealedEnvelope(bytes: Uint8Array, where: string): SealedEnvelope {
  if (!isSealed(bytes))
    throw new SealedEnvelopeError("not-sealed", `${where} is not a sealed secret (no EWSS magic)`);
  if (bytes.length < sealedHeaderBytes + sealedTagBytes)
    throw new SealedEnvelopeError(
      "too-short",
      `${where} is truncated: ${bytes.length} bytes, a sealed secret has at least ${sealedHeaderBytes + sealedTagBytes}`,
    );
  if (bytes.length > sealedHeaderBytes + sealedPlaintextBytesMax + sealedTagBytes)
    throw new SealedEnvelopeError(
      "too-long",
      `${where} is ${bytes.length} bytes, more than a sealed secret may hold`,
    );
  const formatVersion = bytes[sealedMagic.length];
  if (formatVersion !== sealedFormatVersion)
    throw new SealedEnvelopeError(
      "unsupported-version",
      `${where} has sealed-secret format version ${formatVersion}; this edgeward reads version ${sealedFormatVersion} (upgrade edgeward)`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    keyVersion: view.getUint32(sealedMagic.length + 1, false),
    header: bytes.subarray(0, sealedHeaderBytes),
    nonce: bytes.subarray(sealedMagic.length + 5, sealedHeaderBytes),
    ciphertext: bytes.subarray(sealedHeaderBytes, bytes.length - sealedTagBytes),
    tag: bytes.subarray(bytes.length - sealedTagBytes),
  };
}

const purposePattern = /^[a-z][a-z0-9-]*:[A-Za-z0-9._/-]+$/;

/**
 * The AES-GCM associated data: the header, then the purpose (`file:signing.key`,
 * `keyring:data-key:3:<createdAtMs>`). A sealed file moved to another name, or a header
 * edited to point at another key, fails authentication.
 */
export function sealedAssociatedData(header: Uint8Array, purpose: string): Uint8Array {
  if (purpose.length > sealedPurposeCharactersMax || !purposePattern.test(purpose))
    throw new SealedEnvelopeError(
      "bad-purpose",
      `"${purpose.slice(0, 80)}" is not a sealing purpose`,
    );
  const purposeBytes = new TextEncoder().encode(purpose);
  const associated = new Uint8Array(header.length + purposeBytes.length);
  associated.set(header, 0);
  associated.set(purposeBytes, header.length);
  return associated;
}
