// An opened repository: keys, config, the in-memory index, and reading and writing of every
// stored object. Everything read is authenticated and validated before it is used.
import { createHash, randomBytes, randomInt } from "node:crypto";
import { hostname as osHostname, userInfo } from "node:os";
import { createChunkerParameters } from "../../core/backup/chunker.ts";
import type { ChunkerOptions, ChunkerParameters } from "../../core/backup/chunker.ts";
import { chunkerDefaults } from "../../core/backup/chunker.ts";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";
import {
  idOfObjectName,
  indexFileSchema,
  keyFileSchema,
  keyRingSchema,
  objectNames,
  repositoryConfigSchema,
  snapshotSchema,
  treeSchema,
} from "../../core/backup/objects.ts";
import type {
  BlobType,
  IndexFile,
  IndexedBlob,
  IndexedPack,
  KeyFile,
  KeyRing,
  RepositoryConfig,
  Snapshot,
  Tree,
} from "../../core/backup/objects.ts";
import {
  decodePackHeader,
  decodePackTrailer,
  encodePackHeader,
  encodePackTrailer,
  packTrailerBytes,
} from "../../core/backup/pack-format.ts";
import type { PackHeaderEntry } from "../../core/backup/pack-format.ts";
import { openBlob, sealBlob } from "./blob-codec.ts";
import { GarbageBudget } from "./garbage-budget.ts";
import type { SealedBlob } from "./blob-codec.ts";
import {
  BlobCompressor,
  createKeyRing,
  encryptionKey,
  keyDerivationDefaults,
  keysFromRing,
  seal,
  sealObject,
  sealOverheadBytes,
  unseal,
  unsealObject,
  unwrapKeyRing,
  wrapKeyRing,
} from "./crypto.ts";
import type { KeyDerivationOptions, Keys, ObjectKind } from "./crypto.ts";

/** Choices fixed when a repository is created. */
export interface RepositoryOptions {
  chunker: ChunkerOptions;
  /** zstd level: 3 is zstd's default; 1 is faster and close in ratio on logs. */
  compressionLevel: number;
  /** Packs are closed at this size: fewer, larger files versus less data per lost pack. */
  packSizeBytesTarget: number;
  keyDerivation: KeyDerivationOptions;
}

export const repositoryDefaults: RepositoryOptions = {
  chunker: chunkerDefaults,
  compressionLevel: 3,
  packSizeBytesTarget: 16 * 1024 * 1024,
  keyDerivation: keyDerivationDefaults,
};

export const wrongPasswordMessage = "wrong password or no key matches";
/** Trying every key file costs one scrypt each; this bounds a crafted repository. */
const keyFilesTriedMax = 1000;

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function identity(nowMs: number): { createdAt: string; hostname: string; username: string } {
  return {
    createdAt: new Date(nowMs).toISOString(),
    hostname: osHostname(),
    username: safeUsername(),
  };
}

export function safeUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return "unknown";
  }
}

export async function initRepository(
  store: BlobStore,
  password: string,
  options: RepositoryOptions = repositoryDefaults,
): Promise<Repository> {
  if ((await store.exists(objectNames.config)) || (await store.list("keys/")).length > 0) {
    throw new BackupError("REPOSITORY_EXISTS", `a repository already exists at ${store.location}`);
  }
  const nowMs = Date.now();
  const ring = createKeyRing(new Date(nowMs).toISOString());
  const keys = keysFromRing(ring);
  const config: RepositoryConfig = {
    version: 1,
    id: randomBytes(32).toString("hex"),
    chunkerSeed: randomInt(0, 2 ** 32 - 1),
    ...options.chunker,
    compressionLevel: options.compressionLevel,
    packSizeBytesTarget: options.packSizeBytesTarget,
  };
  const keyFile = await wrapKeyRing(ring, password, options.keyDerivation, identity(nowMs));
  const keyId = await storeKeyFile(store, keyFile);
  // Config last: a crash before this leaves no repository, not half of one.
  await store.put(objectNames.config, sealObject(keys, "config", config));
  return new Repository(store, keys, config, keyId);
}

async function storeKeyFile(store: BlobStore, keyFile: KeyFile): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(keyFile, null, 2));
  const keyId = sha256Hex(bytes);
  await store.put(objectNames.key(keyId), bytes);
  return keyId;
}

