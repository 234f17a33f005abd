import { ZeroAddress, encodeBytes32String, getAddress, isAddress, keccak256, toUtf8Bytes, SigningKey } from "ethers";
import { InputError } from "../core/errors";

/**
 * Checks of command-line input, made before anything is sent: each throws an InputError that
 * names the input, says what is wrong and what to give instead.
 */

const MAX_NAME_BYTES = 64; // the registry's limit (ICatalog: 1..64 bytes)
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

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
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < 1 || value > max) {
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
  if (BYTES32.test(value)) {
    if (BigInt(value) === 0n) fail(what, "the id is zero: give a non-zero id or a label", text);
    return value.toLowerCase();
  }
  if (/^0x[0-9a-fA-F]*$/.test(value))
    fail(what, `"${text}" looks like hex but is not 32 bytes: give 0x + 64 hex digits, or a label`, text);
  if (value === "") fail(what, "it is empty: give 0x + 64 hex digits, or a label (hashed with keccak256)");
  return keccak256(toUtf8Bytes(value));
}

/** A short label stored as bytes32 (network, region): up to 31 bytes of UTF-8, or 0x + 64 hex. */
export function parseLabel(text: string, what: string): string {
  const value = text.trim();
  if (BYTES32.test(value)) return value.toLowerCase();
  if (value === "") fail(what, "the label is empty: give a short label such as eu-west");
  if (toUtf8Bytes(value).length > 31) fail(what, `"${text}" is longer than 31 bytes: shorten it`, text);
  return encodeBytes32String(value);
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
