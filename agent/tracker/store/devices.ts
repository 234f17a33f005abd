import type { ResultKind } from "../../core/updateOutcome";
import type { StoreConnection } from "./connection";
import type { ConfigStore } from "./configs";
import type { SessionStore } from "./sessions";
import { deviceWhere, FAILED_SQL, type DeviceFilter } from "./tagQuery";
import { toDevice, toInstalled, type DeviceDb, type DeviceRow, type InstalledDb, type InstalledRow } from "./rows";

/**
 * Devices as enrolled on the ledger (tables devices, batches) and what each runs (installed, as
 * its reports write it: agent/tracker/store/reports.ts), with the reads of the fleet's lists.
 */
export class DeviceStore {
  constructor(
    private readonly c: StoreConnection,
    private readonly deps: { configs: ConfigStore; sessions: SessionStore },
  ) {}

  upsert(
    d: Pick<DeviceRow, "id" | "publicKey" | "hardwareClass" | "network" | "region" | "standing"> & { batchId?: number | null; leaf?: string | null },
  ): void {
    const id = d.id.toLowerCase();
    this.c.transaction(() => {
      this.c
        .sql(
          `INSERT INTO devices (id, public_key, hardware_class, network, region, standing, batch_id, leaf) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, hardware_class = excluded.hardware_class,
             network = excluded.network, region = excluded.region, standing = excluded.standing, batch_id = excluded.batch_id, leaf = excluded.leaf`,
        )
        .run(id, d.publicKey.toLowerCase(), d.hardwareClass, d.network, d.region, d.standing, d.batchId ?? null, d.leaf?.toLowerCase() ?? null);
      if (d.standing !== "active") this.deps.sessions.drop(id); // as setStanding
      // A re-enrolment may change the hardware class: the configuration follows.
      const row = this.get(id)!;
      if (row.configId !== null)
        this.c.sql(`UPDATE devices SET config_id = ? WHERE id = ?`).run(this.deps.configs.of(row.hardwareClass, this.installed(id), row.failedRelease), id);
    });
  }

  /** Forgets a device and what the tracker kept about it (what it runs, decisions, notices, its report session). */
  delete(deviceId: string): void {
    const id = deviceId.toLowerCase();
    this.c.transaction(() => {
      for (const t of ["installed", "decisions", "deliveries", "report_sessions"]) this.c.sql(`DELETE FROM ${t} WHERE device_id = ?`).run(id);
      this.c.sql(`DELETE FROM devices WHERE id = ?`).run(id);
    });
  }

  setStanding(deviceId: string, standing: DeviceRow["standing"]): void {
    this.c.sql(`UPDATE devices SET standing = ? WHERE id = ?`).run(standing, deviceId.toLowerCase());
    // A device suspended or withdrawn loses its report session: taken back, it proves its key again (ADR 0013).
    if (standing !== "active") this.deps.sessions.drop(deviceId);
  }

  get(id: string): DeviceRow | undefined {
    const r = this.c.sql(`SELECT * FROM devices WHERE id = ?`).get(id.toLowerCase()) as DeviceDb | undefined;
    return r && toDevice(r);
  }

  /** A contact that is not a report (e.g. reachability from a module below): moves last seen only forward. */
  noteSeen(deviceId: string, at: number): void {
    this.c.sql(`UPDATE devices SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)`).run(at, deviceId.toLowerCase(), at);
  }

  /** Whether the fleet holds this device (any standing). */
  has(deviceId: string): boolean {
    return this.c.sql(`SELECT 1 FROM devices WHERE id = ?`).pluck().get(deviceId.toLowerCase()) !== undefined;
  }

  /** How many devices the fleet holds (any standing). */
  count(): number {
    return this.c.sql(`SELECT COUNT(*) FROM devices`).pluck().get() as number;
  }

  /** How many devices were heard from at least once. */
  countSeen(): number {
    return this.c.sql(`SELECT COUNT(*) FROM devices WHERE last_seen IS NOT NULL`).pluck().get() as number;
  }

  /** How many devices report running this release. */
  countRunning(releaseId: string): number {
    return this.c.sql(`SELECT COUNT(DISTINCT device_id) FROM installed WHERE lower(release_id) = ?`).pluck().get(releaseId.toLowerCase()) as number;
  }

  // ------------------------------------------------------------------ Merkle batches

  /** A device batch as the ledger holds it (root, revoked). */
  upsertBatch(id: number, root: string, revoked: boolean): void {
    this.c
      .sql(`INSERT INTO batches (id, root, revoked) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET root = excluded.root, revoked = excluded.revoked`)
      .run(id, root.toLowerCase(), revoked ? 1 : 0);
  }

  deleteBatch(id: number): void {
    this.c.sql(`DELETE FROM batches WHERE id = ?`).run(id);
  }

  batch(id: number): { root: string; revoked: boolean } | undefined {
    const r = this.c.sql(`SELECT root, revoked FROM batches WHERE id = ?`).get(id) as { root: string; revoked: number } | undefined;
    return r && { root: r.root, revoked: r.revoked === 1 };
  }

