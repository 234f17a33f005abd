import { InputError } from "../../core/errors";
import type { StoreConnection } from "./connection";
import type { MarkStore } from "./marks";

/** The replay mark counting tag changes: status anchoring's fingerprint reads it. */
export const TAG_CHANGES_MARK = "tag-changes";

/** A device would hold more tags than allowed: nothing was changed. */
export class TagLimitError extends InputError {}

/** Administrators' tags on devices (issue 19, item 11; table device_tags). */
export class TagStore {
  constructor(
    private readonly c: StoreConnection,
    private readonly marks: MarkStore,
  ) {}

  /** A device's tags (key -> value), as administrators set them. */
  of(deviceId: string): Record<string, string> {
    const rows = this.c.sql(`SELECT key, value FROM device_tags WHERE device_id = ? ORDER BY key`).raw().all(deviceId.toLowerCase()) as [string, string][];
    return Object.fromEntries(rows);
  }

  /** Sets and removes tags of a device in one transaction; refused (nothing changed) past `maxTags`. Returns its tags after. */
  change(deviceId: string, set: Record<string, string>, remove: string[], maxTags: number): Record<string, string> {
    const id = deviceId.toLowerCase();
    return this.c.transaction(() => {
      const del = this.c.sql(`DELETE FROM device_tags WHERE device_id = ? AND key = ?`);
      for (const k of remove) del.run(id, k);
      const put = this.c.sql(
        `INSERT INTO device_tags (device_id, key, value) VALUES (?, ?, ?) ON CONFLICT (device_id, key) DO UPDATE SET value = excluded.value`,
      );
      for (const [k, v] of Object.entries(set)) put.run(id, k, v);
      const n = this.c.sql(`SELECT COUNT(*) FROM device_tags WHERE device_id = ?`).pluck().get(id) as number;
      if (n > maxTags) throw new TagLimitError("TAG_LIMIT", `a device has at most ${maxTags} tags; this change would leave ${n} on ${id}: remove some first`);
      // The status anchors cover tags (format 2): a change is a change to anchor.
      this.marks.raise(TAG_CHANGES_MARK, this.marks.get(TAG_CHANGES_MARK) + 1);
      return this.of(id);
    });
  }

  /** The tags of these devices (device -> key -> value); a device without tags is absent. */
  ofDevices(ids: string[]): Map<string, Record<string, string>> {
    const rows = this.c
      .sql(`SELECT device_id, key, value FROM device_tags WHERE device_id IN (SELECT value FROM json_each(?))`)
      .raw()
      .all(JSON.stringify(ids)) as [string, string, string][];
    const by = new Map<string, Record<string, string>>();
    for (const [d, k, v] of rows) (by.get(d) ?? by.set(d, {}).get(d)!)[k] = v;
    return by;
  }
}
