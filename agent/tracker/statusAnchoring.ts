import type { StatusAnchors } from "../chain/contracts";
import { OtaError } from "../core/errors";
import { releaseCounts, statusLeafBytes, type ReleaseCounts, type StatusRecord } from "../crypto/statusTree";
import { SortedMerkleTree } from "../crypto/merkle";
import type { AnchorDb, FleetStore } from "./store";
import type { LedgerAccount } from "./ledgerAccount";
import { canonicalTags } from "./deviceTags";
import { TRACKER_DEFAULTS } from "../core/serviceDefaults";
import {
  ANCHOR_FORMAT_TAGS,
  CHUNK_SIZE,
  deviceNodeBuffer,
  tagsLeafBuffer,
  packNodes,
  packRecord,
  statusRecordOf,
  unpackNodes,
  unpackRecord,
} from "./statusRecords";

/** An anchor this tracker made, as the API lists it. */
export interface AnchorSummary {
  index: number; // StatusAnchors' anchor index
  root: string;
  txHash: string;
  block: number;
  anchoredAt: number; // ms, when the tracker recorded it
  deviceCount: number;
  counts: ReleaseCounts[];
  account: string; // the tracker's ledger account that sent it
  contract: string; // the StatusAnchors contract
}

/** A device's record in an anchor and its proof, as StatusAnchors.verifyStatus takes them. */
export interface AnchorProof {
  anchorIndex: number;
  root: string;
  contract: string;
  record: { deviceId: string; releaseId: string; version: string; outcome: number; reportCounter: string; reportedAt: number };
  proof: string[];
  /**
   * 1: the device's node is its status leaf (anchors before issue 19, item 11); 2: the pair of its
   * status leaf and its tags leaf, the proof's first element being the tags leaf (agent/tracker/statusRecords.ts).
   */
  format: number;
  /** Format 2: the device's tags at the anchor, whose leaf (deviceTags.tagsLeaf) the proof's first element is. */
  tags?: Record<string, string>;
}

/** The result of one anchoring round: an anchor made, or why none was. */
export type AnchorResult = { anchored: true; anchor: AnchorSummary } | { anchored: false; reason: "unchanged" | "no-devices" };

