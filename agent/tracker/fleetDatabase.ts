import Database, { type SqliteDatabase, type SqliteStatement } from "../io/sqlite";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { getAddress } from "ethers";
import { NONCE_TABLE_SQL } from "../io/sqliteNonceStore";
import { InputError } from "../core/errors";
import { EVERY_POLICY, joinEvidence } from "../core/policyEvidence";
import type { ReleaseRecord } from "../core/release";
import { formatVersion } from "../core/version";
import { resultKind, resultKindSql, type ResultKind } from "../core/updateOutcome";
import type { StreamState } from "../chain/eventStreamStore";
import type { SentTx, TxJournal } from "./ledgerAccount";

/**
 * The status tracker's fleet database (SQLite, WAL, synchronous FULL): devices as enrolled on the
 * ledger (with their public keys, to check their signed reports), what each runs, a mirror of the
 * ledger's releases, and every report received. Schema changes are numbered migrations applied
 * in order at open; a database newer than the code is refused.
 */

export interface DeviceRow {
  id: string;
  publicKey: string;
  hardwareClass: number;
  network: string;
  region: string;
  standing: "active" | "suspended" | "revoked";
  lastSeen: number | null; // ms: last report or other contact
  lastCounter: number; // highest report counter taken
  lastOutcome: string | null;
  lastCode: string | null;
  lastKind: ResultKind | null; // what its last result means (agent/core/updateOutcome); null: none reported
  lastRelease: string | null; // the release its last result is about
  blockedSince: number | null; // ms: since when delivery of lastRelease is blocked (lastKind blocked)
  configId: number | null; // null until the device's first report: what it runs is unknown
  failedRelease: string | null; // the release whose install failed last (not offered again)
  declined: string[]; // releases the device declined by its own policy (CAP-11.1-a-vi)
  upstream: string | null; // the module its last report came through (this module's id: direct)
  batchId: number | null; // enrolled in a Merkle batch: introduced by its first report's credential
  leaf: string | null; // its batch leaf
  safeMode: boolean; // its latest report says it runs in safe mode (CAP-11.1-b): it waits for a person
}

export interface ReleaseRow {
  id: string;
  component: string;
  provider: number;
  version: bigint;
  hardware: number[];
  status: "active" | "vulnerable" | "revoked";
  blockHash: string;
  logIndex: number;
  record: ReleaseRecord;
  publishedAt: number; // block number
}

export interface InstalledRow {
  deviceId: string;
  component: string;
  version: bigint;
  releaseId: string;
}

/** A configuration: devices alike for the resolver (ADR 0004). */
export interface ConfigRow {
  id: number;
  hardwareClass: number;
  installed: { component: string; version: bigint; releaseId: string }[];
  failedRelease: string | null;
}

/** What a report changes in the fleet database. */
export interface ReportBody {
  installed: { component: string; version: string; releaseId: string }[];
  lastResult: { releaseId?: string; outcome: string; code: string } | null;
  declined?: { releaseId: string }[];
  safeMode?: boolean; // the device runs in safe mode (CAP-11.1-b); absent: not
}

/** SQL over a devices row: its last update failed (agent/core/updateOutcome: only a release that failed after an intact delivery). */
export const FAILED_SQL = `(last_kind IS 'failed')`;

/** SQL: the kind of a report's last result, as agent/core/updateOutcome resultKind says. */
const reportKindSql = (body: string) => resultKindSql(`json_extract(${body}, '$.lastResult.outcome')`, `json_extract(${body}, '$.lastResult.code')`);

