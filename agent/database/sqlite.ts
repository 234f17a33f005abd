import type BetterSqlite3 from "better-sqlite3";

/**
 * better-sqlite3, in the build that runs on this Node. Version 12 (the V8 API) is the last that
 * runs on Node 20, but on Node 24 its objects abort the process (SIGABRT) when garbage-collected:
 * Node 24's ObjectWrap asserts in its destructor, which 12 does not expect (WiseLibs/better-sqlite3
 * #1515, closed without a fix). Version 13 (Node-API, prebuilt in the package, so no compiler
 * either) runs on Node 22 and 24 and segfaults on Node 20. Both are dependencies, 13 under the
 * alias better-sqlite3-napi, with the same API; each Node loads the one that runs on it (ADR 0006).
 */
const NODE_API = Number(process.versions.node.split(".")[0]) >= 22;

/** The package this Node loads (for code that hands it to a worker thread). */
export const SQLITE_PACKAGE = NODE_API ? "better-sqlite3-napi" : "better-sqlite3";

// Required, not imported: a static import would load both, and one of them crashes this Node.
const Database = (
  NODE_API
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      require("better-sqlite3-napi")
    : // eslint-disable-next-line @typescript-eslint/no-require-imports
      require("better-sqlite3")
) as typeof BetterSqlite3;

/** A connection and a prepared statement, as the package types them (both builds have the same API). */
export type SqliteDatabase = BetterSqlite3.Database;
export type SqliteStatement = BetterSqlite3.Statement;
export default Database;

/**
 * What a database's migrations say about it: its name in errors ("the fleet database") and the
 * program that owns it ("tracker"), for the refusal of a database newer than the code.
 */
export interface MigrationSubject {
  database: string; // e.g. "the fleet database"
  program: string; // e.g. "tracker": "newer than this tracker (N): upgrade the tracker"
}

/**
 * Brings a database's schema to the last of `migrations` (the tracker's and the firmware server's
 * databases): migration i (from 0) takes a database at user_version i to i + 1, in its own
 * transaction with the new user_version, so that a crash leaves the database at one numbered
 * schema or the next. A database at a schema newer than the code knows is refused (nothing is
 * changed). Returns the user_version found, before any migration.
 */
export function migrate(db: SqliteDatabase, migrations: readonly string[], subject: MigrationSubject): number {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > migrations.length)
    throw new Error(`${subject.database} is at schema ${current}, newer than this ${subject.program} (${migrations.length}): upgrade the ${subject.program}`);
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return current;
}
