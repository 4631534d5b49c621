// AES-256-GCM sealing of one secret under one key, in the envelope of
// src/core/security/sealed-envelope.ts. A failed authentication is a typed error, never a
// partial plaintext.

import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import {
  encodeSealedEnvelope,
  parseSealedEnvelope,
  sealedAssociatedData,
  sealedHeader,
  sealedNonceBytes,
  sealedPlaintextBytesMax,
  type SealedEnvelope,
} from "../../core/security/sealed-envelope.ts";

export const sealingKeyBytes = 32;

/** The bytes are sealed but do not authenticate: tampered, moved, or sealed under another key. */
export class SealedSecretTamperedError extends Error {
  override readonly name = "SealedSecretTamperedError";
}

export function seal(
  key: Uint8Array,
  keyVersion: number,
  purpose: string,
  plaintext: Uint8Array,
): Buffer {
  if (key.length !== sealingKeyBytes) throw new RangeError("a sealing key has 32 bytes");
  if (plaintext.length > sealedPlaintextBytesMax)
    throw new RangeError(`a secret of ${plaintext.length} bytes is too large to seal`);
  const header = sealedHeader(keyVersion, randomBytes(sealedNonceBytes));
  const nonce = header.subarray(header.length - sealedNonceBytes);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(sealedAssociatedData(header, purpose));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.from(encodeSealedEnvelope(header, ciphertext, cipher.getAuthTag()));
}

/** Opens a parsed envelope with the key of its version; `where` names it in errors. */
export function openEnvelope(
  key: Uint8Array,
  envelope: SealedEnvelope,
  purpose: string,
  where: string,
): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", key, envelope.nonce);
  decipher.setAAD(sealedAssociatedData(envelope.header, purpose));
  decipher.setAuthTag(envelope.tag);
  try {
    return Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  } catch {
    throw new SealedSecretTamperedError(
      `${where} does not authenticate (key version ${envelope.keyVersion}): it was changed, ` +
        `copied from another file or data dir, or sealed under another key. Restore it from a ` +
        `backup, or delete it to have edgeward make a new one where it can`,
    );
  }
}

export function open(key: Uint8Array, purpose: string, sealed: Uint8Array, where: string): Buffer {
  return openEnvelope(key, parseSealedEnvelope(sealed, where), purpose, where);
}
