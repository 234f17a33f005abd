import { mkdirSync } from "node:fs";
import path from "node:path";
import Database, { migrate, type MigrationSubject, type SqliteDatabase, type SqliteStatement } from "../../database/sqlite";

/**
 * The one connection of a database and its prepared statements, shared by the stores of that
 * database (agent/tracker/store): each store holds it privately and reaches the database only
 * through it. Nothing outside the database modules sees it.
 */
export class StoreConnection {
  private readonly db: SqliteDatabase;
  private readonly statements = new Map<string, SqliteStatement>();

  /**
   * Opens `file` (":memory:" for none; its folder made), in WAL with synchronous FULL (a reply
   * is only sent after what it reports is on disk), with `pragmas` after, and brings its schema
   * to the last of `migrations` (agent/database/sqlite migrate).
   */
  constructor(file: string, migrations: readonly string[], subject: MigrationSubject, pragmas: string[] = []) {
    if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    for (const p of pragmas) this.db.pragma(p);
    migrate(this.db, migrations, subject);
  }

  /** The database file (":memory:" for none). */
  get file(): string {
    return this.db.name;
  }

  get open(): boolean {
    return this.db.open;
  }

  /** A statement prepared once per connection and kept (the hot paths: report intake, decisions). */
  sql(text: string): SqliteStatement {
    let s = this.statements.get(text);
    if (!s) this.statements.set(text, (s = this.db.prepare(text)));
    return s;
  }

  /**
   * A statement of its own, not kept: SQL built per call (a query's filters), or a statement
   * iterated while others run (a generator left open keeps its statement busy).
   */
  fresh(text: string): SqliteStatement {
    return this.db.prepare(text);
  }

  /** Runs `fn` in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
