import Database, { type SqliteDatabase } from "./sqlite";
import { promises as fs } from "node:fs";
import path from "node:path";
import { InputError, OtaError } from "../core/errors";

/**
 * Online backups of the agents' SQLite databases (the firmware server's server.db, the tracker's
 * fleet.db), and putting one back. Both databases run in WAL mode, so copying the file of a live
 * database is not safe (committed pages may still be in the -wal file, and a copy may catch a
 * checkpoint half done). A backup here is taken instead through SQLite's backup API, from a
 * connection of its own: in WAL mode its read transaction sees one committed state and blocks no
 * writer, so the service goes on meanwhile. What the copy holds is checked before it is kept.
 */

/** A backup or restore that cannot be done as asked; the message says what to do. */
export class BackupError extends OtaError {}
/** The same, caused by the paths or options given (exit code 2). */
export class BackupInputError extends InputError {}

/** Copies the database `source` into `copy` (a new file) in one consistent snapshot, then checks it. */
export async function snapshotDatabase(source: string, copy: string): Promise<{ journalMode: string; pages: number }> {
  await requireFile(source, "database");
  let src: SqliteDatabase;
  try {
    // Read-only, from its own connection: in WAL mode it neither blocks nor is blocked by the service.
    src = new Database(source, { readonly: true, fileMustExist: true, timeout: 10_000 });
  } catch (cause) {
    throw new BackupError("BACKUP_SOURCE_UNREADABLE", `${source} cannot be opened as a SQLite database (${(cause as Error).message})`, { cause });
  }
  let journalMode: string;
  let pages: number;
  try {
    journalMode = String(src.pragma("journal_mode", { simple: true }));
    // All remaining pages in one step: one read transaction, so one committed state, however
    // busy the service is (a copy made in several steps starts again whenever the service writes).
    const done = await src.backup(copy, { progress: () => 0x7fffffff });
    pages = done.totalPages;
  } catch (cause) {
    await fs.rm(copy, { force: true });
    throw new BackupError("BACKUP_FAILED", `copying ${source} failed: ${(cause as Error).message}`, { cause });
  } finally {
    src.close();
  }
  const check = checkDatabase(copy);
  if (check !== "ok") {
    await fs.rm(copy, { force: true });
    throw new BackupError("BACKUP_FAILED", `the copy of ${source} does not check out (${check}); nothing was kept`);
  }
  // One self-contained file: no -wal beside it to lose when it is moved.
  const dst = new Database(copy);
  try {
    dst.pragma("journal_mode = DELETE");
  } finally {
    dst.close();
  }
  return { journalMode, pages };
}

/** SQLite's quick check of a database file: "ok", or what is wrong. */
export function checkDatabase(file: string): string {
  let db: SqliteDatabase | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const rows = db.pragma("quick_check") as { quick_check: string }[];
    return rows.map((r) => r.quick_check).join("; ");
  } catch (err) {
    return (err as Error).message;
  } finally {
    db?.close();
  }
}

/**
 * Throws SERVICE_RUNNING if another process has `file` open (the service still runs): restoring
 * under a running service would have it write into the file being replaced. Taking SQLite's
 * exclusive lock fails while any other connection holds the database open in WAL mode. Closing
 * this connection also checkpoints what a crashed service left in the -wal file into the database.
 */
export function assertNotInUse(file: string, service: string): void {
  let db: SqliteDatabase | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("COMMIT");
  } catch (cause) {
    if ((cause as { code?: string }).code === "SQLITE_BUSY") {
      throw new BackupError("SERVICE_RUNNING", `${file} is open in another process: stop the ${service} first (Ctrl-C or SIGTERM), then restore`, { cause });
    }
    throw new BackupError("RESTORE_FAILED", `${file} cannot be opened (${(cause as Error).message}): move it aside yourself, then restore`, { cause });
  } finally {
    db?.close();
  }
}

