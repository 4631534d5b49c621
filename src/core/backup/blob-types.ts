// The kinds of blob a pack holds; kept apart from the schemas so worker threads load no zod.

export const blobTypes = ["data", "tree"] as const;
export type BlobType = (typeof blobTypes)[number];
