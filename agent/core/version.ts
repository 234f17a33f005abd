import { VersionFormatError } from "./errors";

/**
 * Semantic versions as the registry stores them: a uint64 whose integer order is version order
 * (contracts/libraries/SemVer.sol holds the same layout).
 *
 *   major (16 bits) | minor (16) | patch (16) | pre-release (16)
 *
 * The pre-release field is 0xFFFF for a final release and `channel << 14 | n` for
 * `-alpha.n` (channel 0), `-beta.n` (1) and `-rc.n` (2), n < 16384. So
 * 1.2.3-alpha.1 < 1.2.3-beta.0 < 1.2.3-rc.2 < 1.2.3 < 1.2.4-alpha.0. Build metadata (+...) is
 * refused: two builds of one version would be one version on the ledger.
 */

const FINAL = 0xffffn;
const CHANNELS = ["alpha", "beta", "rc"] as const;
const MAX_PART = 0xffff;
const MAX_PRE_NUMBER = 0x3fff;
/** The largest encodable value: an open upper bound for ranges. */
export const VERSION_MAX = (1n << 64n) - 1n;

const VERSION_PATTERN = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-(alpha|beta|rc)\.(0|[1-9]\d*))?$/;

export interface VersionParts {
  major: number;
  minor: number;
  patch: number;
  pre?: { channel: (typeof CHANNELS)[number]; number: number };
}

/** Encodes "1.2.3" or "1.2.3-rc.1"; throws VersionFormatError with the accepted form otherwise. */
export function encodeVersion(text: string): bigint {
  const match = VERSION_PATTERN.exec(text.trim());
  if (!match) {
    throw new VersionFormatError(
      "VERSION_FORMAT",
      `"${text}" is not a version this registry accepts: use MAJOR.MINOR.PATCH, optionally with ` +
        `-alpha.N, -beta.N or -rc.N (e.g. 1.4.0 or 2.0.0-rc.1); build metadata (+...) is not allowed`,
      { details: { input: text } },
    );
  }
  const [major, minor, patch] = [match[1], match[2], match[3]].map(Number);
  for (const [name, value] of [
    ["major", major],
    ["minor", minor],
    ["patch", patch],
  ] as const) {
    if (value > MAX_PART) {
      throw new VersionFormatError("VERSION_RANGE", `${name} ${value} in "${text}" is above ${MAX_PART}`, {
        details: { input: text },
      });
    }
  }
  let pre = FINAL;
  if (match[4] !== undefined) {
    const n = Number(match[5]);
    if (n > MAX_PRE_NUMBER) {
      throw new VersionFormatError("VERSION_RANGE", `pre-release number ${n} in "${text}" is above ${MAX_PRE_NUMBER}`, { details: { input: text } });
    }
    pre = (BigInt(CHANNELS.indexOf(match[4] as (typeof CHANNELS)[number])) << 14n) | BigInt(n);
  }
  const encoded = (BigInt(major) << 48n) | (BigInt(minor) << 32n) | (BigInt(patch) << 16n) | pre;
  if (encoded === 0n) {
    throw new VersionFormatError("VERSION_RESERVED", `"${text}" encodes to 0, which the registry reserves for "no version": use 0.0.0-alpha.1 or later`, {
      details: { input: text },
    });
  }
  return encoded;
}

/** Splits an encoded version; throws VersionFormatError for a malformed encoding. */
export function decodeVersion(value: bigint): VersionParts {
  if (value <= 0n || value > VERSION_MAX || ((value & 0xffffn) !== FINAL && (value & 0xffffn) >= 0xc000n)) {
    throw new VersionFormatError("VERSION_ENCODING", `0x${value.toString(16)} is not a valid encoded version`, {
      details: { value: value.toString() },
    });
  }
  const parts: VersionParts = {
    major: Number((value >> 48n) & 0xffffn),
    minor: Number((value >> 32n) & 0xffffn),
    patch: Number((value >> 16n) & 0xffffn),
  };
  const pre = value & 0xffffn;
  if (pre !== FINAL) parts.pre = { channel: CHANNELS[Number(pre >> 14n)], number: Number(pre & 0x3fffn) };
  return parts;
}

