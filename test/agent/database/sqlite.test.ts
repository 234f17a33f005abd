import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Database, { migrate, type SqliteDatabase } from "../../../agent/database/sqlite";

const SUBJECT = { database: "the test database", program: "tester" };
const MIGRATIONS = [
  `CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL);`,
  `ALTER TABLE a ADD COLUMN note TEXT; CREATE INDEX a_by_name ON a (name);`,
  `CREATE TABLE b (id INTEGER PRIMARY KEY);`,
];

const version = (db: SqliteDatabase) => db.pragma("user_version", { simple: true }) as number;
const tables = (db: SqliteDatabase) => db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all();

/** The one migration runner of the tracker's fleet database and the firmware server's database. */
describe("agent/database/sqlite: numbered migrations (migrate)", () => {
  let dir: string;
  let db: SqliteDatabase;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "ota-migrate-"));
    db = new Database(path.join(dir, "x.db"));
  });
  afterEach(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes a new database through every migration, user_version counting them, and says it found schema 0", () => {
    expect(migrate(db, MIGRATIONS, SUBJECT)).to.equal(0);
    expect(version(db)).to.equal(3);
    expect(tables(db)).to.deep.equal(["a", "b"]);
    expect(db.prepare(`SELECT name FROM pragma_table_info('a') ORDER BY cid`).pluck().all()).to.deep.equal(["id", "name", "note"]);
  });

  it("applies only the migrations past the database's user_version, and nothing to a database at the last", () => {
    migrate(db, MIGRATIONS.slice(0, 1), SUBJECT);
    db.prepare(`INSERT INTO a (name) VALUES ('kept')`).run();
    expect(migrate(db, MIGRATIONS, SUBJECT)).to.equal(1);
    expect(version(db)).to.equal(3);
    expect(db.prepare(`SELECT name FROM a`).pluck().all()).to.deep.equal(["kept"]);
    // Run again: nothing left to apply (a migration applied twice would fail: the column exists).
    expect(migrate(db, MIGRATIONS, SUBJECT)).to.equal(3);
    expect(version(db)).to.equal(3);
  });

  it("refuses a database newer than the code, naming both schemas, and changes nothing", () => {
    migrate(db, MIGRATIONS, SUBJECT);
    expect(() => migrate(db, MIGRATIONS.slice(0, 2), SUBJECT)).to.throw("the test database is at schema 3, newer than this tester (2): upgrade the tester");
    expect(version(db)).to.equal(3);
  });

  it("a migration that fails leaves the database at the schema before it, the earlier ones kept", () => {
    const broken = [...MIGRATIONS.slice(0, 2), `CREATE TABLE c (id INTEGER PRIMARY KEY); INSERT INTO nowhere VALUES (1);`];
    expect(() => migrate(db, broken, SUBJECT)).to.throw(/no such table: nowhere/);
    expect(version(db)).to.equal(2);
    expect(tables(db)).to.deep.equal(["a"]); // c was rolled back with the failed migration
    expect(migrate(db, MIGRATIONS, SUBJECT)).to.equal(2);
    expect(tables(db)).to.deep.equal(["a", "b"]);
  });
});
