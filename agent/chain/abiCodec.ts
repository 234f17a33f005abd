import { getAddress, type FunctionFragment, type ParamType } from "ethers";

/**
 * An ABI encoder and decoder compiled once per type (issue 17). ethers' AbiCoder rebuilds its tree of coders
 * on every call, and a fleet's update checks in one process (or a firmware server's entitlement
 * batches) paid about 1 ms of a core per lens query for it: more than the rest of the read. The
 * types still come from the contracts' ABI (the ParamTypes ethers parsed), so there is one source
 * of truth for the layout; ethers' coder is this one's oracle in the tests.
 *
 * Values are what ethers accepts for the types the agents use: hex strings or bytes for `address`,
 * `bytesN` and `bytes`; bigint, safe integer or numeric string for `uintN` and `intN`; booleans;
 * arrays; tuples as arrays or objects by component name. Anything else is a TypeError naming the
 * path of the bad value (for example `queries[0].release.hardware[1]`).
 *
 * Decoded values: bigint for integers, booleans, checksummed addresses, lower-case hex for bytes,
 * strings, arrays, and tuples as objects by component name (arrays where a component has none).
 * The answer comes from a node that may lie or be cut short: every offset and length is checked
 * against the data before it is followed, so a bad answer is an error, never a huge allocation,
 * and a value that does not fit its type (a uint8 above 255, a bool other than 0 or 1, bad UTF-8)
 * is refused where ethers would mask it.
 */

interface Compiled {
  /** Whether the type's encoding is referenced by an offset from its tuple's head. */
  dynamic: boolean;
  /** The encoding as lower-case hex without 0x; `path` names the value in errors. */
  encode(value: unknown, path: string): string;
  /** The bytes its head takes in a tuple (32 for a dynamic type: its offset). */
  headBytes: number;
  /** The value encoded at `at` in `data` (for a dynamic type, `at` is where its encoding starts). */
  decode(data: Uint8Array, at: number, path: string): unknown;
}

const compiledTypes = new WeakMap<ParamType, Compiled>();
const selectors = new WeakMap<FunctionFragment, string>();

/** The call data of `fragment(...args)`: its selector, then the arguments' tuple. */
export function encodeFunctionCall(fragment: FunctionFragment, args: readonly unknown[]): string {
  let selector = selectors.get(fragment);
  if (!selector) selectors.set(fragment, (selector = fragment.selector.slice(2)));
  return "0x" + selector + encodeArguments(fragment.inputs, args);
}

/** The arguments' tuple as lower-case hex without 0x (what a constructor's arguments append to its creation code). */
export function encodeArguments(params: readonly ParamType[], args: readonly unknown[]): string {
  if (args.length !== params.length) throw new TypeError(`ABI: ${params.length} arguments expected, ${args.length} given`);
  return encodeTuple(
    params.map(compile),
    args,
    params.map((p, i) => p.name || String(i)),
  );
}

/**
 * The outputs of `fragment` decoded from a call's return data (0x hex), in order. Throws a
 * TypeError when the data is not a valid encoding of them (cut short, an offset or length out of
 * bounds, a value that does not fit its type).
 */
export function decodeFunctionResult(fragment: FunctionFragment, data: string): unknown[] {
  if (typeof data !== "string" || !HEX.test(data)) throw new TypeError(`ABI: the result of ${fragment.name} is not hex data`);
  const bytes = Buffer.from(data.slice(2), "hex");
  const parts = fragment.outputs.map(compile);
  const names = fragment.outputs.map((p, i) => p.name || String(i));
  return decodeTuple(parts, names, bytes, 0, `${fragment.name}()`, true) as unknown[];
}

function compile(type: ParamType): Compiled {
  let c = compiledTypes.get(type);
  if (!c) compiledTypes.set(type, (c = compileUncached(type)));
  return c;
}

function compileUncached(type: ParamType): Compiled {
  if (type.isTuple()) {
    const parts = type.components.map(compile);
    const names = type.components.map((p, i) => p.name || String(i));
    const dynamic = parts.some((p) => p.dynamic);
    const asArray = type.components.some((p) => !p.name);
    return {
      dynamic,
      headBytes: dynamic ? 32 : parts.reduce((n, p) => n + p.headBytes, 0),
      encode: (value, path) => {
        if (value === null || typeof value !== "object") throw new TypeError(`ABI: ${path}: a tuple (array or object) expected, got ${describe(value)}`);
        const values = Array.isArray(value) ? value : names.map((n) => (value as Record<string, unknown>)[n]);
        return encodeTuple(parts, values, names, path);
      },
      decode: (data, at, path) => decodeTuple(parts, names, data, at, path, asArray),
    };
  }
  if (type.isArray()) {
    const child = compile(type.arrayChildren);
    const fixed = type.arrayLength;
    const dynamic = fixed === -1 || child.dynamic;
    return {
      dynamic,
      headBytes: dynamic ? 32 : fixed * child.headBytes,
      encode: (value, path) => {
        if (!Array.isArray(value)) throw new TypeError(`ABI: ${path}: an array expected, got ${describe(value)}`);
        if (fixed !== -1 && value.length !== fixed) throw new TypeError(`ABI: ${path}: ${fixed} elements expected, got ${value.length}`);
        const body = encodeTuple(
          value.map(() => child),
          value,
          value.map((_, i) => String(i)),
          path,
        );
        return fixed === -1 ? word(BigInt(value.length)) + body : body;
      },
      decode: (data, at, path) => {
        let length = fixed;
        if (fixed === -1) {
          length = readLength(data, at, path);
          at += 32;
          // Each element takes at least one word of head: a length beyond the data is a lie, not an allocation.
          if (length * child.headBytes > data.length - at) throw new TypeError(`ABI: ${path}: ${length} elements do not fit in the data`);
        }
        const parts = new Array<Compiled>(length).fill(child);
        return decodeTuple(
          parts,
          parts.map((_, i) => String(i)),
          data,
          at,
          path,
          true,
        );
      },
    };
  }
  return elementary(type.type);
}

