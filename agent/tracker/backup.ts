import { promises as fs } from "node:fs";
import path from "node:path";
import { FileStreamStore } from "../chain/eventStreamStore";
import { writeFileAtomic } from "../files/atomicFile";
import {
  BackupError,
  BackupInputError,
  restoreTarget,
  checkDatabase,
  fileStamp,
  installDatabase,
  makeFolder,
  moveIntoPlace,
  requireFile,
  schemaOf,
  snapshotKnownSchema,
  statOf,
  tempBeside,
} from "../database/sqliteBackup";
import { FLEET_SCHEMA, FleetStore } from "./store";
import { deviceCount, dropBackupRecord, readBackupRecord, recordBackup } from "./store/backupCopy";
import { LEGACY_CHECKPOINT_FILE, trimToPosition } from "./ledgerPosition";

/**
 * Backing up a tracker module and putting a backup back (docs/guides/operations.md).
 *
 * A module's state is `<dataDir>/fleet.db` (SQLite, WAL). Where its ledger stream stands is in the
 * database too (table ledger_position, written with the events of the same blocks: issue 16), so
 * an online copy (agent/database/sqliteBackup) is consistent as it is. Trackers before that kept the
 * position in `<dataDir>/ledger-checkpoint.json`; for their databases the file is read first, then
 * the database copied, and ledger events of blocks past the position are undone in the copy
 * exactly as a reorganisation undoes them (LedgerMirror.revert). The position also travels in a
 * table `ota_backup` (which the restore removes), for the restore's report. One SQLite file.
 */

export const DATABASE_FILE = "fleet.db";
export const CHECKPOINT_FILE = LEGACY_CHECKPOINT_FILE;

export interface TrackerBackupResult {
  file: string;
  takenAt: number;
  bytes: number;
  schema: number;
  moduleId: string | null;
  /** The ledger block the backup stands at (its checkpoint), or null before the first one. */
  checkpoint: { block: number; hash: string | null } | null;
  /** Blocks whose events were applied after the checkpoint was saved, undone in the copy. */
  trimmedBlocks: number;
  devices: number;
  reports: number;
}

export interface TrackerRestoreResult {
  file: string;
  dataDir: string;
  takenAt: number | null;
  schema: number;
  checkpoint: { block: number; hash: string | null } | null;
  devices: number;
  /** The database and checkpoint that were there before, kept beside (or null). */
  replaced: { database: string | null; checkpoint: string | null };
}

