// Picks a repository's backend from its location: `s3://…` (CLOUD), `http(s)://…` (a blob
// server such as the REGIONAL tier's `--blob-dir`), anything else a local directory.
import { resolve } from "node:path";
import type { BlobStore } from "../../core/backup/blob-store.ts";
import { DirectoryBlobStore } from "./directory-blob-store.ts";
import { HttpBlobStore } from "./http-blob-store.ts";
import { isS3Url, s3BlobStoreFromUrl } from "./s3-blob-store.ts";

/** The store behind `location`; S3 credentials and region come from `environment`. */
export function blobStoreAt(
  location: string,
  environment: Readonly<Record<string, string | undefined>>,
): BlobStore {
  if (isS3Url(location)) return s3BlobStoreFromUrl(location, environment);
  if (/^https?:\/\//.test(location)) return new HttpBlobStore({ baseUrl: location });
  return new DirectoryBlobStore(resolve(location));
}
