// The EDGE_CLUSTER backend: each blob is Reed-Solomon coded into k data and m parity shards
// spread over N shard holders (other BlobStores: later, peer agents' authenticated blob APIs),
// so every blob survives the loss of any m holders. Shards carry a header with their own and
// the blob's checksums, so a corrupt shard is found and reconstructed around.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { BackupError, assert } from "../../core/backup/errors.ts";
import { isValidBlobName } from "../../core/backup/blob-store.ts";
import type { BlobStore, PendingBlob } from "../../core/backup/blob-store.ts";

/** One documented options type; each field says its trade-off. */
export interface ErasureBlobStoreOptions {
  /** Data shards per blob (k): any k shards rebuild it; storage overhead is (k + m) / k. */
  dataShardCount: number;
  /** Parity shards per blob (m): how many holders may be lost, at once, without data loss. */
  parityShardCount: number;
  /**
   * Shards that must be stored for a write to succeed, k + m by default. Lower (down to k + 1)
   * lets writes go on with holders down, at the price of less protection for those blobs
   * until they are rewritten.
   */
  shardsRequiredForWrite: number;
  /** Largest blob accepted: a blob is coded in memory (packs are about 16 MiB). */
  blobBytesMax: number;
  /**
   * Bytes of the most recently rebuilt blob kept for the range reads that follow (restore
   * reads a pack blob by blob); 0 disables it.
   */
  recentBlobCacheBytesMax: number;
}

export const erasureDefaults: ErasureBlobStoreOptions = {
  dataShardCount: 4,
  parityShardCount: 2,
  shardsRequiredForWrite: 6,
  blobBytesMax: 256 * 1024 * 1024,
  recentBlobCacheBytesMax: 64 * 1024 * 1024,
};

/** Why some shard of a blob could not be used, for messages. */
export type ShardProblem =
  | { shardIndex: number; holder: number; problem: "missing" }
  | { shardIndex: number; holder: number; problem: "unreachable"; detail: string }
  | { shardIndex: number; holder: number; problem: "corrupt"; detail: string };

/** Fewer than k healthy shards of a blob could be found: it cannot be rebuilt right now. */
export class NotEnoughShardsError extends BackupError {
  constructor(
    readonly blobName: string,
    readonly shardsHealthy: number,
    readonly shardsNeeded: number,
    readonly problems: readonly ShardProblem[],
  ) {
    super(
      "STORAGE_FAILED",
      `${blobName}: only ${shardsHealthy} of the ${shardsNeeded} shards needed are healthy (${problems
        .map(
          (problem) =>
            `shard ${problem.shardIndex} on holder ${problem.holder} ${problem.problem}${"detail" in problem ? `: ${problem.detail}` : ""}`,
        )
        .join("; ")})`,
    );
  }
}

interface ReedSolomonBinding {
  create(dataShardCount: number, parityShardCount: number): unknown;
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error: Error | undefined) => void,
  ): void;
  MAX_K: number;
  MAX_M: number;
}

// A native CommonJS addon (its main is binding.node), so it is loaded with require.
const reedSolomon = createRequire(import.meta.url)("@ronomon/reed-solomon") as ReedSolomonBinding;

// Shard layout (little-endian), documented in docs/formats/backup-repository.md:
// "EWS1" ‖ header length u16 ‖ k u8 ‖ m u8 ‖ shard index u8 ‖ reserved u8 ‖ blob length u64 ‖
// shard payload length u32 ‖ SHA-256 of every shard's payload (32 × (k + m)) ‖
// name length u16 ‖ name ‖ first 8 bytes of SHA-256(everything before) ‖ payload
// Every shard carries every shard's checksum, so each one, read or rebuilt, is checked, and
// shards of different writes of one name are never mixed.
const shardMagic = Buffer.from("EWS1", "ascii");
const checksumTableOffset = 22;
const checksumBytes = 32;
const headerChecksumBytes = 8;
/** RS shards must be a multiple of 8 bytes long. */
const shardAlignmentBytes = 8;

/** The header's length for a name and code. */
export function shardHeaderBytes(name: string, shardCount: number): number {
  return (
    checksumTableOffset +
    checksumBytes * shardCount +
    2 +
    Buffer.byteLength(name, "utf8") +
    headerChecksumBytes
  );
}

