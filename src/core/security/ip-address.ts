// IP addresses and CIDR blocks as numbers, for the firewall's source matching. IPv4 and IPv6
// (with `::` compression, an embedded IPv4 tail and a zone id); an IPv4-mapped IPv6 address
// (`::ffff:127.0.0.1`, what a dual-stack socket reports for an IPv4 client) is the IPv4
// address it maps, so `127.0.0.0/8` matches it.

export type IpFamily = 4 | 6;

/** An address as an unsigned integer of 32 (IPv4) or 128 (IPv6) bits. */
export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface CidrBlock {
  readonly family: IpFamily;
  /** The block's first address (host bits cleared). */
  readonly network: bigint;
  readonly prefixLength: number;
  /** The prefix's bits set, the host bits clear. */
  readonly mask: bigint;
}

const ipv4MappedPrefix = 0xffffn << 32n;
const bitsOf = (family: IpFamily): bigint => (family === 4 ? 32n : 128n);

const ipv4Pattern = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

function parseIpv4(text: string): bigint | undefined {
  const match = ipv4Pattern.exec(text);
  if (match === null) return undefined;
  let value = 0;
  for (let group = 1; group <= 4; group += 1) {
    const octet = Number(match[group]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return BigInt(value);
}

function parseGroups(text: string): number[] | undefined {
  if (text === "") return [];
  const groups: number[] = [];
  const parts = text.split(":");
  for (const [index, part] of parts.entries()) {
    if (index === parts.length - 1 && part.includes(".")) {
      const ipv4 = parseIpv4(part);
      if (ipv4 === undefined) return undefined;
      groups.push(Number(ipv4 >> 16n), Number(ipv4 & 0xffffn));
      continue;
    }
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
    groups.push(Number.parseInt(part, 16));
  }
  return groups;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] ?? "");
  const tail = halves.length === 2 ? parseGroups(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/**
 * Parses an address as a socket reports it; undefined when it is not one. IPv4-mapped IPv6
 * addresses come back as IPv4.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  if (text.length > 64) return undefined;
  if (!text.includes(":")) {
    const value = parseIpv4(text);
    return value === undefined ? undefined : { family: 4, value };
  }
  // The common dual-stack form of an IPv4 client, without the general IPv6 parse.
  if (/^::ffff:/i.test(text) && text.includes(".")) {
    const value = parseIpv4(text.slice("::ffff:".length));
    if (value !== undefined) return { family: 4, value };
  }
  const value = parseIpv6(text.replace(/%[0-9A-Za-z._~-]{1,32}$/, ""));
  if (value === undefined) return undefined;
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** Parses `address/prefix`; undefined when it is not a CIDR block. */
export function parseCidr(text: string): CidrBlock | undefined {
  const slash = text.indexOf("/");
  if (slash < 0 || text.length > 64) return undefined;
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  const addressText = text.slice(0, slash);
  const family: IpFamily = addressText.includes(":") ? 6 : 4;
  const value = family === 4 ? parseIpv4(addressText) : parseIpv6(addressText);
  if (value === undefined || BigInt(prefixLength) > bitsOf(family)) return undefined;
  const mask = maskOf(family, prefixLength);
  return { family, network: value & mask, prefixLength, mask };
}

function maskOf(family: IpFamily, prefixLength: number): bigint {
  const bits = bitsOf(family);
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLength))) & all;
}

/**
 * Whether `address` lies in `block`. An IPv4 address also lies in the IPv6 blocks that hold its
 * IPv4-mapped form (`::ffff:0:0/96`).
 */
export function cidrContains(block: CidrBlock, address: IpAddress): boolean {
  const value =
    block.family === address.family
      ? address.value
      : block.family === 6
        ? ipv4MappedPrefix | address.value
        : undefined;
  if (value === undefined) return false;
  return (value & block.mask) === block.network;
}
