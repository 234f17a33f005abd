import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const checker = require("../../scripts/checkTraceability.js") as {
  checkTraceability(o: { markdown: string; requiredIds: string[]; files: string[]; titlesOf: (f: string) => string[] }): string[];
  testTitles(file: string): string[];
  idsOfRequirements(text: string): string[];
  carries(title: string, id: string): boolean;
  requirementRows(markdown: string): { line: number; label: string; code: string }[];
  missingSources(rows: { line: number; label: string; code: string }[], sources: string[]): string[];
  WILDCARD: string;
};

const table = (...rows: string[]) => ["| ID | what | status | code | tests |", "| --- | --- | --- | --- | --- |", ...rows].join("\n");

describe("scripts/checkTraceability: docs/traceability.md cannot drift (issue 19)", function () {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), "ota-trace-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads full titles from a test file's syntax: describe blocks, loops over literals exact, other template parts as wildcards, data-driven case names; skipped and pending tests are none", () => {
    const file = path.join(dir, "sample.test.ts");
    // The fixture's mocha modifiers are spliced in, so that this file itself holds no .only or .skip.
    const [only, skip, x] = ["only", "skip", "x"];
    writeFileSync(
      file,
      `describe("outer (CAP-11.3-c)", () => {
        describe("inner", () => {
          it("REQ-10d-i: refuses a downgrade", () => {});
          for (const s of ["a", "b"]) it(\`lists the \${s} devices\`, () => {});
          for (const [s, ids] of [["c", "REQ-10b-i"]]) it(\`\${ids}: lists the \${s} devices\`, () => {});
          for (const n of counts) it(\`handles \${n}\`, () => {});
        });
        it.${only}("one" + " two", () => {});
        it.${skip}("REQ-10a: skipped", () => {});
        ${x}it("REQ-10a: skipped too", () => {});
        describe.${skip}("REQ-10a: a skipped suite", () => { it("REQ-10a: inside it", () => {}); });
        it("REQ-10a: pending, no function");
        const cases = [{ name: "a zero file hash", run: () => 1 }];
        helper(cases);
      });
      it(title, () => {});`,
    );
    const W = checker.WILDCARD;
    expect(checker.testTitles(file)).to.deep.equal([
      "outer (CAP-11.3-c) inner REQ-10d-i: refuses a downgrade",
      "outer (CAP-11.3-c) inner lists the a devices",
      "outer (CAP-11.3-c) inner lists the b devices",
      "outer (CAP-11.3-c) inner REQ-10b-i: lists the c devices",
      `outer (CAP-11.3-c) inner handles ${W}`,
      "outer (CAP-11.3-c) one two",
      `outer (CAP-11.3-c) ${W}a zero file hash`,
      W,
    ]);
  });

  it("an ID is carried by itself or a sub-clause, never by a longer sibling", () => {
    expect(checker.carries("CAP-11.2-b-i: seen then silent", "CAP-11.2-b")).to.equal(true);
    expect(checker.carries("REQ-10d-ii: a forged signature", "REQ-10d-i")).to.equal(false);
    expect(checker.carries("(APP-II-1, APP-II-2)", "APP-II-1")).to.equal(true);
    expect(checker.carries("APP-II-1..4", "APP-II-1")).to.equal(false);
    expect(checker.idsOfRequirements("- `REQ-10b` ...: `REQ-10b-i` outdated; `CAP-11.2-m-a` keep; `npm test`")).to.deep.equal([
      "CAP-11.2-m-a",
      "REQ-10b",
      "REQ-10b-i",
    ]);
  });

  const titles: Record<string, string[]> = {
    "test/agent/a.test.ts": ["suite (REQ-10d-i) refuses a downgrade, also after a restart", "suite another test"],
    "test/agent/b.test.ts": ["b: lists the devices"],
    "test/other/b.test.ts": ["REQ-10d-i: b again"],
    "test/e2e/trackerLink.e2e.test.ts": ["e2e REQ-10d-i: a replayed notice"],
  };
  const check = (markdown: string, requiredIds = ["REQ-10d-i", "REQ-10d-ii"]) =>
    checker.checkTraceability({ markdown, requiredIds, files: Object.keys(titles), titlesOf: (f) => titles[f] });

  it("passes a row whose cited tests exist and carry its ID, with words left out by an ellipsis", () => {
    const row =
      '| REQ-10d-i | newer only | done | x | `a.test.ts` "refuses a downgrade … restart"; e2e: `trackerLink` "a replayed notice"; `test/other/b.test.ts` |';
    expect(check(table(row), ["REQ-10d-i"])).to.deep.equal([]);
  });

  it("refuses a row whose cited test carries another ID, and an ID the requirements document does not have", () => {
    const row = '| REQ-10d-ii | trusted | done | x | `a.test.ts` "refuses a downgrade" |';
    expect(check(table(row), ["REQ-10d-i"])).to.deep.equal([
      "REQ-10d-i: no row in the requirements table (add one: | REQ-10d-i | what | status | code | tests |)",
      "line 3 (REQ-10d-ii): REQ-10d-ii is not an ID of the requirements document",
      'line 3 (REQ-10d-ii): the test "refuses a downgrade" in test/agent/a.test.ts does not carry REQ-10d-ii in its title (describe blocks included)',
      "line 3 (REQ-10d-ii): test/agent/a.test.ts is cited, but none of its tests carries REQ-10d-ii in its title",
    ]);
  });

  it("finds a missing row, a missing file, an ambiguous name, a title that is not there, a file that proves nothing of the ID", () => {
    const problems = check(
      table('| REQ-10d-i | newer only | done | x | `gone.test.ts`; `b.test.ts`; `a.test.ts` "refuses an upgrade"; `test/agent/b.test.ts` |'),
    );
    expect(problems).to.deep.equal([
      "REQ-10d-ii: no row in the requirements table (add one: | REQ-10d-ii | what | status | code | tests |)",
      "line 3 (REQ-10d-i): cites `gone.test.ts`, which is no test file",
      "line 3 (REQ-10d-i): `b.test.ts` names 2 test files (test/agent/b.test.ts, test/other/b.test.ts); cite it by its path",
      'line 3 (REQ-10d-i): no test in test/agent/a.test.ts has a title containing "refuses an upgrade"',
      "line 3 (REQ-10d-i): test/agent/b.test.ts is cited, but none of its tests carries REQ-10d-i in its title",
    ]);
  });

  it("a row with a stray | (one cell too many) is named, since the table no longer renders", () => {
    const row = '| REQ-10d-i | newer only | done | x | `a.test.ts` "refuses a downgrade" | stray |';
    expect(check(table(row), ["REQ-10d-i"])).to.deep.equal(["line 3 (REQ-10d-i): the row has 6 cells, not 5 (a | inside a cell must be written \\|)"]);
  });

  it("review finding: a computed part of a title proves no quotation, and a quotation's own ID does not make a test carry it", () => {
    const W = checker.WILDCARD;
    const dynamic: Record<string, string[]> = { "test/agent/d.test.ts": [`suite handles ${W}`, `suite ${W}`] };
    const problems = checker.checkTraceability({
      markdown: table('| REQ-10d-i | newer only | done | x | `d.test.ts` "REQ-10d-i: THIS TEST DOES NOT EXIST" |'),
      requiredIds: ["REQ-10d-i"],
      files: Object.keys(dynamic),
      titlesOf: (f) => dynamic[f],
    });
    expect(problems).to.include('line 3 (REQ-10d-i): no test in test/agent/d.test.ts has a title containing "REQ-10d-i: THIS TEST DOES NOT EXIST"');
  });

  it("review finding: a quotation before any file is named; one after a command is what the command prints", () => {
    expect(
      check(table('| REQ-10d-i | newer only | done | x | "REQ-10d-i nonexistent" in `a.test.ts`; bench: `npm run bench` "calls per device" |'), ["REQ-10d-i"]),
    ).to.deep.equal(['line 3 (REQ-10d-i): quotes "REQ-10d-i nonexistent" before naming the test file it is in']);
  });

  it("an ID no test carries is named, since --grep would run nothing; a clause with no text and no tests ('-') needs none", () => {
    expect(check(table("| REQ-10d-ii | trusted | done | x | nothing cited |", "| REQ-10d-i | newer only | done | x | - |"))).to.deep.equal([
      'REQ-10d-ii: no test carries it in its title, so --grep "REQ-10d-ii" runs nothing',
    ]);
  });
  it("issue 20: a file or folder a row's code cell names must exist, by its path, the end of a path or its bare name", () => {
    const sources = ["agent/tracker/store/hierarchy.ts", "agent/tracker/reportIntake.ts", "agent/tracker/dashboard/app.js"];
    const row = (code: string) => table(`| REQ-10d-i | newer only | done | ${code} | - |`);
    const missing = (code: string) => checker.missingSources(checker.requirementRows(row(code)), sources);
    expect(
      missing("`agent/tracker/store/hierarchy.ts`, `store/hierarchy.ts` `modules`, `reportIntake.ts`, `dashboard/`, `agent/tracker/store/`"),
    ).to.deep.equal([]);
    expect(missing("`agent/tracker/fleetDatabase.ts` `downloadHolders`, `evidenceRequests.ts`, `agent/io/`")).to.deep.equal([
      "line 3 (REQ-10d-i): names `agent/tracker/fleetDatabase.ts`, which is no file or folder of the repository (moved or removed? name where the code is now)",
      "line 3 (REQ-10d-i): names `evidenceRequests.ts`, which is no file or folder of the repository (moved or removed? name where the code is now)",
      "line 3 (REQ-10d-i): names `agent/io/`, which is no file or folder of the repository (moved or removed? name where the code is now)",
    ]);
  });
});