const hex = (b: Buffer) => "0x" + b.toString("hex");
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Status anchoring (issue 6): the Merkle root of every reported device's status record
 * (agent/crypto/statusTree, from the device's last report), with the device count and the counts
 * per release, anchored on StatusAnchors by the tracker's ledger account; the records are kept in
 * the fleet database, packed, so that a device's proof can be served later. Devices are read a
 * chunk at a time and the tree is built chunk by chunk (agent/tracker/statusRecords): memory does
 * not grow with the fleet. Nothing is anchored when nothing changed since the last anchor.
 */
export class StatusAnchoring {
  private readonly keepRecords: number;
  private readonly chunkSize: number;

  /** `keepRecords`: the anchors whose records are kept for proofs (default 168: a week of hourly anchors). `chunkSize`: a power of two (tests). */
  constructor(
    private readonly deps: { db: FleetStore; anchors: StatusAnchors; account: LedgerAccount; now: () => number; log?: (line: string) => void },
    o: { keepRecords?: number; chunkSize?: number } = {},
  ) {
    this.keepRecords = o.keepRecords ?? TRACKER_DEFAULTS.anchorRecordsKept;
    this.chunkSize = o.chunkSize ?? CHUNK_SIZE;
    if (!Number.isInteger(Math.log2(this.chunkSize))) throw new RangeError("the chunk size is a power of two");
    // A crash between building and recording leaves an anchor without an index: it was never made (or is lost).
    this.anchors.forgetUnrecorded();
  }

  private get anchors() {
    return this.deps.db.anchors;
  }

  /** Builds the status tree of the fleet, anchors it and records it; or says why not. */
  async anchor(): Promise<AnchorResult> {
    const fingerprint = this.anchors.fingerprint();
    const last = await this.lastOnChain();
    if (last?.fingerprint === fingerprint) return { anchored: false, reason: "unchanged" };
    const contract = String(this.deps.anchors.target).toLowerCase();
    const account = (await this.deps.account.getAddress()).toLowerCase();
    const anchorId = this.anchors.begin({ at: this.deps.now(), account, contract, fingerprint, chunkSize: this.chunkSize, format: ANCHOR_FORMAT_TAGS });
    const forget = () => this.anchors.forget(anchorId);
    try {
      const built = await this.build(anchorId);
      if (built.deviceCount === 0) {
        forget();
        return { anchored: false, reason: "no-devices" };
      }
      if (last && last.root === built.root) {
        forget();
        return { anchored: false, reason: "unchanged" };
      }
      this.anchors.setBuilt(anchorId, { root: built.root, deviceCount: built.deviceCount, counts: JSON.stringify(built.counts), chunkRoots: built.chunkRoots });
      const anchors = this.deps.anchors;
      const receipt = await this.deps.account.send(`anchoring the status of ${built.deviceCount} device(s)`, (s) =>
        anchors.connect(s).anchor(built.root, built.deviceCount, built.counts),
      );
      const event = receipt.logs
        .filter((l) => l.address.toLowerCase() === contract)
        .map((l) => anchors.interface.parseLog(l))
        .find((e) => e?.name === "StatusAnchored");
      if (!event) throw new OtaError("ANCHOR_EVENT_MISSING", `the anchor transaction ${receipt.hash} emitted no StatusAnchored event`);
      this.anchors.setAnchored(anchorId, { index: Number(event.args.anchorIndex), txHash: receipt.hash, block: receipt.blockNumber, at: this.deps.now() });
      this.anchors.pruneRecords(this.keepRecords);
      return { anchored: true, anchor: toSummary(this.anchors.get(anchorId)!) };
    } catch (err) {
      forget();
      throw err;
    }
  }

  /**
   * The newest anchor recorded whose transaction is still on the chain: an anchor a reorganisation
   * dropped (issue 16) is forgotten, records and all, so that this round anchors afresh (its index
   * goes to the next anchor on the chain; the account cancels the dropped transaction's nonce).
   */
  private async lastOnChain(): Promise<AnchorDb | undefined> {
    for (;;) {
      const last = this.anchors.newest();
      if (!last || (await this.deps.account.isMined(last.tx_hash))) return last;
      this.deps.log?.(`status anchor ${last.anchor_index} (tx ${last.tx_hash}) is no longer on the chain (a reorganisation): anchoring again`);
      this.anchors.forget(last.id);
    }
  }

  /** The canonical tags (deviceTags.canonicalTags) of these devices; null for one without tags. */
  private tagsOf(ids: string[]): Map<string, string> {
    return new Map([...this.deps.db.tags.ofDevices(ids)].map(([d, t]) => [d, canonicalTags(t)]));
  }

  /** Reads the reported devices a chunk at a time (in id order), stores their packed records and hashes each chunk. */
  private async build(anchorId: number): Promise<{ root: string; deviceCount: number; counts: ReleaseCounts[]; chunkRoots: Buffer }> {
    const counts = new Map<string, ReleaseCounts>();
    const chunkRoots: Buffer[] = [];
    let after = "";
    let position = 0;
    for (;;) {
      const rows = this.anchors.reportedDevices(after, this.chunkSize);
      if (rows.length === 0) break;
      const records = rows.map(statusRecordOf);
      const tags = this.tagsOf(records.map((r) => r.deviceId));
      this.anchors.addRecords(
        anchorId,
        position,
        records.map((r) => ({ deviceId: Buffer.from(r.deviceId.slice(2), "hex"), record: packRecord(r), tags: tags.get(r.deviceId) ?? null })),
      );
      position += records.length;
      for (const c of releaseCounts(records)) {
        const sum = counts.get(c.releaseId) ?? counts.set(c.releaseId, { releaseId: c.releaseId, installed: 0, failed: 0, pending: 0 }).get(c.releaseId)!;
        sum.installed += c.installed;
        sum.failed += c.failed;
        sum.pending += c.pending;
      }
      chunkRoots.push(new SortedMerkleTree(records.map((r) => deviceNodeBuffer(r, tags.get(r.deviceId) ?? null))).root);
      after = rows[rows.length - 1].id;
      if (rows.length < this.chunkSize) break;
      await yieldToLoop(); // reports keep flowing while a large fleet is anchored
    }
    const sorted = [...counts.values()].sort((a, b) => (BigInt(a.releaseId) < BigInt(b.releaseId) ? -1 : 1));
    return { root: position === 0 ? "" : hex(new SortedMerkleTree(chunkRoots).root), deviceCount: position, counts: sorted, chunkRoots: packNodes(chunkRoots) };
  }

  /** The anchors this tracker made, newest first. */
  list(limit = 50, offset = 0): { total: number; anchors: AnchorSummary[] } {
    const { total, rows } = this.anchors.list(limit, offset);
    return { total, anchors: rows.map(toSummary) };
  }

  /** A device's record in anchor `index` and its proof; refused with ANCHOR_UNKNOWN, ANCHOR_RECORDS_PRUNED or DEVICE_NOT_IN_ANCHOR. */
  proof(index: number, deviceId: string): AnchorProof {
    const a = this.anchors.byIndex(index);
    if (!a) throw new OtaError("ANCHOR_UNKNOWN", `this tracker made no anchor ${index}`);
    if (!a.records_kept)
      throw new OtaError("ANCHOR_RECORDS_PRUNED", `the records of anchor ${index} are no longer kept (only the newest anchors' are): ask about a newer anchor`);
    const id = /^0x[0-9a-fA-F]{64}$/.test(deviceId) ? Buffer.from(deviceId.slice(2), "hex") : undefined;
    const at = id && this.anchors.positionOf(a.id, id);
    if (at === undefined || at === null || !id)
      throw new OtaError("DEVICE_NOT_IN_ANCHOR", `device ${deviceId} is not among the ${a.device_count} device(s) of anchor ${index}`);
    const first = Math.floor(at / a.chunk_size) * a.chunk_size;
    const chunk = this.anchors.records(a.id, first, first + a.chunk_size);
    const records: StatusRecord[] = chunk.map((r) => unpackRecord(r.device_id, r.record));
    // Format 1 (anchors before tags): the status leaf is the device's node; format 2: it is paired with the tags leaf.
    const v2 = a.format >= ANCHOR_FORMAT_TAGS;
    const nodes = v2 ? records.map((r, i) => deviceNodeBuffer(r, chunk[i].tags)) : records.map(statusLeafBytes);
    const r = records[at - first];
    const own = v2 ? [tagsLeafBuffer(r.deviceId, chunk[at - first].tags)] : [];
    const proof = [...own, ...new SortedMerkleTree(nodes).proof(at - first), ...new SortedMerkleTree(unpackNodes(a.chunk_roots)).proof(first / a.chunk_size)];
    return {
      anchorIndex: index,
      root: a.root,
      contract: a.contract,
      record: {
        deviceId: r.deviceId,
        releaseId: r.releaseId,
        version: r.version.toString(),
        outcome: r.outcome,
        reportCounter: r.reportCounter.toString(),
        reportedAt: r.reportedAt,
      },
      proof: proof.map(hex),
      format: v2 ? ANCHOR_FORMAT_TAGS : 1,
      ...(v2 ? { tags: Object.fromEntries((JSON.parse(chunk[at - first].tags ?? "[]") as [string, string][]).map(([k, v]) => [k, v])) } : {}),
    };
  }
}

const toSummary = (a: AnchorDb): AnchorSummary => ({
  index: a.anchor_index,
  root: a.root,
  txHash: a.tx_hash,
  block: a.block,
  anchoredAt: a.anchored_at,
  deviceCount: a.device_count,
  counts: JSON.parse(a.counts),
  account: a.account,
  contract: a.contract,
});
