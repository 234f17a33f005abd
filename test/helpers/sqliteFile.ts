import Database, { type SqliteDatabase } from "../../agent/database/sqlite";

/**
 * Runs `fn` on a connection of its own to a database file, closed after: for tests that look
 * under a store (its connection is private) or take a database back to an older schema. With the
 * store still open on the file, what it caches (prepared statements, names) is its own.
 */
export function withSqlite<T>(file: string, fn: (db: SqliteDatabase) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