  ofBatch(id: number): string[] {
    return this.c.sql(`SELECT id FROM devices WHERE batch_id = ?`).pluck().all(id) as string[];
  }

  // ------------------------------------------------------------------ reads

  installed(deviceId: string): InstalledRow[] {
    return (this.c.sql(`SELECT * FROM installed WHERE device_id = ?`).all(deviceId.toLowerCase()) as InstalledDb[]).map(toInstalled);
  }

  /** Every active device's id and key, by id: the logins a broker gives them (ADR 0015). */
  activeKeys(): { id: string; publicKey: string }[] {
    return this.c.sql(`SELECT id, public_key AS publicKey FROM devices WHERE standing = 'active' ORDER BY id`).all() as { id: string; publicKey: string }[];
  }

  /** Devices running a release that is now vulnerable or revoked on the ledger (REQ-10b-ii, CAP-11.3-g). */
  runningFlagged(): { deviceId: string; releaseId: string; status: string }[] {
    return this.c
      .sql(
        `SELECT i.device_id AS deviceId, i.release_id AS releaseId, r.status AS status FROM installed i JOIN releases r ON r.id = i.release_id WHERE r.status <> 'active'`,
      )
      .all() as { deviceId: string; releaseId: string; status: string }[];
  }

  /** Devices whose last update failed (CAP-11.2-b). */
  failed(): DeviceRow[] {
    return (this.c.sql(`SELECT * FROM devices WHERE ${FAILED_SQL}`).all() as DeviceDb[]).map(toDevice);
  }

  /** Devices not heard from since `before` (ms) (CAP-11.2-a liveness). */
  unreachable(before: number): DeviceRow[] {
    return (this.c.sql(`SELECT * FROM devices WHERE standing = 'active' AND (last_seen IS NULL OR last_seen < ?)`).all(before) as DeviceDb[]).map(toDevice);
  }

  /** One page of the devices the filter selects, in id order, and how many it selects in all. */
  page(filter: DeviceFilter, limit: number, offset: number): { total: number; devices: DeviceRow[] } {
    const { clause, args } = deviceWhere(filter);
    const total = this.c
      .fresh(`SELECT COUNT(*) FROM devices ${clause}`)
      .pluck()
      .get(...args) as number;
    const rows = this.c.fresh(`SELECT * FROM devices ${clause} ORDER BY id LIMIT ? OFFSET ?`).all(...args, limit, offset) as DeviceDb[];
    return { total, devices: rows.map(toDevice) };
  }

  /** The ids of the devices the filter selects, in id order, at most `limit`. */
  ids(filter: DeviceFilter, limit: number): string[] {
    const { clause, args } = deviceWhere(filter);
    return this.c
      .fresh(`SELECT id FROM devices ${clause} ORDER BY id LIMIT ?`)
      .pluck()
      .all(...args, limit) as string[];
  }

  /**
   * The fleet in groups of devices alike for its lists, with one grouped scan: configuration,
   * network, standing, kind of last result, safe mode, and whether not heard from since `before`.
   */
  statusGroups(before: number): {
    configId: number | null;
    network: string;
    standing: string;
    kind: ResultKind | null;
    safeMode: boolean;
    unreachable: boolean;
    n: number;
  }[] {
    const rows = this.c
      .sql(
        `SELECT config_id, network, standing, last_kind, safe_mode, (last_seen IS NULL OR last_seen < ?) AS unreachable, COUNT(*) AS n
         FROM devices GROUP BY 1, 2, 3, 4, 5, 6`,
      )
      .raw()
      .all(before) as [number | null, string, string, ResultKind | null, number, number, number][];
    return rows.map(([configId, network, standing, kind, safeMode, unreachable, n]) => ({
      configId,
      network,
      standing,
      kind,
      safeMode: !!safeMode,
      unreachable: !!unreachable,
      n,
    }));
  }

  // ------------------------------------------------------------------ devices reached through modules below

  /** The active devices whose reports came through module `via`, in one of `configIds` or with a decision. */
  reachedThroughWithWork(via: string, configIds: number[]): string[] {
    return this.c
      .sql(
        `SELECT id FROM devices WHERE upstream = ? AND standing = 'active'
           AND (config_id IN (SELECT value FROM json_each(?)) OR id IN (SELECT device_id FROM decisions))`,
      )
      .pluck()
      .all(via, JSON.stringify(configIds)) as string[];
  }

  /** The active devices that reached this module through a module below, and how many of them were not heard from since `before`. */
  belowCounts(before: number): { devices: number; unreachable: number } {
    const [devices, unreachable] = this.c
      .sql(`SELECT COUNT(*), COALESCE(SUM(last_seen IS NULL OR last_seen < ?), 0) FROM devices WHERE upstream IS NOT NULL AND standing = 'active'`)
      .raw()
      .get(before) as [number, number];
    return { devices, unreachable };
  }
}