export async function openRepository(store: BlobStore, password: string): Promise<Repository> {
  const keyNames = await store.list("keys/");
  if (keyNames.length === 0) {
    throw new BackupError(
      "REPOSITORY_NOT_FOUND",
      `no repository at ${store.location} (no keys/); create one with \`edgeward repo init\``,
    );
  }
  for (const name of keyNames.slice(0, keyFilesTriedMax)) {
    const keyFile = keyFileSchema.safeParse(parseJson(await store.get(name)));
    if (!keyFile.success) continue;
    const ring = await unwrapKeyRing(keyFile.data, password);
    if (ring === undefined) continue;
    const keys = keysFromRing(keyRingSchema.parse(ring));
    const config = repositoryConfigSchema.parse(
      unsealObject(keys, "config", await store.get(objectNames.config), objectNames.config),
    );
    return new Repository(store, keys, config, idOfObjectName(name));
  }
  throw new BackupError("WRONG_PASSWORD", wrongPasswordMessage);
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Where a blob lives. */
export interface BlobLocation extends IndexedBlob {
  packId: string;
}

/** The union of all (non-superseded) index files. */
export class MasterIndex {
  readonly blobs = new Map<string, BlobLocation>();
  readonly packs = new Map<string, IndexedPack>();
  /** Ids of the index files loaded, for prune to supersede. */
  readonly indexFileIds: string[] = [];

  addPack(pack: IndexedPack): void {
    this.packs.set(pack.id, pack);
    for (const blob of pack.blobs)
      if (!this.blobs.has(blob.id)) this.blobs.set(blob.id, { ...blob, packId: pack.id });
  }

  has(blobId: string): boolean {
    return this.blobs.has(blobId);
  }
}

/**
 * Read-ahead per pack read for tree walks, checks and copies; small blobs next to each other
 * then cost one read. Restores read through lanes of their own (restore-lane.ts).
 */
const readWindowBytes = 2 * 1024 * 1024;
/** Windows kept: two, so a reader that alternates between two packs keeps both. */
const readWindowsMax = 2;

/** A stretch of a pack read ahead; `buffer`, when set, is reused for a later window. */
interface ReadWindow {
  packId: string;
  offsetBytes: number;
  bytes: Uint8Array;
  buffer?: Buffer;
  /** Callers holding a view of `bytes`: the buffer is not reused while there are any. */
  readers: number;
  /** Dropped from the windows while read: its buffer is freed when the last reader ends. */
  retired?: boolean;
}

/** Stores that can read a range into a caller's buffer, sparing an allocation per read. */
interface RangeReader {
  getRangeInto(name: string, offsetBytes: number, target: Buffer): Promise<number>;
}

function isRangeReader(store: BlobStore): store is BlobStore & RangeReader {
  return typeof (store as Partial<RangeReader>).getRangeInto === "function";
}

export class Repository {
  readonly index = new MasterIndex();
  private readonly readWindows: ReadWindow[] = [];
  /**
   * Buffers of dropped windows, for the next reads. When reads overlap, a window dropped while
   * another was being read used to lose its buffer, and every read allocated a new one (up to
   * 8 MiB): 50 MiB of a restore's peak RSS when restores read through here.
   */
  private readonly spareWindowBuffers: Buffer[] = [];
  readonly chunkerParameters: ChunkerParameters;

  constructor(
    readonly store: BlobStore,
    readonly keys: Keys,
    readonly config: RepositoryConfig,
    /** The key file the password opened. */
    readonly keyId: string,
  ) {
    this.chunkerParameters = createChunkerParameters(config.chunkerSeed, config);
  }

  // ---- metadata objects ------------------------------------------------------------------

  /** Stores a sealed JSON object under the SHA-256 of its bytes; returns the id. */
  async saveObject(kind: "index" | "snapshot", value: IndexFile | Snapshot): Promise<string> {
    const bytes = sealObject(this.keys, kind, value);
    const id = sha256Hex(bytes);
    await this.store.put(
      kind === "index" ? objectNames.index(id) : objectNames.snapshot(id),
      bytes,
    );
    return id;
  }

  /** Reads, hash-checks and decrypts an object; `unknown` until its schema parses it. */
  async loadObject(kind: ObjectKind, name: string): Promise<unknown> {
    const bytes = await this.store.get(name);
    if (kind !== "config" && sha256Hex(bytes) !== idOfObjectName(name))
      throw new CorruptObjectError(name, "content does not match its name (modified or swapped)");
    return unsealObject(this.keys, kind, bytes, name);
  }

  async loadIndex(): Promise<void> {
    const files: Array<{ id: string; file: IndexFile }> = [];
    for (const name of await this.store.list("index/")) {
      const parsed = indexFileSchema.safeParse(await this.loadObject("index", name));
      if (!parsed.success)
        throw new CorruptObjectError(name, `not a valid index: ${parsed.error.message}`);
      files.push({ id: idOfObjectName(name), file: parsed.data });
    }
    const superseded = new Set(files.flatMap(({ file }) => file.supersedes));
    for (const { id, file } of files) {
      if (superseded.has(id)) continue;
      this.index.indexFileIds.push(id);
      for (const pack of file.packs) this.index.addPack(pack);
    }
  }

  async listSnapshots(): Promise<Array<{ id: string; snapshot: Snapshot }>> {
    const snapshots: Array<{ id: string; snapshot: Snapshot }> = [];
    for (const name of await this.store.list("snapshots/")) {
      snapshots.push({
        id: idOfObjectName(name),
        snapshot: await this.loadSnapshot(idOfObjectName(name)),
      });
    }
    return snapshots.sort((left, right) => left.snapshot.timeMs - right.snapshot.timeMs);
  }

  async loadSnapshot(id: string): Promise<Snapshot> {
    const name = objectNames.snapshot(id);
    const parsed = snapshotSchema.safeParse(await this.loadObject("snapshot", name));
    if (!parsed.success)
      throw new CorruptObjectError(name, `not a valid snapshot: ${parsed.error.message}`);
    return parsed.data;
  }

  // ---- blobs -----------------------------------------------------------------------------

  /** The blob's verified plaintext. */
  async readBlob(id: string, type: BlobType): Promise<Buffer> {
    return this.useSealedBlob(id, type, (location, packName, sealed) =>
      openBlob(this.keys, location, sealed, packName),
    );
  }

  /** Where a blob is and a copy of its still sealed bytes. */
  async readSealedBlob(
    id: string,
    type: BlobType,
  ): Promise<{ location: BlobLocation; packName: string; sealed: Uint8Array }> {
    return this.useSealedBlob(id, type, (location, packName, sealed) => ({
      location,
      packName,
      sealed: Uint8Array.prototype.slice.call(sealed),
    }));
  }

  /** Where a blob of `type` is, from the index; fails naming the blob if it is not there. */
  locateBlob(id: string, type: BlobType): BlobLocation {
    const location = this.index.blobs.get(id);
    if (location === undefined)
      throw new CorruptObjectError(
        `${type} blob ${id}`,
        "is not in any index (missing pack or index)",
      );
    if (location.type !== type)
      throw new CorruptObjectError(`${type} blob ${id}`, `is indexed as a ${location.type} blob`);
    return location;
  }

  /**
   * Reads a blob's sealed bytes and hands them to `use`, synchronously: `sealed` is a view of
   * a read-ahead window whose buffer is reused once `use` has returned.
   */
  async useSealedBlob<Result>(
    id: string,
    type: BlobType,
    use: (location: BlobLocation, packName: string, sealed: Uint8Array) => Result,
  ): Promise<Result> {
    const location = this.locateBlob(id, type);
    const packName = objectNames.pack(location.packId);
    const { window, sealed } = await this.readPackRange(location).catch((error: unknown) => {
      if (error instanceof BackupError && error.code === "BLOB_NOT_FOUND")
        throw new CorruptObjectError(packName, `is missing (needed for ${type} blob ${id})`);
      throw error;
    });
    try {
      return use(location, packName, sealed);
    } finally {
      if (--window.readers === 0 && window.retired === true) this.spareWindowBuffer(window);
    }
  }

  /**
   * A blob's sealed bytes, read through a few read-ahead windows: restores and tree walks
   * read blobs in pack order, so one read serves many small blobs. The window returned
   * counts one more reader, which the caller must end.
   */
  private async readPackRange(
    location: BlobLocation,
  ): Promise<{ window: ReadWindow; sealed: Uint8Array }> {
    const end = location.offsetBytes + location.lengthBytes;
    const viewOf = (window: ReadWindow) => {
      window.readers++;
      const start = location.offsetBytes - window.offsetBytes;
      return {
        window,
        sealed: window.bytes.subarray(
          start,
          Math.min(end - window.offsetBytes, window.bytes.length),
        ),
      };
    };
    const cached = this.readWindows.find(
      (window) =>
        window.packId === location.packId &&
        window.offsetBytes <= location.offsetBytes &&
        end <= window.offsetBytes + window.bytes.length,
    );
    if (cached !== undefined) return viewOf(cached);
    const packSizeBytes = this.index.packs.get(location.packId)?.sizeBytes ?? end;
    const lengthBytes = Math.max(
      location.lengthBytes,
      Math.min(readWindowBytes, packSizeBytes - location.offsetBytes),
    );
    const packName = objectNames.pack(location.packId);
    let window: ReadWindow;
    if (isRangeReader(this.store)) {
      // The buffer of a dropped window takes the new window's bytes, so a restore allocates no
      // buffer per read. A blob longer than a window (chunks go up to 8 MiB) gets a buffer that
      // holds the largest data blob, kept and reused like the others.
      const buffer =
        this.takeSpareWindowBuffer(lengthBytes) ??
        Buffer.allocUnsafe(
          lengthBytes <= readWindowBytes
            ? readWindowBytes
            : Math.max(lengthBytes, this.config.chunkSizeBytesMax + sealOverheadBytes),
        );
      let filled: number;
      try {
        filled = await this.store.getRangeInto(
          packName,
          location.offsetBytes,
          buffer.subarray(0, lengthBytes),
        );
      } catch (error) {
        this.spareWindowBuffers.push(buffer);
        throw error;
      }
      window = {
        packId: location.packId,
        offsetBytes: location.offsetBytes,
        bytes: buffer.subarray(0, filled),
        buffer,
        readers: 0,
      };
    } else {
      const bytes = await this.store.getRange(packName, location.offsetBytes, lengthBytes);
      window = { packId: location.packId, offsetBytes: location.offsetBytes, bytes, readers: 0 };
    }
    this.readWindows.push(window);
    // Drop the oldest windows no one is reading first; one being read is dropped last, and its
    // buffer is spared once its readers are done.
    while (this.readWindows.length > readWindowsMax) {
      const idleIndex = this.readWindows.findIndex((candidate) => candidate.readers === 0);
      const [dropped] = this.readWindows.splice(Math.max(idleIndex, 0), 1);
      if (dropped === undefined) break;
      if (dropped.readers === 0) this.spareWindowBuffer(dropped);
      else dropped.retired = true;
    }
    return viewOf(window);
  }

  /** The smallest spare buffer of at least `lengthBytes`, taken from the spares. */
  private takeSpareWindowBuffer(lengthBytes: number): Buffer | undefined {
    let best = -1;
    for (const [index, buffer] of this.spareWindowBuffers.entries())
      if (
        buffer.length >= lengthBytes &&
        (best < 0 || buffer.length < (this.spareWindowBuffers[best] as Buffer).length)
      )
        best = index;
    return best < 0 ? undefined : this.spareWindowBuffers.splice(best, 1)[0];
  }

  private spareWindowBuffer(window: ReadWindow): void {
    const buffer = window.buffer;
    if (buffer === undefined) return;
    window.buffer = undefined;
    // As many spares as windows: enough for the reads that overlap, a bound on the memory.
    if (this.spareWindowBuffers.length < readWindowsMax) this.spareWindowBuffers.push(buffer);
  }

  async loadTree(id: string): Promise<Tree> {
    const parsed = treeSchema.safeParse(parseJson(await this.readBlob(id, "tree")));
    if (!parsed.success)
      throw new CorruptObjectError(`tree blob ${id}`, `not a valid tree: ${parsed.error.message}`);
    return parsed.data;
  }

  /** Reads a pack's own header: how packs that no index lists are recovered and checked. */
  async readPackHeader(packId: string): Promise<{ blobs: IndexedBlob[]; sizeBytes: number }> {
    const packName = objectNames.pack(packId);
    const sizeBytes = await this.store.sizeBytes(packName);
    if (sizeBytes < packTrailerBytes)
      throw new CorruptObjectError(packName, `only ${sizeBytes} bytes long (truncated)`);
    const trailer = decodePackTrailer(
      await this.store.getRange(packName, sizeBytes - packTrailerBytes, packTrailerBytes),
      packName,
      sizeBytes,
    );
    const headerStart = sizeBytes - packTrailerBytes - trailer.headerLengthBytes;
    const headerAndTrailer = await this.store.getRange(
      packName,
      headerStart,
      trailer.headerLengthBytes + packTrailerBytes,
    );
    if (packIdOf(headerAndTrailer) !== packId)
      throw new CorruptObjectError(
        packName,
        "header does not match the pack's name (modified or swapped)",
      );
    const sealedHeader = headerAndTrailer.subarray(0, trailer.headerLengthBytes);
    const header = unseal(
      encryptionKey(this.keys, trailer.headerKeyGeneration, packName),
      sealedHeader,
      packHeaderAssociatedData(trailer.headerKeyGeneration),
      packName,
    );
    const blobs = decodePackHeader(header, packName);
    const blobBytes = blobs.reduce((sum, blob) => sum + blob.lengthBytes, 0);
    if (blobBytes !== headerStart)
      throw new CorruptObjectError(
        packName,
        `header lists ${blobBytes} bytes of blobs but ${headerStart} precede it`,
      );
    return { blobs, sizeBytes };
  }

  /**
   * Indexes packs that exist but no index lists: the packs an interrupted backup stored
   * before it could write its index. Their blobs then deduplicate the rerun.
   */
  async recoverUnindexedPacks(): Promise<number> {
    const packs: IndexedPack[] = [];
    for (const name of await this.store.list("data/")) {
      const packId = idOfObjectName(name);
      if (this.index.packs.has(packId)) continue;
      try {
        const { blobs, sizeBytes } = await this.readPackHeader(packId);
        packs.push({ id: packId, sizeBytes, blobs });
      } catch (error) {
        // A damaged unindexed pack holds nothing any snapshot needs yet: leave it to prune.
        if (!(error instanceof CorruptObjectError)) throw error;
      }
    }
    if (packs.length > 0) await this.writeIndex(packs);
    return packs.length;
  }

  async writeIndex(packs: IndexedPack[], supersedes: string[] = []): Promise<string> {
    const id = await this.saveObject("index", { version: 1, supersedes, packs });
    for (const pack of packs) this.index.addPack(pack);
    this.index.indexFileIds.push(id);
    return id;
  }

  createCompressor(): BlobCompressor {
    return new BlobCompressor(this.config.compressionLevel);
  }

  // ---- keys ------------------------------------------------------------------------------

  async listKeys(): Promise<Array<{ id: string; current: boolean; keyFile: KeyFile }>> {
    const keys: Array<{ id: string; current: boolean; keyFile: KeyFile }> = [];
    for (const name of await this.store.list("keys/")) {
      const parsed = keyFileSchema.safeParse(parseJson(await this.store.get(name)));
      if (!parsed.success) throw new CorruptObjectError(name, "not a valid key file");
      const id = idOfObjectName(name);
      keys.push({ id, current: id === this.keyId, keyFile: parsed.data });
    }
    return keys.sort((left, right) =>
      left.keyFile.createdAt.localeCompare(right.keyFile.createdAt),
    );
  }

  /** Adds a password; returns the new key file's id. */
  async addKey(
    password: string,
    options: KeyDerivationOptions = keyDerivationDefaults,
    ring: KeyRing = this.keys.ring,
  ): Promise<string> {
    return storeKeyFile(
      this.store,
      await wrapKeyRing(ring, password, options, identity(Date.now())),
    );
  }

  async removeKey(idPrefix: string): Promise<string> {
    const matches = (await this.listKeys()).filter((key) => key.id.startsWith(idPrefix));
    if (matches.length !== 1)
      throw new BackupError(
        "INVALID_ARGUMENT",
        matches.length === 0
          ? `no key id starts with "${idPrefix}"`
          : `key prefix "${idPrefix}" is ambiguous`,
      );
    const match = matches[0] as { id: string };
    if (match.id === this.keyId)
      throw new BackupError(
        "INVALID_ARGUMENT",
        "refusing to remove the key in use; open the repository with another password first",
      );
    await this.store.delete(objectNames.key(match.id));
    return match.id;
  }
}

/**
 * A pack is named by the SHA-256 of its sealed header and trailer, not of all its bytes: the
 * header authenticates every blob's id, type, length and position, and each blob is itself
 * authenticated, so any change is still detected, without hashing every byte while writing.
 */
export function packIdOf(headerAndTrailer: Uint8Array): string {
  return sha256Hex(headerAndTrailer);
}

export function packHeaderAssociatedData(keyGeneration: number): Buffer {
  const generation = Buffer.alloc(4);
  generation.writeUInt32LE(keyGeneration);
  return Buffer.concat([Buffer.from("edgeward pack header v1"), generation]);
}

/** Blob bytes gathered before one write to the pending pack: few syscalls for small blobs. */
const writeBatchBytes = 1024 * 1024;
/** Bytes handed to the store but not yet written; beyond this, adding waits (bounded memory). */
const writeQueueBytesMax = 2 * writeBatchBytes;

/** Blob bytes copied into batches between collections of the young generation. */
const copiedGarbageBytesMax = 4 * 1024 * 1024;
/** Batch buffers kept for reuse: the queue's worth plus the one being filled. */
const spareBatchesMax = writeQueueBytesMax / writeBatchBytes + 1;

/** A pack being written: its blobs stream to the store, its header waits for the end. */
interface OpenPack {
  pending: Promise<PendingBlob>;
  entries: PackHeaderEntry[];
  sizeBytes: number;
  /** The batch being filled, a pooled buffer of `writeBatchBytes`. */
  batch: Buffer | undefined;
  batchBytes: number;
  /** The chain of appends, in order. */
  writing: Promise<void>;
}

/**
 * Collects sealed blobs into packs. Blob bytes stream to the store as they come (a temporary
 * file for a directory), so a pack never sits whole in memory; the header, and with it the
 * pack's name, is written when the pack reaches its target size. `onPackStored` learns of
 * each pack once it is durable, the only moment its blobs may be indexed.
 */
export class PackWriter {
  private open: OpenPack | undefined;
  private readonly commits = new Set<Promise<void>>();
  private failure: Error | undefined = undefined;
  private queuedBytes = 0;
  /** Callers waiting for the write queue to shrink (several savers add at once). */
  private waitingForDrain: Array<() => void> = [];
  /**
   * Blobs are copied into pooled batch buffers as they come, so the store writes buffers that
   * are reused rather than each blob's own, and each blob's buffers are garbage at once, freed
   * every few MiB instead of after ~64 MiB (garbage-budget.ts): that garbage, and the malloc
   * fragmentation it caused, was 40 MiB of a backup's peak RSS. The copy costs ~0.1 s per GiB.
   */
  private readonly garbage = new GarbageBudget(copiedGarbageBytesMax);
  private readonly spareBatches: Buffer[] = [];
  bytesStored = 0;

  constructor(
    private readonly repository: Repository,
    private readonly onPackStored: (pack: IndexedPack) => Promise<void>,
    private readonly commitsInFlightMax = 2,
  ) {}

  /** Seals and appends a plaintext blob (callers deduplicate first). */
  async addPlaintext(
    type: BlobType,
    plaintext: Uint8Array,
    compressor: BlobCompressor,
    knownId?: string,
  ): Promise<string> {
    const sealed = sealBlob(this.repository.keys, compressor, type, plaintext, knownId);
    await this.addSealed(sealed);
    return sealed.entry.id;
  }

  /** Takes the blob's parts: they are copied, then released, and must not be used again. */
  async addSealed(blob: SealedBlob): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const pack = (this.open ??= {
      pending: this.repository.store.begin(),
      entries: [],
      sizeBytes: 0,
      batch: undefined,
      batchBytes: 0,
      writing: Promise.resolve(),
    });
    pack.entries.push(blob.entry);
    pack.sizeBytes += blob.entry.lengthBytes;
    for (const part of blob.parts) this.copyIntoBatches(pack, part);
    this.garbage.release(blob.parts);
    if (pack.sizeBytes >= this.repository.config.packSizeBytesTarget) await this.closePack();
    while (this.queuedBytes > writeQueueBytesMax && this.failure === undefined)
      await new Promise<void>((resolve) => this.waitingForDrain.push(resolve));
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private fail(error: unknown): void {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    const waiting = this.waitingForDrain;
    this.waitingForDrain = [];
    for (const wake of waiting) wake();
  }

  /** Copies `bytes` into the pack's batches, writing each batch that fills. */
  private copyIntoBatches(pack: OpenPack, bytes: Uint8Array): void {
    for (let copied = 0; copied < bytes.length;) {
      const batch = (pack.batch ??= this.spareBatches.pop() ?? Buffer.allocUnsafe(writeBatchBytes));
      const length = Math.min(batch.length - pack.batchBytes, bytes.length - copied);
      batch.set(bytes.subarray(copied, copied + length), pack.batchBytes);
      pack.batchBytes += length;
      copied += length;
      if (pack.batchBytes === batch.length) this.writeBatch(pack);
    }
  }

  private writeBatch(pack: OpenPack): void {
    const batch = pack.batch;
    const bytes = pack.batchBytes;
    pack.batch = undefined;
    pack.batchBytes = 0;
    if (batch === undefined) return;
    this.queuedBytes += bytes;
    pack.writing = pack.writing
      .then(async () => {
        // Stores copy what they keep, so the batch is free again once the append is done.
        await (await pack.pending).append(batch.subarray(0, bytes));
        if (this.spareBatches.length < spareBatchesMax) this.spareBatches.push(batch);
      })
      .finally(() => {
        this.queuedBytes -= bytes;
        if (this.queuedBytes <= writeQueueBytesMax) this.wakeWaiters();
      });
    // A failed append (a full disk) stops the writer at once; handled here, it is never an
    // unhandled rejection that kills the process before the clear error is reported.
    pack.writing.catch((error: unknown) => this.fail(error));
  }

  private async closePack(): Promise<void> {
    const pack = this.open;
    this.open = undefined;
    if (pack === undefined) return;
    const keys = this.repository.keys;
    const header = seal(
      encryptionKey(keys, keys.currentGeneration, "pack header"),
      encodePackHeader(pack.entries),
      packHeaderAssociatedData(keys.currentGeneration),
    );
    const headerAndTrailer = Buffer.concat([
      header,
      encodePackTrailer(header.length, keys.currentGeneration),
    ]);
    this.copyIntoBatches(pack, headerAndTrailer);
    this.writeBatch(pack);
    const packId = packIdOf(headerAndTrailer);
    const sizeBytes = pack.sizeBytes + headerAndTrailer.length;
    let offsetBytes = 0;
    const blobs = pack.entries.map((entry) => {
      const blob = { ...entry, offsetBytes };
      offsetBytes += entry.lengthBytes;
      return blob;
    });
    while (this.commits.size >= this.commitsInFlightMax) await Promise.race(this.commits);
    const commit = pack.writing
      .then(async () => (await pack.pending).commit(objectNames.pack(packId)))
      .then(() => {
        this.bytesStored += sizeBytes;
        return this.onPackStored({ id: packId, sizeBytes, blobs });
      })
      .catch(async (error: unknown) => {
        this.fail(error);
        await (await pack.pending.catch(() => undefined))?.abort();
      })
      .finally(() => this.commits.delete(commit));
    this.commits.add(commit);
  }

  /** Stores the last, partial pack and waits for every write; rethrows the first failure. */
  async flush(): Promise<void> {
    await this.closePack();
    await Promise.all(this.commits);
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Discards the pack under construction after a failure elsewhere, and waits for the packs
   * being committed: a failed one removes its temporary file before the failure is reported.
   */
  async abandon(): Promise<void> {
    const pack = this.open;
    this.open = undefined;
    if (pack !== undefined) {
      await pack.writing.catch(() => undefined);
      await (await pack.pending.catch(() => undefined))?.abort();
    }
    await Promise.all(this.commits);
  }
}