export interface ShardHeader {
  dataShardCount: number;
  parityShardCount: number;
  shardIndex: number;
  blobLengthBytes: number;
  payloadLengthBytes: number;
  /** SHA-256 of each shard's payload, data shards first. */
  shardSha256s: Buffer[];
  name: string;
}

interface DecodedShardHeader extends ShardHeader {
  headerBytes: number;
  /** Identifies one write of the blob: a hash of the checksum table. */
  versionId: string;
}

function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

export function encodeShardHeader(header: ShardHeader): Buffer {
  const shardCount = header.dataShardCount + header.parityShardCount;
  assert(header.shardSha256s.length === shardCount, "one checksum per shard");
  const name = Buffer.from(header.name, "utf8");
  const headerBytes = shardHeaderBytes(header.name, shardCount);
  const buffer = Buffer.alloc(headerBytes);
  shardMagic.copy(buffer, 0);
  buffer.writeUInt16LE(headerBytes, 4);
  buffer.writeUInt8(header.dataShardCount, 6);
  buffer.writeUInt8(header.parityShardCount, 7);
  buffer.writeUInt8(header.shardIndex, 8);
  buffer.writeUInt8(0, 9);
  buffer.writeBigUInt64LE(BigInt(header.blobLengthBytes), 10);
  buffer.writeUInt32LE(header.payloadLengthBytes, 18);
  header.shardSha256s.forEach((checksum, index) =>
    checksum.copy(buffer, checksumTableOffset + index * checksumBytes),
  );
  const nameOffset = checksumTableOffset + shardCount * checksumBytes + 2;
  buffer.writeUInt16LE(name.length, nameOffset - 2);
  name.copy(buffer, nameOffset);
  sha256(buffer.subarray(0, headerBytes - headerChecksumBytes)).copy(
    buffer,
    headerBytes - headerChecksumBytes,
    0,
    headerChecksumBytes,
  );
  return buffer;
}

/** Parses and checks a header; a string says what is wrong with it. */
export function decodeShardHeader(shard: Uint8Array): DecodedShardHeader | string {
  const buffer = Buffer.from(shard.buffer, shard.byteOffset, shard.byteLength);
  if (buffer.length < checksumTableOffset) return "shorter than a header";
  if (!buffer.subarray(0, 4).equals(shardMagic)) return "not a shard (bad magic)";
  const headerBytes = buffer.readUInt16LE(4);
  if (buffer.length < headerBytes) return "truncated header";
  const dataShardCount = buffer.readUInt8(6);
  const parityShardCount = buffer.readUInt8(7);
  const shardCount = dataShardCount + parityShardCount;
  const nameOffset = checksumTableOffset + shardCount * checksumBytes + 2;
  if (headerBytes < nameOffset + headerChecksumBytes) return "inconsistent header length";
  const nameBytes = buffer.readUInt16LE(nameOffset - 2);
  if (headerBytes !== nameOffset + nameBytes + headerChecksumBytes)
    return "inconsistent header length";
  const checksum = sha256(buffer.subarray(0, headerBytes - headerChecksumBytes)).subarray(
    0,
    headerChecksumBytes,
  );
  if (!checksum.equals(buffer.subarray(headerBytes - headerChecksumBytes, headerBytes)))
    return "header checksum mismatch";
  const blobLength = buffer.readBigUInt64LE(10);
  if (blobLength > BigInt(Number.MAX_SAFE_INTEGER)) return "impossible blob length";
  const table = buffer.subarray(checksumTableOffset, nameOffset - 2);
  return {
    headerBytes,
    dataShardCount,
    parityShardCount,
    shardIndex: buffer.readUInt8(8),
    blobLengthBytes: Number(blobLength),
    payloadLengthBytes: buffer.readUInt32LE(18),
    shardSha256s: Array.from({ length: shardCount }, (_, index) =>
      Buffer.from(table.subarray(index * checksumBytes, (index + 1) * checksumBytes)),
    ),
    name: buffer.toString("utf8", nameOffset, nameOffset + nameBytes),
    versionId: sha256(table).toString("hex"),
  };
}

function encodeReedSolomon(
  context: unknown,
  sources: number,
  targets: number,
  data: Buffer,
  parity: Buffer,
): Promise<void> {
  return new Promise((resolve, reject) =>
    reedSolomon.encode(
      context,
      sources,
      targets,
      data,
      0,
      data.length,
      parity,
      0,
      parity.length,
      (error) => (error ? reject(error) : resolve()),
    ),
  );
}

