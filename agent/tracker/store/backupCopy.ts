import type { StreamState } from "../../chain/eventStreamStore";
import Database, { type SqliteDatabase } from "../../database/sqlite";
import { BackupInputError } from "../../database/sqliteBackup";

/**
 * The SQL of a tracker backup (agent/tracker/backup.ts), on copies of fleet.db, never on the live
 * database: the backup's own record (table ota_backup: when it was taken, of which module, the
 * position of an earlier version's checkpoint file), kept in the copy and removed at restore, and
 * the counts the backup and the restore report.
 */

const BACKUP_KIND = "ota-ledger tracker backup";

/** What a backup copy holds about itself, and the position of its ledger stream. */
export interface BackupRecord {
  takenAt: number | null;
  moduleId: string | null;
  checkpoint: StreamState | null;
  /** The position is in the database (issue 16); else it came from an earlier version's file. */
  positionInside: boolean;
}

/** Writes the backup's record into the copy `file` and makes it one file (journal_mode DELETE); its devices and reports counted. */
export function recordBackup(
  file: string,
  r: { takenAt: number; source: string; moduleId: string | null; checkpoint: StreamState | undefined },
): { devices: number; reports: number } {
  const db = new Database(file);
  try {
    db.exec(`CREATE TABLE ota_backup (kind TEXT NOT NULL, taken_at INTEGER NOT NULL, source TEXT NOT NULL, module_id TEXT, checkpoint TEXT)`);
    db.prepare(`INSERT INTO ota_backup (kind, taken_at, source, module_id, checkpoint) VALUES (?, ?, ?, ?, ?)`).run(
      BACKUP_KIND,
      r.takenAt,
      r.source,
      r.moduleId,
      r.checkpoint ? JSON.stringify(r.checkpoint) : null,
    );
    db.pragma("journal_mode = DELETE");
    return countsOf(db);
  } finally {
    db.close();
  }
}

/** Removes the backup's record from a copy about to become the module's database. */
export function dropBackupRecord(file: string): void {
  const db = new Database(file);
  try {
    db.exec("DROP TABLE IF EXISTS ota_backup");
  } finally {
    db.close();
  }
}

/** How many devices a fleet database holds. */
export function deviceCount(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return countsOf(db).devices;
  } finally {
    db.close();
  }
}

function countsOf(db: SqliteDatabase): { devices: number; reports: number } {
  const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  return { devices: n(`SELECT COUNT(*) AS n FROM devices`), reports: n(`SELECT COUNT(*) AS n FROM reports`) };
}

/** The backup's own record (absent in a plain copy of fleet.db), and a check that it is a fleet database at all. */
export function readBackupRecord(file: string): BackupRecord {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const has = (table: string) => !!db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table);
    if (!has("devices") || !has("ledger_events")) {
      throw new BackupInputError("BACKUP_INVALID", `${file} is not a tracker's fleet database: give a file made by \`ota-ledger tracker backup\``);
    }
    // The position inside the database (issue 16) is the one the tracker resumes from, even in a plain copy.
    const inside = has("ledger_position") ? (db.prepare(`SELECT state FROM ledger_position WHERE id = 1`).pluck().get() as string | undefined) : undefined;
    const positionInside = inside !== undefined;
    if (!has("ota_backup")) return { takenAt: null, moduleId: null, checkpoint: inside ? (JSON.parse(inside) as StreamState) : null, positionInside };
    const row = db.prepare(`SELECT kind, taken_at, module_id, checkpoint FROM ota_backup LIMIT 1`).get() as
      { kind: string; taken_at: number; module_id: string | null; checkpoint: string | null } | undefined;
    if (!row || row.kind !== BACKUP_KIND)
      throw new BackupInputError("BACKUP_INVALID", `${file} is not a tracker backup: give a file made by \`ota-ledger tracker backup\``);
    let checkpoint: StreamState | null = inside ? (JSON.parse(inside) as StreamState) : null;
    if (!inside && row.checkpoint) {
      checkpoint = JSON.parse(row.checkpoint) as StreamState;
      if (!Number.isSafeInteger(checkpoint.block) || !Array.isArray(checkpoint.window)) {
        throw new BackupInputError("BACKUP_INVALID", `${file} holds a ledger checkpoint that cannot be read`);
      }
    }
    return { takenAt: row.taken_at, moduleId: row.module_id, checkpoint, positionInside };
  } finally {
    db.close();
  }
}
