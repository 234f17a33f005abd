import type { StoreConnection } from "./connection";

/**
 * Decisions for devices (tables decisions, decision_terms) and the notices handed out
 * (deliveries): an administrator's request, the parent module's word, or the download logs'
 * finding (CAP-11.3-g) decide a release for a device; each notice of it is recorded as delivered.
 */
export class DecisionStore {
  constructor(private readonly c: StoreConnection) {}

  /** Records an administrator's decision for one device (PROC-2); a later decision for the same release replaces it. */
  decide(d: { deviceId: string; releaseId: string; component: string; reason: string; origin: string; at: number }): void {
    this.c
      .sql(
        `INSERT INTO decisions (device_id, release_id, component, reason, origin, decided_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id, release_id) DO UPDATE SET reason = excluded.reason, origin = excluded.origin, decided_at = excluded.decided_at`,
      )
      .run(d.deviceId.toLowerCase(), d.releaseId.toLowerCase(), d.component.toLowerCase(), d.reason, d.origin, d.at);
  }

  /** The administrator's terms the module above gave with a decision for this device and release, if any. */
  terms(deviceId: string, releaseId: string): { deadline: number; overridePin?: true } | undefined {
    const row = this.c
      .sql(`SELECT deadline, override_pin AS overridePin FROM decision_terms WHERE device_id = ? AND release_id = ?`)
      .get(deviceId.toLowerCase(), releaseId.toLowerCase()) as { deadline: number; overridePin: number } | undefined;
    return row && { deadline: row.deadline, ...(row.overridePin ? { overridePin: true as const } : {}) };
  }

  /** Keeps (or, with none, drops) the terms of a decision taken from the module above. */
  setTerms(deviceId: string, releaseId: string, terms: { deadline: number; overridePin?: true } | undefined): void {
    if (!terms) {
      this.c.sql(`DELETE FROM decision_terms WHERE device_id = ? AND release_id = ?`).run(deviceId.toLowerCase(), releaseId.toLowerCase());
      return;
    }
    this.c
      .sql(
        `INSERT INTO decision_terms (device_id, release_id, deadline, override_pin) VALUES (?, ?, ?, ?)
         ON CONFLICT (device_id, release_id) DO UPDATE SET deadline = excluded.deadline, override_pin = excluded.override_pin`,
      )
      .run(deviceId.toLowerCase(), releaseId.toLowerCase(), terms.deadline, terms.overridePin ? 1 : 0);
  }

  of(deviceId: string): { releaseId: string; component: string; reason: string; origin: string; decidedAt: number }[] {
    return this.c
      .sql(`SELECT release_id AS releaseId, component, reason, origin, decided_at AS decidedAt FROM decisions WHERE device_id = ? ORDER BY decided_at`)
      .all(deviceId.toLowerCase()) as { releaseId: string; component: string; reason: string; origin: string; decidedAt: number }[];
  }

  /** When, and with what reason, a notice of this release was last handed out for this device, if ever. */
  lastDelivery(deviceId: string, releaseId: string): { at: number; reason: string } | undefined {
    return this.c
      .sql(`SELECT delivered_at AS at, reason FROM deliveries WHERE device_id = ? AND release_id = ?`)
      .get(deviceId.toLowerCase(), releaseId.toLowerCase()) as { at: number; reason: string } | undefined;
  }

  noteDelivered(d: { deviceId: string; releaseId: string; reason: string; origin: string; via: string; at: number }): void {
    this.c
      .sql(
        `INSERT INTO deliveries (device_id, release_id, reason, origin, via, delivered_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id, release_id) DO UPDATE SET reason = excluded.reason, origin = excluded.origin, via = excluded.via, delivered_at = excluded.delivered_at`,
      )
      .run(d.deviceId.toLowerCase(), d.releaseId.toLowerCase(), d.reason, d.origin, d.via, d.at);
  }

  deliveries(deviceId: string): { releaseId: string; reason: string; origin: string; via: string; deliveredAt: number }[] {
    return this.c
      .sql(`SELECT release_id AS releaseId, reason, origin, via, delivered_at AS deliveredAt FROM deliveries WHERE device_id = ? ORDER BY delivered_at`)
      .all(deviceId.toLowerCase()) as { releaseId: string; reason: string; origin: string; via: string; deliveredAt: number }[];
  }

  /** Drops a device's decisions of one origin for a component, but the release given (a newer one replaces them). */
  dropOf(deviceId: string, component: string, origin: string, keepReleaseId: string): void {
    this.c
      .sql(`DELETE FROM decisions WHERE device_id = ? AND component = ? AND origin = ? AND release_id <> ?`)
      .run(deviceId.toLowerCase(), component.toLowerCase(), origin, keepReleaseId.toLowerCase());
  }
}