/** Shards agree on a write when their checksum tables and lengths agree. */
function versionKey(header: DecodedShardHeader): string {
  return `${header.versionId}:${header.blobLengthBytes}:${header.payloadLengthBytes}`;
}

interface HealthyShard {
  header: DecodedShardHeader;
  payload: Buffer;
}

export class ErasureBlobStore implements BlobStore {
  readonly location: string;
  private readonly options: ErasureBlobStoreOptions;
  private readonly context: unknown;
  private recent: { name: string; data: Uint8Array } | undefined;

  constructor(
    private readonly holders: readonly BlobStore[],
    options: Partial<ErasureBlobStoreOptions> = {},
  ) {
    const dataShardCount = options.dataShardCount ?? erasureDefaults.dataShardCount;
    const parityShardCount = options.parityShardCount ?? erasureDefaults.parityShardCount;
    this.options = {
      ...erasureDefaults,
      shardsRequiredForWrite: dataShardCount + parityShardCount,
      ...options,
    };
    const { shardsRequiredForWrite } = this.options;
    assert(
      dataShardCount >= 1 && dataShardCount <= reedSolomon.MAX_K,
      `data shard count in 1..${reedSolomon.MAX_K}`,
    );
    assert(
      parityShardCount >= 1 && parityShardCount <= reedSolomon.MAX_M,
      `parity shard count in 1..${reedSolomon.MAX_M}`,
    );
    // Two shards of a blob on one holder would let one loss take out two shards.
    if (holders.length < dataShardCount + parityShardCount)
      throw new BackupError(
        "INVALID_ARGUMENT",
        `erasure coding with k=${dataShardCount}, m=${parityShardCount} needs at least ${dataShardCount + parityShardCount} shard holders, got ${holders.length}`,
      );
    assert(
      shardsRequiredForWrite > dataShardCount &&
        shardsRequiredForWrite <= dataShardCount + parityShardCount,
      "shardsRequiredForWrite in k+1..k+m",
    );
    this.context = reedSolomon.create(dataShardCount, parityShardCount);
    this.location = `erasure(k=${dataShardCount}, m=${parityShardCount}) over [${holders
      .map((holder) => holder.location)
      .join(", ")}]`;
  }

  private get shardCount(): number {
    return this.options.dataShardCount + this.options.parityShardCount;
  }

  /** Holder index of each shard: consecutive holders from a hash of the name. */
  placementOf(name: string): number[] {
    assert(isValidBlobName(name), `invalid blob name "${name}"`);
    const start = sha256(Buffer.from(name, "utf8")).readUInt32LE(0);
    return Array.from(
      { length: this.shardCount },
      (_, shardIndex) => (start + shardIndex) % this.holders.length,
    );
  }

  private holder(index: number): BlobStore {
    return this.holders[index] as BlobStore;
  }

  async put(name: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const placement = this.placementOf(name);
    const parts = data instanceof Uint8Array ? [data] : data;
    const blobLengthBytes = parts.reduce((total, part) => total + part.length, 0);
    if (blobLengthBytes > this.options.blobBytesMax)
      throw new BackupError(
        "STORAGE_FAILED",
        `${name} is ${blobLengthBytes} bytes, more than the erasure store's limit of ${this.options.blobBytesMax}`,
      );
    const { dataShardCount: k, parityShardCount: m } = this.options;
    const shardBytes = Math.max(
      shardAlignmentBytes,
      Math.ceil(blobLengthBytes / k / shardAlignmentBytes) * shardAlignmentBytes,
    );
    const dataBuffer = Buffer.alloc(shardBytes * k);
    let offset = 0;
    for (const part of parts) {
      dataBuffer.set(part, offset);
      offset += part.length;
    }
    const parityBuffer = Buffer.alloc(shardBytes * m);
    await encodeReedSolomon(
      this.context,
      (1 << k) - 1,
      ((1 << m) - 1) << k,
      dataBuffer,
      parityBuffer,
    );
    const payloads = placement.map((_, shardIndex) =>
      shardIndex < k
        ? dataBuffer.subarray(shardIndex * shardBytes, (shardIndex + 1) * shardBytes)
        : parityBuffer.subarray((shardIndex - k) * shardBytes, (shardIndex - k + 1) * shardBytes),
    );
    const shardSha256s = payloads.map((payload) => sha256(payload));
    this.forget(name);
    const results = await Promise.allSettled(
      placement.map((holderIndex, shardIndex) => {
        const header = encodeShardHeader({
          dataShardCount: k,
          parityShardCount: m,
          shardIndex,
          blobLengthBytes,
          payloadLengthBytes: shardBytes,
          shardSha256s,
          name,
        });
        return this.holder(holderIndex).put(name, [header, payloads[shardIndex] as Buffer]);
      }),
    );
    const failures = results.flatMap((result, shardIndex) =>
      result.status === "rejected" ? [{ shardIndex, reason: result.reason as unknown }] : [],
    );
    if (results.length - failures.length >= this.options.shardsRequiredForWrite) return;
    // Too few shards stored: take back those that were, so no partial blob lingers.
    await Promise.allSettled(
      results.map((result, shardIndex) =>
        result.status === "fulfilled"
          ? this.holder(placement[shardIndex] as number).delete(name)
          : Promise.resolve(),
      ),
    );
    const full = failures.find(
      ({ reason }) => reason instanceof BackupError && reason.code === "STORAGE_FULL",
    );
    throw new BackupError(
      full === undefined ? "STORAGE_FAILED" : "STORAGE_FULL",
      `writing ${name}: only ${results.length - failures.length} of ${this.shardCount} shards stored, ${this.options.shardsRequiredForWrite} required (${failures
        .map(
          ({ shardIndex, reason }) =>
            `shard ${shardIndex} on ${this.holder(placement[shardIndex] as number).location}: ${reason instanceof Error ? reason.message : String(reason)}`,
        )
        .join("; ")})`,
      { cause: failures[0]?.reason },
    );
  }

