import Database, { type SqliteDatabase } from "./sqlite";
import type { NonceStore } from "../crypto/requestAuth";

/**
 * The table a database keeps signed requests' nonces in; each database that offers a
 * SqliteNonceStore creates it in its migrations.
 */
export const NONCE_TABLE_SQL = `CREATE TABLE IF NOT EXISTS request_nonces (
     identity TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (identity, nonce)) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS request_nonces_by_expiry ON request_nonces (expires_at);`;

/**
 * Nonces of signed requests in a SQLite database file, so that a restart forgets none (a request
 * seen before it is still a replay after it, and one signed just before it is not refused as
 * stale), and the processes that share the file share them.
 *
 * It has its own connection, with synchronous NORMAL rather than the database's FULL: a nonce is
 * written on every signed request, and an fsync each (about 240 µs on a small VM, against 6 µs)
 * would hold every request up. In WAL mode NORMAL survives a crash or restart of the process;
 * only an operating-system crash or power loss may forget the last nonces, and a machine takes
 * longer to come back than the 60 s a nonce lives.
 */
export class SqliteNonceStore implements NonceStore {
  readonly durable = true;
  private readonly db: SqliteDatabase;
  private readonly insert;
  private readonly countIdentity;
  private readonly countAll;
  private readonly deleteExpired;
  private counted = 0;

  /** `file`: a database whose migrations created the table ({@link NONCE_TABLE_SQL}). */
  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.insert = this.db.prepare(`INSERT OR IGNORE INTO request_nonces (identity, nonce, expires_at) VALUES (?, ?, ?)`);
    this.countIdentity = this.db.prepare(`SELECT COUNT(*) FROM request_nonces WHERE identity = ? AND expires_at >= ?`).pluck();
    this.countAll = this.db.prepare(`SELECT COUNT(*) FROM request_nonces`).pluck();
    this.deleteExpired = this.db.prepare(`DELETE FROM request_nonces WHERE expires_at < ?`);
    this.counted = this.countAll.get() as number;
  }

  add(identity: string, nonce: string, expiresAt: number): boolean {
    const added = this.insert.run(identity, nonce, expiresAt).changes === 1;
    if (added) this.counted += 1;
    return added;
  }

  countOf(identity: string, now: number): number {
    return this.countIdentity.get(identity, now) as number;
  }

  total(): number {
    return this.counted;
  }

  prune(now: number): void {
    this.deleteExpired.run(now);
    this.counted = this.countAll.get() as number; // also what other processes added
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
