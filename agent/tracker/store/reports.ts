import { resultKind, type ResultKind } from "../../core/updateOutcome";
import type { StoreConnection } from "./connection";
import type { ConfigStore } from "./configs";
import type { ReportBody } from "./rows";

/**
 * Device reports (table reports) and what each changes: what the device runs (installed), its
 * configuration, its last result, and the failure totals (release_failures), in one transaction.
 */
export class ReportStore {
  constructor(
    private readonly c: StoreConnection,
    private readonly configs: ConfigStore,
  ) {}

  /**
   * Takes one verified report: stores it, what the device now runs and its configuration, and
   * moves its counter, in one transaction. Returns false (and stores nothing) for a counter not
   * above the last one: a replay or a report overtaken by a newer one.
   */
  take(deviceId: string, counter: number, receivedAt: number, body: ReportBody, via: string | null = null): boolean {
    const id = deviceId.toLowerCase();
    return this.c.transaction(() => {
      const row = this.c
        .sql(
          `SELECT last_counter, hardware_class, failed_release, config_id, last_kind, last_release, blocked_since, last_outcome, last_code, declined, upstream, safe_mode FROM devices WHERE id = ?`,
        )
        .get(id) as
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
      this.c.sql(`INSERT INTO reports (device_id, counter, received_at, body) VALUES (?, ?, ?, ?)`).run(id, counter, receivedAt, JSON.stringify(body));
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
      const configId = this.configs.of(row.hardware_class, installed, failedRelease);
      // The configuration's key is the installed components: the same configuration, nothing to rewrite
      // (most reports are heartbeats of devices that run what they ran).
      if (configId !== row.config_id) {
        this.c.sql(`DELETE FROM installed WHERE device_id = ?`).run(id);
        const ins = this.c.sql(`INSERT INTO installed (device_id, component, version, release_id) VALUES (?, ?, ?, ?)`);
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
      if (heartbeat) this.c.sql(`UPDATE devices SET last_counter = ?, last_seen = ?, last_report_at = ? WHERE id = ?`).run(counter, receivedAt, receivedAt, id);
      else
        this.c
          .sql(
            `UPDATE devices SET last_counter = ?, last_seen = ?, last_outcome = ?, last_code = ?, last_kind = ?, blocked_since = ?, failed_release = ?, declined = ?, upstream = ?, config_id = ?, last_release = ?, last_report_at = ?, safe_mode = ? WHERE id = ?`,
          )
          .run(counter, receivedAt, outcome, code, kind, blockedSince, failedRelease, declined, via, configId, lastRelease, receivedAt, safeMode, id);
      // Every device that ever failed a release counts in its failure total (which only rises).
      if (lastRelease && kind === "failed")
        this.c.sql(`INSERT OR IGNORE INTO release_failures (release_id, device_id, at) VALUES (?, ?, ?)`).run(lastRelease, id, receivedAt);
      return true;
    });
  }

  of(deviceId: string, limit = 50): { counter: number; receivedAt: number; body: unknown }[] {
    return (
      this.c
        .sql(`SELECT counter, received_at AS receivedAt, body FROM reports WHERE device_id = ? ORDER BY id DESC LIMIT ?`)
        .all(deviceId.toLowerCase(), limit) as {
        counter: number;
        receivedAt: number;
        body: string;
      }[]
    ).map((r) => ({ ...r, body: JSON.parse(r.body) }));
  }
}
