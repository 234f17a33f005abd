import type { StoreConnection } from "./connection";

/**
 * Rollouts the tracker follows (table rollouts), their progress counts, the failure totals staged
 * rollouts are told (release_failures, which only rise) and adoption samples (adoption).
 */
export class RolloutStore {
  constructor(private readonly c: StoreConnection) {}

  /** Starts following a release's rollout (first decision wins the origin). */
  start(releaseId: string, origin: string, at: number): void {
    this.c.sql(`INSERT OR IGNORE INTO rollouts (release_id, origin, started_at) VALUES (?, ?, ?)`).run(releaseId.toLowerCase(), origin, at);
  }

  list(): { releaseId: string; origin: string; startedAt: number }[] {
    return this.c.sql(`SELECT release_id AS releaseId, origin, started_at AS startedAt FROM rollouts ORDER BY started_at`).all() as {
      releaseId: string;
      origin: string;
      startedAt: number;
    }[];
  }

  /**
   * Per release: devices that were sent a notice, devices whose last failed install was it, and
   * devices whose delivery of it is blocked now (a bad mirror shows at once, agent/core/updateOutcome).
   */
  counts(): Map<string, { notified: number; failed: number; blocked: number; requested: number }> {
    const out = new Map<string, { notified: number; failed: number; blocked: number; requested: number }>();
    const get = (id: string) => out.get(id) ?? out.set(id, { notified: 0, failed: 0, blocked: 0, requested: 0 }).get(id)!;
    for (const [id, n] of this.c.sql(`SELECT release_id, COUNT(*) FROM deliveries GROUP BY release_id`).raw().all() as [string, number][]) get(id).notified = n;
    for (const [id, n] of this.c.sql(`SELECT failed_release, COUNT(*) FROM devices WHERE failed_release IS NOT NULL GROUP BY failed_release`).raw().all() as [
      string,
      number,
    ][])
      get(id).failed = n;
    for (const [id, n] of this.c
      .sql(`SELECT last_release, COUNT(*) FROM devices WHERE last_kind = 'blocked' AND last_release IS NOT NULL GROUP BY last_release`)
      .raw()
      .all() as [string, number][])
      get(id).blocked = n;
    for (const [id, n] of this.c.sql(`SELECT release_id, COUNT(*) FROM decisions GROUP BY release_id`).raw().all() as [string, number][]) get(id).requested = n;
    return out;
  }

  /** Per release: how many devices ever reported a failed update of it (agent/core/updateOutcome), for the staged rollouts' failure totals. */
  failureTotals(): Map<string, number> {
    return new Map(this.c.sql(`SELECT release_id, COUNT(*) FROM release_failures GROUP BY release_id`).raw().all() as [string, number][]);
  }

  // ------------------------------------------------------------------ adoption

  /** Records how many devices run each release now (one point per release and time). */
  sampleAdoption(at: number, installedByRelease: Map<string, number>): void {
    const ins = this.c.sql(`INSERT OR REPLACE INTO adoption (release_id, at, installed) VALUES (?, ?, ?)`);
    this.c.transaction(() => {
      for (const [release, n] of installedByRelease) ins.run(release, at, n);
    });
  }

  adoption(releaseId: string, limit = 500): { t: number; installed: number }[] {
    return (
      this.c.sql(`SELECT at AS t, installed FROM adoption WHERE release_id = ? ORDER BY at DESC LIMIT ?`).all(releaseId.toLowerCase(), limit) as {
        t: number;
        installed: number;
      }[]
    ).reverse();
  }
}
