// Parses a fleet spec's text: YAML first, then the zod schemas, and turns every problem into
// an issue at the file, line and column of the field concerned, saying what was expected and
// what was found.

import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import { z } from "zod";
import { FleetSpecError, type FleetSpecIssue } from "./fleet-spec-error.ts";
import { fleetSpecSchema, type FleetSpec } from "./fleet-spec-schema.ts";

/** Largest fleet spec accepted, in bytes of UTF-8 (room for thousands of nodes). */
export const fleetSpecBytesMax = 1024 * 1024;

/** Most YAML aliases resolved: one per node of the largest fleet, and no exponential trees. */
const yamlAliasesMax = 10_000;

/**
 * Most values and characters the file may expand to once aliases are followed, so an alias
 * used thousands of times cannot make validation walk gigabytes.
 */
const expandedSizeMax = 16 * fleetSpecBytesMax;

/** Longest excerpt of a found value quoted back in a message. */
const quotedCharactersMax = 60;

/** Longest misspelt name worth looking for a suggestion for (edit distance is quadratic). */
const suggestionCharactersMax = 64;

type Path = readonly PropertyKey[];

/** A problem before it is placed in the file: where, what was expected and what was found. */
interface Problem {
  readonly path: Path;
  readonly expected: string;
  readonly found: string;
  /** Point at the key of the field rather than its value (unknown fields, bad map keys). */
  readonly atKey: boolean;
}

/**
 * Parses and validates a fleet spec. `fileName` is only used in messages.
 * Throws {@link FleetSpecError} listing every problem found; never anything else.
 */
export function parseFleetSpec(text: string, fileName: string): FleetSpec {
  const byteLength = new TextEncoder().encode(text).byteLength;
  if (byteLength > fleetSpecBytesMax)
    throw new FleetSpecError([
      {
        file: fileName,
        line: 1,
        column: 1,
        path: "",
        message: `expected a fleet spec of at most ${fleetSpecBytesMax} bytes (1 MiB), got ${byteLength} bytes`,
      },
    ]);

  const lineCounter = new LineCounter();
  const issueAt = (offset: number, path: string, message: string): FleetSpecIssue => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: fileName, line, column: col, path, message };
  };

  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlProblems = [...document.errors, ...document.warnings];
  if (yamlProblems.length > 0)
    throw new FleetSpecError(
      yamlProblems.map((problem) =>
        issueAt(problem.pos[0], "", `invalid YAML: ${problem.message}`),
      ),
    );

  if (document.contents === null)
    throw new FleetSpecError([
      issueAt(
        0,
        "",
        "expected a fleet spec (apiVersion: edgeward/v1, kind: Fleet, …), got an empty file",
      ),
    ]);

  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: yamlAliasesMax });
  } catch (error) {
    // toJS fails only on input it cannot expand: too many aliases, or an alias to nothing.
    const reason = error instanceof Error ? error.message : String(error);
    throw new FleetSpecError([issueAt(0, "", `invalid YAML: ${reason}`)]);
  }
  if (!expandsWithin(value, expandedSizeMax))
    throw new FleetSpecError([
      issueAt(
        0,
        "",
        `expected a fleet spec that expands to at most ${expandedSizeMax} values and characters once YAML aliases are followed, got more`,
      ),
    ]);

  const knownFieldsByObject = new Map<unknown, readonly string[]>();
  const result = fleetSpecSchema.safeParse(value, {
    error: (issue) => {
      if (issue.code === "unrecognized_keys" && issue.inst instanceof z.ZodObject)
        knownFieldsByObject.set(issue.input, Object.keys(issue.inst.shape));
      return expectation(issue);
    },
  });
  if (result.success) return result.data;

  const problems = result.error.issues.flatMap((issue) =>
    problemsOf(issue, [], value, knownFieldsByObject),
  );
  throw new FleetSpecError(
    problems.map((problem) =>
      issueAt(
        offsetOf(document, problem.path, problem.atKey),
        formatPath(problem.path),
        `${problem.expected}, got ${problem.found}`,
      ),
    ),
  );
}

/** True if walking `value` (shared parts once per use) visits at most `sizeMax` values and characters. */
function expandsWithin(value: unknown, sizeMax: number): boolean {
  let size = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    size += typeof next === "string" ? next.length + 1 : 1;
    if (size > sizeMax) return false;
    if (typeof next !== "object" || next === null) continue;
    for (const [key, child] of Object.entries(next)) {
      size += key.length;
      pending.push(child);
    }
  }
  return true;
}

const typeNames: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a map",
  array: "a list",
};

