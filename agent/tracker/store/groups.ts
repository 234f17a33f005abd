import type { StoreConnection } from "./connection";

/** A device group: a saved tag query (issue 19, item 11). */
export interface GroupRow {
  name: string;
  query: string;
  createdBy: string;
  createdAt: number;
}

/** Device groups, saved tag queries evaluated whenever asked (issue 19, item 11; table device_groups). */
export class GroupStore {
  constructor(private readonly c: StoreConnection) {}

  list(): GroupRow[] {
    return this.c.sql(`SELECT name, query, created_by AS createdBy, created_at AS createdAt FROM device_groups ORDER BY name`).all() as GroupRow[];
  }

  get(name: string): GroupRow | undefined {
    return this.c.sql(`SELECT name, query, created_by AS createdBy, created_at AS createdAt FROM device_groups WHERE name = ?`).get(name) as
      GroupRow | undefined;
  }

  /** Saves a group (a later one of the same name replaces its query). */
  put(name: string, query: string, by: string, at: number): void {
    this.c
      .sql(
        `INSERT INTO device_groups (name, query, created_by, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET query = excluded.query, created_by = excluded.created_by, created_at = excluded.created_at`,
      )
      .run(name, query, by.toLowerCase(), at);
  }

  delete(name: string): boolean {
    return this.c.sql(`DELETE FROM device_groups WHERE name = ?`).run(name).changes > 0;
  }
}