/** The schema (user_version) of a database file. */
export function schemaOf(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.pragma("user_version", { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** Whether `file` is a regular file; a missing one is an InputError naming what it should be. */
export async function requireFile(file: string, what: string): Promise<void> {
  const stat = await fs.stat(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") throw new BackupInputError("BACKUP_SOURCE_MISSING", `${file} does not exist: give the ${what} to use`);
    throw new BackupError("BACKUP_SOURCE_UNREADABLE", `${file} cannot be read (${err.code ?? err.message})`, { cause: err });
  });
  if (!stat.isFile()) throw new BackupInputError("BACKUP_SOURCE_MISSING", `${file} is not a file: give the ${what} to use`);
}

/** Whether something exists at `p` (and what). */
export async function statOf(p: string): Promise<"file" | "directory" | "other" | undefined> {
  const s = await fs.stat(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    if (err.code === "ENOTDIR") throw new BackupInputError("BACKUP_PATH_INVALID", `${p}: a part of this path is a file, not a folder: give another path`);
    throw new BackupError("BACKUP_PATH_UNREADABLE", `${p} cannot be examined (${err.code ?? err.message})`, { cause: err });
  });
  return s === undefined ? undefined : s.isFile() ? "file" : s.isDirectory() ? "directory" : "other";
}

/** Creates the folder `dir` (and those above), or says clearly why it cannot be. */
export async function makeFolder(dir: string, what: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR" || code === "EEXIST")
      throw new BackupInputError("BACKUP_PATH_INVALID", `${dir} cannot be made a folder for the ${what}: a part of the path is a file`, { cause });
    throw new BackupError(
      "BACKUP_TARGET_UNWRITABLE",
      `the folder ${dir} for the ${what} cannot be made (${code ?? (cause as Error).message}): give a writable path`,
      { cause },
    );
  }
}

/** A temporary name beside `target`, in the same folder (so that a rename moves it into place atomically). */
export function tempBeside(target: string, tag = "tmp"): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.${tag}`);
}

/** Flushes a file or folder to disk. */
export async function syncPath(p: string): Promise<void> {
  const h = await fs.open(p, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Moves the finished `temp` file to `target`: refused if something appeared there meanwhile,
 * unless `replace` (then it is replaced in one rename).
 */
export async function moveIntoPlace(temp: string, target: string, replace: boolean): Promise<void> {
  await syncPath(temp);
  try {
    if (replace) await fs.rename(temp, target);
    else {
      await fs.link(temp, target); // fails if the target exists: never overwrites
      await fs.rm(temp);
    }
  } catch (cause) {
    await fs.rm(temp, { force: true });
    if ((cause as NodeJS.ErrnoException).code === "EEXIST")
      throw new BackupInputError("BACKUP_EXISTS", `${target} appeared while the backup was taken: nothing was overwritten`, { cause });
    throw new BackupError("BACKUP_TARGET_UNWRITABLE", `${target} cannot be written (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`, {
      cause,
    });
  }
  await syncPath(path.dirname(target));
}

/** A stamp for file names: 2026-05-01T10-20-30Z. */
export function fileStamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/:/g, "-");
}

/**
 * Puts the database `prepared` (a finished copy in the target's folder) in place of `target`.
 * A database already there is kept beside it as `<target>.replaced-<time>` (after its -wal was
 * folded in by assertNotInUse), never deleted. Returns that file's name, if any.
 */
export async function installDatabase(prepared: string, target: string, now: number): Promise<string | null> {
  let replaced: string | null = null;
  if ((await statOf(target)) !== undefined) {
    replaced = `${target}.replaced-${fileStamp(now)}`;
    await fs.rename(target, replaced);
  }
  // What a WAL database leaves beside it belongs to the file replaced, never to the restored one.
  for (const suffix of ["-wal", "-shm", "-journal"]) await fs.rm(target + suffix, { force: true });
  await syncPath(prepared);
  await fs.rename(prepared, target);
  await syncPath(path.dirname(target));
  return replaced;
}

/**
 * Where a restore puts a database: the data folder made if needed; an existing database there is
 * replaced only with `force`, and never while `service` has it open.
 */
export async function restoreTarget(dataDir: string, databaseFile: string, service: string, force: boolean): Promise<string> {
  const target = path.join(dataDir, databaseFile);
  await makeFolder(dataDir, `${service}'s data`);
  const existing = await statOf(target);
  if (existing !== undefined) {
    if (existing !== "file") throw new BackupInputError("RESTORE_TARGET_INVALID", `${target} is not a file: move it aside yourself`);
    if (!force) {
      throw new BackupInputError(
        "RESTORE_TARGET_EXISTS",
        `${target} exists: restoring replaces the ${service}'s database; stop the ${service} and give --force (the database there is kept as ${databaseFile}.replaced-<time>)`,
      );
    }
    assertNotInUse(target, service);
  }
  return target;
}

/**
 * Copies a live database with SQLite's online backup into `copy` and returns the copy's schema,
 * refusing one newer than `known` (a backup taken with an older ota-ledger than the service runs).
 */
export async function snapshotKnownSchema(source: string, copy: string, known: number, service: string): Promise<number> {
  await snapshotDatabase(source, copy);
  const schema = schemaOf(copy);
  if (schema > known) {
    throw new BackupError(
      "BACKUP_SCHEMA_NEWER",
      `the ${service}'s database is at schema ${schema}, newer than this ota-ledger knows (${known}): take the backup with the ota-ledger version the ${service} runs`,
    );
  }
  return schema;
}
