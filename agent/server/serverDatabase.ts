import Database, { migrate, type SqliteDatabase } from "../database/sqlite";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { NONCE_TABLE_SQL, SqliteNonceStore } from "../database/sqliteNonceStore";
import { MemoryNonceStore, type NonceStore } from "../crypto/requestAuth";

/**
 * The firmware server's durable state, in SQLite (WAL, synchronous FULL: a reply is only sent
 * after what it reports is on disk): the artifacts it accepted, which blocks belong to which
 * release (to check entitlement for a trustless-gateway block request), the wrapped keys it
 * serves, and the download log (CAP-11.3-f).
 */

/**
 * "prepared": accepted for a release signed but not yet on the ledger (issue 17); never served,
 * removed at `expiresAt` unless the release is published first, then "serving".
 */
export type ArtifactState = "prepared" | "serving" | "withdrawn";

export interface AcceptedArtifact {
  releaseId: string;
  cid: string;
  merkleRoot: string;
  artifactSize: bigint;
  chunkSize: number;
  providerId: number;
  acceptedAt: number;
  state: ArtifactState;
  withdrawnReason: string | null;
  expiresAt: number | null; // ms since the epoch; only a prepared artifact expires
}

export interface DownloadEntry {
  id: number;
  at: number; // ms since the epoch
  deviceId: string;
  releaseId: string;
  kind: "artifact" | "block" | "car" | "key" | "manifest" | "delta";
  rangeStart: number | null;
  rangeEnd: number | null; // inclusive
  bytes: number;
  complete: boolean; // the response carried the artifact's last byte
}

const MIGRATIONS = [
  `CREATE TABLE artifacts (
     release_id TEXT PRIMARY KEY, cid TEXT NOT NULL, merkle_root TEXT NOT NULL, artifact_size TEXT NOT NULL,
     chunk_size INTEGER NOT NULL, leaves BLOB NOT NULL, provider_id INTEGER NOT NULL, accepted_at INTEGER NOT NULL,
     state TEXT NOT NULL, withdrawn_reason TEXT);
   CREATE TABLE blocks (cid TEXT NOT NULL, release_id TEXT NOT NULL, PRIMARY KEY (cid, release_id));
   CREATE TABLE wrapped_keys (
     release_id TEXT NOT NULL, device_id TEXT NOT NULL, wrapped_key BLOB NOT NULL, granted_by TEXT NOT NULL,
     granted_at INTEGER NOT NULL, PRIMARY KEY (release_id, device_id));
   CREATE TABLE downloads (
     id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, device_id TEXT NOT NULL, release_id TEXT NOT NULL,
     kind TEXT NOT NULL, range_start INTEGER, range_end INTEGER, bytes INTEGER NOT NULL, complete INTEGER NOT NULL);
   CREATE INDEX downloads_by_device ON downloads (device_id, at);
   CREATE INDEX downloads_by_release ON downloads (release_id, at);`,
  // Signed requests' nonces, kept over a restart (issue 15): agent/database/sqliteNonceStore.ts.
  NONCE_TABLE_SQL,
  // Artifacts submitted before their release is published (issue 17): state 'prepared' until then.
  `ALTER TABLE artifacts ADD COLUMN expires_at INTEGER;
   CREATE INDEX artifacts_prepared ON artifacts (provider_id, state);`,
];

/** The schema this code writes (the database's user_version once migrated): backups check it. */
export const SERVER_SCHEMA = MIGRATIONS.length;

/** Download log entries are written together at most this long after the first of them (ms)... */
const DOWNLOAD_LOG_GROUP_MS = 20;
/** ...or as soon as this many wait. */
const DOWNLOAD_LOG_GROUP_MAX = 512;

