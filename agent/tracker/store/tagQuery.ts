import type { ResultKind } from "../../core/updateOutcome";
import type { QueryTerm } from "../deviceTags";
import { labelToBytes32 } from "../fleetViews";

/**
 * Which devices a read selects (agent/tracker/store/devices.ts builds its SQL): every field given
 * must hold. Values are always parameters: nothing an administrator writes becomes SQL.
 */
export interface DeviceFilter {
  active?: boolean; // standing 'active' (true) or any other (false)
  configIn?: number[]; // in one of these configurations
  failed?: boolean; // its last update failed (agent/core/updateOutcome), or not
  kind?: ResultKind; // the kind of its last result (the partial index devices_by_kind serves it)
  seenBefore?: number; // not heard from since (ms), or never
  safeMode?: boolean; // its latest report says safe mode, or not (the partial index devices_in_safe_mode serves true)
  seenSince?: number; // heard from at or after (ms)
  network?: string; // bytes32, lower case
  region?: string; // bytes32, lower case
  hardware?: number;
  hardwareIn?: number[];
  idPrefix?: string; // "0x..." lower case: a prefix range, so that the primary key index serves it
  tags?: QueryTerm[]; // a tag query (agent/tracker/deviceTags.ts), all of whose terms must hold
  among?: string[]; // only these ids
}

/** SQL over a devices row: its last update failed (agent/core/updateOutcome: only a release that failed after an intact delivery). */
export const FAILED_SQL = `(last_kind IS 'failed')`;

/** The WHERE clause (empty for none) of a filter over the `devices` table (alias-free, `devices.id`), with its parameters. */
export function deviceWhere(f: DeviceFilter): { clause: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (condition: string, ...values: unknown[]) => {
    where.push(condition);
    args.push(...values);
  };
  if (f.active === true) add(`standing = 'active'`);
  if (f.active === false) add(`standing <> 'active'`);
  if (f.configIn) add(`config_id IN (SELECT value FROM json_each(?))`, JSON.stringify(f.configIn));
  if (f.failed === true) add(FAILED_SQL);
  if (f.failed === false) add(`NOT ${FAILED_SQL}`);
  if (f.kind !== undefined) add(`last_kind = ?`, f.kind);
  if (f.seenBefore !== undefined) add(`(last_seen IS NULL OR last_seen < ?)`, f.seenBefore);
  if (f.safeMode !== undefined) add(f.safeMode ? `safe_mode = 1` : `safe_mode = 0`);
  if (f.seenSince !== undefined) add(`last_seen >= ?`, f.seenSince);
  if (f.network !== undefined) add(`network = ?`, f.network);
  if (f.region !== undefined) add(`region = ?`, f.region);
  if (f.hardware !== undefined) add(`hardware_class = ?`, f.hardware);
  if (f.hardwareIn) add(`hardware_class IN (SELECT value FROM json_each(?))`, JSON.stringify(f.hardwareIn));
  if (f.idPrefix !== undefined) add(`id >= ? AND id < ?`, f.idPrefix, f.idPrefix + "g");
  if (f.tags?.length) {
    const t = tagQuerySql(f.tags);
    add(t.where, ...t.args);
  }
  if (f.among) add(`id IN (SELECT value FROM json_each(?))`, JSON.stringify(f.among.map((d) => d.toLowerCase())));
  return { clause: where.length ? `WHERE ${where.join(" AND ")}` : "", args };
}

/**
 * SQL over the `devices` table (alias-free, `devices.id`) for these tag query terms, with its
 * parameters. Every value is a parameter: the query's text never becomes SQL.
 */
function tagQuerySql(terms: QueryTerm[]): { where: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const has = `EXISTS (SELECT 1 FROM device_tags t WHERE t.device_id = devices.id AND t.key = ?`;
  for (const t of terms) {
    if (t.key === "network" || t.key === "region") {
      where.push(t.op === "=" ? `devices.${t.key} = ?` : `devices.${t.key} <> ?`);
      args.push(labelToBytes32((t as { value: string }).value, t.key));
    } else if (t.key === "hardware") {
      where.push(t.op === "=" ? `devices.hardware_class = ?` : `devices.hardware_class <> ?`);
      args.push(Number((t as { value: string }).value));
    } else if (t.op === "=") {
      where.push(`${has} AND t.value = ?)`);
      args.push(t.key, t.value);
    } else if (t.op === "!=") {
      where.push(`NOT ${has} AND t.value = ?)`);
      args.push(t.key, t.value);
    } else if (t.op === "exists") {
      where.push(`${has})`);
      args.push(t.key);
    } else {
      where.push(`NOT ${has})`);
      args.push(t.key);
    }
  }
  return { where: where.join(" AND "), args };
}
