import type { StoreConnection } from "./connection";
import type { DeviceStore } from "./devices";
import type { MarkStore } from "./marks";

/**
 * What the firmware servers' download logs say (table downloads): each entry a contact with its
 * device (CAP-11.2-b-i), and what active devices fetched whole (CAP-11.3-g).
 */
export class DownloadStore {
  constructor(
    private readonly c: StoreConnection,
    private readonly deps: { devices: DeviceStore; marks: MarkStore },
  ) {}

  /**
   * The last download-log entry read from a firmware server (0 before the first): the newest
   * taken, or the newest passed over (another fleet's device), so that a log of mostly other
   * fleets' devices is still read forward.
   */
  cursor(server: string): number {
    const taken = (this.c.sql(`SELECT MAX(id) FROM downloads WHERE server = ?`).pluck().get(server) as number | null) ?? 0;
    return Math.max(taken, this.deps.marks.get(`download-cursor ${server}`));
  }

  /**
   * Takes entries of a firmware server's download log: each is a contact with its device
   * (CAP-11.2-b-i: liveness from the communication log). Entries already taken change nothing.
   * The server is not trusted (its log is not signed by the devices): an entry that is not a well
   * formed one is skipped, and a time after `now` counts as `now`, so a server cannot keep a device
   * out of "unreachable" by dating a contact in the future (issue 16 review).
   */
  take(server: string, entries: { id: number; at: number; deviceId: string; releaseId: string; kind: string; complete: boolean }[], now: number): number {
    const ins = this.c.sql(`INSERT OR IGNORE INTO downloads (server, id, device_id, release_id, kind, at, complete) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    const hex32 = /^0x[0-9a-fA-F]{64}$/;
    let passedOver = 0;
    let n = 0;
    this.c.transaction(() => {
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
        if (!this.deps.devices.has(e.deviceId)) {
          passedOver = Math.max(passedOver, e.id);
          continue;
        }
        const at = Math.min(e.at, now);
        if (ins.run(server, e.id, e.deviceId.toLowerCase(), e.releaseId.toLowerCase(), e.kind.slice(0, 32), at, e.complete ? 1 : 0).changes === 0) continue;
        this.deps.devices.noteSeen(e.deviceId, at);
        n++;
      }
      if (passedOver > this.cursor(server)) this.deps.marks.raise(`download-cursor ${server}`, passedOver);
    });
    return n;
  }

  /**
   * What the download logs say active devices hold, for the components their reports do not
   * cover (CAP-11.3-g): per device and component, the newest release it fetched whole (the
   * artifact to its last byte, or the CAR). A device that reports a component is planned from its
   * report instead, which is the device's own word.
   */
  holders(): { deviceId: string; hardwareClass: number; held: { component: string; version: bigint; releaseId: string }[] }[] {
    const rows = this.c
      .sql(
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

  of(deviceId: string, limit = 20): { releaseId: string; kind: string; at: number; complete: boolean }[] {
    return (
      this.c
        .sql(`SELECT release_id AS releaseId, kind, at, complete FROM downloads WHERE device_id = ? ORDER BY at DESC LIMIT ?`)
        .all(deviceId.toLowerCase(), limit) as {
        releaseId: string;
        kind: string;
        at: number;
        complete: number;
      }[]
    ).map((d) => ({ ...d, complete: d.complete === 1 }));
  }
}
