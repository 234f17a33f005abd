import { getBytes, isHexString, ZeroHash } from "ethers";
import { buildSortedTree, keccak256Bytes, verifySortedProof } from "./merkle";
import { InputError } from "../core/errors";

/**
 * Device status records as Merkle leaves, matching contracts/StatusAnchors.sol (verifyStatus):
 *   leaf = keccak256(keccak256(abi.encode(deviceId, releaseId, version, outcome, reportCounter, reportedAt)))
 * The double hash keeps a leaf from being read as an inner node. The tree is a sorted-pair tree of
 * merkle.ts (OpenZeppelin MerkleProof on-chain), as for device batches (deviceTree.ts). The leaf is
 * encoded here only: the tracker, which anchors a fleet chunk by chunk, hashes its records with
 * statusLeafBytes.
 */

/** Outcome codes of a status record (uint8 on-chain). */
export const STATUS_OUTCOME = {
  /** The device has reported no update result yet. */
  none: 0,
  /** The release is installed and confirmed: the device runs it. */
  installed: 1,
  /** The release was offered and the device has not reported its result yet. */
  pending: 2,
  /** The image failed to install. */
  failed: 3,
  /** The image was installed, then rolled back. */
  rolledBack: 4,
  /** The device refused the release for a reason that will not pass by itself. */
  rejected: 5,
} as const;

export type StatusOutcome = (typeof STATUS_OUTCOME)[keyof typeof STATUS_OUTCOME];

const OUTCOME_CODES: ReadonlySet<number> = new Set(Object.values(STATUS_OUTCOME));
const FAILED_OUTCOMES: ReadonlySet<number> = new Set([STATUS_OUTCOME.failed, STATUS_OUTCOME.rolledBack, STATUS_OUTCOME.rejected]);

const UINT64_MAX = (1n << 64n) - 1n;
const UINT40_MAX = (1n << 40n) - 1n;
const UINT32_MAX = 0xffffffff;

/** A device's state as its tracker took it from the device's last report. */
export interface StatusRecord {
  deviceId: string; // bytes32, non-zero
  /** The release the last result is about (the one the device runs when installed); ZeroHash for none. */
  releaseId: string;
  version: bigint; // uint64, the release's encoded version (0 for none)
  outcome: StatusOutcome; // uint8
  reportCounter: bigint; // uint64, the counter of the report the record comes from
  reportedAt: number; // uint40, unix seconds the tracker took the report
}

/** Per-release counts as StatusAnchors.anchor takes them. */
export interface ReleaseCounts {
  releaseId: string;
  installed: number;
  failed: number;
  pending: number;
}

export function statusLeaf(record: StatusRecord): string {
  return "0x" + statusLeafBytes(record).toString("hex");
}

/** statusLeaf as bytes. */
export function statusLeafBytes(record: StatusRecord): Buffer {
  return keccak256Bytes(keccak256Bytes(statusWords(record)));
}

/**
 * abi.encode(bytes32 deviceId, bytes32 releaseId, uint64 version, uint8 outcome, uint64
 * reportCounter, uint40 reportedAt): six static words, each value right-aligned in its own,
 * written directly (AbiCoder takes several times as long, and the tracker hashes a leaf per device
 * per anchor; statusTree.test checks both agree). Throws, as abi.encode does, for a value that
 * does not fit its type.
 */
function statusWords(record: StatusRecord): Buffer {
  const w = Buffer.alloc(192);
  w.set(bytes32(record.deviceId, "device id"), 0);
  w.set(bytes32(record.releaseId, "release id"), 32);
  w.writeBigUInt64BE(BigInt(record.version), 88);
  w.writeUInt8(integer(record.outcome, "outcome"), 127);
  w.writeBigUInt64BE(BigInt(record.reportCounter), 152);
  w.writeUIntBE(integer(record.reportedAt, "reported-at"), 187, 5);
  return w;
}

function bytes32(value: string, what: string): Uint8Array {
  const b = getBytes(value, what);
  if (b.length !== 32) throw new RangeError(`a status record's ${what} must be 32 bytes, not ${b.length}`);
  return b;
}

function integer(value: number, what: string): number {
  if (!Number.isInteger(value)) throw new RangeError(`a status record's ${what} must be a whole number, not ${String(value)}`);
  return value;
}