/** A tuple's head (static parts inline, offsets to the dynamic ones) and then its tail. */
function encodeTuple(parts: readonly Compiled[], values: readonly unknown[], names: readonly string[], path?: string): string {
  if (values.length !== parts.length) throw new TypeError(`ABI: ${path ?? "arguments"}: ${parts.length} values expected, got ${values.length}`);
  const encoded = parts.map((p, i) => p.encode(values[i], childPath(path, names[i])));
  let headBytes = 0;
  for (let i = 0; i < parts.length; i++) headBytes += parts[i].dynamic ? 32 : encoded[i].length / 2;
  let head = "";
  let tail = "";
  for (let i = 0; i < parts.length; i++) {
    if (!parts[i].dynamic) {
      head += encoded[i];
      continue;
    }
    head += word(BigInt(headBytes + tail.length / 2));
    tail += encoded[i];
  }
  return head + tail;
}

/** The tuple encoded at `at`: its static parts in place, its dynamic parts where their offsets (from `at`) point. */
function decodeTuple(parts: readonly Compiled[], names: readonly string[], data: Uint8Array, at: number, path: string, asArray: boolean): unknown {
  const values: unknown[] = new Array(parts.length);
  let head = at;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const where = childPath(path, names[i]);
    if (p.dynamic) {
      const offset = readLength(data, head, where);
      if (at + offset >= data.length) throw new TypeError(`ABI: ${where}: offset ${offset} points past the data`);
      values[i] = p.decode(data, at + offset, where);
    } else {
      values[i] = p.decode(data, head, where);
    }
    head += p.headBytes;
  }
  if (asArray) return values;
  const named: Record<string, unknown> = {};
  for (let i = 0; i < parts.length; i++) named[names[i]] = values[i];
  return named;
}

function childPath(path: string | undefined, name: string): string {
  if (path === undefined) return name;
  return /^\d+$/.test(name) ? `${path}[${name}]` : `${path}.${name}`;
}

const ZERO_WORD = "0".repeat(64);
const HEX = /^0x(?:[0-9a-fA-F]{2})*$/;

function word(n: bigint): string {
  const hex = n.toString(16);
  return ZERO_WORD.slice(hex.length) + hex;
}

function padRight(hex: string): string {
  const rest = hex.length % 64;
  return rest === 0 ? hex : hex + ZERO_WORD.slice(rest);
}

/** The 32-byte word at `at`, checked to be inside the data. */
function readWord(data: Uint8Array, at: number, path: string): Uint8Array {
  if (at + 32 > data.length) throw new TypeError(`ABI: ${path}: the data ends at byte ${data.length}, before the word at ${at}`);
  return data.subarray(at, at + 32);
}

function readUint(data: Uint8Array, at: number, path: string): bigint {
  return BigInt("0x" + Buffer.from(readWord(data, at, path)).toString("hex"));
}

/** An offset or a length: a uint256 that must fit in the data to be followed. */
function readLength(data: Uint8Array, at: number, path: string): number {
  const n = readUint(data, at, path);
  if (n > BigInt(data.length)) throw new TypeError(`ABI: ${path}: ${n} is beyond the data's ${data.length} bytes`);
  return Number(n);
}

