// Choosing snapshots: by id prefix, `latest`, or the newest at a point in time; the parent of
// an incremental backup; and which paths a filtered restore includes.
import { BackupError } from "./errors.ts";

export interface SnapshotHeader {
  id: string;
  timeMs: number;
  hostname: string;
  paths: readonly string[];
}

export type SnapshotSelector =
  | { kind: "latest" }
  | { kind: "id"; prefix: string }
  | {
      kind: "at";
      timeMs: number;
      /** How the user wrote the time, for messages. */ timeText: string;
    };

export function selectSnapshot<Header extends SnapshotHeader>(
  snapshots: readonly Header[],
  selector: SnapshotSelector,
): Header {
  switch (selector.kind) {
    case "latest": {
      const newest = newestOf(snapshots);
      if (newest === undefined)
        throw new BackupError("SNAPSHOT_NOT_FOUND", "the repository has no snapshots");
      return newest;
    }
    case "id": {
      const matches = snapshots.filter((snapshot) => snapshot.id.startsWith(selector.prefix));
      if (matches.length === 0)
        throw new BackupError(
          "SNAPSHOT_NOT_FOUND",
          `no snapshot id starts with "${selector.prefix}"`,
        );
      if (matches.length > 1)
        throw new BackupError(
          "INVALID_ARGUMENT",
          `snapshot prefix "${selector.prefix}" is ambiguous: ${matches.map((match) => match.id.slice(0, 8)).join(", ")}`,
        );
      return matches[0] as Header;
    }
    case "at": {
      const newest = newestOf(snapshots.filter((snapshot) => snapshot.timeMs <= selector.timeMs));
      if (newest === undefined)
        throw new BackupError(
          "SNAPSHOT_NOT_FOUND",
          `no snapshot was taken at or before ${selector.timeText}`,
        );
      return newest;
    }
  }
}

/** The newest snapshot of the same host and the same set of paths: restic's parent rule. */
export function findParentSnapshot<Header extends SnapshotHeader>(
  snapshots: readonly Header[],
  hostname: string,
  paths: readonly string[],
): Header | undefined {
  const wanted = [...paths].sort().join("\0");
  return newestOf(
    snapshots.filter(
      (snapshot) =>
        snapshot.hostname === hostname && [...snapshot.paths].sort().join("\0") === wanted,
    ),
  );
}

function newestOf<Header extends SnapshotHeader>(snapshots: readonly Header[]): Header | undefined {
  let newest: Header | undefined;
  for (const snapshot of snapshots) {
    if (
      newest === undefined ||
      snapshot.timeMs > newest.timeMs ||
      (snapshot.timeMs === newest.timeMs && snapshot.id > newest.id)
    )
      newest = snapshot;
  }
  return newest;
}

/**
 * A restore filter over snapshot paths such as "/data/logs/app.log" (the first segment is the
 * base name of a backed-up path). A pattern selects a path when it matches the path or one
 * of its ancestors; `*` matches within a segment, `**` across segments.
 */
export interface PathFilter {
  includes(path: string): boolean;
  /** True when something under directory `path` may be included: prunes the tree walk. */
  mayIncludeBelow(path: string): boolean;
}

export function createPathFilter(patterns: readonly string[]): PathFilter {
  if (patterns.length === 0) return { includes: () => true, mayIncludeBelow: () => true };
  const normalized = patterns.map(
    (pattern) =>
      "/" +
      pattern
        .split("/")
        .filter((segment) => segment !== "")
        .join("/"),
  );
  const matchers = normalized.map(globToRegExp);
  const ancestorsOf = (path: string): string[] => {
    const segments = path.split("/").filter((segment) => segment !== "");
    return segments.map((_, index) => "/" + segments.slice(0, index + 1).join("/"));
  };
  return {
    includes: (path) =>
      ancestorsOf(path).some((ancestor) => matchers.some((matcher) => matcher.test(ancestor))),
    mayIncludeBelow: (path) => {
      if (ancestorsOf(path).some((ancestor) => matchers.some((matcher) => matcher.test(ancestor))))
        return true;
      const depth = ancestorsOf(path).length;
      // A directory may hold matches when it matches a prefix of some pattern's segments.
      return normalized.some((pattern) => {
        const segments = pattern.split("/").filter((segment) => segment !== "");
        if (segments.includes("**")) return true;
        if (segments.length <= depth) return false;
        return globToRegExp("/" + segments.slice(0, depth).join("/")).test(path);
      });
    },
  };
}

function globToRegExp(pattern: string): RegExp {
  let source = "";
  for (let index = 0; index < pattern.length; index++) {
    const character = pattern[index] as string;
    if (character === "*" && pattern[index + 1] === "*") {
      source += ".*";
      index++;
    } else if (character === "*") source += "[^/]*";
    else if (character === "?") source += "[^/]";
    else source += character.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