/** Backs up the module whose data folder is `dataDir` into the new file `file` (replaced only with `force`), the module running or not. */
export async function backupTracker(o: {
  dataDir: string;
  file: string;
  force?: boolean;
  moduleId?: string;
  now?: () => number;
}): Promise<TrackerBackupResult> {
  const now = o.now ?? Date.now;
  const source = path.join(o.dataDir, DATABASE_FILE);
  const file = path.resolve(o.file);
  if ((await statOf(source)) !== "file") {
    throw new BackupInputError(
      "BACKUP_SOURCE_MISSING",
      `${source} does not exist: tracker.dataDir (OTA_TRACKER_DATA) must name the folder of the tracker to back up`,
    );
  }
  await checkTarget(file, source, o.force === true);
  await makeFolder(path.dirname(file), "backup");

  // An earlier version's position file first: the database copied after it is at least as far along.
  let checkpoint = await new FileStreamStore(path.join(o.dataDir, CHECKPOINT_FILE)).load();
  const temp = tempBeside(file);
  let result: Omit<TrackerBackupResult, "file" | "bytes">;
  try {
    const schema = await snapshotKnownSchema(source, temp, FLEET_SCHEMA, "tracker");
    // A database of an older tracker (the new version installed, the old one still running) is
    // kept as it is, not migrated: without the trim it is as the tracker leaves it after a crash
    // between applying events and saving its checkpoint, which it recovers from (events apply once).
    let trimmedBlocks = 0;
    if (schema === FLEET_SCHEMA) {
      const fleet = new FleetStore(temp);
      try {
        const kept = fleet.ledger.position();
        if (kept) checkpoint = kept;
        else if (checkpoint) fleet.ledger.setPosition(checkpoint);
        trimmedBlocks = trimToPosition(fleet, checkpoint);
      } finally {
        fleet.close();
      }
    }
    const takenAt = now();
    const counts = recordBackup(temp, { takenAt, source: path.resolve(o.dataDir), moduleId: o.moduleId?.toLowerCase() ?? null, checkpoint });
    result = {
      takenAt,
      schema,
      moduleId: o.moduleId?.toLowerCase() ?? null,
      checkpoint: checkpoint ? { block: checkpoint.block, hash: checkpoint.hash } : null,
      trimmedBlocks,
      ...counts,
    };
    await moveIntoPlace(temp, file, o.force === true);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  return { file, bytes: (await fs.stat(file)).size, ...result };
}

/**
 * Puts the backup `file` back as the module's state in `dataDir`: the tracker must be stopped.
 * A database already there is refused unless `force`, and then kept beside as
 * `fleet.db.replaced-<time>`. Also takes a plain copy of fleet.db (e.g. `sqlite3 .backup`): it has
 * no checkpoint, so the module then reads the ledger again from the deployment block (applying an
 * event twice changes nothing).
 */
export async function restoreTracker(o: {
  dataDir: string;
  file: string;
  force?: boolean;
  moduleId?: string;
  now?: () => number;
}): Promise<TrackerRestoreResult> {
  const now = o.now ?? Date.now;
  const file = path.resolve(o.file);
  await requireFile(file, "tracker backup (made by `ota-ledger tracker backup`)");
  const check = checkDatabase(file);
  if (check !== "ok")
    throw new BackupInputError("BACKUP_INVALID", `${file} is not a sound SQLite database (${check}): give a file made by \`ota-ledger tracker backup\``);
  const meta = readBackupRecord(file);
  const schema = schemaOf(file);
  if (schema > FLEET_SCHEMA) {
    throw new BackupInputError(
      "BACKUP_SCHEMA_NEWER",
      `${file} is at schema ${schema}, newer than this tracker's ${FLEET_SCHEMA}: restore it with the ota-ledger version that took it, or a newer one`,
    );
  }
  if (meta.moduleId && o.moduleId && meta.moduleId !== o.moduleId.toLowerCase()) {
    throw new BackupInputError(
      "BACKUP_OTHER_MODULE",
      `${file} is a backup of tracker module ${meta.moduleId}, not of the configured ${o.moduleId.toLowerCase()}: restore it with that module's configuration (tracker.moduleId)`,
    );
  }

  const dataDir = path.resolve(o.dataDir);
  const target = await restoreTarget(dataDir, DATABASE_FILE, "tracker", o.force === true);
  const checkpointFile = path.join(dataDir, CHECKPOINT_FILE);

  // The copy is prepared in the data folder, then moved into place.
  const prepared = tempBeside(target, "restoring");
  try {
    await fs.copyFile(file, prepared);
    dropBackupRecord(prepared);
  } catch (err) {
    await fs.rm(prepared, { force: true });
    throw new BackupError("RESTORE_FAILED", `${file} cannot be copied into ${dataDir} (${(err as Error).message})`, { cause: err });
  }
  // Never a checkpoint ahead of the database: the old one goes first, the backup's comes last.
  let replacedCheckpoint: string | null = null;
  if ((await statOf(checkpointFile)) !== undefined) {
    replacedCheckpoint = `${checkpointFile}.replaced-${fileStamp(now())}`;
    await fs.rename(checkpointFile, replacedCheckpoint);
  }
  const replaced = await installDatabase(prepared, target, now());
  // A backup of an earlier version keeps its position beside the database: the tracker adopts the file at start.
  if (meta.checkpoint && !meta.positionInside) await writeFileAtomic(checkpointFile, JSON.stringify(meta.checkpoint) + "\n");
  const devices = deviceCount(target);
  return {
    file,
    dataDir,
    takenAt: meta.takenAt,
    schema,
    checkpoint: meta.checkpoint ? { block: meta.checkpoint.block, hash: meta.checkpoint.hash } : null,
    devices,
    replaced: { database: replaced, checkpoint: replacedCheckpoint },
  };
}

/** The target must be new, or a file to replace with --force, and never the live database. */
async function checkTarget(file: string, source: string, force: boolean): Promise<void> {
  const live = [source, `${source}-wal`, `${source}-shm`].map((p) => path.resolve(p));
  const real = await fs.realpath(file).catch(() => file);
  if (live.includes(file) || live.includes(real)) {
    throw new BackupInputError("BACKUP_PATH_INVALID", `${file} is the tracker's own database: give a file outside ${path.dirname(source)}`);
  }
  const kind = await statOf(file);
  if (kind === undefined) return;
  if (kind !== "file") throw new BackupInputError("BACKUP_PATH_INVALID", `${file} is a folder: give the name of the backup file to write`);
  if (!force) throw new BackupInputError("BACKUP_EXISTS", `${file} exists: a backup is never overwritten; give another file, or --force to replace it`);
}
