import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import path from "node:path";

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
}

export interface InstalledRow {
  deviceId: string;
  component: string;
  version: bigint;
  releaseId: string;
}

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
];

export class FleetDatabase {
  readonly db: Database.Database;

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    const current = this.db.pragma("user_version", { simple: true }) as number;
    if (current > MIGRATIONS.length) throw new Error(`the fleet database is at schema ${current}, newer than this tracker (${MIGRATIONS.length}): upgrade the tracker`);
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  upsertDevice(d: Omit<DeviceRow, "lastSeen" | "lastCounter" | "lastOutcome" | "lastCode">): void {
    this.db
      .prepare(
        `INSERT INTO devices (id, public_key, hardware_class, network, region, standing) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, hardware_class = excluded.hardware_class,
           network = excluded.network, region = excluded.region, standing = excluded.standing`,
      )
      .run(d.id.toLowerCase(), d.publicKey.toLowerCase(), d.hardwareClass, d.network, d.region, d.standing);
  }

  deleteDevice(deviceId: string): void {
    const id = deviceId.toLowerCase();
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM installed WHERE device_id = ?`).run(id);
      this.db.prepare(`DELETE FROM devices WHERE id = ?`).run(id);
    })();
  }

  setStanding(deviceId: string, standing: DeviceRow["standing"]): void {
    this.db.prepare(`UPDATE devices SET standing = ? WHERE id = ?`).run(standing, deviceId.toLowerCase());
  }

  device(id: string): DeviceRow | undefined {
    const r = this.db.prepare(`SELECT * FROM devices WHERE id = ?`).get(id.toLowerCase()) as DeviceDb | undefined;
    return r && toDevice(r);
  }

  upsertRelease(r: ReleaseRow): void {
    this.db
      .prepare(
        `INSERT INTO releases (id, component, provider, version, hardware, status, block_hash, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, block_hash = excluded.block_hash, log_index = excluded.log_index`,
      )
      .run(r.id.toLowerCase(), r.component.toLowerCase(), r.provider, r.version.toString(), JSON.stringify(r.hardware), r.status, r.blockHash, r.logIndex);
  }

  setReleaseStatus(id: string, status: ReleaseRow["status"]): void {
    this.db.prepare(`UPDATE releases SET status = ? WHERE id = ?`).run(status, id.toLowerCase());
  }

  /** Drops releases published in blocks a reorganisation removed. */
  dropReleasesOfBlocks(blockHashes: string[]): void {
    const del = this.db.prepare(`DELETE FROM releases WHERE block_hash = ?`);
    this.db.transaction(() => blockHashes.forEach((h) => del.run(h)))();
  }

  deleteRelease(id: string): void {
    this.db.prepare(`DELETE FROM releases WHERE id = ?`).run(id.toLowerCase());
  }

  releases(): ReleaseRow[] {
    return (this.db.prepare(`SELECT * FROM releases`).all() as ReleaseDb[]).map(toRelease);
  }

  /**
   * Takes one verified report: stores it and what the device now runs, and moves its counter, in
   * one transaction. Returns false (and stores nothing) for a counter not above the last one: a
   * replay or a report overtaken by a newer one.
   */
  takeReport(deviceId: string, counter: number, receivedAt: number, body: { installed: { component: string; version: string; releaseId: string }[]; lastResult: { outcome: string; code: string } | null }): boolean {
    const id = deviceId.toLowerCase();
    return this.db.transaction(() => {
      const row = this.db.prepare(`SELECT last_counter FROM devices WHERE id = ?`).get(id) as { last_counter: number } | undefined;
      if (!row || counter <= row.last_counter) return false;
      this.db.prepare(`INSERT INTO reports (device_id, counter, received_at, body) VALUES (?, ?, ?, ?)`).run(id, counter, receivedAt, JSON.stringify(body));
      this.db.prepare(`DELETE FROM installed WHERE device_id = ?`).run(id);
      const ins = this.db.prepare(`INSERT INTO installed (device_id, component, version, release_id) VALUES (?, ?, ?, ?)`);
      for (const i of body.installed) ins.run(id, i.component.toLowerCase(), i.version, i.releaseId.toLowerCase());
      this.db
        .prepare(`UPDATE devices SET last_counter = ?, last_seen = ?, last_outcome = ?, last_code = ? WHERE id = ?`)
        .run(counter, receivedAt, body.lastResult?.outcome ?? null, body.lastResult?.code ?? null, id);
      return true;
    })();
  }

  installed(deviceId: string): InstalledRow[] {
    return (this.db.prepare(`SELECT * FROM installed WHERE device_id = ?`).all(deviceId.toLowerCase()) as InstalledDb[]).map(toInstalled);
  }

  /** Devices running a release that is now vulnerable or revoked on the ledger (REQ-10b-ii, CAP-11.3-g). */
  runningFlagged(): { deviceId: string; releaseId: string; status: string }[] {
    return this.db
      .prepare(`SELECT i.device_id AS deviceId, i.release_id AS releaseId, r.status AS status FROM installed i JOIN releases r ON r.id = i.release_id WHERE r.status <> 'active'`)
      .all() as { deviceId: string; releaseId: string; status: string }[];
  }

  /** Devices whose last update failed (CAP-11.2-b). */
  failed(): DeviceRow[] {
    return (this.db.prepare(`SELECT * FROM devices WHERE last_outcome IN ('rolled-back', 'rejected', 'failed')`).all() as DeviceDb[]).map(toDevice);
  }

  /** Devices not heard from since `before` (ms) (CAP-11.2-a liveness). */
  unreachable(before: number): DeviceRow[] {
    return (this.db.prepare(`SELECT * FROM devices WHERE standing = 'active' AND (last_seen IS NULL OR last_seen < ?)`).all(before) as DeviceDb[]).map(toDevice);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

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
}
interface InstalledDb {
  device_id: string;
  component: string;
  version: string;
  release_id: string;
}

const toDevice = (r: DeviceDb): DeviceRow => ({
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
});
const toRelease = (r: ReleaseDb): ReleaseRow => ({
  id: r.id,
  component: r.component,
  provider: r.provider,
  version: BigInt(r.version),
  hardware: JSON.parse(r.hardware),
  status: r.status,
  blockHash: r.block_hash,
  logIndex: r.log_index,
});
const toInstalled = (r: InstalledDb): InstalledRow => ({ deviceId: r.device_id, component: r.component, version: BigInt(r.version), releaseId: r.release_id });
