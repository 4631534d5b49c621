// An opened repository: keys, config, the in-memory index, and reading and writing of every
// stored object. Everything read is authenticated and validated before it is used.
import { createHash, randomBytes, randomInt } from "node:crypto";
import { hostname as osHostname, userInfo } from "node:os";
import { createChunkerParameters } from "../../core/backup/chunker.ts";
import type { ChunkerOptions, ChunkerParameters } from "../../core/backup/chunker.ts";
import { chunkerDefaults } from "../../core/backup/chunker.ts";
import { BackupError, CorruptObjectError } from "../../core/backup/errors.ts";
import type { BlobStore } from "../../core/backup/blob-store.ts";
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
import type { SealedBlob } from "./blob-codec.ts";
import {
  BlobCompressor,
  createKeyRing,
  encryptionKey,
  keyDerivationDefaults,
  keysFromRing,
  seal,
  sealObject,
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

/** Bytes of a pack under construction, with what its header will say. */
interface OpenPack {
  entries: PackHeaderEntry[];
  parts: Uint8Array[];
  sizeBytes: number;
}

export class Repository {
  readonly index = new MasterIndex();
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

  async readBlob(id: string, type: BlobType): Promise<Buffer> {
    const location = this.index.blobs.get(id);
    if (location === undefined)
      throw new CorruptObjectError(
        `${type} blob ${id}`,
        "is not in any index (missing pack or index)",
      );
    if (location.type !== type)
      throw new CorruptObjectError(`${type} blob ${id}`, `is indexed as a ${location.type} blob`);
    const packName = objectNames.pack(location.packId);
    const sealed = await this.store
      .getRange(packName, location.offsetBytes, location.lengthBytes)
      .catch((error: unknown) => {
        if (error instanceof BackupError && error.code === "BLOB_NOT_FOUND")
          throw new CorruptObjectError(packName, `is missing (needed for ${type} blob ${id})`);
        throw error;
      });
    return openBlob(this.keys, location, sealed, packName);
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
    const sealedHeader = await this.store.getRange(
      packName,
      headerStart,
      trailer.headerLengthBytes,
    );
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

export function packHeaderAssociatedData(keyGeneration: number): Buffer {
  const generation = Buffer.alloc(4);
  generation.writeUInt32LE(keyGeneration);
  return Buffer.concat([Buffer.from("edgeward pack header v1"), generation]);
}

/**
 * Collects sealed blobs into packs and stores each when it reaches the target size. At most
 * `uploadsInFlightMax` packs wait for storage at once, which bounds memory; `onPackStored`
 * learns of each pack once it is durable, the only moment its blobs may be indexed.
 */
export class PackWriter {
  private open: OpenPack = { entries: [], parts: [], sizeBytes: 0 };
  private readonly uploads = new Set<Promise<void>>();
  private failure: Error | undefined = undefined;
  bytesStored = 0;

  constructor(
    private readonly repository: Repository,
    private readonly onPackStored: (pack: IndexedPack) => Promise<void>,
    private readonly uploadsInFlightMax = 2,
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

  async addSealed(blob: SealedBlob): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.open.entries.push(blob.entry);
    this.open.parts.push(blob.sealed);
    this.open.sizeBytes += blob.sealed.length;
    if (this.open.sizeBytes >= this.repository.config.packSizeBytesTarget) await this.closePack();
  }

  private async closePack(): Promise<void> {
    const pack = this.open;
    this.open = { entries: [], parts: [], sizeBytes: 0 };
    if (pack.entries.length === 0) return;
    while (this.uploads.size >= this.uploadsInFlightMax) await Promise.race(this.uploads);
    if (this.failure !== undefined) throw this.failure;
    const keys = this.repository.keys;
    const header = seal(
      encryptionKey(keys, keys.currentGeneration, "pack header"),
      encodePackHeader(pack.entries),
      packHeaderAssociatedData(keys.currentGeneration),
    );
    const bytes = Buffer.concat([
      ...pack.parts,
      header,
      encodePackTrailer(header.length, keys.currentGeneration),
    ]);
    const packId = sha256Hex(bytes);
    let offsetBytes = 0;
    const blobs = pack.entries.map((entry) => {
      const blob = { ...entry, offsetBytes };
      offsetBytes += entry.lengthBytes;
      return blob;
    });
    const upload = this.repository.store
      .put(objectNames.pack(packId), bytes)
      .then(() => {
        this.bytesStored += bytes.length;
        return this.onPackStored({ id: packId, sizeBytes: bytes.length, blobs });
      })
      .catch((error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => this.uploads.delete(upload));
    this.uploads.add(upload);
  }

  /** Stores the last, partial pack and waits for every upload; rethrows the first failure. */
  async flush(): Promise<void> {
    await this.closePack();
    await Promise.all(this.uploads);
    if (this.failure !== undefined) throw this.failure;
  }
}