const MIGRATIONS = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY, public_key TEXT NOT NULL, hardware_class INTEGER NOT NULL, network TEXT NOT NULL,
     region TEXT NOT NULL, standing TEXT NOT NULL DEFAULT 'active', last_seen INTEGER, last_counter INTEGER NOT NULL DEFAULT 0,
     last_outcome TEXT, last_code TEXT);
   CREATE INDEX devices_by_hardware ON devices (hardware_class);
   CREATE TABLE installed (
     device_id TEXT NOT NULL, component TEXT NOT NULL, version TEXT NOT NULL, release_id TEXT NOT NULL,
     PRIMARY KEY (device_id, component));
   CREATE INDEX installed_by_release ON installed (release_id);
   CREATE TABLE releases (
     id TEXT PRIMARY KEY, component TEXT NOT NULL, provider INTEGER NOT NULL, version TEXT NOT NULL,
     hardware TEXT NOT NULL, status TEXT NOT NULL, block_hash TEXT NOT NULL, log_index INTEGER NOT NULL);
   CREATE INDEX releases_by_component ON releases (component);
   CREATE TABLE reports (
     id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, counter INTEGER NOT NULL, received_at INTEGER NOT NULL,
     body TEXT NOT NULL);
   CREATE INDEX reports_by_device ON reports (device_id, id);`,
  // The ledger events the mirror applied, so that a reorganisation can be undone exactly.
  `CREATE TABLE ledger_events (
     block_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block_number INTEGER NOT NULL, kind TEXT NOT NULL,
     subject TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (block_hash, log_index));
   CREATE INDEX ledger_events_by_subject ON ledger_events (subject, block_number, log_index);`,
  // Configurations (ADR 0004): devices with the same hardware, installed versions and last failed
  // release share one plan. The full release record (dependencies) and barred providers feed the
  // resolver. Decisions of administrators, notices delivered, rollouts, adoption samples and the
  // modules below this one.
  `CREATE TABLE configs (
     id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, hardware_class INTEGER NOT NULL, installed TEXT NOT NULL,
     failed_release TEXT);
   ALTER TABLE devices ADD COLUMN config_id INTEGER;
   ALTER TABLE devices ADD COLUMN failed_release TEXT;
   ALTER TABLE devices ADD COLUMN declined TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE devices ADD COLUMN upstream TEXT;
   CREATE INDEX devices_by_config ON devices (config_id);
   CREATE INDEX devices_by_network ON devices (network);
   ALTER TABLE releases ADD COLUMN record TEXT NOT NULL DEFAULT '{}';
   ALTER TABLE releases ADD COLUMN published_at INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE providers (id INTEGER PRIMARY KEY, barred INTEGER NOT NULL);
   CREATE TABLE decisions (
     device_id TEXT NOT NULL, release_id TEXT NOT NULL, component TEXT NOT NULL, reason TEXT NOT NULL, origin TEXT NOT NULL,
     decided_at INTEGER NOT NULL, PRIMARY KEY (device_id, release_id));
   CREATE INDEX decisions_by_release ON decisions (release_id);
   CREATE TABLE deliveries (
     device_id TEXT NOT NULL, release_id TEXT NOT NULL, reason TEXT NOT NULL, origin TEXT NOT NULL, via TEXT NOT NULL,
     delivered_at INTEGER NOT NULL, PRIMARY KEY (device_id, release_id));
   CREATE INDEX deliveries_by_release ON deliveries (release_id);
   CREATE TABLE rollouts (release_id TEXT PRIMARY KEY, origin TEXT NOT NULL, started_at INTEGER NOT NULL);
   CREATE TABLE adoption (release_id TEXT NOT NULL, at INTEGER NOT NULL, installed INTEGER NOT NULL, PRIMARY KEY (release_id, at));
   CREATE TABLE modules (
     id TEXT PRIMARY KEY, networks TEXT NOT NULL, last_seen INTEGER NOT NULL, last_counter INTEGER NOT NULL DEFAULT 0,
     devices INTEGER NOT NULL DEFAULT 0, unreachable_devices INTEGER NOT NULL DEFAULT 0, children TEXT NOT NULL DEFAULT '[]');
   CREATE INDEX devices_by_upstream ON devices (upstream);
   CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
   CREATE TABLE downloads (
     server TEXT NOT NULL, id INTEGER NOT NULL, device_id TEXT NOT NULL, release_id TEXT NOT NULL, kind TEXT NOT NULL,
     at INTEGER NOT NULL, complete INTEGER NOT NULL, PRIMARY KEY (server, id));
   CREATE INDEX downloads_by_device ON downloads (device_id, at);
   ALTER TABLE devices ADD COLUMN batch_id INTEGER;
   ALTER TABLE devices ADD COLUMN leaf TEXT;
   CREATE INDEX devices_by_batch ON devices (batch_id);
   CREATE TABLE batches (id INTEGER PRIMARY KEY, root TEXT NOT NULL, revoked INTEGER NOT NULL);`,
  // Decisions at fleet scale (issue 5): how many devices (and active ones) each configuration
  // holds, kept by triggers on every write to devices, so that a new release does not count a
  // million rows; and the active devices of a configuration readable from an index alone.
  `CREATE TABLE config_devices (config_id INTEGER PRIMARY KEY, devices INTEGER NOT NULL, active INTEGER NOT NULL);
   INSERT INTO config_devices (config_id, devices, active)
     SELECT config_id, COUNT(*), SUM(standing = 'active') FROM devices WHERE config_id IS NOT NULL GROUP BY config_id;
   CREATE TRIGGER devices_counted_insert AFTER INSERT ON devices WHEN NEW.config_id IS NOT NULL BEGIN
     INSERT INTO config_devices (config_id, devices, active) VALUES (NEW.config_id, 1, NEW.standing = 'active')
       ON CONFLICT (config_id) DO UPDATE SET devices = devices + 1, active = active + excluded.active;
   END;
   CREATE TRIGGER devices_counted_delete AFTER DELETE ON devices WHEN OLD.config_id IS NOT NULL BEGIN
     UPDATE config_devices SET devices = devices - 1, active = active - (OLD.standing = 'active') WHERE config_id = OLD.config_id;
   END;
   CREATE TRIGGER devices_counted_update AFTER UPDATE OF config_id, standing ON devices
     WHEN OLD.config_id IS NOT NEW.config_id OR OLD.standing IS NOT NEW.standing BEGIN
     UPDATE config_devices SET devices = devices - 1, active = active - (OLD.standing = 'active') WHERE config_id = OLD.config_id;
     INSERT INTO config_devices (config_id, devices, active) SELECT NEW.config_id, 1, NEW.standing = 'active' WHERE NEW.config_id IS NOT NULL
       ON CONFLICT (config_id) DO UPDATE SET devices = devices + 1, active = active + excluded.active;
   END;
   CREATE INDEX devices_active_by_config ON devices (config_id, id) WHERE standing = 'active';`,
  // Evidence for update policies, per release and device (e.g. rollout cohort proofs), handed out with notices.
  `CREATE TABLE policy_evidence (release_id TEXT NOT NULL, device_id TEXT NOT NULL, evidence TEXT NOT NULL, PRIMARY KEY (release_id, device_id));`,
  // The tracker's duties on the ledger (issue 6). The release and time of each device's last report
  // (its status record); every device that ever failed a release (the failure totals a staged
  // rollout is told, which only rise); the status anchors made and their records, packed (proofs
  // are served from them).
  `ALTER TABLE devices ADD COLUMN last_release TEXT;
   ALTER TABLE devices ADD COLUMN last_report_at INTEGER;
   UPDATE devices SET
     last_release = (SELECT lower(json_extract(body, '$.lastResult.releaseId')) FROM reports WHERE device_id = devices.id ORDER BY id DESC LIMIT 1),
     last_report_at = (SELECT received_at FROM reports WHERE device_id = devices.id ORDER BY id DESC LIMIT 1)
     WHERE last_counter > 0;
   CREATE INDEX devices_reported ON devices (id) WHERE last_counter > 0;
   CREATE TABLE release_failures (release_id TEXT NOT NULL, device_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (release_id, device_id)) WITHOUT ROWID;
   INSERT OR IGNORE INTO release_failures (release_id, device_id, at)
     SELECT lower(json_extract(body, '$.lastResult.releaseId')), device_id, MIN(received_at) FROM reports
     WHERE json_extract(body, '$.lastResult.releaseId') IS NOT NULL
       AND ${reportKindSql("body")} = 'failed'
     GROUP BY 1, 2;
   CREATE TABLE status_anchors (
     id INTEGER PRIMARY KEY, anchor_index INTEGER UNIQUE, root TEXT NOT NULL, tx_hash TEXT, block INTEGER, anchored_at INTEGER NOT NULL,
     device_count INTEGER NOT NULL, counts TEXT NOT NULL, account TEXT NOT NULL, contract TEXT NOT NULL, fingerprint TEXT NOT NULL,
     chunk_roots BLOB NOT NULL, chunk_size INTEGER NOT NULL, records_kept INTEGER NOT NULL DEFAULT 1);
   CREATE TABLE status_anchor_records (
     anchor_id INTEGER NOT NULL, position INTEGER NOT NULL, device_id BLOB NOT NULL, record BLOB NOT NULL,
     PRIMARY KEY (anchor_id, position)) WITHOUT ROWID;
   CREATE INDEX status_anchor_records_by_device ON status_anchor_records (anchor_id, device_id);`,
  // Safe mode (CAP-11.1-b, CAP-11.2-a): whether each device's latest report says it runs in safe
  // mode, taken from that report for the devices that already reported; the devices in safe mode
  // readable from an index alone (few against the fleet).
  `ALTER TABLE devices ADD COLUMN safe_mode INTEGER NOT NULL DEFAULT 0;
   UPDATE devices SET safe_mode = 1
     WHERE last_counter > 0
       AND (SELECT json_extract(body, '$.safeMode') FROM reports WHERE device_id = devices.id ORDER BY id DESC LIMIT 1) = 1;
   CREATE INDEX devices_in_safe_mode ON devices (id) WHERE safe_mode = 1;`,
  // Replay state that must survive a restart (issue 15): the administrators' request nonces
  // (agent/io/sqliteNonceStore.ts) and the module's replay marks, e.g. the issue time of the last
  // decisions taken from its parent.
  `${NONCE_TABLE_SQL}
   CREATE TABLE IF NOT EXISTS replay_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // Three kinds of result (issue 15): the kind of each device's last result, and since when its
  // delivery is blocked. A delivery fault or a correct refusal that an earlier version counted as
  // a failure no longer is: the failed release and the failure totals are taken again from the
  // reports kept (a device's configuration follows at its next report).
  `ALTER TABLE devices ADD COLUMN last_kind TEXT;
   ALTER TABLE devices ADD COLUMN blocked_since INTEGER;
   UPDATE devices SET last_kind = ${resultKindSql("last_outcome", "last_code")};
   UPDATE devices SET blocked_since = last_report_at WHERE last_kind = 'blocked';
   UPDATE devices SET failed_release = (
       SELECT lower(json_extract(body, '$.lastResult.releaseId')) FROM reports
       WHERE device_id = devices.id AND ${reportKindSql("body")} = 'failed' ORDER BY id DESC LIMIT 1)
     WHERE failed_release IS NOT NULL AND EXISTS (SELECT 1 FROM reports WHERE device_id = devices.id);
   DELETE FROM release_failures WHERE
     EXISTS (SELECT 1 FROM reports WHERE device_id = release_failures.device_id)
     AND NOT EXISTS (SELECT 1 FROM reports WHERE device_id = release_failures.device_id
       AND lower(json_extract(body, '$.lastResult.releaseId')) = release_failures.release_id AND ${reportKindSql("body")} = 'failed');
   CREATE INDEX devices_by_kind ON devices (last_kind) WHERE last_kind IS NOT NULL;`,
  // Where the module's ledger stream stands (issue 16), written in the transaction that applies or
  // undoes the events of those blocks: a crash can no longer leave the two apart (it was a file).
  // And the transactions of its ledger account not yet buried (agent/tracker/ledgerAccount.ts): one
  // that a reorganisation dropped, or left waiting when the module stopped, is cancelled at the next
  // send or start, never mined later.
  `CREATE TABLE IF NOT EXISTS ledger_position (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL);
   CREATE TABLE IF NOT EXISTS ledger_txs (nonce INTEGER PRIMARY KEY, tx TEXT NOT NULL);`,
  // Report sessions (issue 17, ADR 0013): one per device with this module, its key wrapped under
  // the module's key, with the device and module keys it was made under (a rotation ends it).
  `CREATE TABLE IF NOT EXISTS report_sessions (
     device_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, wrapped_key BLOB NOT NULL,
     device_key TEXT NOT NULL, module_key TEXT NOT NULL, established_at INTEGER NOT NULL) WITHOUT ROWID;`,
  // Evidence per policy (issue 18): each policy of a composition its own part, keyed by its
  // address ('' = evidence given whole to every policy, as all evidence was before).
  `CREATE TABLE policy_evidence_by_policy (
     release_id TEXT NOT NULL, device_id TEXT NOT NULL, policy TEXT NOT NULL, evidence TEXT NOT NULL,
     PRIMARY KEY (release_id, device_id, policy)) WITHOUT ROWID;
   INSERT INTO policy_evidence_by_policy (release_id, device_id, policy, evidence) SELECT release_id, device_id, '', evidence FROM policy_evidence;
   DROP TABLE policy_evidence;
   ALTER TABLE policy_evidence_by_policy RENAME TO policy_evidence;`,
  // Names where people look (issue 19): components and hardware classes by the names the registry
  // registered them under (ComponentRegistered, HardwareClassRegistered), mirrored as releases are.
  // Every row kept; the names of a database from before are read once from the registry's views
  // at the next start (agent/tracker/ledgerMirror.ts fillMissingNames).
  `CREATE TABLE IF NOT EXISTS component_names (id TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS hardware_classes (id INTEGER PRIMARY KEY, name TEXT NOT NULL);`,
  // Device groups and update campaigns (issue 19, item 11): administrators' tags on devices, groups
  // that are saved tag queries, update requests with their targets, deadline and the devices they
  // decided (their progress), and, for status anchors of format 2, each device's tags at the anchor.
  `CREATE TABLE IF NOT EXISTS device_tags (device_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (device_id, key)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS device_tags_by_key ON device_tags (key, value);
   CREATE TABLE IF NOT EXISTS device_groups (name TEXT PRIMARY KEY, query TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS update_requests (
     id TEXT PRIMARY KEY, release_id TEXT NOT NULL, component TEXT NOT NULL, target TEXT NOT NULL, deadline INTEGER, override_pins INTEGER NOT NULL DEFAULT 0,
     requested_by TEXT NOT NULL, requested_at INTEGER NOT NULL, refused TEXT NOT NULL DEFAULT '[]') WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS update_request_devices (request_id TEXT NOT NULL, device_id TEXT NOT NULL, decided_at INTEGER NOT NULL, PRIMARY KEY (request_id, device_id)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS update_request_devices_by_device ON update_request_devices (device_id);
   ALTER TABLE status_anchors ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE status_anchor_records ADD COLUMN tags TEXT;`,
  // Release bundles (docs/adr/0019), mirrored from ReleaseBundles' BundleCreated as releases are
  // from the registry: every row of the tables before is kept. A bundle's decisions, deliveries,
  // failures and rollout are keyed by its id in the tables releases use (ids never collide: each
  // is a hash). Bundles created before a tracker follows ReleaseBundles: \`ota-ledger tracker resync\`.
  `CREATE TABLE IF NOT EXISTS bundles (
     id TEXT PRIMARY KEY, provider INTEGER NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
     members TEXT NOT NULL, components TEXT NOT NULL, hardware TEXT NOT NULL,
     created_block INTEGER NOT NULL, block_hash TEXT NOT NULL, log_index INTEGER NOT NULL) WITHOUT ROWID;`,
  // An administrator's terms for a decision taken from the module above (issue 19 review): its
  // deadline and pin override, so that a module below hands its devices the same.
  `CREATE TABLE IF NOT EXISTS decision_terms (
     device_id TEXT NOT NULL, release_id TEXT NOT NULL, deadline INTEGER NOT NULL, override_pin INTEGER NOT NULL,
     PRIMARY KEY (device_id, release_id)) WITHOUT ROWID;`,
];

