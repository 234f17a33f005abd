import type { StoreConnection } from "./connection";
import { toUpdateRequest, type UpdateRequestDb, type UpdateRequestRow } from "./rows";

/** Administrators' update requests and the devices each decided (PROC-2, issue 19 item 11; tables update_requests, update_request_devices). */
export class RequestStore {
  constructor(private readonly c: StoreConnection) {}

  /** Records an administrator's update request and the devices it decided. */
  record(r: {
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
    this.c.transaction(() => {
      this.c
        .sql(
          `INSERT INTO update_requests (id, release_id, component, target, deadline, override_pins, requested_by, requested_at, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
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
      this.addDevices(r.id, r.devices, r.requestedAt);
    });
  }

  addDevices(requestId: string, deviceIds: string[], at: number): void {
    const ins = this.c.sql(`INSERT OR IGNORE INTO update_request_devices (request_id, device_id, decided_at) VALUES (?, ?, ?)`);
    this.c.transaction(() => deviceIds.forEach((d) => ins.run(requestId, d.toLowerCase(), at)));
  }

  get(id: string): UpdateRequestRow | undefined {
    const r = this.c.sql(`SELECT * FROM update_requests WHERE id = ?`).get(id.toLowerCase()) as UpdateRequestDb | undefined;
    return r && toUpdateRequest(r);
  }

  list(limit: number, offset: number): { total: number; requests: UpdateRequestRow[] } {
    const total = this.c.sql(`SELECT COUNT(*) FROM update_requests`).pluck().get() as number;
    const rows = this.c.sql(`SELECT * FROM update_requests ORDER BY requested_at DESC, id LIMIT ? OFFSET ?`).all(limit, offset) as UpdateRequestDb[];
    return { total, requests: rows.map(toUpdateRequest) };
  }

  devices(requestId: string): string[] {
    return this.c.sql(`SELECT device_id FROM update_request_devices WHERE request_id = ? ORDER BY device_id`).pluck().all(requestId.toLowerCase()) as string[];
  }

  /** The requests that target a group or a query (devices may join them as their tags change). */
  dynamicIds(): string[] {
    return this.c
      .sql(`SELECT id FROM update_requests WHERE json_extract(target, '$.group') IS NOT NULL OR json_extract(target, '$.query') IS NOT NULL`)
      .pluck()
      .all() as string[];
  }
}
