import type { StoreConnection } from "./connection";
import type { MarkStore } from "./marks";
import { TAG_CHANGES_MARK } from "./tags";
import type { ReportedDevice } from "../statusRecords";

/** A status anchor's row (table status_anchors). */
export interface AnchorDb {
  id: number;
  anchor_index: number;
  root: string;
  tx_hash: string;
  block: number;
  anchored_at: number;
  device_count: number;
  counts: string;
  account: string;
  contract: string;
  fingerprint: string;
  chunk_roots: Buffer;
  chunk_size: number;
  records_kept: number;
  format: number;
}

/**
 * The status anchors this tracker made (issue 6, tables status_anchors and status_anchor_records):
 * each anchor's summary and chunk roots, and its devices' packed records while they are kept.
 */
export class AnchorStore {
  constructor(
    private readonly c: StoreConnection,
    private readonly marks: MarkStore,
  ) {}

  /** Forgets the anchors built but never recorded (a crash between the two): they were never made, or are lost. */
  forgetUnrecorded(): void {
    this.c.transaction(() => {
      this.c.sql(`DELETE FROM status_anchor_records WHERE anchor_id IN (SELECT id FROM status_anchors WHERE anchor_index IS NULL)`).run();
      this.c.sql(`DELETE FROM status_anchors WHERE anchor_index IS NULL`).run();
    });
  }

  /** Starts an anchor (no index yet); its id. */
  begin(a: { at: number; account: string; contract: string; fingerprint: string; chunkSize: number; format: number }): number {
    return Number(
      this.c
        .sql(
          `INSERT INTO status_anchors (root, anchored_at, device_count, counts, account, contract, fingerprint, chunk_roots, chunk_size, format) VALUES ('', ?, 0, '[]', ?, ?, ?, x'', ?, ?)`,
        )
        .run(a.at, a.account, a.contract, a.fingerprint, a.chunkSize, a.format).lastInsertRowid,
    );
  }

  /** Forgets an anchor, records and all. */
  forget(anchorId: number): void {
    this.c.transaction(() => {
      this.c.sql(`DELETE FROM status_anchor_records WHERE anchor_id = ?`).run(anchorId);
      this.c.sql(`DELETE FROM status_anchors WHERE id = ?`).run(anchorId);
    });
  }

  /** The tree an anchor was built to. */
  setBuilt(anchorId: number, b: { root: string; deviceCount: number; counts: string; chunkRoots: Buffer }): void {
    this.c
      .sql(`UPDATE status_anchors SET root = ?, device_count = ?, counts = ?, chunk_roots = ? WHERE id = ?`)
      .run(b.root, b.deviceCount, b.counts, b.chunkRoots, anchorId);
  }

  /** The anchor is on the ledger: its index, transaction and block. */
  setAnchored(anchorId: number, a: { index: number; txHash: string; block: number; at: number }): void {
    this.c
      .sql(`UPDATE status_anchors SET anchor_index = ?, tx_hash = ?, block = ?, anchored_at = ? WHERE id = ?`)
      .run(a.index, a.txHash, a.block, a.at, anchorId);
  }

  get(anchorId: number): AnchorDb | undefined {
    return this.c.sql(`SELECT * FROM status_anchors WHERE id = ?`).get(anchorId) as AnchorDb | undefined;
  }

  /** The newest anchor recorded on the ledger. */
  newest(): AnchorDb | undefined {
    return this.c.sql(`SELECT * FROM status_anchors WHERE anchor_index IS NOT NULL ORDER BY id DESC LIMIT 1`).get() as AnchorDb | undefined;
  }

  byIndex(index: number): AnchorDb | undefined {
    return this.c.sql(`SELECT * FROM status_anchors WHERE anchor_index = ?`).get(index) as AnchorDb | undefined;
  }

  /** The anchors recorded on the ledger, newest first, and how many there are. */
  list(limit: number, offset: number): { total: number; rows: AnchorDb[] } {
    const total = this.c.sql(`SELECT COUNT(*) FROM status_anchors WHERE anchor_index IS NOT NULL`).pluck().get() as number;
    const rows = this.c
      .sql(`SELECT * FROM status_anchors WHERE anchor_index IS NOT NULL ORDER BY anchor_index DESC LIMIT ? OFFSET ?`)
      .all(limit, offset) as AnchorDb[];
    return { total, rows };
  }

  /** What the records depend on: the reports taken, the devices that reported, the mirrored releases (their versions), the tag changes. */
  fingerprint(): string {
    const [reports, devices, releases] = this.c
      .sql(`SELECT (SELECT COALESCE(MAX(id), 0) FROM reports), (SELECT COUNT(*) FROM devices WHERE last_counter > 0), (SELECT COUNT(*) FROM releases)`)
      .raw()
      .get() as [number, number, number];
    return `${reports}|${devices}|${releases}|tags:${this.marks.get(TAG_CHANGES_MARK)}`;
  }

  /** The reported devices after `after` in id order, at most `limit`, with what their status records are made of. */
  reportedDevices(after: string, limit: number): ReportedDevice[] {
    return this.c
      .sql(
        `SELECT d.id, d.last_counter AS lastCounter, d.last_report_at AS lastReportAt, d.last_outcome AS lastOutcome, d.last_code AS lastCode,
              d.last_release AS lastRelease, r.version AS releaseVersion
         FROM devices d LEFT JOIN releases r ON r.id = d.last_release
        WHERE d.last_counter > 0 AND d.id > ? ORDER BY d.id LIMIT ?`,
      )
      .all(after, limit) as ReportedDevice[];
  }

  /** Keeps packed records of an anchor's devices, from `position` on, in one transaction. */
  addRecords(anchorId: number, position: number, records: { deviceId: Buffer; record: Buffer; tags: string | null }[]): void {
    const insert = this.c.sql(`INSERT INTO status_anchor_records (anchor_id, position, device_id, record, tags) VALUES (?, ?, ?, ?, ?)`);
    this.c.transaction(() => {
      for (const r of records) insert.run(anchorId, position++, r.deviceId, r.record, r.tags);
    });
  }

  /** Drops the records of all but the newest `keep` anchors (their rows stay; their proofs can no longer be served). */
  pruneRecords(keep: number): void {
    const old = this.c
      .sql(`SELECT id FROM status_anchors WHERE anchor_index IS NOT NULL AND records_kept = 1 ORDER BY id DESC LIMIT -1 OFFSET ?`)
      .pluck()
      .all(keep) as number[];
    this.c.transaction(() => {
      for (const id of old) {
        this.c.sql(`DELETE FROM status_anchor_records WHERE anchor_id = ?`).run(id);
        this.c.sql(`UPDATE status_anchors SET records_kept = 0 WHERE id = ?`).run(id);
      }
    });
  }

  /** A device's position in an anchor's records, if it is among them. */
  positionOf(anchorId: number, deviceId: Buffer): number | undefined {
    return this.c.sql(`SELECT position FROM status_anchor_records WHERE anchor_id = ? AND device_id = ?`).pluck().get(anchorId, deviceId) as number | undefined;
  }

  /** An anchor's records at positions [from, to), in order. */
  records(anchorId: number, from: number, to: number): { device_id: Buffer; record: Buffer; tags: string | null }[] {
    return this.c
      .sql(`SELECT device_id, record, tags FROM status_anchor_records WHERE anchor_id = ? AND position >= ? AND position < ? ORDER BY position`)
      .all(anchorId, from, to) as { device_id: Buffer; record: Buffer; tags: string | null }[];
  }
}
