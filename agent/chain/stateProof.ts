import { decodeRlp, encodeRlp, getAddress, getBytes, hexlify, isHexString, keccak256, toBeArray, zeroPadValue, type RlpStructuredData } from "ethers";
import { VerificationError } from "../core/errors";

/**
 * Ethereum state proofs, checked without trusting whoever sent them (no I/O here): an
 * `eth_getProof` answer (EIP-1186) against a state root, and a block header against its hash, so
 * a state root is only taken from a header whose hash is the one agreed. The tries are Merkle
 * Patricia tries keyed by keccak256 (the "secure" tries): the account trie by keccak(address), each
 * account's storage trie by keccak(slot). See the Ethereum yellow paper, appendix D.
 *
 * Codes: PROOF_MALFORMED (the answer is not an eth_getProof answer), PROOF_INVALID (it does not
 * prove what it claims against the root), HEADER_INVALID (the header does not hash to its hash,
 * or not to the one agreed).
 */
export class StateProofError extends VerificationError {}

/** The root of an empty trie: keccak256 of RLP(""), 0x80. An account without storage has it. */
export const EMPTY_TRIE_ROOT = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421";
/** keccak256 of no bytes: the code hash of an account without code. */
export const EMPTY_CODE_HASH = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";

/** A block header as far as proofs need it, from a header whose fields hash to `hash`. */
export interface VerifiedHeader {
  number: number;
  hash: string;
  stateRoot: string;
  timestamp: number;
}

/** An account as its proof shows it. An account that does not exist shows as nonce 0, no balance, no storage, no code. */
export interface ProvenAccount {
  address: string;
  nonce: bigint;
  balance: bigint;
  storageRoot: string;
  codeHash: string;
}

/** What eth_getProof answered, as sent: checked field by field before use. */
export interface GetProofAnswer {
  address: string;
  balance: string;
  codeHash: string;
  nonce: string;
  storageHash: string;
  accountProof: string[];
  storageProof: Array<{ key: string; value: string; proof: string[] }>;
}

// ------------------------------------------------------------------ block headers

/**
 * The header fields in RLP order. Each fork appends its fields, so a header carries a prefix of
 * the optional ones: London baseFeePerGas; Shanghai withdrawalsRoot; Cancun blobGasUsed,
 * excessBlobGas, parentBeaconBlockRoot; Prague requestsHash.
 */
const HEADER_FIELDS: ReadonlyArray<{ name: string; kind: "bytes" | "int" }> = [
  { name: "parentHash", kind: "bytes" },
  { name: "sha3Uncles", kind: "bytes" },
  { name: "miner", kind: "bytes" },
  { name: "stateRoot", kind: "bytes" },
  { name: "transactionsRoot", kind: "bytes" },
  { name: "receiptsRoot", kind: "bytes" },
  { name: "logsBloom", kind: "bytes" },
  { name: "difficulty", kind: "int" },
  { name: "number", kind: "int" },
  { name: "gasLimit", kind: "int" },
  { name: "gasUsed", kind: "int" },
  { name: "timestamp", kind: "int" },
  { name: "extraData", kind: "bytes" },
  { name: "mixHash", kind: "bytes" },
  { name: "nonce", kind: "bytes" },
];
const OPTIONAL_HEADER_FIELDS: ReadonlyArray<{ name: string; kind: "bytes" | "int" }> = [
  { name: "baseFeePerGas", kind: "int" },
  { name: "withdrawalsRoot", kind: "bytes" },
  { name: "blobGasUsed", kind: "int" },
  { name: "excessBlobGas", kind: "int" },
  { name: "parentBeaconBlockRoot", kind: "bytes" },
  { name: "requestsHash", kind: "bytes" },
];

/**
 * Checks a block as eth_getBlockByNumber / eth_getBlockByHash answer it: its header fields must
 * hash (keccak256 of their RLP) to its `hash`, and that to `agreedHash` when one is given (the
 * hash a quorum of endpoints agreed on). Only then is its stateRoot worth anything.
 */
export function verifyHeader(block: unknown, agreedHash?: string): VerifiedHeader {
  const b = block as Record<string, unknown> | null;
  if (typeof b !== "object" || b === null) throw new StateProofError("HEADER_INVALID", "the endpoint answered no block");
  const field = (name: string, kind: "bytes" | "int"): string => {
    const v = b[name];
    if (typeof v !== "string" || !isHexString(v) || (kind === "bytes" && v.length % 2 !== 0))
      throw new StateProofError("HEADER_INVALID", `the block's ${name} is not ${kind === "int" ? "a hex quantity" : "hex bytes"}: ${String(v)}`);
    return kind === "int" ? hexlify(toBeArray(BigInt(v))) : v;
  };
  const fields = HEADER_FIELDS.map((f) => field(f.name, f.kind));
  // The fork's fields are a prefix of the optional ones: one after a missing one is not a header of any fork.
  let missing: string | undefined;
  for (const f of OPTIONAL_HEADER_FIELDS) {
    if (b[f.name] === undefined || b[f.name] === null) {
      missing ??= f.name;
      continue;
    }
    if (missing) throw new StateProofError("HEADER_INVALID", `the block has ${f.name} but not ${missing}: no fork's header has that shape`);
    fields.push(field(f.name, f.kind));
  }
  const hash = field("hash", "bytes").toLowerCase();
  const computed = keccak256(encodeRlp(fields));
  if (computed !== hash) throw new StateProofError("HEADER_INVALID", `the block's header fields hash to ${computed}, not to its hash ${hash}`);
  if (agreedHash !== undefined && agreedHash.toLowerCase() !== hash)
    throw new StateProofError("HEADER_INVALID", `block ${hash} is not the agreed block ${agreedHash.toLowerCase()}`);
  return { number: Number(BigInt(b.number as string)), hash, stateRoot: fields[3].toLowerCase(), timestamp: Number(BigInt(b.timestamp as string)) };
}

