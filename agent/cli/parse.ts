import { ZeroAddress, encodeBytes32String, getAddress, isAddress, keccak256, toUtf8Bytes, SigningKey } from "ethers";
import { InputError } from "../core/errors";

/**
 * Checks of command-line input, made before anything is sent: each throws an InputError that
 * names the input, says what is wrong and what to give instead.
 *
 * The checks themselves (the predicates below, exported) are also those of the configuration:
 * the settings table (agent/cli/settings.ts) builds its zod schemas from them, with the
 * configuration's own wording. A check is written here once.
 */

const MAX_NAME_BYTES = 64; // the registry's limit (ICatalog: 1..64 bytes)
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

/** A whole number from `min` to `max` (a safe integer). */
export function isWholeNumber(value: number, min: number, max = Number.MAX_SAFE_INTEGER): boolean {
  return Number.isSafeInteger(value) && value >= min && value <= max;
}

/** The number a text of digits only stands for (blanks around allowed), else undefined. */
export function wholeNumberOf(text: string): number | undefined {
  return /^\d+$/.test(text.trim()) ? Number(text) : undefined;
}

/** A private key as written: 0x followed by 64 hex digits. Messages never repeat it (a secret). */
export function isPrivateKey(text: string): boolean {
  return PRIVATE_KEY.test(text);
}

/** What is wrong with a 32-byte id given as 0x + 64 hex digits or as a label, or undefined when nothing is. */
export function idOrLabelProblem(text: string): string | undefined {
  const value = text.trim();
  if (BYTES32.test(value)) return BigInt(value) === 0n ? "the id is zero: give a non-zero id or a label" : undefined;
  if (/^0x[0-9a-fA-F]*$/.test(value)) return `"${text}" looks like hex but is not 32 bytes: give 0x + 64 hex digits, or a label`;
  if (value === "") return "it is empty: give 0x + 64 hex digits, or a label (hashed with keccak256)";
  return undefined;
}

/** What is wrong with a short bytes32 label (network, region), or undefined when nothing is. */
export function labelProblem(text: string): string | undefined {
  const value = text.trim();
  if (BYTES32.test(value)) return undefined;
  if (value === "") return "the label is empty: give a short label such as eu-west";
  if (toUtf8Bytes(value).length > 31) return `"${text}" is longer than 31 bytes: shorten it`;
  return undefined;
}

function fail(what: string, message: string, input?: string): never {
  throw new InputError("INVALID_INPUT", `${what}: ${message}`, { details: input === undefined ? { what } : { what, input } });
}

/** A provider, hardware class or component name: 1..64 bytes of UTF-8, no surrounding blanks. */
export function parseName(text: string, what: string): string {
  const name = text.trim();
  if (name === "") fail(what, "the name is empty: give a name of 1 to 64 bytes");
  const bytes = toUtf8Bytes(name).length;
  if (bytes > MAX_NAME_BYTES) fail(what, `the name is ${bytes} bytes, above the limit of ${MAX_NAME_BYTES}: shorten it`, name);
  return name;
}

/** A positive integer id up to `max` (uint32 provider ids, uint16 hardware class ids). */
export function parseId(text: string, what: string, max = 0xffffffff): number {
  const value = wholeNumberOf(text);
  if (value === undefined || !isWholeNumber(value, 1, max)) {
    fail(what, `"${text}" is not an id: give a whole number from 1 to ${max}`, text);
  }
  return value;
}

/** A non-zero account address, returned checksummed. */
export function parseAddress(text: string, what: string): string {
  if (!isAddress(text)) fail(what, `"${text}" is not an address: give 0x followed by 40 hex digits`, text);
  const address = getAddress(text.toLowerCase());
  if (address === ZeroAddress) fail(what, "the zero address cannot hold a role: give a real account", text);
  return address;
}

/** A 32-byte id given as 0x + 64 hex digits, or as a label that is hashed with keccak256. */
export function parseIdOrLabel(text: string, what: string): string {
  const value = text.trim();
  const problem = idOrLabelProblem(text);
  if (problem !== undefined) fail(what, problem, value === "" ? undefined : text);
  return BYTES32.test(value) ? value.toLowerCase() : keccak256(toUtf8Bytes(value));
}

/** A short label stored as bytes32 (network, region): up to 31 bytes of UTF-8, or 0x + 64 hex. */
export function parseLabel(text: string, what: string): string {
  const value = text.trim();
  const problem = labelProblem(text);
  if (problem !== undefined) fail(what, problem, value === "" ? undefined : text);
  return BYTES32.test(value) ? value.toLowerCase() : encodeBytes32String(value);
}

/** A 33-byte compressed secp256k1 public key (0x02... or 0x03...), on the curve. */
export function parsePublicKey(text: string, what = "public key"): string {
  const value = text.trim();
  const form = "give the 33-byte compressed secp256k1 key: 0x02 or 0x03 followed by 64 hex digits";
  if (!/^0x0[23][0-9a-fA-F]{64}$/.test(value)) fail(what, `"${text}" is not a compressed public key: ${form}`, text);
  try {
    SigningKey.computePublicKey(value, true);
  } catch {
    fail(what, `"${text}" is not a point on secp256k1: ${form}`, text);
  }
  return value.toLowerCase();
}

