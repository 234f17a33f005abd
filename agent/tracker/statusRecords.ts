import { ZeroHash, getBytes } from "ethers";
import { isRetriedLater } from "../core/updateOutcome";
import { hashSortedPair, keccak256Bytes as keccak } from "../crypto/merkle";
import { STATUS_OUTCOME, statusLeafBytes, type StatusOutcome, type StatusRecord } from "../crypto/statusTree";

/**
 * Status records at fleet scale (issue 6, status anchoring): the outcome code of a device's last
 * report, records packed in 54 bytes for the fleet database, and the status tree of
 * agent/crypto/statusTree.ts built chunk by chunk, so that a million devices are anchored and
 * proven without holding the tree. Pure: values in, values out.
 *
 * The tree is a sorted-pair tree of agent/crypto/merkle.ts (SortedMerkleTree; an odd node carried
 * up unchanged, leaves in the order given). Its nodes 10 levels above the leaves are the roots of
 * the aligned chunks of CHUNK_SIZE leaves, each as a tree of its own, so the root is the tree of
 * the chunks' roots, and a proof is the proof inside one chunk (rebuilt from that chunk's records)
 * followed by the proof of the chunk's root among the chunk roots (kept with the anchor).
 */

/** Leaves per chunk: 1024 (a proof needs one chunk's records and the anchor's chunk roots). */
export const CHUNK_SIZE = 1024;

/**
 * The outcome code of a device's last reported result (agent/crypto/statusTree STATUS_OUTCOME):
 * confirmed is installed; failed and rolled back are themselves; a blocked delivery and a refusal
 * that passes by itself (a wave not open) are pending; a rejection for good and a release declined
 * by the device's own policy are rejected (agent/core/updateOutcome); no result, or one the
 * tracker does not know, is none.
 */
export function statusOutcomeOf(outcome: string | null, code: string | null): StatusOutcome {
  switch (outcome) {
    case "confirmed":
      return STATUS_OUTCOME.installed;
    case "failed":
      return STATUS_OUTCOME.failed;
    case "rolled-back":
      return STATUS_OUTCOME.rolledBack;
    case "blocked":
    case "rejected":
      return isRetriedLater(outcome, code) ? STATUS_OUTCOME.pending : STATUS_OUTCOME.rejected;
    case "declined":
      return STATUS_OUTCOME.rejected;
    default:
      return STATUS_OUTCOME.none;
  }
}

/** A device row as the anchoring reads it: its last report, and the version of the release that report is about. */
export interface ReportedDevice {
  id: string;
  lastCounter: number;
  lastReportAt: number | null; // ms
  lastOutcome: string | null;
  lastCode: string | null;
  lastRelease: string | null;
  releaseVersion: string | null; // decimal, from the ledger mirror
}

/** The status record of a device from its last report (checkStatusRecord's rules hold for it). */
export function statusRecordOf(d: ReportedDevice): StatusRecord {
  const outcome = d.lastRelease ? statusOutcomeOf(d.lastOutcome, d.lastCode) : STATUS_OUTCOME.none;
  const none = outcome === STATUS_OUTCOME.none;
  return {
    deviceId: d.id.toLowerCase(),
    releaseId: none ? ZeroHash : d.lastRelease!.toLowerCase(),
    version: none ? 0n : BigInt(d.releaseVersion ?? 0),
    outcome,
    reportCounter: BigInt(d.lastCounter),
    reportedAt: Math.floor((d.lastReportAt ?? 0) / 1000),
  };
}

// ---------------------------------------------------------------------------- packed records

/** A record without its device id, packed: release id (32), version (8), outcome (1), counter (8), reported-at (5). */
export function packRecord(r: StatusRecord): Buffer {
  const b = Buffer.alloc(54);
  Buffer.from(getBytes(r.releaseId)).copy(b, 0);
  b.writeBigUInt64BE(r.version, 32);
  b.writeUInt8(r.outcome, 40);
  b.writeBigUInt64BE(r.reportCounter, 41);
  b.writeUIntBE(r.reportedAt, 49, 5);
  return b;
}

export function unpackRecord(deviceId: Buffer, b: Buffer): StatusRecord {
  return {
    deviceId: "0x" + deviceId.toString("hex"),
    releaseId: "0x" + b.subarray(0, 32).toString("hex"),
    version: b.readBigUInt64BE(32),
    outcome: b.readUInt8(40) as StatusOutcome,
    reportCounter: b.readBigUInt64BE(41),
    reportedAt: b.readUIntBE(49, 5),
  };
}

// ---------------------------------------------------------------------------- the tree's nodes

/**
 * Anchor format 2 (issue 19, item 11): each device's node in the tree is the pair of its status
 * leaf and its tags leaf (agent/tracker/deviceTags.ts tagsLeaf), hashed as the tree hashes pairs.
 * A status proof is then the tags leaf followed by the path, which StatusAnchors.verifyStatus
 * checks on the ledger unchanged; a tags proof is the status leaf followed by the same path.
 * Format 1 (before) had the status leaf alone as the device's node.
 */
export const ANCHOR_FORMAT_TAGS = 2;

const TAGS_DOMAIN = keccak(Buffer.from("ota-ledger.device-tags.v1", "utf8"));
const EMPTY_TAGS_HASH = keccak(Buffer.from("[]", "utf8"));

/** tagsLeaf over buffers: keccak256(keccak256(abi.encode(domain, deviceId, keccak256(canonical tags JSON)))). */
export function tagsLeafBuffer(deviceId: string, canonicalTags: string | null): Buffer {
  const w = Buffer.alloc(96);
  TAGS_DOMAIN.copy(w, 0);
  Buffer.from(getBytes(deviceId)).copy(w, 32);
  (canonicalTags === null || canonicalTags === "[]" ? EMPTY_TAGS_HASH : keccak(Buffer.from(canonicalTags, "utf8"))).copy(w, 64);
  return keccak(keccak(w));
}

/** A device's node in a format-2 tree: its status leaf and its tags leaf, paired as the tree pairs nodes. */
export function deviceNodeBuffer(r: StatusRecord, canonicalTags: string | null): Buffer {
  return hashSortedPair(statusLeafBytes(r), tagsLeafBuffer(r.deviceId, canonicalTags));
}

/** Chunk roots packed in one buffer (32 bytes each), as the fleet database keeps them. */
export const packNodes = (nodes: Buffer[]): Buffer => Buffer.concat(nodes);
export function unpackNodes(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += 32) out.push(b.subarray(i, i + 32));
  return out;
}