// ------------------------------------------------------------------ the trie walk

type Node = RlpStructuredData;

/**
 * The value at `key` (already hashed: 32 bytes) in the trie with `root`, as `proof` shows it: the
 * nodes from the root down, each the one its parent names by hash (or embedded whole when its RLP
 * is under 32 bytes). Returns null when the proof shows the key absent (an empty branch, or a leaf
 * or extension for another path). Anything else (a node that does not hash to its reference, a
 * node of no known shape, nodes left over) is PROOF_INVALID.
 */
export function walkTrie(root: string, key: string, proof: string[], what: string): string | null {
  const invalid = (why: string): never => {
    throw new StateProofError("PROOF_INVALID", `the proof of ${what} ${why}`);
  };
  const path = nibbles(getBytes(key));
  let at = 0; // nibbles of the path consumed
  let used = 0; // proof nodes consumed
  // What the next node must be: a hash reference (32 bytes) into the proof, or a node embedded in its parent.
  let next: { hash: string } | { node: Node } = { hash: root.toLowerCase() };
  const end = (value: string | null): string | null => (used === proof.length ? value : invalid(`has ${proof.length - used} node(s) past its end`));
  for (;;) {
    let node: Node;
    if ("hash" in next) {
      if (used >= proof.length) {
        // An empty trie may be shown by no node at all (geth) or by its one empty node (EDR).
        return next.hash === EMPTY_TRIE_ROOT && used === 0 ? null : invalid(`ends before reaching a value (${used} node(s))`);
      }
      const raw = proof[used++];
      if (!isHexString(raw) || raw.length % 2 !== 0) invalid(`has a node that is not hex bytes`);
      if (keccak256(raw) !== next.hash)
        invalid(`has node ${used - 1} that does not hash to ${used === 1 ? "the root" : "its parent's reference"} ${next.hash}`);
      try {
        node = decodeRlp(raw);
      } catch {
        return invalid(`has node ${used - 1} that is not RLP`);
      }
    } else node = next.node;
    if (typeof node === "string") {
      // The empty node: only as the whole of an empty trie.
      if (node === "0x" && next && "hash" in next && next.hash === EMPTY_TRIE_ROOT) return end(null);
      return invalid(`has a node that is neither a branch, an extension nor a leaf`);
    }
    if (node.length === 17) {
      if (at === path.length) return invalid("reaches a branch after the whole key (keys here are all 32 bytes)");
      const child = node[path[at++]];
      if (child === "0x") return end(null); // no branch for this nibble: the key is absent
      next = reference(child, invalid);
      continue;
    }
    if (node.length === 2 && typeof node[0] === "string") {
      const encoded = getBytes(node[0]);
      if (encoded.length === 0) return invalid("has a leaf or extension without a path");
      const flag = encoded[0] >> 4;
      if (flag > 3) return invalid(`has a path with an unknown prefix ${flag}`);
      const partial = nibbles(encoded);
      const own = flag & 1 ? partial.slice(1) : partial.slice(2); // odd: one nibble in the first byte
      const leaf = flag >= 2;
      const matches = own.length <= path.length - at && own.every((n, i) => n === path[at + i]);
      if (leaf) {
        // A leaf for another key shows that ours is absent: the trie would have branched above it.
        if (!matches || at + own.length !== path.length) return end(null);
        if (typeof node[1] !== "string") return invalid("has a leaf whose value is not bytes");
        return end(node[1]);
      }
      if (!matches) return end(null);
      if (own.length === 0) return invalid("has an extension with an empty path");
      at += own.length;
      next = reference(node[1], invalid);
      continue;
    }
    return invalid(`has a node of ${node.length} items: neither a branch (17) nor an extension or leaf (2)`);
  }
}

function reference(child: Node, invalid: (why: string) => never): { hash: string } | { node: Node } {
  if (typeof child !== "string") return { node: child }; // embedded: its RLP is under 32 bytes
  if (child.length !== 66) return invalid(`names a child by ${(child.length - 2) / 2} bytes instead of a 32-byte hash`);
  return { hash: child.toLowerCase() };
}

function nibbles(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (const b of bytes) out.push(b >> 4, b & 15);
  return out;
}

// ------------------------------------------------------------------ accounts and storage