export interface StatusTree {
  /** The root StatusAnchors.anchor takes. */
  root: string;
  /** How many devices the tree covers (one record each). */
  deviceCount: number;
  /** The counts per release, ascending by release id, as StatusAnchors.anchor takes them. */
  counts: ReleaseCounts[];
  /** The proof for each record, in the order given. */
  proofs: string[][];
}

/**
 * Builds the status tree of a fleet: one record per device. Counts each release's devices by
 * outcome: installed; failed (failed, rolled back, rejected); pending.
 */
export function buildStatusTree(records: StatusRecord[]): StatusTree {
  if (records.length === 0) throw new InputError("STATUS_TREE_EMPTY", "a status anchor needs at least one device record");
  if (records.length > UINT32_MAX) throw new InputError("STATUS_TREE_TOO_LARGE", `a status anchor covers at most ${UINT32_MAX} devices`);
  const seen = new Set<string>();
  for (const [i, r] of records.entries()) {
    checkStatusRecord(r, i);
    const id = r.deviceId.toLowerCase();
    if (seen.has(id)) {
      throw new InputError("STATUS_TREE_DUPLICATE", `device ${r.deviceId} appears twice; give each device its latest record only`, { details: { index: i } });
    }
    seen.add(id);
  }
  const { root, proofs } = buildSortedTree(records.map(statusLeaf));
  return { root, deviceCount: records.length, counts: releaseCounts(records), proofs };
}

/** The counts per release of these records, ascending by release id; records about no release are left out. */
export function releaseCounts(records: StatusRecord[]): ReleaseCounts[] {
  const byRelease = new Map<string, ReleaseCounts>();
  for (const r of records) {
    if (r.releaseId === ZeroHash || r.outcome === STATUS_OUTCOME.none) continue;
    const id = r.releaseId.toLowerCase();
    let c = byRelease.get(id);
    if (!c) {
      c = { releaseId: id, installed: 0, failed: 0, pending: 0 };
      byRelease.set(id, c);
    }
    if (r.outcome === STATUS_OUTCOME.installed) c.installed += 1;
    else if (r.outcome === STATUS_OUTCOME.pending) c.pending += 1;
    else if (FAILED_OUTCOMES.has(r.outcome)) c.failed += 1;
  }
  return [...byRelease.values()].sort((a, b) => (BigInt(a.releaseId) < BigInt(b.releaseId) ? -1 : 1));
}

/**
 * Whether `proof` shows `record` in the status tree with this root, as StatusAnchors.verifyStatus
 * checks it on-chain.
 */
export function verifyStatusProof(record: StatusRecord, proof: string[], root: string): boolean {
  return verifySortedProof(statusLeaf(record), proof, root);
}

/**
 * The checks a record must pass to be anchored: a non-zero 32-byte device id, a 32-byte release
 * id (zero only with outcome none), a known outcome code, and each number within its on-chain
 * width. Records are not checked on-chain: a record that fails here could never be proven.
 */
export function checkStatusRecord(record: StatusRecord, index = 0): void {
  const fail = (what: string): never => {
    throw new InputError("STATUS_RECORD_INVALID", `status record ${index} (${record.deviceId}): ${what}`, { details: { index } });
  };
  if (!isHexString(record.deviceId, 32) || record.deviceId === ZeroHash) fail("device id must be a non-zero 32-byte hex value");
  if (!isHexString(record.releaseId, 32)) fail("release id must be a 32-byte hex value (ZeroHash when the device has reported none)");
  if (!OUTCOME_CODES.has(record.outcome)) fail(`outcome must be one of the codes of STATUS_OUTCOME, not ${String(record.outcome)}`);
  if ((record.releaseId === ZeroHash) !== (record.outcome === STATUS_OUTCOME.none)) {
    fail("a record names a release exactly when it has an outcome (outcome none with ZeroHash)");
  }
  if (typeof record.version !== "bigint" || record.version < 0n || record.version > UINT64_MAX) fail("version must be a uint64 bigint");
  if (typeof record.reportCounter !== "bigint" || record.reportCounter < 0n || record.reportCounter > UINT64_MAX) {
    fail("report counter must be a uint64 bigint");
  }
  if (!Number.isInteger(record.reportedAt) || record.reportedAt < 0 || BigInt(record.reportedAt) > UINT40_MAX) {
    fail("reported-at must be unix seconds (uint40)");
  }
}
