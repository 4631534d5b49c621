// One blob on its way into or out of a pack: id, compression, encryption. Shared by the main
// thread and the chunking workers, so both produce byte-identical packs.
import { CorruptObjectError } from "../../core/backup/errors.ts";
import { blobTypes } from "../../core/backup/blob-types.ts";
import type { BlobType, IndexedBlob } from "../../core/backup/objects.ts";
import { bytesFromHex } from "../../core/backup/pack-format.ts";
import type { PackHeaderEntry } from "../../core/backup/pack-format.ts";
import {
  computeBlobId,
  decompressBlob,
  encryptionKey,
  sealOverheadBytes,
  sealParts,
  unseal,
  unsealInto,
} from "./crypto.ts";
import type { BlobCompressor, Keys } from "./crypto.ts";

/** A blob ready to append to a pack: its bytes are the concatenation of `parts`. */
export interface SealedBlob {
  entry: PackHeaderEntry;
  parts: Uint8Array[];
}

/** Binds type and id into the encryption: a blob cannot be passed off as another. */
function blobAssociatedData(type: BlobType, id: string): Buffer {
  const associatedData = Buffer.alloc(33);
  associatedData[0] = blobTypes.indexOf(type);
  associatedData.set(bytesFromHex(id), 1);
  return associatedData;
}

export function sealBlob(
  keys: Keys,
  compressor: BlobCompressor,
  type: BlobType,
  plaintext: Uint8Array,
  knownId?: string,
): SealedBlob {
  const id = knownId ?? computeBlobId(keys, plaintext);
  const compressed = compressor.compress(plaintext);
  const parts = sealParts(
    encryptionKey(keys, keys.currentGeneration, "blob"),
    compressed ?? plaintext,
    blobAssociatedData(type, id),
  );
  return {
    entry: {
      id,
      type,
      lengthBytes: parts.reduce((sum, part) => sum + part.length, 0),
      rawLengthBytes: plaintext.length,
      compressed: compressed !== undefined,
      keyGeneration: keys.currentGeneration,
    },
    parts,
  };
}

/** Bounds what reading one blob allocates; chunks are at most 8 MiB, trees far less. */
const blobRawBytesMax = 256 * 1024 * 1024;

/** Buffers to open a blob into instead of new ones; each is used only if it is large enough. */
export interface OpenBlobBuffers {
  /** Takes the decrypted bytes; it may be the memory `sealed` is in (see `unsealInto`). */
  decrypted?: Buffer;
  /** Takes a compressed blob's plaintext. */
  decompressed?: Buffer;
}

/**
 * Decrypts, decompresses and checks the id of one blob; any mismatch names pack and blob.
 * With `into`, the plaintext is a view of one of its buffers, valid until its next use.
 */
export function openBlob(
  keys: Keys,
  blob: IndexedBlob,
  sealed: Uint8Array,
  packName: string,
  into: OpenBlobBuffers = {},
): Buffer {
  const objectName = `${blob.type} blob ${blob.id} in ${packName}`;
  if (blob.rawLengthBytes > blobRawBytesMax)
    throw new CorruptObjectError(
      objectName,
      `claims ${blob.rawLengthBytes} bytes, more than ${blobRawBytesMax}`,
    );
  if (sealed.length !== blob.lengthBytes)
    throw new CorruptObjectError(
      objectName,
      `read ${sealed.length} bytes, expected ${blob.lengthBytes} (pack truncated?)`,
    );
  const key = encryptionKey(keys, blob.keyGeneration, objectName);
  const associatedData = blobAssociatedData(blob.type, blob.id);
  const stored =
    into.decrypted !== undefined && into.decrypted.length + sealOverheadBytes >= sealed.length
      ? unsealInto(key, sealed, associatedData, objectName, into.decrypted)
      : unseal(key, sealed, associatedData, objectName);
  const plaintext = blob.compressed
    ? decompressBlob(stored, blob.rawLengthBytes, objectName, into.decompressed)
    : stored;
  if (plaintext.length !== blob.rawLengthBytes)
    throw new CorruptObjectError(
      objectName,
      `holds ${plaintext.length} bytes, expected ${blob.rawLengthBytes}`,
    );
  if (computeBlobId(keys, plaintext) !== blob.id)
    throw new CorruptObjectError(objectName, "content does not match its id");
  return plaintext;
}