  /** Buffers the blob (it is coded whole on commit), up to `blobBytesMax`. */
  async begin(): Promise<PendingBlob> {
    let parts: Uint8Array[] = [];
    let lengthBytes = 0;
    return Promise.resolve({
      append: (data) => {
        for (const part of data instanceof Uint8Array ? [data] : data) {
          lengthBytes += part.length;
          if (lengthBytes > this.options.blobBytesMax)
            return Promise.reject(
              new BackupError(
                "STORAGE_FAILED",
                `a blob grew past the erasure store's limit of ${this.options.blobBytesMax} bytes`,
              ),
            );
          parts.push(Uint8Array.prototype.slice.call(part));
        }
        return Promise.resolve();
      },
      commit: async (name) => {
        const complete = parts;
        parts = [];
        await this.put(name, complete);
      },
      abort: () => {
        parts = [];
        return Promise.resolve();
      },
    });
  }

  /** Fetches and checks the shards of `shardIndexes`; problems are appended to `problems`. */
  private async fetchShards(
    name: string,
    placement: readonly number[],
    shardIndexes: readonly number[],
    problems: ShardProblem[],
  ): Promise<HealthyShard[]> {
    const fetched = await Promise.all(
      shardIndexes.map(async (shardIndex): Promise<HealthyShard | undefined> => {
        const holder = placement[shardIndex] as number;
        let bytes: Uint8Array;
        try {
          bytes = await this.holder(holder).get(name);
        } catch (error) {
          if (error instanceof BackupError && error.code === "BLOB_NOT_FOUND")
            problems.push({ shardIndex, holder, problem: "missing" });
          else
            problems.push({
              shardIndex,
              holder,
              problem: "unreachable",
              detail: error instanceof Error ? error.message : String(error),
            });
          return undefined;
        }
        const corrupt = (detail: string) => {
          problems.push({ shardIndex, holder, problem: "corrupt", detail });
          return undefined;
        };
        const header = decodeShardHeader(bytes);
        if (typeof header === "string") return corrupt(header);
        if (header.name !== name) return corrupt(`holds ${header.name}`);
        if (header.shardIndex !== shardIndex) return corrupt(`is shard ${header.shardIndex}`);
        if (
          header.dataShardCount !== this.options.dataShardCount ||
          header.parityShardCount !== this.options.parityShardCount
        )
          return corrupt(`coded with k=${header.dataShardCount}, m=${header.parityShardCount}`);
        const payload = Buffer.from(
          bytes.buffer,
          bytes.byteOffset + header.headerBytes,
          bytes.byteLength - header.headerBytes,
        );
        if (header.blobLengthBytes > header.payloadLengthBytes * header.dataShardCount)
          return corrupt("blob length exceeds its shards");
        if (payload.length !== header.payloadLengthBytes)
          return corrupt(
            `payload is ${payload.length} bytes, header says ${header.payloadLengthBytes}`,
          );
        if (!sha256(payload).equals(header.shardSha256s[shardIndex] as Buffer))
          return corrupt("payload checksum mismatch");
        return { header, payload };
      }),
    );
    return fetched.filter((shard) => shard !== undefined);
  }