/** A release bundle as the mirror holds it (docs/adr/0019): its members in the bundle's order (ascending component). */
export interface BundleRow {
  id: string;
  provider: number;
  name: string;
  version: bigint;
  members: { releaseId: string; component: string }[];
  hardware: number[];
  createdBlock: number;
  blockHash: string;
  logIndex: number;
}

/** The schema this code writes (the database's user_version once migrated): backups check it. */
export const FLEET_SCHEMA = MIGRATIONS.length;

/** A device's report session with this module (ADR 0013). */
export interface ReportSessionRow {
  deviceId: string;
  sessionId: string;
  wrappedKey: Buffer; // the session key, sealed under the module's key (reportSession.wrapSessionKey)
  deviceKey: string; // the device's enrolled key when the session was made
  moduleKey: string; // the module's public key when the session was made
  establishedAt: number;
}

/** The fleet database's page cache, in KiB. */
const FLEET_DB_CACHE_KIB = 65_536;

export class FleetDatabase {
  readonly db: SqliteDatabase;

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    // 64 MiB of page cache instead of SQLite's 2 MiB: a report touches its device's rows at random
    // among a million, and every page the cache misses is a read (issue 17, bench:tracker).
    this.db.pragma(`cache_size = -${FLEET_DB_CACHE_KIB}`);
    const current = this.db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length)
      throw new Error(`the fleet database is at schema ${current}, newer than this tracker (${MIGRATIONS.length}): upgrade the tracker`);
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private readonly statements = new Map<string, SqliteStatement>();

  /** A statement prepared once per connection (the hot paths: report intake, decisions). */
  private sql(text: string): SqliteStatement {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, (s = this.db.prepare(text)));
    return s;
  }

  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ------------------------------------------------------------------ devices

  upsertDevice(
    d: Pick<DeviceRow, "id" | "publicKey" | "hardwareClass" | "network" | "region" | "standing"> & { batchId?: number | null; leaf?: string | null },
  ): void {
    const id = d.id.toLowerCase();
    this.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO devices (id, public_key, hardware_class, network, region, standing, batch_id, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, hardware_class = excluded.hardware_class,
             network = excluded.network, region = excluded.region, standing = excluded.standing, batch_id = excluded.batch_id, leaf = excluded.leaf`,
        )
        .run(id, d.publicKey.toLowerCase(), d.hardwareClass, d.network, d.region, d.standing, d.batchId ?? null, d.leaf?.toLowerCase() ?? null);
      if (d.standing !== "active") this.dropReportSession(id); // as setStanding
      // A re-enrolment may change the hardware class: the configuration follows.
      const row = this.device(id)!;
      if (row.configId !== null)
        this.db.prepare(`UPDATE devices SET config_id = ? WHERE id = ?`).run(this.configOf(row.hardwareClass, this.installed(id), row.failedRelease), id);
    });
  }

  deleteDevice(deviceId: string): void {
    const id = deviceId.toLowerCase();
    this.transaction(() => {
      for (const t of ["installed", "decisions", "deliveries", "report_sessions"]) this.db.prepare(`DELETE FROM ${t} WHERE device_id = ?`).run(id);
      this.db.prepare(`DELETE FROM devices WHERE id = ?`).run(id);
    });
  }

  setStanding(deviceId: string, standing: DeviceRow["standing"]): void {
    this.db.prepare(`UPDATE devices SET standing = ? WHERE id = ?`).run(standing, deviceId.toLowerCase());
    // A device suspended or withdrawn loses its report session: taken back, it proves its key again (ADR 0013).
    if (standing !== "active") this.dropReportSession(deviceId);
  }

  device(id: string): DeviceRow | undefined {
    const r = this.sql(`SELECT * FROM devices WHERE id = ?`).get(id.toLowerCase()) as DeviceDb | undefined;
    return r && toDevice(r);
  }

  /** A device batch as the ledger holds it (root, revoked). */
  upsertBatch(id: number, root: string, revoked: boolean): void {
    this.db
      .prepare(`INSERT INTO batches (id, root, revoked) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET root = excluded.root, revoked = excluded.revoked`)
      .run(id, root.toLowerCase(), revoked ? 1 : 0);
  }

  deleteBatch(id: number): void {
    this.db.prepare(`DELETE FROM batches WHERE id = ?`).run(id);
  }

  batch(id: number): { root: string; revoked: boolean } | undefined {
    const r = this.db.prepare(`SELECT root, revoked FROM batches WHERE id = ?`).get(id) as { root: string; revoked: number } | undefined;
    return r && { root: r.root, revoked: r.revoked === 1 };
  }

  devicesOfBatch(id: number): string[] {
    return this.db.prepare(`SELECT id FROM devices WHERE batch_id = ?`).pluck().all(id) as string[];
  }

  /** A contact that is not a report (e.g. reachability from a module below): moves last seen only forward. */
  noteSeen(deviceId: string, at: number): void {
    this.db.prepare(`UPDATE devices SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)`).run(at, deviceId.toLowerCase(), at);
  }

  // ------------------------------------------------------------------ releases

  upsertRelease(r: ReleaseRow): void {
    this.db
      .prepare(
        `INSERT INTO releases (id, component, provider, version, hardware, status, block_hash, log_index, record, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, block_hash = excluded.block_hash, log_index = excluded.log_index,
           record = excluded.record, published_at = excluded.published_at`,
      )
      .run(
        r.id.toLowerCase(),
        r.component.toLowerCase(),
        r.provider,
        r.version.toString(),
        JSON.stringify(r.hardware),
        r.status,
        r.blockHash,
        r.logIndex,
        encodeRecord(r.record),
        r.publishedAt,
      );
  }

  setReleaseStatus(id: string, status: ReleaseRow["status"]): void {
    this.db.prepare(`UPDATE releases SET status = ? WHERE id = ?`).run(status, id.toLowerCase());
  }

  /** Drops releases published in blocks a reorganisation removed. */
  dropReleasesOfBlocks(blockHashes: string[]): void {
    const del = this.db.prepare(`DELETE FROM releases WHERE block_hash = ?`);
    this.transaction(() => blockHashes.forEach((h) => del.run(h)));
  }

  deleteRelease(id: string): void {
    this.db.prepare(`DELETE FROM releases WHERE id = ?`).run(id.toLowerCase());
  }

  releases(): ReleaseRow[] {
    return (this.db.prepare(`SELECT * FROM releases ORDER BY published_at, log_index`).all() as ReleaseDb[]).map(toRelease);
  }

  release(id: string): ReleaseRow | undefined {
    const r = this.db.prepare(`SELECT * FROM releases WHERE id = ?`).get(id.toLowerCase()) as ReleaseDb | undefined;
    return r && toRelease(r);
  }

  // ------------------------------------------------------------------ release bundles (docs/adr/0019)

  upsertBundle(b: BundleRow): void {
    this.sql(
      `INSERT OR REPLACE INTO bundles (id, provider, name, version, members, components, hardware, created_block, block_hash, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      b.id.toLowerCase(),
      b.provider,
      b.name,
      b.version.toString(),
      JSON.stringify(b.members.map((m) => m.releaseId.toLowerCase())),
      JSON.stringify(b.members.map((m) => m.component.toLowerCase())),
      JSON.stringify(b.hardware),
      b.createdBlock,
      b.blockHash,
      b.logIndex,
    );
  }

  deleteBundle(id: string): void {
    this.sql(`DELETE FROM bundles WHERE id = ?`).run(id.toLowerCase());
  }

  /** A mirrored bundle; undefined for any other id (a release's among them). */
  bundle(id: string): BundleRow | undefined {
    const r = this.sql(`SELECT * FROM bundles WHERE id = ?`).get(id.toLowerCase()) as BundleDb | undefined;
    return r && toBundle(r);
  }

  /** Every mirrored bundle, oldest first. */
  bundles(): BundleRow[] {
    return (this.sql(`SELECT * FROM bundles ORDER BY created_block, log_index`).all() as BundleDb[]).map(toBundle);
  }

  /**
   * A release's name, "<component name> <version>" (e.g. "acme.bootloader 1.0.0"), or a bundle's,
   * "bundle <name> <version>" (e.g. "bundle sensor-kit 2.0.0"): null for an id the mirror does not
   * hold or whose component's name it does not know yet.
   */
  releaseName(id: string | null): string | null {
    if (!id) return null;
    const bundle = this.sql(`SELECT name, version FROM bundles WHERE id = ?`).get(id.toLowerCase()) as { name: string; version: string } | undefined;
    if (bundle) return `bundle ${bundle.name} ${formatVersion(BigInt(bundle.version))}`;
    const r = this.sql(`SELECT component, version FROM releases WHERE id = ?`).get(id.toLowerCase()) as { component: string; version: string } | undefined;
    const component = r && this.names().component(r.component);
    return component ? `${component} ${formatVersion(BigInt(r.version))}` : null;
  }

  // ------------------------------------------------------------------ names of components and hardware classes

  private namesCache: { components: Map<string, string>; hardware: Map<number, string> } | undefined;

  /** Mirrors a component's registered name (null: its registration left the chain). */
  setComponentName(id: string, name: string | null): void {
    if (name === null) this.sql(`DELETE FROM component_names WHERE id = ?`).run(id.toLowerCase());
    else this.sql(`INSERT INTO component_names (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name`).run(id.toLowerCase(), name);
    this.namesCache = undefined;
  }

  /** Mirrors a hardware class's registered name (null: its registration left the chain). */
  setHardwareName(id: number, name: string | null): void {
    if (name === null) this.sql(`DELETE FROM hardware_classes WHERE id = ?`).run(id);
    else this.sql(`INSERT INTO hardware_classes (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name`).run(id, name);
    this.namesCache = undefined;
  }

  /**
   * The names the mirror holds, from a cache read once after each change (a few hundred rows at
   * most): the read API names every component and hardware class it shows without a query per row.
   * Null for one not mirrored yet.
   */
  names(): { component(id: string): string | null; hardware(id: number): string | null } {
    const c = (this.namesCache ??= {
      components: new Map(this.db.prepare(`SELECT id, name FROM component_names`).raw().all() as [string, string][]),
      hardware: new Map(this.db.prepare(`SELECT id, name FROM hardware_classes`).raw().all() as [number, string][]),
    });
    return { component: (id) => c.components.get(id.toLowerCase()) ?? null, hardware: (id) => c.hardware.get(id) ?? null };
  }

  /** The components the mirror shows (in releases or configurations) whose names it does not hold. */
  unnamedComponents(): string[] {
    return this.db
      .prepare(
        `SELECT component FROM releases UNION SELECT lower(json_extract(i.value, '$.component')) FROM configs, json_each(configs.installed) AS i
         EXCEPT SELECT id FROM component_names`,
      )
      .pluck()
      .all()
      .filter((x): x is string => typeof x === "string");
  }

  setProviderBarred(provider: number, barred: boolean): void {
    this.db.prepare(`INSERT INTO providers (id, barred) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET barred = excluded.barred`).run(provider, barred ? 1 : 0);
  }

  barredProviders(): Set<number> {
    return new Set(this.db.prepare(`SELECT id FROM providers WHERE barred = 1`).pluck().all() as number[]);
  }

  // ------------------------------------------------------------------ reports and configurations

  /**
   * Takes one verified report: stores it, what the device now runs and its configuration, and
   * moves its counter, in one transaction. Returns false (and stores nothing) for a counter not
   * above the last one: a replay or a report overtaken by a newer one.
   */
  takeReport(deviceId: string, counter: number, receivedAt: number, body: ReportBody, via: string | null = null): boolean {
    const id = deviceId.toLowerCase();
    return this.transaction(() => {
      const row = this.sql(
        `SELECT last_counter, hardware_class, failed_release, config_id, last_kind, last_release, blocked_since, last_outcome, last_code, declined, upstream, safe_mode FROM devices WHERE id = ?`,
      ).get(id) as
        | {
            last_outcome: string | null;
            last_code: string | null;
            declined: string | null;
            upstream: string | null;
            safe_mode: number | null;
            last_counter: number;
            hardware_class: number;
            failed_release: string | null;
            config_id: number | null;
            last_kind: ResultKind | null;
            last_release: string | null;
            blocked_since: number | null;
          }
        | undefined;
      if (!row || counter <= row.last_counter) return false;
      this.sql(`INSERT INTO reports (device_id, counter, received_at, body) VALUES (?, ?, ?, ?)`).run(id, counter, receivedAt, JSON.stringify(body));
      const installed = body.installed.map((i) => ({ component: i.component.toLowerCase(), version: BigInt(i.version), releaseId: i.releaseId.toLowerCase() }));
      const outcome = body.lastResult?.outcome ?? null;
      const kind = resultKind(outcome, body.lastResult?.code);
      const lastRelease = typeof body.lastResult?.releaseId === "string" ? body.lastResult.releaseId.toLowerCase() : null;
      // Only a release that failed after an intact delivery is not offered again (agent/core/updateOutcome).
      const failedRelease = kind === "failed" && lastRelease ? lastRelease : row.failed_release;
      // A blocked delivery keeps the time it was first seen blocked while it stays blocked on the same release.
      const blockedSince =
        kind !== "blocked"
          ? null
          : row.last_kind === "blocked" && row.last_release === lastRelease && row.blocked_since !== null
            ? row.blocked_since
            : receivedAt;
      const configId = this.configOf(row.hardware_class, installed, failedRelease);
      // The configuration's key is the installed components: the same configuration, nothing to rewrite
      // (most reports are heartbeats of devices that run what they ran).
      if (configId !== row.config_id) {
        this.sql(`DELETE FROM installed WHERE device_id = ?`).run(id);
        const ins = this.sql(`INSERT INTO installed (device_id, component, version, release_id) VALUES (?, ?, ?, ?)`);
        for (const i of installed) ins.run(id, i.component, i.version.toString(), i.releaseId);
      }
      const declined = JSON.stringify((body.declined ?? []).map((d) => d.releaseId.toLowerCase()));
      const code = body.lastResult?.code ?? null;
      const safeMode = body.safeMode === true ? 1 : 0;
      // A heartbeat (issue 17): only the counter and times change, so only they are written: the
      // indexes on the other columns are left alone (a third of a report's storage cost).
      const heartbeat =
        configId === row.config_id &&
        outcome === row.last_outcome &&
        code === row.last_code &&
        kind === row.last_kind &&
        blockedSince === row.blocked_since &&
        failedRelease === row.failed_release &&
        declined === row.declined &&
        via === row.upstream &&
        lastRelease === row.last_release &&
        safeMode === row.safe_mode;
      if (heartbeat) this.sql(`UPDATE devices SET last_counter = ?, last_seen = ?, last_report_at = ? WHERE id = ?`).run(counter, receivedAt, receivedAt, id);
      else
        this.sql(
          `UPDATE devices SET last_counter = ?, last_seen = ?, last_outcome = ?, last_code = ?, last_kind = ?, blocked_since = ?, failed_release = ?, declined = ?, upstream = ?, config_id = ?, last_release = ?, last_report_at = ?, safe_mode = ? WHERE id = ?`,
        ).run(counter, receivedAt, outcome, code, kind, blockedSince, failedRelease, declined, via, configId, lastRelease, receivedAt, safeMode, id);
      // Every device that ever failed a release counts in its failure total (which only rises).
      if (lastRelease && kind === "failed")
        this.sql(`INSERT OR IGNORE INTO release_failures (release_id, device_id, at) VALUES (?, ?, ?)`).run(lastRelease, id, receivedAt);
      return true;
    });
  }

  /** Keeps a device's report session with this module (ADR 0013), in place of the one it had. */
  setReportSession(row: ReportSessionRow): void {
    this.sql(
      `INSERT OR REPLACE INTO report_sessions (device_id, session_id, wrapped_key, device_key, module_key, established_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(row.deviceId.toLowerCase(), row.sessionId.toLowerCase(), row.wrappedKey, row.deviceKey.toLowerCase(), row.moduleKey.toLowerCase(), row.establishedAt);
  }

  /** A device's report session, if it has one. */
  reportSession(deviceId: string): ReportSessionRow | undefined {
    const r = this.sql(`SELECT session_id, wrapped_key, device_key, module_key, established_at FROM report_sessions WHERE device_id = ?`).get(
      deviceId.toLowerCase(),
    ) as { session_id: string; wrapped_key: Buffer; device_key: string; module_key: string; established_at: number } | undefined;
    return (
      r && {
        deviceId: deviceId.toLowerCase(),
        sessionId: r.session_id,
        wrappedKey: r.wrapped_key,
        deviceKey: r.device_key,
        moduleKey: r.module_key,
        establishedAt: r.established_at,
      }
    );
  }

  /** Ends a device's report session (it sends a full sealed report next, which may open another). */
  dropReportSession(deviceId: string): void {
    this.sql(`DELETE FROM report_sessions WHERE device_id = ?`).run(deviceId.toLowerCase());
  }

  /** The id of the configuration (created if new) of a device with this hardware, these components and this failed release. */
  configOf(hardwareClass: number, installed: { component: string; version: bigint; releaseId: string }[], failedRelease: string | null): number {
    const sorted = [...installed].sort((a, b) => (a.component < b.component ? -1 : a.component > b.component ? 1 : 0));
    const key = `${hardwareClass}|${sorted.map((i) => `${i.component}:${i.version}:${i.releaseId}`).join(",")}|${failedRelease ?? ""}`;
    const found = this.sql(`SELECT id FROM configs WHERE key = ?`).pluck().get(key) as number | undefined;
    if (found !== undefined) return found;
    const installedJson = JSON.stringify(sorted.map((i) => ({ component: i.component, version: i.version.toString(), releaseId: i.releaseId })));
    return Number(
      this.sql(`INSERT INTO configs (key, hardware_class, installed, failed_release) VALUES (?, ?, ?, ?)`).run(key, hardwareClass, installedJson, failedRelease)
        .lastInsertRowid,
    );
  }

  /** Every configuration some device is in. */
  configs(): ConfigRow[] {
    return (this.sql(`SELECT * FROM configs WHERE id IN (SELECT config_id FROM config_devices WHERE devices > 0)`).all() as ConfigDb[]).map(toConfig);
  }

  config(id: number): ConfigRow | undefined {
    const r = this.db.prepare(`SELECT * FROM configs WHERE id = ?`).get(id) as ConfigDb | undefined;
    return r && toConfig(r);
  }

  /** How many active devices each configuration has. */
  devicesPerConfig(): Map<number, number> {
    const rows = this.sql(`SELECT config_id, active FROM config_devices WHERE active > 0`).raw().all() as [number, number][];
    return new Map(rows);
  }

  /** The ids of the active devices in these configurations, read in index order (a million rows stream). */
  *activeDevicesIn(configIds: Iterable<number>): Generator<string> {
    // Its own statement: a generator left open keeps its statement busy. The partial index holds the ids.
    const stmt = this.db.prepare(`SELECT id FROM devices INDEXED BY devices_active_by_config WHERE config_id = ? AND standing = 'active'`).pluck();
    for (const c of configIds) yield* stmt.iterate(c) as IterableIterator<string>;
  }

  reports(deviceId: string, limit = 50): { counter: number; receivedAt: number; body: unknown }[] {
    return (
      this.db
        .prepare(`SELECT counter, received_at AS receivedAt, body FROM reports WHERE device_id = ? ORDER BY id DESC LIMIT ?`)
        .all(deviceId.toLowerCase(), limit) as {
        counter: number;
        receivedAt: number;
        body: string;
      }[]
    ).map((r) => ({ ...r, body: JSON.parse(r.body) }));
  }

  installed(deviceId: string): InstalledRow[] {
    return (this.db.prepare(`SELECT * FROM installed WHERE device_id = ?`).all(deviceId.toLowerCase()) as InstalledDb[]).map(toInstalled);
  }

  /** Every active device's id and key, by id: the logins a broker gives them (ADR 0015). */
  activeDeviceKeys(): { id: string; publicKey: string }[] {
    return this.db.prepare(`SELECT id, public_key AS publicKey FROM devices WHERE standing = 'active' ORDER BY id`).all() as {
      id: string;
      publicKey: string;
    }[];
  }

  /** Devices running a release that is now vulnerable or revoked on the ledger (REQ-10b-ii, CAP-11.3-g). */
  runningFlagged(): { deviceId: string; releaseId: string; status: string }[] {
    return this.db
      .prepare(
        `SELECT i.device_id AS deviceId, i.release_id AS releaseId, r.status AS status FROM installed i JOIN releases r ON r.id = i.release_id WHERE r.status <> 'active'`,
      )
      .all() as { deviceId: string; releaseId: string; status: string }[];
  }

  /** Devices whose last update failed (CAP-11.2-b). */
  failed(): DeviceRow[] {
    return (this.db.prepare(`SELECT * FROM devices WHERE ${FAILED_SQL}`).all() as DeviceDb[]).map(toDevice);
  }

  /** Devices not heard from since `before` (ms) (CAP-11.2-a liveness). */
  unreachable(before: number): DeviceRow[] {
    return (this.db.prepare(`SELECT * FROM devices WHERE standing = 'active' AND (last_seen IS NULL OR last_seen < ?)`).all(before) as DeviceDb[]).map(
      toDevice,
    );
  }

  // ------------------------------------------------------------------ decisions, deliveries, rollouts

  /** Records an administrator's decision for one device (PROC-2); a later decision for the same release replaces it. */
  decide(d: { deviceId: string; releaseId: string; component: string; reason: string; origin: string; at: number }): void {
    this.db
      .prepare(
        `INSERT INTO decisions (device_id, release_id, component, reason, origin, decided_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id, release_id) DO UPDATE SET reason = excluded.reason, origin = excluded.origin, decided_at = excluded.decided_at`,
      )
      .run(d.deviceId.toLowerCase(), d.releaseId.toLowerCase(), d.component.toLowerCase(), d.reason, d.origin, d.at);
  }

  /** The administrator's terms the module above gave with a decision for this device and release, if any. */
  decisionTerms(deviceId: string, releaseId: string): { deadline: number; overridePin?: true } | undefined {
    const row = this.db
      .prepare(`SELECT deadline, override_pin AS overridePin FROM decision_terms WHERE device_id = ? AND release_id = ?`)
      .get(deviceId.toLowerCase(), releaseId.toLowerCase()) as { deadline: number; overridePin: number } | undefined;
    return row && { deadline: row.deadline, ...(row.overridePin ? { overridePin: true as const } : {}) };
  }

  /** Keeps (or, with none, drops) the terms of a decision taken from the module above. */
  setDecisionTerms(deviceId: string, releaseId: string, terms: { deadline: number; overridePin?: true } | undefined): void {
    if (!terms) {
      this.db.prepare(`DELETE FROM decision_terms WHERE device_id = ? AND release_id = ?`).run(deviceId.toLowerCase(), releaseId.toLowerCase());
      return;
    }
    this.db
      .prepare(
        `INSERT INTO decision_terms (device_id, release_id, deadline, override_pin) VALUES (?, ?, ?, ?)
         ON CONFLICT (device_id, release_id) DO UPDATE SET deadline = excluded.deadline, override_pin = excluded.override_pin`,
      )
      .run(deviceId.toLowerCase(), releaseId.toLowerCase(), terms.deadline, terms.overridePin ? 1 : 0);
  }

  decisionsFor(deviceId: string): { releaseId: string; component: string; reason: string; origin: string; decidedAt: number }[] {
    return this.db
      .prepare(`SELECT release_id AS releaseId, component, reason, origin, decided_at AS decidedAt FROM decisions WHERE device_id = ? ORDER BY decided_at`)
      .all(deviceId.toLowerCase()) as { releaseId: string; component: string; reason: string; origin: string; decidedAt: number }[];
  }

  /** When, and with what reason, a notice of this release was last handed out for this device, if ever. */
  lastDelivery(deviceId: string, releaseId: string): { at: number; reason: string } | undefined {
    return this.db
      .prepare(`SELECT delivered_at AS at, reason FROM deliveries WHERE device_id = ? AND release_id = ?`)
      .get(deviceId.toLowerCase(), releaseId.toLowerCase()) as { at: number; reason: string } | undefined;
  }

  noteDelivered(d: { deviceId: string; releaseId: string; reason: string; origin: string; via: string; at: number }): void {
    this.db
      .prepare(
        `INSERT INTO deliveries (device_id, release_id, reason, origin, via, delivered_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id, release_id) DO UPDATE SET reason = excluded.reason, origin = excluded.origin, via = excluded.via, delivered_at = excluded.delivered_at`,
      )
      .run(d.deviceId.toLowerCase(), d.releaseId.toLowerCase(), d.reason, d.origin, d.via, d.at);
  }

  deliveries(deviceId: string): { releaseId: string; reason: string; origin: string; via: string; deliveredAt: number }[] {
    return this.db
      .prepare(`SELECT release_id AS releaseId, reason, origin, via, delivered_at AS deliveredAt FROM deliveries WHERE device_id = ? ORDER BY delivered_at`)
      .all(deviceId.toLowerCase()) as { releaseId: string; reason: string; origin: string; via: string; deliveredAt: number }[];
  }

  /** Starts following a release's rollout (first decision wins the origin). */
  startRollout(releaseId: string, origin: string, at: number): void {
    this.db.prepare(`INSERT OR IGNORE INTO rollouts (release_id, origin, started_at) VALUES (?, ?, ?)`).run(releaseId.toLowerCase(), origin, at);
  }

  rollouts(): { releaseId: string; origin: string; startedAt: number }[] {
    return this.db.prepare(`SELECT release_id AS releaseId, origin, started_at AS startedAt FROM rollouts ORDER BY started_at`).all() as {
      releaseId: string;
      origin: string;
      startedAt: number;
    }[];
  }

  /**
   * Per release: devices that were sent a notice, devices whose last failed install was it, and
   * devices whose delivery of it is blocked now (a bad mirror shows at once, agent/core/updateOutcome).
   */
  rolloutCounts(): Map<string, { notified: number; failed: number; blocked: number; requested: number }> {
    const out = new Map<string, { notified: number; failed: number; blocked: number; requested: number }>();
    const get = (id: string) => out.get(id) ?? out.set(id, { notified: 0, failed: 0, blocked: 0, requested: 0 }).get(id)!;
    for (const [id, n] of this.db.prepare(`SELECT release_id, COUNT(*) FROM deliveries GROUP BY release_id`).raw().all() as [string, number][])
      get(id).notified = n;
    for (const [id, n] of this.db
      .prepare(`SELECT failed_release, COUNT(*) FROM devices WHERE failed_release IS NOT NULL GROUP BY failed_release`)
      .raw()
      .all() as [string, number][])
      get(id).failed = n;
    for (const [id, n] of this.db
      .prepare(`SELECT last_release, COUNT(*) FROM devices WHERE last_kind = 'blocked' AND last_release IS NOT NULL GROUP BY last_release`)
      .raw()
      .all() as [string, number][])
      get(id).blocked = n;
    for (const [id, n] of this.db.prepare(`SELECT release_id, COUNT(*) FROM decisions GROUP BY release_id`).raw().all() as [string, number][])
      get(id).requested = n;
    return out;
  }

  /** Per release: how many devices ever reported a failed update of it (agent/core/updateOutcome), for the staged rollouts' failure totals. */
  failureTotals(): Map<string, number> {
    return new Map(this.db.prepare(`SELECT release_id, COUNT(*) FROM release_failures GROUP BY release_id`).raw().all() as [string, number][]);
  }

  // ------------------------------------------------------------------ adoption

  /** Records how many devices run each release now (one point per release and time). */
  sampleAdoption(at: number, installedByRelease: Map<string, number>): void {
    const ins = this.db.prepare(`INSERT OR REPLACE INTO adoption (release_id, at, installed) VALUES (?, ?, ?)`);
    this.transaction(() => {
      for (const [release, n] of installedByRelease) ins.run(release, at, n);
    });
  }

  adoption(releaseId: string, limit = 500): { t: number; installed: number }[] {
    return (
      this.db.prepare(`SELECT at AS t, installed FROM adoption WHERE release_id = ? ORDER BY at DESC LIMIT ?`).all(releaseId.toLowerCase(), limit) as {
        t: number;
        installed: number;
      }[]
    ).reverse();
  }

  // ------------------------------------------------------------------ evidence for update policies

  /**
   * Sets the evidence of a release for these devices, for one policy (its address) or for every
   * policy (EVERY_POLICY), in one transaction. Evidence for every policy replaces a device's keyed
   * parts and a keyed part replaces evidence for every policy: the two cannot travel together.
   * Throws EVIDENCE_INVALID (nothing kept) when a device's parts together exceed the evidence limit.
   */
  setEvidence(releaseId: string, policy: string, entries: { deviceId: string; evidence: string }[]): void {
    const release = releaseId.toLowerCase();
    const key = policy === EVERY_POLICY ? EVERY_POLICY : getAddress(policy);
    const clear = this.db.prepare(
      key === EVERY_POLICY
        ? `DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy <> ''`
        : `DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`,
    );
    const ins = this.db.prepare(`INSERT OR REPLACE INTO policy_evidence (release_id, device_id, policy, evidence) VALUES (?, ?, ?, ?)`);
    this.transaction(() => {
      for (const e of entries) {
        const device = e.deviceId.toLowerCase();
        clear.run(release, device);
        ins.run(release, device, key, e.evidence);
        if (key !== EVERY_POLICY) this.evidenceFor(release, device); // throws when the parts outgrow the limit
      }
    });
  }

  /** Of these devices, the ones holding evidence for every policy of the release (unkeyed, as all evidence was before issue 18). */
  devicesWithWholeEvidence(releaseId: string, deviceIds: string[]): string[] {
    const q = this.sql(`SELECT 1 FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`);
    return deviceIds.filter((d) => q.get(releaseId.toLowerCase(), d.toLowerCase()) !== undefined);
  }

  /** Moves these devices' evidence for every policy to parts keyed by `policies` (each gets the same bytes). */
  keyWholeEvidence(releaseId: string, deviceIds: string[], policies: string[]): void {
    const ins = this.sql(
      `INSERT OR REPLACE INTO policy_evidence (release_id, device_id, policy, evidence)
       SELECT release_id, device_id, ?, evidence FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`,
    );
    const del = this.sql(`DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ? AND policy = ''`);
    this.transaction(() => {
      for (const d of deviceIds) {
        for (const p of policies) ins.run(getAddress(p), releaseId.toLowerCase(), d.toLowerCase());
        del.run(releaseId.toLowerCase(), d.toLowerCase());
      }
    });
  }

  /** Replaces all of a device's evidence for the release with these parts (a parent module's, as it sent them). */
  replaceEvidence(releaseId: string, deviceId: string, parts: Map<string, string>): void {
    joinEvidence(parts); // throws EVIDENCE_INVALID, nothing changed, when the parts do not fit together
    this.transaction(() => {
      this.sql(`DELETE FROM policy_evidence WHERE release_id = ? AND device_id = ?`).run(releaseId.toLowerCase(), deviceId.toLowerCase());
      for (const [policy, part] of parts) this.setEvidence(releaseId, policy, [{ deviceId, evidence: part }]);
    });
  }

  /** The evidence this device brings to the release's policy (its parts in one envelope), if the tracker holds some. */
  evidenceFor(releaseId: string, deviceId: string): string | undefined {
    const rows = this.sql(`SELECT policy, evidence FROM policy_evidence WHERE release_id = ? AND device_id = ? ORDER BY policy`)
      .raw()
      .all(releaseId.toLowerCase(), deviceId.toLowerCase()) as [string, string][];
    return rows.length === 0 ? undefined : joinEvidence(new Map(rows));
  }

  // ------------------------------------------------------------------ tags, groups, update requests (issue 19, item 11)

  /** A device's tags (key -> value), as administrators set them. */
  tagsOf(deviceId: string): Record<string, string> {
    const rows = this.sql(`SELECT key, value FROM device_tags WHERE device_id = ? ORDER BY key`).raw().all(deviceId.toLowerCase()) as [string, string][];
    return Object.fromEntries(rows);
  }

  /** Sets and removes tags of a device in one transaction; refused (nothing changed) past `maxTags`. Returns its tags after. */
  changeTags(deviceId: string, set: Record<string, string>, remove: string[], maxTags: number): Record<string, string> {
    const id = deviceId.toLowerCase();
    return this.transaction(() => {
      const del = this.sql(`DELETE FROM device_tags WHERE device_id = ? AND key = ?`);
      for (const k of remove) del.run(id, k);
      const put = this.sql(
        `INSERT INTO device_tags (device_id, key, value) VALUES (?, ?, ?) ON CONFLICT (device_id, key) DO UPDATE SET value = excluded.value`,
      );
      for (const [k, v] of Object.entries(set)) put.run(id, k, v);
      const n = this.sql(`SELECT COUNT(*) FROM device_tags WHERE device_id = ?`).pluck().get(id) as number;
      if (n > maxTags) throw new TagLimitError("TAG_LIMIT", `a device has at most ${maxTags} tags; this change would leave ${n} on ${id}: remove some first`);
      // The status anchors cover tags (format 2): a change is a change to anchor.
      this.raiseReplayMark(TAG_CHANGES_MARK, this.replayMark(TAG_CHANGES_MARK) + 1);
      return this.tagsOf(id);
    });
  }

  groups(): { name: string; query: string; createdBy: string; createdAt: number }[] {
    return this.sql(`SELECT name, query, created_by AS createdBy, created_at AS createdAt FROM device_groups ORDER BY name`).all() as {
      name: string;
      query: string;
      createdBy: string;
      createdAt: number;
    }[];
  }

  group(name: string): { name: string; query: string; createdBy: string; createdAt: number } | undefined {
    return this.sql(`SELECT name, query, created_by AS createdBy, created_at AS createdAt FROM device_groups WHERE name = ?`).get(name) as
      { name: string; query: string; createdBy: string; createdAt: number } | undefined;
  }

  /** Saves a group (a later one of the same name replaces its query). */
  putGroup(name: string, query: string, by: string, at: number): void {
    this.sql(
      `INSERT INTO device_groups (name, query, created_by, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET query = excluded.query, created_by = excluded.created_by, created_at = excluded.created_at`,
    ).run(name, query, by.toLowerCase(), at);
  }

  deleteGroup(name: string): boolean {
    return this.sql(`DELETE FROM device_groups WHERE name = ?`).run(name).changes > 0;
  }

  /** Records an administrator's update request and the devices it decided. */
  recordUpdateRequest(r: {
    id: string;
    releaseId: string;
    component: string;
    target: unknown;
    deadline: number | null;
    overridePins: boolean;
    requestedBy: string;
    requestedAt: number;
    refused: unknown[];
    devices: string[];
  }): void {
    this.transaction(() => {
      this.sql(
        `INSERT INTO update_requests (id, release_id, component, target, deadline, override_pins, requested_by, requested_at, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        r.id,
        r.releaseId.toLowerCase(),
        r.component.toLowerCase(),
        JSON.stringify(r.target),
        r.deadline,
        r.overridePins ? 1 : 0,
        r.requestedBy.toLowerCase(),
        r.requestedAt,
        JSON.stringify(r.refused),
      );
      this.addRequestDevices(r.id, r.devices, r.requestedAt);
    });
  }

  addRequestDevices(requestId: string, deviceIds: string[], at: number): void {
    const ins = this.sql(`INSERT OR IGNORE INTO update_request_devices (request_id, device_id, decided_at) VALUES (?, ?, ?)`);
    this.transaction(() => deviceIds.forEach((d) => ins.run(requestId, d.toLowerCase(), at)));
  }

  updateRequest(id: string): UpdateRequestRow | undefined {
    const r = this.sql(`SELECT * FROM update_requests WHERE id = ?`).get(id.toLowerCase()) as UpdateRequestDb | undefined;
    return r && toUpdateRequest(r);
  }

  updateRequests(limit: number, offset: number): { total: number; requests: UpdateRequestRow[] } {
    const total = this.sql(`SELECT COUNT(*) FROM update_requests`).pluck().get() as number;
    const rows = this.sql(`SELECT * FROM update_requests ORDER BY requested_at DESC, id LIMIT ? OFFSET ?`).all(limit, offset) as UpdateRequestDb[];
    return { total, requests: rows.map(toUpdateRequest) };
  }

  requestDevices(requestId: string): string[] {
    return this.sql(`SELECT device_id FROM update_request_devices WHERE request_id = ? ORDER BY device_id`).pluck().all(requestId.toLowerCase()) as string[];
  }

  // ------------------------------------------------------------------ reports to forward upstream

  /** Keeps a report (as its device signed it) until the module above has taken it. */
  queueForUpstream(body: unknown): void {
    this.db.prepare(`INSERT INTO outbox (body) VALUES (?)`).run(JSON.stringify(body));
  }

  outbox(limit: number): { id: number; body: unknown }[] {
    return (this.db.prepare(`SELECT id, body FROM outbox ORDER BY id LIMIT ?`).all(limit) as { id: number; body: string }[]).map((r) => ({
      id: r.id,
      body: JSON.parse(r.body),
    }));
  }

  /** Drops what the module above took (ids up to and including `lastId`). */
  dropOutbox(lastId: number): void {
    this.db.prepare(`DELETE FROM outbox WHERE id <= ?`).run(lastId);
  }

  // ------------------------------------------------------------------ the firmware servers' download logs

  /**
   * The last download-log entry read from a firmware server (0 before the first): the newest
   * taken, or the newest passed over (another fleet's device), so that a log of mostly other
   * fleets' devices is still read forward.
   */
  downloadCursor(server: string): number {
    const taken = (this.db.prepare(`SELECT MAX(id) FROM downloads WHERE server = ?`).pluck().get(server) as number | null) ?? 0;
    return Math.max(taken, this.replayMark(`download-cursor ${server}`));
  }

  /**
   * Takes entries of a firmware server's download log: each is a contact with its device
   * (CAP-11.2-b-i: liveness from the communication log). Entries already taken change nothing.
   * The server is not trusted (its log is not signed by the devices): an entry that is not a well
   * formed one is skipped, and a time after `now` counts as `now`, so a server cannot keep a device
   * out of "unreachable" by dating a contact in the future (issue 16 review).
   */
  takeDownloads(
    server: string,
    entries: { id: number; at: number; deviceId: string; releaseId: string; kind: string; complete: boolean }[],
    now: number,
  ): number {
    const ins = this.db.prepare(`INSERT OR IGNORE INTO downloads (server, id, device_id, release_id, kind, at, complete) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const hex32 = /^0x[0-9a-fA-F]{64}$/;
    const known = this.db.prepare(`SELECT 1 FROM devices WHERE id = ?`).pluck();
    let passedOver = 0;
    let n = 0;
    this.transaction(() => {
      for (const e of entries) {
        const wellFormed =
          Number.isSafeInteger(e?.id) &&
          Number.isSafeInteger(e.at) &&
          e.at >= 0 &&
          hex32.test(String(e.deviceId)) &&
          hex32.test(String(e.releaseId)) &&
          typeof e.kind === "string";
        if (!wellFormed) continue;
        // Only devices of this fleet: a server's entries for any other id would only grow the table.
        if (!known.get(e.deviceId.toLowerCase())) {
          passedOver = Math.max(passedOver, e.id);
          continue;
        }
        const at = Math.min(e.at, now);
        if (ins.run(server, e.id, e.deviceId.toLowerCase(), e.releaseId.toLowerCase(), e.kind.slice(0, 32), at, e.complete ? 1 : 0).changes === 0) continue;
        this.noteSeen(e.deviceId, at);
        n++;
      }
      if (passedOver > this.downloadCursor(server)) this.raiseReplayMark(`download-cursor ${server}`, passedOver);
    });
    return n;
  }

  /**
   * What the download logs say active devices hold, for the components their reports do not
   * cover (CAP-11.3-g): per device and component, the newest release it fetched whole (the
   * artifact to its last byte, or the CAR). A device that reports a component is planned from its
   * report instead, which is the device's own word.
   */
  downloadHolders(): { deviceId: string; hardwareClass: number; held: { component: string; version: bigint; releaseId: string }[] }[] {
    const rows = this.db
      .prepare(
        `SELECT d.device_id AS deviceId, dev.hardware_class AS hardwareClass, r.component AS component, r.version AS version, r.id AS releaseId
         FROM downloads d JOIN releases r ON r.id = d.release_id JOIN devices dev ON dev.id = d.device_id
         WHERE d.complete = 1 AND d.kind IN ('artifact', 'car', 'delta') AND dev.standing = 'active'
           AND NOT EXISTS (SELECT 1 FROM installed i WHERE i.device_id = d.device_id AND i.component = r.component)
         GROUP BY d.device_id, r.id ORDER BY d.device_id`,
      )
      .all() as { deviceId: string; hardwareClass: number; component: string; version: string; releaseId: string }[];
    const byDevice = new Map<
      string,
      { deviceId: string; hardwareClass: number; held: Map<string, { component: string; version: bigint; releaseId: string }> }
    >();
    for (const r of rows) {
      const d =
        byDevice.get(r.deviceId) ?? byDevice.set(r.deviceId, { deviceId: r.deviceId, hardwareClass: r.hardwareClass, held: new Map() }).get(r.deviceId)!;
      const version = BigInt(r.version);
      const have = d.held.get(r.component);
      if (!have || have.version < version) d.held.set(r.component, { component: r.component, version, releaseId: r.releaseId });
    }
    return [...byDevice.values()].map((d) => ({ ...d, held: [...d.held.values()] }));
  }

  /** Drops a device's decisions of one origin for a component, but the release given (a newer one replaces them). */
  dropDecisionsOf(deviceId: string, component: string, origin: string, keepReleaseId: string): void {
    this.db
      .prepare(`DELETE FROM decisions WHERE device_id = ? AND component = ? AND origin = ? AND release_id <> ?`)
      .run(deviceId.toLowerCase(), component.toLowerCase(), origin, keepReleaseId.toLowerCase());
  }

  downloadsOf(deviceId: string, limit = 20): { releaseId: string; kind: string; at: number; complete: boolean }[] {
    return (
      this.db
        .prepare(`SELECT release_id AS releaseId, kind, at, complete FROM downloads WHERE device_id = ? ORDER BY at DESC LIMIT ?`)
        .all(deviceId.toLowerCase(), limit) as {
        releaseId: string;
        kind: string;
        at: number;
        complete: number;
      }[]
    ).map((d) => ({ ...d, complete: d.complete === 1 }));
  }

  // ------------------------------------------------------------------ where the ledger stream stands

  /** The ledger stream's saved state (agent/chain/eventStreamStore), or undefined before the first. */
  ledgerPosition(): StreamState | undefined {
    const text = this.sql(`SELECT state FROM ledger_position WHERE id = 1`).pluck().get() as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as StreamState);
  }

  /** Saves it; inside the caller's transaction when there is one (the events of the same blocks). */
  setLedgerPosition(state: StreamState): void {
    this.sql(`INSERT INTO ledger_position (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`).run(JSON.stringify(state));
  }

  /** Forgets it: the stream reads the ledger again from its first block. */
  clearLedgerPosition(): void {
    this.sql(`DELETE FROM ledger_position`).run();
  }

  /** The ledger account's journal of transactions not yet buried (TxJournal). */
  get ledgerTxs(): TxJournal {
    return {
      list: () => (this.sql(`SELECT tx FROM ledger_txs ORDER BY nonce`).pluck().all() as string[]).map((t) => JSON.parse(t) as SentTx),
      put: (tx) => void this.sql(`INSERT OR REPLACE INTO ledger_txs (nonce, tx) VALUES (?, ?)`).run(tx.nonce, JSON.stringify(tx)),
      remove: (nonce) => void this.sql(`DELETE FROM ledger_txs WHERE nonce = ?`).run(nonce),
    };
  }

  // ------------------------------------------------------------------ modules below this one

  /** Takes a child module's status; false (nothing stored) if its counter is not above the last one. */
  takeModuleStatus(m: {
    id: string;
    networks: string[];
    counter: number;
    at: number;
    devices: number;
    unreachableDevices: number;
    children: unknown[];
  }): boolean {
    const id = m.id.toLowerCase();
    const last = this.db.prepare(`SELECT last_counter FROM modules WHERE id = ?`).pluck().get(id) as number | undefined;
    if (last !== undefined && m.counter <= last) return false;
    this.db
      .prepare(
        `INSERT INTO modules (id, networks, last_seen, last_counter, devices, unreachable_devices, children) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET networks = excluded.networks, last_seen = excluded.last_seen, last_counter = excluded.last_counter,
           devices = excluded.devices, unreachable_devices = excluded.unreachable_devices, children = excluded.children`,
      )
      .run(id, JSON.stringify(m.networks), m.at, m.counter, m.devices, m.unreachableDevices, JSON.stringify(m.children));
    return true;
  }

  modules(): { id: string; networks: string[]; lastSeen: number; devices: number; unreachableDevices: number; children: unknown[] }[] {
    return (
      this.db.prepare(`SELECT * FROM modules ORDER BY id`).all() as {
        id: string;
        networks: string;
        last_seen: number;
        devices: number;
        unreachable_devices: number;
        children: string;
      }[]
    ).map((m) => ({
      id: m.id,
      networks: JSON.parse(m.networks),
      lastSeen: m.last_seen,
      devices: m.devices,
      unreachableDevices: m.unreachable_devices,
      children: JSON.parse(m.children),
    }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** A replay mark (e.g. "parent-decisions": the issue time of the last decisions taken from the parent); 0 when never set. */
  replayMark(name: string): number {
    return (this.db.prepare(`SELECT value FROM replay_marks WHERE name = ?`).pluck().get(name) as number | undefined) ?? 0;
  }

  /** Raises a replay mark to `value` (never lowers it); durable when it returns. */
  raiseReplayMark(name: string, value: number): void {
    this.db
      .prepare(`INSERT INTO replay_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)`)
      .run(name, value);
  }
}

/** The replay mark counting tag changes: status anchoring's fingerprint reads it. */
export const TAG_CHANGES_MARK = "tag-changes";

/** A device would hold more tags than allowed: nothing was changed. */
export class TagLimitError extends InputError {}

/** An administrator's update request as the tracker keeps it (PROC-2, issue 19 item 11). */
export interface UpdateRequestRow {
  id: string;
  releaseId: string;
  component: string;
  target: { devices?: number; filter?: unknown; group?: string; query?: string };
  deadline: number | null; // ms since the epoch
  overridePins: boolean;
  requestedBy: string;
  requestedAt: number;
  refused: { deviceId: string; code: string; message: string }[];
}
interface UpdateRequestDb {
  id: string;
  release_id: string;
  component: string;
  target: string;
  deadline: number | null;
  override_pins: number;
  requested_by: string;
  requested_at: number;
  refused: string;
}
const toUpdateRequest = (r: UpdateRequestDb): UpdateRequestRow => ({
  id: r.id,
  releaseId: r.release_id,
  component: r.component,
  target: JSON.parse(r.target),
  deadline: r.deadline,
  overridePins: r.override_pins === 1,
  requestedBy: r.requested_by,
  requestedAt: r.requested_at,
  refused: JSON.parse(r.refused),
});

interface DeviceDb {
  id: string;
  public_key: string;
  hardware_class: number;
  network: string;
  region: string;
  standing: DeviceRow["standing"];
  last_seen: number | null;
  last_counter: number;
  last_outcome: string | null;
  last_code: string | null;
  last_kind: ResultKind | null;
  last_release: string | null;
  blocked_since: number | null;
  config_id: number | null;
  failed_release: string | null;
  declined: string;
  upstream: string | null;
  batch_id: number | null;
  leaf: string | null;
  safe_mode: number;
}
interface ReleaseDb {
  id: string;
  component: string;
  provider: number;
  version: string;
  hardware: string;
  status: ReleaseRow["status"];
  block_hash: string;
  log_index: number;
  record: string;
  published_at: number;
}
interface InstalledDb {
  device_id: string;
  component: string;
  version: string;
  release_id: string;
}
interface ConfigDb {
  id: number;
  hardware_class: number;
  installed: string;
  failed_release: string | null;
}

export const toDevice = (r: DeviceDb): DeviceRow => ({
  id: r.id,
  publicKey: r.public_key,
  hardwareClass: r.hardware_class,
  network: r.network,
  region: r.region,
  standing: r.standing,
  lastSeen: r.last_seen,
  lastCounter: r.last_counter,
  lastOutcome: r.last_outcome,
  lastCode: r.last_code,
  lastKind: r.last_kind,
  lastRelease: r.last_release,
  blockedSince: r.blocked_since,
  configId: r.config_id,
  failedRelease: r.failed_release,
  declined: JSON.parse(r.declined),
  upstream: r.upstream,
  batchId: r.batch_id,
  leaf: r.leaf,
  safeMode: r.safe_mode === 1,
});
export type { DeviceDb };
const toRelease = (r: ReleaseDb): ReleaseRow => ({
  id: r.id,
  component: r.component,
  provider: r.provider,
  version: BigInt(r.version),
  hardware: JSON.parse(r.hardware),
  status: r.status,
  blockHash: r.block_hash,
  logIndex: r.log_index,
  record: decodeRecord(r.record),
  publishedAt: r.published_at,
});
const toInstalled = (r: InstalledDb): InstalledRow => ({ deviceId: r.device_id, component: r.component, version: BigInt(r.version), releaseId: r.release_id });
const toConfig = (r: ConfigDb): ConfigRow => ({
  id: r.id,
  hardwareClass: r.hardware_class,
  installed: (JSON.parse(r.installed) as { component: string; version: string; releaseId: string }[]).map((i) => ({ ...i, version: BigInt(i.version) })),
  failedRelease: r.failed_release,
});

/** A release record as JSON (bigints as decimal strings). */
function encodeRecord(r: ReleaseRecord): string {
  return JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}
function decodeRecord(text: string): ReleaseRecord {
  const r = JSON.parse(text);
  return {
    ...r,
    version: BigInt(r.version ?? 0),
    fileSize: BigInt(r.fileSize ?? 0),
    hardware: r.hardware ?? [],
    dependencies: (r.dependencies ?? []).map((d: { component: string; minVersion: string; maxVersion: string }) => ({
      component: d.component,
      minVersion: BigInt(d.minVersion),
      maxVersion: BigInt(d.maxVersion),
    })),
  };
}

interface BundleDb {
  id: string;
  provider: number;
  name: string;
  version: string;
  members: string;
  components: string;
  hardware: string;
  created_block: number;
  block_hash: string;
  log_index: number;
}

function toBundle(r: BundleDb): BundleRow {
  const components = JSON.parse(r.components) as string[];
  return {
    id: r.id,
    provider: r.provider,
    name: r.name,
    version: BigInt(r.version),
    members: (JSON.parse(r.members) as string[]).map((releaseId, i) => ({ releaseId, component: components[i] })),
    hardware: JSON.parse(r.hardware) as number[],
    createdBlock: r.created_block,
    blockHash: r.block_hash,
    logIndex: r.log_index,
  };
}