export class ServerDatabase {
  private readonly db: SqliteDatabase;
  private pendingDownloads: Omit<DownloadEntry, "id">[] = [];
  private downloadTimer: NodeJS.Timeout | undefined;
  /** The signed requests' nonces (in this file, on their own connection; in memory for ":memory:"). */
  readonly nonces: NonceStore & { close?(): void };

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.db.pragma("foreign_keys = ON");
    migrate(this.db, MIGRATIONS, { database: "the server database", program: "server" });
    this.nonces = file === ":memory:" ? new MemoryNonceStore() : new SqliteNonceStore(file);
  }

  /**
   * `leaves`: the chunk Merkle leaves, header first (served in the manifest only). With
   * `prepared`, the artifact of a release not yet on the ledger, kept until `expiresAt`.
   */
  saveArtifact(
    a: Omit<AcceptedArtifact, "state" | "withdrawnReason" | "expiresAt">,
    leaves: string[],
    blockCids: string[],
    prepared?: { expiresAt: number },
  ): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO artifacts (release_id, cid, merkle_root, artifact_size, chunk_size, leaves, provider_id, accepted_at, state, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (release_id) DO UPDATE SET state = excluded.state, accepted_at = excluded.accepted_at,
             expires_at = excluded.expires_at, withdrawn_reason = NULL`,
        )
        .run(
          a.releaseId,
          a.cid,
          a.merkleRoot,
          a.artifactSize.toString(),
          a.chunkSize,
          Buffer.concat(leaves.map((l) => Buffer.from(l.slice(2), "hex"))),
          a.providerId,
          a.acceptedAt,
          prepared ? "prepared" : "serving",
          prepared?.expiresAt ?? null,
        );
      const insert = this.db.prepare(`INSERT OR IGNORE INTO blocks (cid, release_id) VALUES (?, ?)`);
      for (const cid of blockCids) insert.run(cid, a.releaseId);
    })();
  }

  // Every device request reads the artifact row: the leaves (32 bytes per chunk) are left out of it.
  artifact(releaseId: string): AcceptedArtifact | undefined {
    const row = this.db.prepare(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts WHERE release_id = ?`).get(releaseId.toLowerCase()) as ArtifactRow | undefined;
    return row && toArtifact(row);
  }

  /** The chunk Merkle leaves of an accepted artifact, header first. */
  artifactLeaves(releaseId: string): string[] {
    const row = this.db.prepare(`SELECT leaves FROM artifacts WHERE release_id = ?`).get(releaseId.toLowerCase()) as { leaves: Buffer } | undefined;
    const leaves: string[] = [];
    for (let i = 0; row && i < row.leaves.length; i += 32) leaves.push("0x" + row.leaves.subarray(i, i + 32).toString("hex"));
    return leaves;
  }

  artifacts(state?: ArtifactState): AcceptedArtifact[] {
    const rows = (
      state
        ? this.db.prepare(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts WHERE state = ? ORDER BY accepted_at`).all(state)
        : this.db.prepare(`SELECT ${ARTIFACT_COLUMNS} FROM artifacts ORDER BY accepted_at`).all()
    ) as ArtifactRow[];
    return rows.map(toArtifact);
  }

  withdrawArtifact(releaseId: string, reason: string): void {
    this.db.prepare(`UPDATE artifacts SET state = 'withdrawn', withdrawn_reason = ? WHERE release_id = ?`).run(reason, releaseId.toLowerCase());
  }

  /** A prepared artifact whose release is now on the ledger is served from now on; true if it was prepared. */
  promoteArtifact(releaseId: string): boolean {
    return (
      this.db.prepare(`UPDATE artifacts SET state = 'serving', expires_at = NULL WHERE release_id = ? AND state = 'prepared'`).run(releaseId.toLowerCase())
        .changes > 0
    );
  }

  /** What a provider's prepared artifacts hold: how many, and their bytes. */
  preparedUsage(providerId: number): { count: number; bytes: bigint } {
    const rows = this.db.prepare(`SELECT artifact_size FROM artifacts WHERE provider_id = ? AND state = 'prepared'`).all(providerId) as {
      artifact_size: string;
    }[];
    return { count: rows.length, bytes: rows.reduce((sum, r) => sum + BigInt(r.artifact_size), 0n) };
  }

  /**
   * Forgets a prepared artifact (expired, its release never published): its row, its blocks' rows
   * and the keys granted for it. Returns the blocks no other release holds (for the store to
   * delete), or undefined if the artifact was not prepared (published meanwhile: kept).
   */
  removePrepared(releaseId: string): { cid: string; orphanBlocks: string[] } | undefined {
    const id = releaseId.toLowerCase();
    return this.db.transaction(() => {
      const row = this.db.prepare(`SELECT cid FROM artifacts WHERE release_id = ? AND state = 'prepared'`).get(id) as { cid: string } | undefined;
      if (!row) return undefined;
      const blocks = (this.db.prepare(`SELECT cid FROM blocks WHERE release_id = ?`).all(id) as { cid: string }[]).map((b) => b.cid);
      this.db.prepare(`DELETE FROM blocks WHERE release_id = ?`).run(id);
      this.db.prepare(`DELETE FROM wrapped_keys WHERE release_id = ?`).run(id);
      this.db.prepare(`DELETE FROM artifacts WHERE release_id = ?`).run(id);
      const held = this.db.prepare(`SELECT 1 FROM blocks WHERE cid = ? LIMIT 1`);
      return { cid: row.cid, orphanBlocks: blocks.filter((b) => !held.get(b)) };
    })();
  }

  /** Releases whose DAG holds this block (usually one). */
  releasesOfBlock(cid: string): string[] {
    return (this.db.prepare(`SELECT release_id FROM blocks WHERE cid = ?`).all(cid) as { release_id: string }[]).map((r) => r.release_id);
  }

  /** Whether another serving (or prepared) artifact shares this CID (then it must stay pinned). */
  cidStillServed(cid: string, except: string): boolean {
    return !!this.db.prepare(`SELECT 1 FROM artifacts WHERE cid = ? AND state <> 'withdrawn' AND release_id <> ?`).get(cid, except.toLowerCase());
  }

  saveWrappedKeys(releaseId: string, grantedBy: string, keys: { deviceId: string; wrappedKey: Uint8Array }[], at: number): void {
    const upsert = this.db.prepare(
      `INSERT INTO wrapped_keys (release_id, device_id, wrapped_key, granted_by, granted_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (release_id, device_id) DO UPDATE SET wrapped_key = excluded.wrapped_key, granted_by = excluded.granted_by, granted_at = excluded.granted_at`,
    );
    this.db.transaction(() => {
      for (const k of keys) upsert.run(releaseId.toLowerCase(), k.deviceId.toLowerCase(), Buffer.from(k.wrappedKey), grantedBy, at);
    })();
  }

  wrappedKey(releaseId: string, deviceId: string): Buffer | undefined {
    const row = this.db
      .prepare(`SELECT wrapped_key FROM wrapped_keys WHERE release_id = ? AND device_id = ?`)
      .get(releaseId.toLowerCase(), deviceId.toLowerCase()) as { wrapped_key: Buffer } | undefined;
    return row?.wrapped_key;
  }

  /**
   * Logs a download (CAP-11.3-f). Entries are written in groups, one transaction (one fsync) per
   * DOWNLOAD_LOG_GROUP_MS, not one each: a fleet's thousands of requests a second would otherwise
   * hold the server's one thread on a disk sync per request. Reading the log, and closing, write
   * what is pending first; a crash loses at most the entries of the last few milliseconds.
   */
  logDownload(e: Omit<DownloadEntry, "id">): void {
    this.pendingDownloads.push(e);
    if (this.pendingDownloads.length >= DOWNLOAD_LOG_GROUP_MAX) this.flushDownloads();
    else if (!this.downloadTimer) {
      this.downloadTimer = setTimeout(() => this.flushDownloads(), DOWNLOAD_LOG_GROUP_MS);
      this.downloadTimer.unref();
    }
  }

  /** Writes the download entries logged but not written yet, in one transaction. */
  flushDownloads(): void {
    clearTimeout(this.downloadTimer);
    this.downloadTimer = undefined;
    if (this.pendingDownloads.length === 0 || !this.db.open) return;
    const entries = this.pendingDownloads;
    this.pendingDownloads = [];
    const insert = this.db.prepare(
      `INSERT INTO downloads (at, device_id, release_id, kind, range_start, range_end, bytes, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const e of entries)
        insert.run(e.at, e.deviceId.toLowerCase(), e.releaseId.toLowerCase(), e.kind, e.rangeStart, e.rangeEnd, e.bytes, e.complete ? 1 : 0);
    })();
  }

  downloads(filter: { deviceId?: string; releaseId?: string; since?: number; after?: number; limit?: number } = {}): DownloadEntry[] {
    this.flushDownloads();
    const where: string[] = [];
    const args: (string | number)[] = [];
    const and = (condition: string, value: string | number) => {
      where.push(condition);
      args.push(value);
    };
    if (filter.deviceId) and("device_id = ?", filter.deviceId.toLowerCase());
    if (filter.releaseId) and("release_id = ?", filter.releaseId.toLowerCase());
    if (filter.since !== undefined) and("at >= ?", filter.since);
    if (filter.after !== undefined) and("id > ?", filter.after);
    const sql = `SELECT * FROM downloads ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id LIMIT ?`;
    args.push(Math.min(filter.limit ?? 1000, 10_000));
    return (this.db.prepare(sql).all(...args) as DownloadRow[]).map((r) => ({
      id: r.id,
      at: r.at,
      deviceId: r.device_id,
      releaseId: r.release_id,
      kind: r.kind as DownloadEntry["kind"],
      rangeStart: r.range_start,
      rangeEnd: r.range_end,
      bytes: r.bytes,
      complete: r.complete === 1,
    }));
  }

  close(): void {
    this.flushDownloads();
    this.nonces.close?.();
    if (this.db.open) this.db.close();
  }
}