/** Whether an encoded version is well formed (the registry's SemVer.isValid). */
export function isValidVersion(value: bigint): boolean {
  try {
    decodeVersion(value);
    return true;
  } catch {
    return false;
  }
}

/** The text form of an encoded version, e.g. "1.2.3-rc.1". */
export function formatVersion(value: bigint): string {
  const p = decodeVersion(value);
  const core = `${p.major}.${p.minor}.${p.patch}`;
  return p.pre ? `${core}-${p.pre.channel}.${p.pre.number}` : core;
}

/** A half-open version range [min, max), as dependencies are recorded. */
export interface VersionRange {
  min: bigint;
  max: bigint;
}

/**
 * Parses a dependency range. Accepted forms (npm-like):
 *   ">=1.2.0 <2.0.0", ">=1.2.0", "^1.2.0", "~1.2.0", "1.2.0" (exactly that version).
 * An upper bound on a final version ("<2.0.0") also excludes that version's pre-releases, as
 * npm does: it is stored as 2.0.0-alpha.0.
 */
export function parseRange(text: string): VersionRange {
  const input = text.trim();
  const fail = (why: string): never => {
    throw new VersionFormatError("RANGE_FORMAT", `"${text}" is not a version range: ${why}. Use ">=1.2.0 <2.0.0", ">=1.2.0", "^1.2.0", "~1.2.0" or "1.2.0"`, {
      details: { input: text },
    });
  };
  let range: VersionRange;
  if (input.startsWith("^") || input.startsWith("~")) {
    const min = encodeVersion(input.slice(1));
    const p = decodeVersion(min);
    let upper: [number, number, number];
    if (input.startsWith("~")) upper = [p.major, p.minor + 1, 0];
    else if (p.major > 0) upper = [p.major + 1, 0, 0];
    else if (p.minor > 0) upper = [0, p.minor + 1, 0];
    else upper = [0, 0, p.patch + 1];
    range = { min, max: lowestOf(upper) };
  } else if (input.startsWith(">=")) {
    const [lower, upperText, ...rest] = input.slice(2).trim().split(/\s+/);
    if (rest.length > 0) fail("too many parts");
    const min = encodeVersion(lower);
    if (upperText === undefined) {
      range = { min, max: VERSION_MAX };
    } else {
      if (!upperText.startsWith("<") || upperText.startsWith("<=")) fail('the upper bound must be "<VERSION"');
      const upper = encodeVersion(upperText.slice(1));
      range = { min, max: (upper & 0xffffn) === FINAL ? upper & ~0xffffn : upper };
    }
  } else if (/^\d/.test(input)) {
    const exact = encodeVersion(input);
    if (exact === VERSION_MAX) fail("65535.65535.65535 is the highest encodable version and a range's upper bound is exclusive, so no range can hold it");
    // The next encodable value after `exact`; after rc.16383 the next valid one is the final release.
    const next = (exact & 0xffffn) === 0xbfffn ? exact | FINAL : exact + 1n;
    range = { min: exact, max: next };
  } else {
    return fail("unknown operator");
  }
  if (range.min >= range.max) fail("it contains no version (the lower bound is not below the upper bound)");
  return range;
}

/** The text form of a range, e.g. ">=1.2.0 <2.0.0". */
export function formatRange(range: VersionRange): string {
  if (range.max === VERSION_MAX) return `>=${formatVersion(range.min)}`;
  const pre = range.max & 0xffffn;
  const upper = pre === 0n ? formatVersion(range.max | FINAL) : formatVersion(range.max);
  return `>=${formatVersion(range.min)} <${upper}`;
}

/** Whether `version` lies in [min, max). */
export function inRange(version: bigint, range: VersionRange): boolean {
  return version >= range.min && version < range.max;
}

/** The lowest version (alpha.0) of major.minor.patch, carrying overflow into the next field. */
function lowestOf([major, minor, patch]: [number, number, number]): bigint {
  if (patch > MAX_PART) [minor, patch] = [minor + 1, 0];
  if (minor > MAX_PART) [major, minor] = [major + 1, 0];
  if (major > MAX_PART) return VERSION_MAX; // nothing above: the range is open
  return (BigInt(major) << 48n) | (BigInt(minor) << 32n) | (BigInt(patch) << 16n);
}
