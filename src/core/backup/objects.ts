// Schemas of every JSON object in a repository (see docs/formats/backup-repository.md).
// Everything read back from storage is validated here before use: storage is not trusted.
import { z } from "zod";
import { blobTypes } from "./blob-types.ts";

/** The format version this code writes and the only one it reads. */
export const repositoryFormatVersion = 1;

const hexId = z.string().regex(/^[0-9a-f]{64}$/, "expected a 64-digit hex id");
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "expected base64");

export const repositoryConfigSchema = z.object({
  version: z.literal(repositoryFormatVersion),
  id: hexId,
  chunkerSeed: z.number().int().min(0).max(0xffff_ffff),
  chunkSizeBytesMin: z.number().int().positive(),
  chunkSizeBytesAverage: z.number().int().positive(),
  chunkSizeBytesMax: z.number().int().positive(),
  compressionLevel: z.number().int().min(-7).max(19),
  packSizeBytesTarget: z.number().int().positive(),
});
export type RepositoryConfig = z.infer<typeof repositoryConfigSchema>;

export const keyFileSchema = z.object({
  version: z.literal(repositoryFormatVersion),
  createdAt: z.string(),
  hostname: z.string(),
  username: z.string(),
  kdf: z.object({
    name: z.literal("scrypt"),
    costN: z.number().int().positive(),
    blockSizeR: z.number().int().positive(),
    parallelizationP: z.number().int().positive(),
    salt: base64,
  }),
  /** The key ring, sealed with the password-derived key. */
  keyRing: base64,
});
export type KeyFile = z.infer<typeof keyFileSchema>;

export const keyRingSchema = z.object({
  version: z.literal(repositoryFormatVersion),
  /** HMAC-SHA-256 key for blob ids; never rotated, or deduplication would restart. */
  blobIdKey: base64,
  /** AES-256-GCM keys; the highest generation encrypts new objects, all of them decrypt. */
  encryptionKeys: z
    .array(
      z.object({
        generation: z.number().int().min(0).max(0xffff_ffff),
        key: base64,
        createdAt: z.string(),
      }),
    )
    .min(1),
});
export type KeyRing = z.infer<typeof keyRingSchema>;

export { blobTypes } from "./blob-types.ts";
export type { BlobType } from "./blob-types.ts";

export const indexedBlobSchema = z.object({
  id: hexId,
  type: z.enum(blobTypes),
  offsetBytes: z.number().int().min(0),
  lengthBytes: z.number().int().positive(),
  rawLengthBytes: z.number().int().min(0),
  compressed: z.boolean(),
  keyGeneration: z.number().int().min(0),
});
export type IndexedBlob = z.infer<typeof indexedBlobSchema>;

export const indexedPackSchema = z.object({
  id: hexId,
  sizeBytes: z.number().int().positive(),
  blobs: z.array(indexedBlobSchema),
});
export type IndexedPack = z.infer<typeof indexedPackSchema>;

export const indexFileSchema = z.object({
  version: z.literal(repositoryFormatVersion),
  /** Index files this one replaces (written by prune); readers ignore the superseded ones. */
  supersedes: z.array(hexId),
  packs: z.array(indexedPackSchema),
});
export type IndexFile = z.infer<typeof indexFileSchema>;

export const snapshotSummarySchema = z.object({
  filesNew: z.number().int().min(0),
  filesChanged: z.number().int().min(0),
  filesUnmodified: z.number().int().min(0),
  directories: z.number().int().min(0),
  blobsAdded: z.number().int().min(0),
  bytesProcessed: z.number().int().min(0),
  bytesAddedStored: z.number().int().min(0),
  durationMs: z.number().min(0),
});
export type SnapshotSummary = z.infer<typeof snapshotSummarySchema>;

export const snapshotSchema = z.object({
  version: z.literal(repositoryFormatVersion),
  time: z.string(),
  timeMs: z.number(),
  hostname: z.string(),
  username: z.string(),
  /** Absolute source paths; the root tree has one node per path, named by its base name. */
  paths: z.array(z.string()).min(1),
  tree: hexId,
  parent: hexId.nullable(),
  tags: z.array(z.string()),
  summary: snapshotSummarySchema,
  /** Set on a copy (`copySnapshot`): the id of the snapshot it was copied from, in the source repository. */
  copiedFrom: hexId.optional(),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

const nodeCommon = {
  name: z
    .string()
    .min(1)
    .refine((name) => name !== "." && name !== ".." && !name.includes("/"), "invalid file name"),
  /** Permission bits and setuid/setgid/sticky (mode & 0o7777). */
  mode: z.number().int().min(0).max(0o7777),
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact). */
  mtimeNs: z.string().regex(/^-?\d+$/),
  /** Status change time, same encoding: not restorable, but catches a reset mtime. */
  ctimeNs: z.string().regex(/^-?\d+$/),
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  /** Device and inode as decimal strings: the incremental backup's identity check. */
  device: z.string(),
  inode: z.string(),
};

export const treeNodeSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("file"),
    ...nodeCommon,
    sizeBytes: z.number().int().min(0),
    content: z.array(hexId),
  }),
  z.object({ type: z.literal("directory"), ...nodeCommon, subtree: hexId }),
  z.object({ type: z.literal("symlink"), ...nodeCommon, linkTarget: z.string() }),
]);
export type TreeNode = z.infer<typeof treeNodeSchema>;
export type FileNode = Extract<TreeNode, { type: "file" }>;

export const treeSchema = z.object({ nodes: z.array(treeNodeSchema) });
export type Tree = z.infer<typeof treeSchema>;

export const lockSchema = z.object({
  version: z.literal(repositoryFormatVersion),
  exclusive: z.boolean(),
  hostname: z.string(),
  pid: z.number().int(),
  createdAtMs: z.number(),
  refreshedAtMs: z.number(),
});
export type Lock = z.infer<typeof lockSchema>;

/** Names of stored files by kind. Packs are fanned out by the first two hex digits. */
export const objectNames = {
  config: "config",
  key: (id: string) => `keys/${id}`,
  pack: (id: string) => `data/${id.slice(0, 2)}/${id}`,
  index: (id: string) => `index/${id}`,
  snapshot: (id: string) => `snapshots/${id}`,
  lock: (id: string) => `locks/${id}`,
} as const;

/** The id at the end of an object name (`data/3f/3f9a…` → `3f9a…`). */
export function idOfObjectName(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}