interface ArtifactRow {
  release_id: string;
  cid: string;
  merkle_root: string;
  artifact_size: string;
  chunk_size: number;
  provider_id: number;
  accepted_at: number;
  state: ArtifactState;
  withdrawn_reason: string | null;
  expires_at: number | null;
}

interface DownloadRow {
  id: number;
  at: number;
  device_id: string;
  release_id: string;
  kind: string;
  range_start: number | null;
  range_end: number | null;
  bytes: number;
  complete: number;
}

const ARTIFACT_COLUMNS = "release_id, cid, merkle_root, artifact_size, chunk_size, provider_id, accepted_at, state, withdrawn_reason, expires_at";

function toArtifact(r: ArtifactRow): AcceptedArtifact {
  return {
    releaseId: r.release_id,
    cid: r.cid,
    merkleRoot: r.merkle_root,
    artifactSize: BigInt(r.artifact_size),
    chunkSize: r.chunk_size,
    providerId: r.provider_id,
    acceptedAt: r.accepted_at,
    state: r.state,
    withdrawnReason: r.withdrawn_reason,
    expiresAt: r.expires_at,
  };
}

// ---------------------------------------------------------------- backup copies (agent/server/backup.ts)

/**
 * What a copy of the server's database holds (a backup, or one being restored): never the live
 * database. A copy that cannot be read as one throws what `unreadable` makes of the error.
 */