  async get(name: string): Promise<Uint8Array> {
    if (this.recent?.name === name) return this.recent.data.slice();
    const data = await this.read(name);
    if (data.length > this.options.recentBlobCacheBytesMax) return data;
    // The caller may change what it gets; the cache keeps its own copy.
    this.recent = { name, data };
    return data.slice();
  }

  /** Data shards first (no decoding when they are healthy), parity only when needed. */
  private async read(name: string): Promise<Uint8Array> {
    const placement = this.placementOf(name);
    const { dataShardCount: k } = this.options;
    const problems: ShardProblem[] = [];
    const shards = await this.fetchShards(
      name,
      placement,
      Array.from({ length: k }, (_, index) => index),
      problems,
    );
    const complete = this.chooseVersion(shards);
    // Each data shard already matched its checksum: their concatenation is the blob.
    if (complete !== undefined && complete.every((shard) => shard.header.shardIndex < k)) {
      const data = Buffer.concat(complete.map((shard) => shard.payload)).subarray(
        0,
        complete[0]?.header.blobLengthBytes,
      );
      return data;
    }
    shards.push(
      ...(await this.fetchShards(
        name,
        placement,
        Array.from({ length: this.options.parityShardCount }, (_, index) => k + index),
        problems,
      )),
    );
    const version = this.chooseVersion(shards);
    if (version === undefined) {
      if (shards.length === 0 && problems.every((problem) => problem.problem === "missing"))
        throw new BackupError("BLOB_NOT_FOUND", `${name} does not exist in ${this.location}`);
      throw new NotEnoughShardsError(name, this.largestVersionSize(shards), k, problems);
    }
    return this.reconstruct(name, version, problems);
  }

  /** The shards of the version (one write of the blob) with at least k of them, if any. */
  private chooseVersion(shards: readonly HealthyShard[]): HealthyShard[] | undefined {
    const versions = new Map<string, HealthyShard[]>();
    for (const shard of shards) {
      const key = versionKey(shard.header);
      versions.set(key, [...(versions.get(key) ?? []), shard]);
    }
    const best = [...versions.values()].sort((a, b) => b.length - a.length)[0];
    if (best === undefined || best.length < this.options.dataShardCount) return undefined;
    return best
      .sort((a, b) => a.header.shardIndex - b.header.shardIndex)
      .slice(0, this.options.dataShardCount);
  }

