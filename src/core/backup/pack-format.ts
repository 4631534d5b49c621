// The binary layout of a pack file: encrypted blobs back to back, then the encrypted header
// that lists them, then a fixed-size plaintext trailer. A pack alone, with the key ring, is
// enough to recover its blobs: the index only makes finding them fast.
import { blobTypes } from "./blob-types.ts";
import type { BlobType, IndexedBlob } from "./objects.ts";
import { CorruptObjectError } from "./errors.ts";

/** Trailer: header length (u32 LE), header key generation (u32 LE), magic "EWP1". */
export const packTrailerBytes = 12;
const packMagic = [0x45, 0x57, 0x50, 0x31];
/** Entry: type u8, flags u8, key generation u32, length u32, raw length u32, id 32 bytes. */
export const packHeaderEntryBytes = 46;
const idBytes = 32;
const compressedFlag = 1;
/** Bounds what a reader allocates for a header claimed by an untrusted trailer. */
export const packHeaderBytesMax = 64 * 1024 * 1024;

export type PackHeaderEntry = Omit<IndexedBlob, "offsetBytes">;

export function encodePackHeader(entries: readonly PackHeaderEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * packHeaderEntryBytes);
  const view = new DataView(bytes.buffer);
  entries.forEach((entry, index) => {
    const at = index * packHeaderEntryBytes;
    view.setUint8(at, blobTypes.indexOf(entry.type));
    view.setUint8(at + 1, entry.compressed ? compressedFlag : 0);
    view.setUint32(at + 2, entry.keyGeneration, true);
    view.setUint32(at + 6, entry.lengthBytes, true);
    view.setUint32(at + 10, entry.rawLengthBytes, true);
    bytes.set(bytesFromHex(entry.id), at + 14);
  });
  return bytes;
}

/** Decodes a decrypted header; offsets follow from the lengths since blobs are contiguous. */
export function decodePackHeader(bytes: Uint8Array, packName: string): IndexedBlob[] {
  if (bytes.length % packHeaderEntryBytes !== 0)
    throw new CorruptObjectError(
      packName,
      `header length ${bytes.length} is not a multiple of ${packHeaderEntryBytes}`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const blobs: IndexedBlob[] = [];
  let offsetBytes = 0;
  for (let at = 0; at < bytes.length; at += packHeaderEntryBytes) {
    const type: BlobType | undefined = blobTypes[view.getUint8(at)];
    if (type === undefined)
      throw new CorruptObjectError(packName, `unknown blob type ${view.getUint8(at)} in header`);
    const lengthBytes = view.getUint32(at + 6, true);
    blobs.push({
      id: hexFromBytes(bytes.subarray(at + 14, at + 14 + idBytes)),
      type,
      offsetBytes,
      lengthBytes,
      rawLengthBytes: view.getUint32(at + 10, true),
      compressed: (view.getUint8(at + 1) & compressedFlag) !== 0,
      keyGeneration: view.getUint32(at + 2, true),
    });
    offsetBytes += lengthBytes;
  }
  return blobs;
}

export function encodePackTrailer(
  headerLengthBytes: number,
  headerKeyGeneration: number,
): Uint8Array {
  const bytes = new Uint8Array(packTrailerBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, headerLengthBytes, true);
  view.setUint32(4, headerKeyGeneration, true);
  bytes.set(packMagic, 8);
  return bytes;
}

export function decodePackTrailer(
  bytes: Uint8Array,
  packName: string,
  packSizeBytes: number,
): { headerLengthBytes: number; headerKeyGeneration: number } {
  if (
    bytes.length !== packTrailerBytes ||
    packMagic.some((byte, index) => bytes[8 + index] !== byte)
  ) {
    throw new CorruptObjectError(packName, "no pack trailer (truncated or not a pack)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLengthBytes = view.getUint32(0, true);
  if (
    headerLengthBytes > packHeaderBytesMax ||
    headerLengthBytes + packTrailerBytes > packSizeBytes
  ) {
    throw new CorruptObjectError(
      packName,
      `header length ${headerLengthBytes} does not fit a pack of ${packSizeBytes} bytes`,
    );
  }
  return { headerLengthBytes, headerKeyGeneration: view.getUint32(4, true) };
}

const hexDigits = "0123456789abcdef";

export function hexFromBytes(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes)
    hex += (hexDigits[byte >> 4] as string) + (hexDigits[byte & 15] as string);
  return hex;
}

export function bytesFromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let index = 0; index < bytes.length; index++)
    bytes[index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  return bytes;
}
