import type { StoreConnection } from "./connection";
import { toConfig, type ConfigDb, type ConfigRow } from "./rows";

/**
 * Configurations (ADR 0004, tables configs and config_devices): devices with the same hardware,
 * installed versions and last failed release share one plan; how many devices (and active ones)
 * each holds is kept by triggers on every write to devices.
 */
export class ConfigStore {
  constructor(private readonly c: StoreConnection) {}

  /** The id of the configuration (created if new) of a device with this hardware, these components and this failed release. */
  of(hardwareClass: number, installed: { component: string; version: bigint; releaseId: string }[], failedRelease: string | null): number {
    const sorted = [...installed].sort((a, b) => (a.component < b.component ? -1 : a.component > b.component ? 1 : 0));
    const key = `${hardwareClass}|${sorted.map((i) => `${i.component}:${i.version}:${i.releaseId}`).join(",")}|${failedRelease ?? ""}`;
    const found = this.c.sql(`SELECT id FROM configs WHERE key = ?`).pluck().get(key) as number | undefined;
    if (found !== undefined) return found;
    const installedJson = JSON.stringify(sorted.map((i) => ({ component: i.component, version: i.version.toString(), releaseId: i.releaseId })));
    return Number(
      this.c
        .sql(`INSERT INTO configs (key, hardware_class, installed, failed_release) VALUES (?, ?, ?, ?)`)
        .run(key, hardwareClass, installedJson, failedRelease).lastInsertRowid,
    );
  }

  /** Every configuration some device is in. */
  all(): ConfigRow[] {
    return (this.c.sql(`SELECT * FROM configs WHERE id IN (SELECT config_id FROM config_devices WHERE devices > 0)`).all() as ConfigDb[]).map(toConfig);
  }

  get(id: number): ConfigRow | undefined {
    const r = this.c.sql(`SELECT * FROM configs WHERE id = ?`).get(id) as ConfigDb | undefined;
    return r && toConfig(r);
  }

  /** How many active devices each configuration has. */
  activeCounts(): Map<number, number> {
    const rows = this.c.sql(`SELECT config_id, active FROM config_devices WHERE active > 0`).raw().all() as [number, number][];
    return new Map(rows);
  }

  /** The ids of the active devices in these configurations, read in index order (a million rows stream). */
  *activeDevicesIn(configIds: Iterable<number>): Generator<string> {
    // Its own statement: a generator left open keeps its statement busy. The partial index holds the ids.
    const stmt = this.c.fresh(`SELECT id FROM devices INDEXED BY devices_active_by_config WHERE config_id = ? AND standing = 'active'`).pluck();
    for (const c of configIds) yield* stmt.iterate(c) as IterableIterator<string>;
  }
}