/**
 * Checks an eth_getProof answer against `stateRoot`: the account (its nonce, balance, storage root
 * and code hash, as the answer states them) is the one the account proof shows, and each storage
 * proof shows its value under the account's storage root. Returns the account and the proven value
 * of each asked slot, by the slot as asked (lowercase 32-byte hex; an absent slot is 0). Every slot
 * in `slots` must be answered, and for itself, not for another.
 */
export function verifyGetProof(stateRoot: string, address: string, slots: string[], answer: unknown): { account: ProvenAccount; values: Map<string, bigint> } {
  const a = shapeOf(answer);
  const who = getAddress(address);
  if (getAddress(a.address) !== who) throw new StateProofError("PROOF_INVALID", `the proof is for account ${a.address}, not ${who}`);
  const leaf = walkTrie(stateRoot, keccak256(who), a.accountProof, `account ${who}`);
  let account: ProvenAccount;
  if (leaf === null) account = { address: who, nonce: 0n, balance: 0n, storageRoot: EMPTY_TRIE_ROOT, codeHash: EMPTY_CODE_HASH };
  else {
    const fields = decodeRlp(leaf);
    if (!Array.isArray(fields) || fields.length !== 4 || fields.some((f) => typeof f !== "string"))
      throw new StateProofError("PROOF_INVALID", `the proof of account ${who} ends in a value that is not an account`);
    const [nonce, balance, storageRoot, codeHash] = fields as string[];
    account = { address: who, nonce: quantity(nonce), balance: quantity(balance), storageRoot: storageRoot.toLowerCase(), codeHash: codeHash.toLowerCase() };
  }
  const claimed: Array<[string, bigint | string]> = [
    ["nonce", BigInt(a.nonce)],
    ["balance", BigInt(a.balance)],
    ["storageHash", a.storageHash.toLowerCase()],
    ["codeHash", a.codeHash.toLowerCase()],
  ];
  const proven: Record<string, bigint | string> = {
    nonce: account.nonce,
    balance: account.balance,
    storageHash: account.storageRoot,
    codeHash: account.codeHash,
  };
  for (const [name, value] of claimed)
    if (proven[name] !== value) throw new StateProofError("PROOF_INVALID", `the answer states ${name} ${value} for ${who}; its proof shows ${proven[name]}`);

  const values = new Map<string, bigint>();
  const answered = new Map(a.storageProof.map((p) => [slotKey(p.key), p]));
  for (const slot of slots.map(slotKey)) {
    const p = answered.get(slot);
    if (!p)
      throw new StateProofError("PROOF_INVALID", `the answer has no proof for slot ${slot} of ${who} (it proves ${[...answered.keys()].join(", ") || "none"})`);
    const raw = walkTrie(account.storageRoot, keccak256(slot), p.proof, `slot ${slot} of ${who}`);
    let value = 0n;
    if (raw !== null) {
      const item = decodeRlp(raw);
      // A stored zero (RLP "0x80") is how some nodes (anvil) keep a slot written back to zero: it proves 0.
      if (typeof item !== "string" || getBytes(item).length > 32 || getBytes(item)[0] === 0)
        throw new StateProofError("PROOF_INVALID", `the proof of slot ${slot} of ${who} ends in a value that is not a stored word`);
      value = item === "0x" ? 0n : BigInt(item);
    }
    if (BigInt(p.value) !== value)
      throw new StateProofError("PROOF_INVALID", `the answer states ${p.value} in slot ${slot} of ${who}; its proof shows ${hexQuantity(value)}`);
    values.set(slot, value);
  }
  return { account, values };
}

/** A slot as a 32-byte lowercase hex key, however the caller or the endpoint wrote it (0x0, 0x00..01). */
export function slotKey(slot: string | bigint): string {
  const hex = typeof slot === "bigint" ? hexQuantity(slot) : slot;
  const bytes = getBytes(hex.length % 2 === 0 ? hex : "0x0" + hex.slice(2));
  if (bytes.length > 32) throw new StateProofError("PROOF_MALFORMED", `${hex} is not a storage slot (over 32 bytes)`);
  return zeroPadValue(bytes, 32).toLowerCase();
}

function shapeOf(answer: unknown): GetProofAnswer {
  const a = answer as Partial<GetProofAnswer> | null;
  const hex = (v: unknown) => typeof v === "string" && isHexString(v);
  const hexList = (v: unknown) => Array.isArray(v) && v.every(hex);
  const ok =
    typeof a === "object" &&
    a !== null &&
    [a.address, a.balance, a.codeHash, a.nonce, a.storageHash].every(hex) &&
    hexList(a.accountProof) &&
    Array.isArray(a.storageProof) &&
    a.storageProof.every((p) => typeof p === "object" && p !== null && hex(p.key) && hex(p.value) && hexList(p.proof));
  if (!ok) throw new StateProofError("PROOF_MALFORMED", "the endpoint's eth_getProof answer is not an EIP-1186 account proof");
  return a as GetProofAnswer;
}

function quantity(rlpInt: string): bigint {
  return rlpInt === "0x" ? 0n : BigInt(rlpInt);
}

function hexQuantity(v: bigint): string {
  return "0x" + v.toString(16);
}
