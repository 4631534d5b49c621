// Opening data blobs through fixed-size slices: the format of `openBlob` (AES-256-GCM over
// the whole body, one nonce and one tag), but the decipher's output comes in 64 KiB buffers
// copied into one reused buffer, instead of one new buffer as large as the blob. Node 20
// cannot decrypt into an existing buffer; small young buffers are freed by the young-
// generation collections restore asks for (garbage-budget.ts), large ones were old by the
// time V8 collected them for external memory pressure (with the collections, a restore's
// peak RSS went from 173 to 153 MiB on the 1 GiB benchmark dataset).
import { createDecipheriv } from "node:crypto";
import { CorruptObjectError } from "../../core/backup/errors.ts";
import { blobTypes } from "../../core/backup/blob-types.ts";
import type { BlobType, IndexedBlob } from "../../core/backup/objects.ts";
import { bytesFromHex } from "../../core/backup/pack-format.ts";
import { computeBlobId, decompressBlob, encryptionKey, sealOverheadBytes } from "./crypto.ts";
import type { Keys } from "./crypto.ts";

const nonceBytes = 12;
const tagBytes = 16;
/** Cipher output per call: below glibc's initial mmap threshold (128 KiB), one size class. */
export const sliceBytes = 64 * 1024;
/** Bounds what opening one blob allocates, as `openBlob` does. */
const blobRawBytesMax = 256 * 1024 * 1024;

/** As in blob-codec.ts: binds type and id into the encryption. */
function blobAssociatedData(type: BlobType, id: string): Buffer {
  const associatedData = Buffer.alloc(33);
  associatedData[0] = blobTypes.indexOf(type);
  associatedData.set(bytesFromHex(id), 1);
  return associatedData;
}

/**
 * Reusable buffers for opening blobs on one thread: `stored` takes the decrypted (still
 * compressed) body, `scratch` the decompressed plaintext. Both grow to the largest blob.
 */
export class BlobOpenBuffers {
  stored: Buffer;
  scratch: Buffer;

  constructor(bytes: number) {
    this.stored = Buffer.allocUnsafe(bytes);
    this.scratch = Buffer.allocUnsafe(bytes);
  }
}

/**
 * `openBlob` for data read from packs: decrypts slice by slice into `buffers.stored` and
 * returns a view of `buffers.stored` or `buffers.scratch`, valid until their next use. Nothing
 * is returned before the tag has been checked and the id recomputed.
 */
export function openBlobSliced(
  keys: Keys,
  blob: IndexedBlob,
  sealed: Uint8Array,
  packName: string,
  buffers: BlobOpenBuffers,
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
  if (sealed.length < sealOverheadBytes)
    throw new CorruptObjectError(objectName, "too short to be encrypted data");
  const decipher = createDecipheriv(
    "aes-256-gcm",
    encryptionKey(keys, blob.keyGeneration, objectName),
    sealed.subarray(0, nonceBytes),
  );
  decipher.setAAD(blobAssociatedData(blob.type, blob.id));
  decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
  const body = sealed.subarray(nonceBytes, sealed.length - tagBytes);
  if (buffers.stored.length < body.length) buffers.stored = Buffer.allocUnsafe(body.length);
  const stored = buffers.stored;
  let storedBytes = 0;
  for (let offset = 0; offset < body.length; offset += sliceBytes) {
    const output = decipher.update(
      body.subarray(offset, Math.min(offset + sliceBytes, body.length)),
    );
    storedBytes += output.copy(stored, storedBytes);
  }
  try {
    const rest = decipher.final();
    storedBytes += rest.copy(stored, storedBytes);
  } catch {
    throw new CorruptObjectError(
      objectName,
      "authentication failed (modified, truncated or not written with this key)",
    );
  }
  let plaintext = stored.subarray(0, storedBytes);
  if (blob.compressed) {
    if (buffers.scratch.length < blob.rawLengthBytes)
      buffers.scratch = Buffer.allocUnsafe(blob.rawLengthBytes);
    plaintext = decompressBlob(plaintext, blob.rawLengthBytes, objectName, buffers.scratch);
  }
  if (plaintext.length !== blob.rawLengthBytes)
    throw new CorruptObjectError(
      objectName,
      `holds ${plaintext.length} bytes, expected ${blob.rawLengthBytes}`,
    );
  if (computeBlobId(keys, plaintext) !== blob.id)
    throw new CorruptObjectError(objectName, "content does not match its id");
  return plaintext;
}
