import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

/** Every .ts file under a folder of the repository, as paths relative to the root. */
function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const p = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

/** SQL handed to better-sqlite3: a statement prepared, run or a pragma set from a string literal. */
const SQL_CALL = /\.(prepare|exec|pragma)\(\s*[`"']/;

/** The modules that own a database, where SQL may be written (issue 20: no SQL outside them). */
const DATABASE_MODULES = [/^agent\/database\//, /^agent\/tracker\/store\//, /^agent\/server\/serverDatabase\.ts$/];

/** `class X {` ... its closing brace at the same indentation: the classes of a file and their lengths in lines. */
export function classLengths(text: string): { name: string; lines: number }[] {
  const lines = text.split("\n");
  const found: { name: string; lines: number }[] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*)(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+(\w+)/.exec(line);
    if (!m) return;
    const end = lines.findIndex((l, j) => j > i && l === `${m[1]}}`);
    found.push({ name: m[2], lines: (end < 0 ? lines.length : end) - i + 1 });
  });
  return found;
}

describe("the architecture holds (issue 20): each fact in one place, folders that say what they hold", () => {
  it("no SQL outside the database modules (agent/database/, agent/tracker/store/, agent/server/serverDatabase.ts)", () => {
    const outside = sources("agent")
      .filter((f) => !DATABASE_MODULES.some((re) => re.test(f)))
      .filter((f) => SQL_CALL.test(readFileSync(path.join(ROOT, f), "utf8")));
    expect(outside, "move these statements into a store of the database that owns the table").to.deep.equal([]);
  });

  it("the check for SQL sees a statement prepared, run or a pragma set", () => {
    for (const line of ['db.prepare("SELECT 1")', "this.db.exec(`CREATE TABLE t (x)`)", "db.pragma('journal_mode = WAL')"]) {
      expect(SQL_CALL.test(line), line).to.equal(true);
    }
    expect(SQL_CALL.test("/^a$/.exec(value)")).to.equal(false);
  });

  it("no class over 300 lines in agent/tracker/", () => {
    const over = sources("agent/tracker").flatMap((f) =>
      classLengths(readFileSync(path.join(ROOT, f), "utf8"))
        .filter((c) => c.lines > 300)
        .map((c) => `${f}: ${c.name} (${c.lines} lines)`),
    );
    expect(over, "split these along their seams").to.deep.equal([]);
  });

  it("the class length counts from `class X {` to its closing brace", () => {
    const text = ["export class A {", "  x = 1;", "}", "", "class B {", "  m() {", "  }", "}"].join("\n");
    expect(classLengths(text)).to.deep.equal([
      { name: "A", lines: 3 },
      { name: "B", lines: 4 },
    ]);
  });

  it("generated contract types (typechain-types) are imported in agent/chain/ only, by import or require", () => {
    const outside = sources("agent")
      .filter((f) => !f.startsWith("agent/chain/"))
      .filter((f) => /(?:from\s+|require\(\s*|import\(\s*)["'][^"']*typechain-types/.test(readFileSync(path.join(ROOT, f), "utf8")));
    expect(outside, "use the typed clients of agent/chain/").to.deep.equal([]);
  });

  it("agent/ has no folder named for a mechanism rather than what it holds (the old agent/io/)", () => {
    const folders = readdirSync(path.join(ROOT, "agent"), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders).to.not.include("io");
    expect(folders).to.include.members(["core", "crypto", "chain", "storage", "database", "files", "net", "tracker", "server", "consumer", "author", "cli"]);
  });
});