  private largestVersionSize(shards: readonly HealthyShard[]): number {
    const counts = new Map<string, number>();
    for (const shard of shards) {
      const key = versionKey(shard.header);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return Math.max(0, ...counts.values());
  }

  private async reconstruct(
    name: string,
    shards: readonly HealthyShard[],
    problems: readonly ShardProblem[],
  ): Promise<Uint8Array> {
    const { dataShardCount: k, parityShardCount: m } = this.options;
    const first = shards[0] as HealthyShard;
    const shardBytes = first.header.payloadLengthBytes;
    const dataBuffer = Buffer.alloc(shardBytes * k);
    const parityBuffer = Buffer.alloc(shardBytes * m);
    let sources = 0;
    for (const { header, payload } of shards) {
      if (header.payloadLengthBytes !== shardBytes)
        throw new NotEnoughShardsError(name, 0, k, problems);
      sources |= 1 << header.shardIndex;
      if (header.shardIndex < k) payload.copy(dataBuffer, header.shardIndex * shardBytes);
      else payload.copy(parityBuffer, (header.shardIndex - k) * shardBytes);
    }
    let targets = 0;
    for (let index = 0; index < k; index++)
      if ((sources & (1 << index)) === 0) targets |= 1 << index;
    if (targets !== 0)
      await encodeReedSolomon(this.context, sources, targets, dataBuffer, parityBuffer);
    for (let index = 0; index < k; index++) {
      if ((targets & (1 << index)) === 0) continue;
      const rebuilt = dataBuffer.subarray(index * shardBytes, (index + 1) * shardBytes);
      if (!sha256(rebuilt).equals(first.header.shardSha256s[index] as Buffer))
        throw new NotEnoughShardsError(name, 0, k, [
          ...problems,
          {
            shardIndex: index,
            holder: -1,
            problem: "corrupt",
            detail: "rebuilt shard fails its checksum",
          },
        ]);
    }
    return dataBuffer.subarray(0, first.header.blobLengthBytes);
  }

  /** The whole blob is rebuilt (and checked) once and kept for the next reads of its ranges. */
  async getRange(name: string, offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const data = this.recent?.name === name ? this.recent.data : await this.read(name);
    if (data.length <= this.options.recentBlobCacheBytesMax) this.recent = { name, data };
    return data.slice(offsetBytes, offsetBytes + lengthBytes);
  }

  /** From the first shard header that checks out; no payload is read. */
  async sizeBytes(name: string): Promise<number> {
    const placement = this.placementOf(name);
    const headerBytes = shardHeaderBytes(name, this.shardCount);
    const problems: ShardProblem[] = [];
    for (const [shardIndex, holder] of placement.entries()) {
      try {
        const header = decodeShardHeader(await this.holder(holder).getRange(name, 0, headerBytes));
        if (typeof header !== "string" && header.name === name) return header.blobLengthBytes;
        problems.push({
          shardIndex,
          holder,
          problem: "corrupt",
          detail: typeof header === "string" ? header : `holds ${header.name}`,
        });
      } catch (error) {
        if (error instanceof BackupError && error.code === "BLOB_NOT_FOUND")
          problems.push({ shardIndex, holder, problem: "missing" });
        else
          problems.push({
            shardIndex,
            holder,
            problem: "unreachable",
            detail: error instanceof Error ? error.message : String(error),
          });
      }
    }
    if (problems.every((problem) => problem.problem === "missing"))
      throw new BackupError("BLOB_NOT_FOUND", `${name} does not exist in ${this.location}`);
    throw new NotEnoughShardsError(name, 0, 1, problems);
  }

  /**
   * True when a holder has a shard. False only when too many holders answered "no" for a
   * stored blob to hide among those that did not answer.
   */
  async exists(name: string): Promise<boolean> {
    const placement = this.placementOf(name);
    const answers = await Promise.allSettled(
      placement.map((holder) => this.holder(holder).exists(name)),
    );
    if (answers.some((answer) => answer.status === "fulfilled" && answer.value)) return true;
    const unanswered = answers.filter((answer) => answer.status === "rejected");
    if (unanswered.length < this.options.shardsRequiredForWrite) return false;
    throw new BackupError(
      "STORAGE_FAILED",
      `cannot tell whether ${name} exists: ${unanswered.length} of ${this.shardCount} shard holders did not answer`,
    );
  }

  /** The union of the holders' lists; up to m holders may be unreachable. */
  async list(prefix: string): Promise<string[]> {
    const answers = await Promise.allSettled(this.holders.map((holder) => holder.list(prefix)));
    const failures = answers.flatMap((answer, index) =>
      answer.status === "rejected" ? [{ index, reason: answer.reason as unknown }] : [],
    );
    if (failures.length > this.options.parityShardCount)
      throw new BackupError(
        "STORAGE_FAILED",
        `listing ${prefix}: ${failures.length} shard holders did not answer, at most ${this.options.parityShardCount} may be missing (${failures
          .map(
            ({ index, reason }) =>
              `${this.holder(index).location}: ${reason instanceof Error ? reason.message : String(reason)}`,
          )
          .join("; ")})`,
      );
    const names = new Set<string>();
    for (const answer of answers)
      if (answer.status === "fulfilled") for (const name of answer.value) names.add(name);
    return [...names];
  }

  /** Deletes every shard; fails (to be rerun) if a holder could not be reached. */
  async delete(name: string): Promise<void> {
    this.forget(name);
    const placement = this.placementOf(name);
    const results = await Promise.allSettled(
      placement.map((holder) => this.holder(holder).delete(name)),
    );
    const failures = results.flatMap((result, shardIndex) =>
      result.status === "rejected" ? [{ shardIndex, reason: result.reason as unknown }] : [],
    );
    if (failures.length > 0)
      throw new BackupError(
        "STORAGE_FAILED",
        `deleting ${name}: ${failures.length} shard holders failed (${failures
          .map(
            ({ shardIndex, reason }) =>
              `${this.holder(placement[shardIndex] as number).location}: ${reason instanceof Error ? reason.message : String(reason)}`,
          )
          .join("; ")}); run the command again once they are back`,
      );
  }

  private forget(name: string): void {
    if (this.recent?.name === name) this.recent = undefined;
  }
}