/** A reason recorded on the ledger for an audit trail: must say something. */
export function parseReason(text: string | undefined, what = "--reason"): string {
  const reason = text?.trim() ?? "";
  if (reason === "") fail(what, 'the reason is empty: say why, e.g. --reason "key leaked"');
  return reason;
}

/** A 32-byte id that is a hash (a release id): 0x + 64 hex digits, non-zero; never a label. */
export function parseBytes32(text: string, what: string): string {
  const value = text.trim();
  if (!BYTES32.test(value)) fail(what, `"${text}" is not an id: give 0x followed by 64 hex digits`, text);
  if (BigInt(value) === 0n) fail(what, "the id is zero: give a non-zero id", text);
  return value.toLowerCase();
}

/** A whole number from `min` to `max` (thresholds, counts). */
export function parseCount(text: string, what: string, min = 1, max = 0xffffffff): number {
  const value = wholeNumberOf(text);
  if (value === undefined || !isWholeNumber(value, min, max)) {
    fail(what, `"${text}" is not a whole number from ${min} to ${max}`, text);
  }
  return value;
}

export const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;
export const EVERY_DAY = 0x7f;

/** A UTC time window "HH:MM-HH:MM" as minutes after midnight; it may wrap midnight (22:00-02:00), and equal bounds mean the whole day. */
export function parseWindow(text: string, what = "--window"): { startMinute: number; endMinute: number } {
  const m = /^(\d{2}):(\d{2})-(\d{2}):(\d{2})$/.exec(text.trim());
  const minute = (h: string, mm: string) => (Number(h) < 24 && Number(mm) < 60 ? Number(h) * 60 + Number(mm) : NaN);
  const bounds = m ? [minute(m[1], m[2]), minute(m[3], m[4])] : [NaN, NaN];
  if (bounds.some(Number.isNaN)) fail(what, `"${text}" is not a window: give HH:MM-HH:MM in UTC (00:00 to 23:59), e.g. 22:00-02:00`, text);
  return { startMinute: bounds[0], endMinute: bounds[1] };
}

/** Weekdays as a mask (bit 0 = Monday): "all", or names and ranges such as "mon-fri,sun". */
export function parseWeekdays(text: string, what = "--days"): number {
  const value = text.trim().toLowerCase();
  if (value === "all") return EVERY_DAY;
  const day = (name: string) => {
    const i = WEEKDAYS.indexOf(name.trim() as (typeof WEEKDAYS)[number]);
    if (i < 0) fail(what, `"${name.trim()}" is not a day: give ${WEEKDAYS.join(",")} (or ranges such as mon-fri), or all`, text);
    return i;
  };
  let mask = 0;
  for (const part of value.split(",")) {
    if (part.trim() === "") fail(what, `"${text}" has an empty day: give e.g. mon,wed,fri or all`, text);
    const [from, to] = part.split("-");
    if (to === undefined) mask |= 1 << day(from);
    else
      for (let i = day(from), end = day(to); ; i = (i + 1) % 7) {
        mask |= 1 << i;
        if (i === end) break;
      }
  }
  return mask;
}

/** The weekday mask as names, e.g. "mon,tue" or "all". */
export function formatWeekdays(mask: number): string {
  if ((mask & EVERY_DAY) === EVERY_DAY) return "all";
  return WEEKDAYS.filter((_, i) => (mask >> i) & 1).join(",");
}

/** Minutes after midnight as HH:MM. */
export function formatMinute(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * A point in time as Unix seconds: an ISO-8601 time with its offset (2026-12-01T08:00Z; a bare
 * date is midnight UTC), `now`, or `+<n>(s|m|h|d)` after `now` (the caller's idea of now, in seconds).
 */
export function parseStartTime(text: string, now: number, what: string): number {
  const value = text.trim();
  if (value === "now") return now;
  const relative = /^\+(\d+)([smhd])$/.exec(value);
  if (relative) return now + Number(relative[1]) * UNIT_SECONDS[relative[2]];
  const ms = ISO_TIME.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) fail(what, `"${text}" is not a time: give an ISO-8601 time with its offset (2026-12-01T08:00Z), now, or +<n>s|m|h|d`, text);
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0 || seconds >= 2 ** 40) fail(what, `"${text}" is outside the times the ledger holds (1970 to year 36812)`, text);
  return seconds;
}

/**
 * A point in the past as Unix seconds, for a compromise time: an ISO-8601 time with its offset
 * (2026-12-01T08:00Z; a bare date is midnight UTC), `now`, or `-<n>(s|m|h|d)` before `now`.
 */
export function parsePastTime(text: string, now: number, what: string): number {
  const value = text.trim();
  const ago = /^-(\d+)([smhd])$/.exec(value);
  const seconds = ago ? now - Number(ago[1]) * UNIT_SECONDS[ago[2]] : value.startsWith("+") ? NaN : parseStartTime(value, now, what);
  if (Number.isNaN(seconds)) fail(what, `"${text}" is in the future: give the time the key was first exposed, now or earlier`, text);
  if (seconds < 0) fail(what, `"${text}" is before 1970`, text);
  if (seconds > now)
    fail(what, `"${text}" is after the ledger's latest block (${new Date(now * 1000).toISOString()}): give the time the key was first exposed`, text);
  return seconds;
}
