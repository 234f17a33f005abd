import type { StoreConnection } from "./connection";

/**
 * The module hierarchy (DEP-8.2.3): the statuses of the modules below this one (table modules),
 * and the reports an intermediate module keeps until the module above took them (outbox).
 */
export class HierarchyStore {
  constructor(private readonly c: StoreConnection) {}

  /** Keeps a report (as its device signed it) until the module above has taken it. */
  queue(body: unknown): void {
    this.c.sql(`INSERT INTO outbox (body) VALUES (?)`).run(JSON.stringify(body));
  }

  outbox(limit: number): { id: number; body: unknown }[] {
    return (this.c.sql(`SELECT id, body FROM outbox ORDER BY id LIMIT ?`).all(limit) as { id: number; body: string }[]).map((r) => ({
      id: r.id,
      body: JSON.parse(r.body),
    }));
  }

  /** Drops what the module above took (ids up to and including `lastId`). */
  dropOutbox(lastId: number): void {
    this.c.sql(`DELETE FROM outbox WHERE id <= ?`).run(lastId);
  }

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
    const last = this.c.sql(`SELECT last_counter FROM modules WHERE id = ?`).pluck().get(id) as number | undefined;
    if (last !== undefined && m.counter <= last) return false;
    this.c
      .sql(
        `INSERT INTO modules (id, networks, last_seen, last_counter, devices, unreachable_devices, children) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET networks = excluded.networks, last_seen = excluded.last_seen, last_counter = excluded.last_counter,
           devices = excluded.devices, unreachable_devices = excluded.unreachable_devices, children = excluded.children`,
      )
      .run(id, JSON.stringify(m.networks), m.at, m.counter, m.devices, m.unreachableDevices, JSON.stringify(m.children));
    return true;
  }

  modules(): { id: string; networks: string[]; lastSeen: number; devices: number; unreachableDevices: number; children: unknown[] }[] {
    return (
      this.c.sql(`SELECT * FROM modules ORDER BY id`).all() as {
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
}
