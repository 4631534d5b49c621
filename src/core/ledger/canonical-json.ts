// Canonical JSON: the one byte string a ledger entry or a tree head hashes and signs as.
// It is RFC 8785 (JCS) restricted to values whose JCS form is obvious: no floats, so every
// implementation (jq -cS, Python's json.dumps(sort_keys=True, separators=(",", ":"),
// ensure_ascii=False)) writes the same bytes.

/** A value canonical JSON can encode. */
export type CanonicalValue =
  | null
  | boolean
  | number
  | string
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue };

export class CanonicalJsonError extends Error {
  override readonly name = "CanonicalJsonError";
}

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Nesting deeper than this is refused: entries are shallow records. */
export const canonicalDepthMax = 16;

/**
 * Encodes `value` canonically: object keys sorted by UTF-16 code units, no whitespace, strings
 * as JSON.stringify writes them, numbers only as safe integers. Undefined object members are
 * dropped (as JSON.stringify does); anything else is a CanonicalJsonError.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, 0, "$");
}

function encode(value: unknown, depth: number, path: string): string {
  if (depth > canonicalDepthMax)
    throw new CanonicalJsonError(`${path}: nested deeper than ${canonicalDepthMax}`);
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value))
        throw new CanonicalJsonError(`${path}: ${value} is not a safe integer`);
      return Object.is(value, -0) ? "0" : String(value);
    case "string":
      if (loneSurrogate.test(value))
        throw new CanonicalJsonError(`${path}: lone surrogate in string`);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value))
        return `[${value.map((item, index) => encode(item, depth + 1, `${path}[${index}]`)).join(",")}]`;
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null)
        throw new CanonicalJsonError(`${path}: only plain objects are allowed`);
      const members = Object.entries(value as Record<string, unknown>)
        .filter(([, member]) => member !== undefined)
        .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0))
        .map(
          ([key, member]) =>
            `${JSON.stringify(key)}:${encode(member, depth + 1, `${path}.${key}`)}`,
        );
      return `{${members.join(",")}}`;
    }
    case "bigint":
    case "function":
    case "symbol":
    case "undefined":
      throw new CanonicalJsonError(`${path}: a ${typeof value} cannot be encoded`);
  }
  throw new CanonicalJsonError(`${path}: cannot be encoded`);
}

/** True when `text` is exactly the canonical encoding of what it parses to. */
export function isCanonicalJson(text: string): boolean {
  try {
    return canonicalJson(JSON.parse(text)) === text;
  } catch {
    return false;
  }
}
