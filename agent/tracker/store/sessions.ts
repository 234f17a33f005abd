import type { StoreConnection } from "./connection";
import type { ReportSessionRow } from "./rows";

/** Devices' report sessions with this module (ADR 0013, table report_sessions). */
export class SessionStore {
  constructor(private readonly c: StoreConnection) {}

  /** Keeps a device's report session with this module, in place of the one it had. */
  put(row: ReportSessionRow): void {
    this.c
      .sql(`INSERT OR REPLACE INTO report_sessions (device_id, session_id, wrapped_key, device_key, module_key, established_at) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(
        row.deviceId.toLowerCase(),
        row.sessionId.toLowerCase(),
        row.wrappedKey,
        row.deviceKey.toLowerCase(),
        row.moduleKey.toLowerCase(),
        row.establishedAt,
      );
  }

  /** A device's report session, if it has one. */
  get(deviceId: string): ReportSessionRow | undefined {
    const r = this.c
      .sql(`SELECT session_id, wrapped_key, device_key, module_key, established_at FROM report_sessions WHERE device_id = ?`)
      .get(deviceId.toLowerCase()) as { session_id: string; wrapped_key: Buffer; device_key: string; module_key: string; established_at: number } | undefined;
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
  drop(deviceId: string): void {
    this.c.sql(`DELETE FROM report_sessions WHERE device_id = ?`).run(deviceId.toLowerCase());
  }
}