/** What a schema expected, as the start of a message; zod's own wording is too vague. */
function expectation(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${typeNames[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return issue.values.length === 1
        ? `expected ${String(issue.values[0])}`
        : `expected one of ${issue.values.map(String).join("|")}`;
    case "too_small":
      return `expected ${sizeBound(issue.origin, "at least", issue.minimum, issue.inclusive)}`;
    case "too_big":
      return `expected ${sizeBound(issue.origin, "at most", issue.maximum, issue.inclusive)}`;
    case "invalid_format":
      return `expected a valid ${issue.format}`;
    case "not_multiple_of":
      return `expected a multiple of ${String(issue.divisor)}`;
    case "invalid_union":
      return issue.discriminator !== undefined && Array.isArray(issue.options)
        ? `expected one of ${issue.options.map(String).join("|")}`
        : "expected one of the allowed forms";
    case "invalid_key":
      return issue.issues[0]?.message ?? "expected a valid key";
    case "unrecognized_keys":
      return "expected only known fields";
    case "invalid_element":
    case "custom":
      return undefined;
  }
}

function sizeBound(
  origin: string,
  bound: "at least" | "at most",
  limit: number | bigint,
  inclusive: boolean | undefined,
): string {
  const count = Number(limit);
  switch (origin) {
    case "array":
    case "set":
      return `${bound} ${count} item${count === 1 ? "" : "s"}`;
    case "string":
      return count === 1 && bound === "at least"
        ? "a non-empty string"
        : `${bound} ${count} characters`;
    default:
      if (inclusive === false) return `${bound === "at least" ? "more" : "less"} than ${count}`;
      return `${bound} ${count}`;
  }
}

/** Turns one zod issue, whose path is relative to `base`, into problems at absolute paths. */
function problemsOf(
  issue: z.core.$ZodIssue,
  base: Path,
  root: unknown,
  knownFieldsByObject: ReadonlyMap<unknown, readonly string[]>,
): Problem[] {
  const path = [...base, ...issue.path];
  const problem = (overrides: Partial<Problem> = {}): Problem => ({
    path,
    expected: issue.message,
    found: describeValue(valueAt(root, path), issue.code === "invalid_type"),
    atKey: false,
    ...overrides,
  });

  switch (issue.code) {
    case "unrecognized_keys": {
      const known = knownFieldsByObject.get(valueAt(root, path)) ?? [];
      return issue.keys.map((key) => {
        const suggestion = closestName(key, known);
        return {
          path: [...path, key],
          expected: `expected one of ${known.join("|")}`,
          found: `unknown field ${JSON.stringify(key)}${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}`,
          atKey: true,
        };
      });
    }
    case "invalid_union": {
      // A discriminated union already reports at its discriminator field.
      if (issue.discriminator !== undefined) return [problem()];
      // A union of a name and a map: report the problems of the branch of the same shape as
      // the input (a typo inside a hook map), not a vague "none of the forms matched".
      const sameShape = issue.errors.filter(
        (branch) =>
          !branch.some(
            (inner) =>
              inner.path.length === 0 &&
              (inner.code === "invalid_type" || inner.code === "invalid_value"),
          ),
      );
      const [branch] = sameShape;
      if (sameShape.length === 1 && branch !== undefined)
        return branch.flatMap((inner) => problemsOf(inner, path, root, knownFieldsByObject));
      return [problem()];
    }
    case "invalid_key":
      return [problem({ found: JSON.stringify(String(path.at(-1))), atKey: true })];
    case "custom": {
      const found: unknown = issue.params?.["found"];
      return [typeof found === "string" ? problem({ found }) : problem()];
    }
    case "invalid_type":
    case "invalid_value":
    case "invalid_format":
    case "invalid_element":
    case "not_multiple_of":
    case "too_big":
    case "too_small":
      return [problem()];
  }
}

function valueAt(root: unknown, path: Path): unknown {
  let value = root;
  for (const segment of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, segment))
      return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

function quote(text: string): string {
  const excerpt =
    text.length > quotedCharactersMax ? `${text.slice(0, quotedCharactersMax)}…` : text;
  return JSON.stringify(excerpt);
}

/** A found value as a message shows it; `withType` names its type, for type mismatches. */
function describeValue(value: unknown, withType: boolean): string {
  if (value === undefined) return "nothing (the field is missing)";
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? "" : "s"}`;
  if (typeof value === "string") return withType ? `a string (${quote(value)})` : quote(value);
  if (typeof value === "number" || typeof value === "boolean")
    return withType ? `a ${typeof value} (${String(value)})` : String(value);
  if (typeof value === "object") {
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype === Object.prototype || prototype === null) return "a map";
  }
  // Anything else came from an exotic YAML tag (a YAML 1.1 timestamp, binary or set).
  return `a value of type ${Object.prototype.toString.call(value).slice("[object ".length, -1)}`;
}

/** `nodes[2].labels["app/name"]`: the path as a user would write it. */
function formatPath(path: Path): string {
  return path
    .map((segment, index) => {
      if (typeof segment === "number") return `[${segment}]`;
      const name = String(segment);
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) return `[${JSON.stringify(name)}]`;
      return index === 0 ? name : `.${name}`;
    })
    .join("");
}

/** Offset in the text of the field at `path`, or of its nearest ancestor present in the file. */
function offsetOf(document: Document, path: Path, atKey: boolean): number {
  let node: unknown = document.contents;
  let offset = rangeStart(node) ?? 0;
  for (const [index, segment] of path.entries()) {
    let key: unknown;
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (pair === undefined) return offset;
      key = pair.key;
      next = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      next = node.items[segment];
    } else {
      return offset;
    }
    if (atKey && index === path.length - 1) return rangeStart(key) ?? offset;
    offset = rangeStart(next) ?? rangeStart(key) ?? offset;
    node = next;
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

/** The known name closest to a misspelt one, if it is close enough to be the intended one. */
function closestName(name: string, candidates: readonly string[]): string | undefined {
  if (name.length > suggestionCharactersMax) return undefined;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(from: string, to: string): number {
  let previous = Array.from({ length: to.length + 1 }, (_, index) => index);
  for (let i = 1; i <= from.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= to.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (from[i - 1] === to[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[to.length] ?? 0;
}
