// The incremental backup's shortcut: a file whose identity and timestamps match its node in
// the parent snapshot is not read again (restic's rule: size, mtime, ctime, inode).
import type { FileNode } from "./objects.ts";

export interface FileIdentity {
  sizeBytes: number;
  mtimeNs: string;
  ctimeNs: string;
  inode: string;
}

export function isUnchanged(
  current: FileIdentity,
  parent: FileNode | undefined,
  isIndexed: (blobId: string) => boolean,
): parent is FileNode {
  return (
    parent !== undefined &&
    parent.sizeBytes === current.sizeBytes &&
    parent.mtimeNs === current.mtimeNs &&
    parent.ctimeNs === current.ctimeNs &&
    parent.inode === current.inode &&
    // A parent whose data was pruned or lost must be read again, not referenced.
    parent.content.every(isIndexed)
  );
}