/** The `length` bytes after the length word at `at`. */
function readBytes(data: Uint8Array, at: number, path: string): Uint8Array {
  const length = readLength(data, at, path);
  if (at + 32 + length > data.length) throw new TypeError(`ABI: ${path}: ${length} bytes do not fit in the data`);
  return data.subarray(at + 32, at + 32 + length);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function elementary(type: string): Compiled {
  if (type === "address")
    return {
      dynamic: false,
      headBytes: 32,
      encode: (v, path) => "000000000000000000000000" + address(v, path),
      decode: (data, at, path) => {
        const w = readWord(data, at, path);
        if (w.subarray(0, 12).some((b) => b !== 0)) throw new TypeError(`ABI: ${path}: not an address (its top 12 bytes are not zero)`);
        return checksummed(Buffer.from(w.subarray(12)).toString("hex"));
      },
    };
  if (type === "bool")
    return {
      dynamic: false,
      headBytes: 32,
      encode: (v, path) => {
        if (typeof v !== "boolean") throw new TypeError(`ABI: ${path}: a boolean expected, got ${describe(v)}`);
        return word(v ? 1n : 0n);
      },
      decode: (data, at, path) => {
        const n = readUint(data, at, path);
        if (n > 1n) throw new TypeError(`ABI: ${path}: ${n} is not a bool (0 or 1)`);
        return n === 1n;
      },
    };
  if (type === "bytes")
    return {
      dynamic: true,
      headBytes: 32,
      encode: (v, path) => {
        const hex = bytesHex(v, path);
        return word(BigInt(hex.length / 2)) + padRight(hex);
      },
      decode: (data, at, path) => "0x" + Buffer.from(readBytes(data, at, path)).toString("hex"),
    };
  if (type === "string")
    return {
      dynamic: true,
      headBytes: 32,
      encode: (v, path) => {
        if (typeof v !== "string") throw new TypeError(`ABI: ${path}: a string expected, got ${describe(v)}`);
        const hex = Buffer.from(v, "utf8").toString("hex");
        return word(BigInt(hex.length / 2)) + padRight(hex);
      },
      decode: (data, at, path) => {
        try {
          return utf8.decode(readBytes(data, at, path));
        } catch (err) {
          if (err instanceof TypeError && err.message.startsWith("ABI:")) throw err;
          throw new TypeError(`ABI: ${path}: not UTF-8 text`, { cause: err });
        }
      },
    };
  const fixedBytes = /^bytes([0-9]+)$/.exec(type);
  if (fixedBytes) {
    const size = Number(fixedBytes[1]);
    return {
      dynamic: false,
      headBytes: 32,
      encode: (v, path) => {
        const hex = bytesHex(v, path);
        if (hex.length !== size * 2) throw new TypeError(`ABI: ${path}: ${size} bytes expected for ${type}, got ${hex.length / 2}`);
        return padRight(hex);
      },
      decode: (data, at, path) => "0x" + Buffer.from(readWord(data, at, path).subarray(0, size)).toString("hex"),
    };
  }
  const integer = /^(u?)int([0-9]*)$/.exec(type);
  if (integer) {
    const signed = integer[1] === "";
    const bits = BigInt(integer[2] || "256");
    const [min, max] = signed ? [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n] : [0n, (1n << bits) - 1n];
    return {
      dynamic: false,
      headBytes: 32,
      encode: (v, path) => {
        const n = integerOf(v, path);
        if (n < min || n > max) throw new TypeError(`ABI: ${path}: ${n} is out of range for ${type}`);
        return word(n < 0n ? (1n << 256n) + n : n);
      },
      decode: (data, at, path) => {
        const raw = readUint(data, at, path);
        const n = signed && raw >> 255n === 1n ? raw - (1n << 256n) : raw;
        if (n < min || n > max) throw new TypeError(`ABI: ${path}: ${n} is out of range for ${type}`);
        return n;
      },
    };
  }
  throw new TypeError(`ABI: the type ${type} is not supported`);
}

/** Validated addresses (checksums checked once), by their text as given. */
const checkedAddresses = new Map<string, string>();
/** Checksummed addresses, by their 40 lower-case hex digits. */
const checksums = new Map<string, string>();
const MAX_CACHED_ADDRESSES = 4096;

function address(v: unknown, path: string): string {
  if (typeof v !== "string") throw new TypeError(`ABI: ${path}: an address (0x and 40 hex digits) expected, got ${describe(v)}`);
  let hex = checkedAddresses.get(v);
  if (hex === undefined) {
    try {
      hex = getAddress(v).slice(2).toLowerCase(); // also rejects a mixed-case address whose checksum is wrong
    } catch {
      throw new TypeError(`ABI: ${path}: ${JSON.stringify(v)} is not an address (0x and 40 hex digits, with a valid checksum if mixed case)`);
    }
    if (checkedAddresses.size >= MAX_CACHED_ADDRESSES) checkedAddresses.clear();
    checkedAddresses.set(v, hex);
  }
  return hex;
}

function checksummed(hex: string): string {
  let a = checksums.get(hex);
  if (a === undefined) {
    a = getAddress("0x" + hex);
    if (checksums.size >= MAX_CACHED_ADDRESSES) checksums.clear();
    checksums.set(hex, a);
  }
  return a;
}

function bytesHex(v: unknown, path: string): string {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex");
  if (typeof v !== "string" || !HEX.test(v)) throw new TypeError(`ABI: ${path}: bytes (0x and an even number of hex digits) expected, got ${describe(v)}`);
  return v.slice(2).toLowerCase();
}

function integerOf(v: unknown, path: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new TypeError(`ABI: ${path}: ${v} is not a safe integer (give a bigint)`);
    return BigInt(v);
  }
  if (typeof v === "string" && /^(?:-?[0-9]+|0x[0-9a-fA-F]+)$/.test(v)) return BigInt(v);
  throw new TypeError(`ABI: ${path}: an integer expected, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 42 ? v.slice(0, 42) + "…" : v);
  if (typeof v === "bigint") return `${v}n`;
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : String(v);
}