export function readServerCopy(
  file: string,
  unreadable: (cause: unknown) => Error = (cause) => cause as Error,
): {
  serving: { releaseId: string; cid: string; size: string }[];
  withdrawn: number;
  wrappedKeys: number;
  downloads: { entries: number; lastId: number | null };
} {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const serving = (
      db.prepare(`SELECT release_id AS releaseId, cid, artifact_size AS size FROM artifacts WHERE state = 'serving' ORDER BY accepted_at`).all() as {
        releaseId: string;
        cid: string;
        size: string | number;
      }[]
    ).map((a) => ({ releaseId: a.releaseId, cid: a.cid, size: String(a.size) }));
    const n = (sql: string) => (db.prepare(sql).get() as { n: number | null }).n;
    return {
      serving,
      withdrawn: n(`SELECT COUNT(*) AS n FROM artifacts WHERE state = 'withdrawn'`) ?? 0,
      wrappedKeys: n(`SELECT COUNT(*) AS n FROM wrapped_keys`) ?? 0,
      downloads: { entries: n(`SELECT COUNT(*) AS n FROM downloads`) ?? 0, lastId: n(`SELECT MAX(id) AS n FROM downloads`) },
    };
  } catch (cause) {
    throw unreadable(cause);
  } finally {
    db.close();
  }
}

/** The id a copy's download log gives its next entry. */
export function nextDownloadId(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return ((db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'downloads'`).get() as { seq: number } | undefined)?.seq ?? 0) + 1;
  } finally {
    db.close();
  }
}

/**
 * Readies a copy to be restored, in one transaction: forgets the artifacts (and their blocks) of
 * `missing` releases, and moves the download log's ids to at least `nextId`.
 */
export function readyRestoredCopy(file: string, missing: string[], nextId: number): void {
  const db = new Database(file);
  try {
    db.transaction(() => {
      for (const releaseId of missing) {
        db.prepare(`DELETE FROM blocks WHERE release_id = ?`).run(releaseId);
        db.prepare(`DELETE FROM artifacts WHERE release_id = ?`).run(releaseId);
      }
      // The log's ids go on past any a tracker read before the restore (it reads from its last id).
      const seq = db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'downloads'`).get() as { seq: number } | undefined;
      if (!seq) db.prepare(`INSERT INTO sqlite_sequence (name, seq) VALUES ('downloads', ?)`).run(nextId - 1);
      else if (seq.seq < nextId - 1) db.prepare(`UPDATE sqlite_sequence SET seq = ? WHERE name = 'downloads'`).run(nextId - 1);
    })();
  } finally {
    db.close();
  }
}
