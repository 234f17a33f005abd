// `npm run check:traceability`: keeps docs/traceability.md honest (issue 19). It checks that
//   1. every X.1368 ID has a row: the IDs are those of the requirements document when it sits
//      beside the checkout (../shared/docs/X1368-requirements.md, or OTA_REQUIREMENTS), and
//      docs/x1368-ids.txt, their copy for machines without it, must equal them;
//   2. every test file a row cites exists (a path, a file name, a glob, or an e2e case's name);
//   3. every test a row cites by its quoted title exists in the file cited before it, and its full
//      title (its describe blocks' and its own, as `--grep` matches) carries one of the row's IDs;
//   4. every file a row cites without a title holds at least one test that carries one of the IDs;
//   5. every ID of a row is carried by at least one test, so `--grep "<ID>"` runs something.
// Titles are read from the test files' syntax trees, without loading them: a title built at run
// time (a variable) matches any citation, and a `${...}` part of a template matches any text.
"use strict";
const { existsSync, readFileSync, readdirSync } = require("node:fs");
const path = require("node:path");
const ts = require("typescript");

const root = path.join(__dirname, "..");
const ID =
  /\b(?:REQ-10[a-f](?:-i{1,3})?|CAP-11\.[1-4]-[a-h](?:-(?:i{1,3}|iv|vi?|[abc]))?|CAP-11\.2-m-[abc]|DEP-8\.(?:1-[ab]|2\.[123])|PROC-[1-5]|APP-II-[1-4])\b/g;
const WILDCARD = "\u0000";
/** What a row quotes after a command (`bench:e2e` "…"): words it prints, not a test's title. */
const COMMAND = Symbol("command");

/** The IDs the requirements document defines: each is written in backquotes where it is defined. */
function idsOfRequirements(text) {
  return [
    ...new Set([...text.matchAll(/`([A-Z]+-[A-Za-z0-9.]+(?:-[A-Za-z0-9.]+)*)`/g)].map((m) => m[1]).filter((id) => new RegExp(ID.source).test(id))),
  ].sort();
}

/** Whether `title` carries `id` itself or one of its sub-clauses (CAP-11.2-b-i carries CAP-11.2-b). */
function carries(title, id) {
  const escaped = id.replace(/[.]/g, "\\.");
  return new RegExp(`(^|[^A-Za-z0-9.-])${escaped}($|[^A-Za-z0-9.]|-[a-z])`).test(title);
}

const TEST_CALLS = new Set(["it", "specify", "test"]);
const SUITE_CALLS = new Set(["describe", "context", "suite"]);
// Skipped tests and suites run nothing: they carry no ID (xit, xdescribe, it.skip, describe.skip).
const SKIPPED_CALLS = new Set(["xit", "xspecify", "xdescribe", "xcontext"]);

/** A call's mocha name (it, describe ...), or undefined for any other call and for a skipped one. */
function callName(expr) {
  if (ts.isIdentifier(expr)) return SKIPPED_CALLS.has(expr.text) ? undefined : expr.text;
  if (ts.isPropertyAccessExpression(expr) && ts.isIdentifier(expr.expression)) return expr.name.text === "skip" ? undefined : expr.expression.text; // it.only
  return undefined;
}

/**
 * A title argument as text, with WILDCARD where it is computed at run time. `bound` gives the
 * values of loop variables the title names (a for-of over an array of literals): those are exact.
 */
function titleText(arg, bound = new Map()) {
  if (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg)) return arg.text;
  if (ts.isTemplateExpression(arg)) return arg.head.text + arg.templateSpans.map((s) => titleText(s.expression, bound) + s.literal.text).join("");
  if (ts.isBinaryExpression(arg) && arg.operatorToken.kind === ts.SyntaxKind.PlusToken) return titleText(arg.left, bound) + titleText(arg.right, bound);
  if (ts.isParenthesizedExpression(arg)) return titleText(arg.expression, bound);
  if (ts.isIdentifier(arg) && bound.has(arg.text)) return bound.get(arg.text);
  return WILDCARD;
}

/** A literal's text, or undefined if it is not a plain string literal. */
const literal = (e) => (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) ? e.text : undefined);

/**
 * The bindings of each pass of `for (const x of ["a", "b"])` or `for (const [x, y] of [["a", "b"], ...])`
 * over literals, so that titles made from them are exact; undefined for any other loop.
 */
function loopBindings(node) {
  if (!ts.isForOfStatement(node) || !ts.isArrayLiteralExpression(node.expression) || !ts.isVariableDeclarationList(node.initializer)) return undefined;
  const name = node.initializer.declarations[0]?.name;
  if (!name) return undefined;
  const passes = [];
  for (const el of node.expression.elements) {
    if (ts.isIdentifier(name)) {
      const v = literal(el);
      if (v === undefined) return undefined;
      passes.push(new Map([[name.text, v]]));
    } else if (ts.isArrayBindingPattern(name) && ts.isArrayLiteralExpression(el)) {
      const m = new Map();
      name.elements.forEach((b, i) => {
        const v = el.elements[i] && literal(el.elements[i]);
        if (ts.isBindingElement(b) && ts.isIdentifier(b.name) && v !== undefined) m.set(b.name.text, v);
      });
      passes.push(m);
    } else return undefined;
  }
  return passes;
}

/** Every test's full title in a test file, as mocha joins them: describe titles, then its own. */
function testTitles(file) {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const titles = [];
  const visit = (node, chain, bound) => {
    const passes = loopBindings(node);
    if (passes) {
      for (const pass of passes) visit(node.statement, chain, new Map([...bound, ...pass]));
      return;
    }
    if (ts.isCallExpression(node) && node.arguments.length > 0) {
      const name = callName(node.expression);
      // A test needs its function: `it("title")` alone is pending and runs nothing.
      if (TEST_CALLS.has(name)) {
        if (node.arguments.length > 1) titles.push([...chain, titleText(node.arguments[0], bound)].join(" "));
        return;
      }
      if (SUITE_CALLS.has(name)) {
        const inner = [...chain, titleText(node.arguments[0], bound)];
        node.arguments.slice(1).forEach((a) => visit(a, inner, bound));
        return;
      }
      if (ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === "skip") return; // a skipped suite or test
    }
    // Data-driven cases, [{ name: "...", ... }] handed to a loop or an it-helper: mocha's title
    // ends with the case's name.
    if (
      ts.isPropertyAssignment(node) &&
      ts.isIdentifier(node.name) &&
      node.name.text === "name" &&
      ts.isObjectLiteralExpression(node.parent) &&
      ts.isArrayLiteralExpression(node.parent.parent) &&
      chain.length > 0
    ) {
      titles.push([...chain, WILDCARD + titleText(node.initializer, bound)].join(" "));
    }
    ts.forEachChild(node, (c) => visit(c, chain, bound));
  };
  visit(source, [], new Map());
  return titles;
}

/**
 * Whether the pieces of a quotation ("…" leaves words out) appear in the title in order. A part
 * computed at run time (WILDCARD) proves nothing: each piece must lie within the title's literal
 * text, between two computed parts at most.
 */
function inOrder(title, pieces) {
  const segments = title.split(WILDCARD);
  let seg = 0;
  let from = 0;
  for (const piece of pieces) {
    for (;;) {
      if (seg >= segments.length) return false;
      const at = segments[seg].indexOf(piece, from);
      if (at >= 0) {
        from = at + piece.length;
        break;
      }
      seg += 1;
      from = 0;
    }
  }
  return true;
}

/** The literal text of a title, its computed parts blank: what carries an ID. */
const literalText = (title) => title.split(WILDCARD).join(" ");

function listTests(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return listTests(p);
    return e.name.endsWith(".test.ts") ? [path.relative(root, p).split(path.sep).join("/")] : [];
  });
}

function globToRegExp(glob) {
  return new RegExp(
    "^" +
      glob
        .split("**/")
        .map((s) => s.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*"))
        .join("(?:.*/)?") +
      "$",
  );
}

/**
 * Resolves a backquoted citation to test files: a path (or glob) under test/, a file name found
 * once in test/, or the name of an e2e case (test/e2e/<name>.e2e.test.ts). Not a citation: [].
 */
function resolveCitation(token, files) {
  if (token.endsWith(".test.ts")) {
    if (token.includes("/")) {
      const re = globToRegExp(token);
      return { files: files.filter((f) => re.test(f)), kind: "file" };
    }
    return { files: files.filter((f) => path.posix.basename(f) === token), kind: "file" };
  }
  if (/^[a-z][A-Za-z]+$/.test(token)) {
    const e2e = `test/e2e/${token}.e2e.test.ts`;
    if (files.includes(e2e)) return { files: [e2e], kind: "e2e" };
  }
  return { files: [], kind: "none" };
}

/** The rows of the "Requirements and capabilities" table: their IDs and their tests cell. */
function requirementRows(markdown) {
  const rows = [];
  let inTable = false;
  markdown.split("\n").forEach((line, i) => {
    if (/^\| ID \| what \|/.test(line)) inTable = true;
    else if (inTable && !line.startsWith("|")) inTable = false;
    else if (inTable && !line.startsWith("| ---")) {
      const cells = line.split(/(?<!\\)\|/).slice(1, -1);
      const ids = [...new Set(cells[0].match(ID) ?? [])];
      rows.push({ line: i + 1, label: cells[0].trim(), ids, code: cells.length === 5 ? cells[3] : "", tests: cells[cells.length - 1], cells: cells.length });
    }
  });
  return rows;
}

/**
 * Checks the traceability document; answers the problems found, each a line saying what is wrong
 * and where. `requiredIds` are the IDs that must each have a row.
 */
function checkTraceability({ markdown, requiredIds, files, titlesOf }) {
  const problems = [];
  const rows = requirementRows(markdown);
  const titlesCache = new Map();
  const titles = (f) => {
    if (!titlesCache.has(f)) titlesCache.set(f, titlesOf(f));
    return titlesCache.get(f);
  };
  const covered = new Set(rows.flatMap((r) => r.ids));
  // A row that cites no test ("-": a clause with no text in the source) needs none to carry it.
  const untested = new Set(rows.filter((r) => r.tests.trim() === "-").flatMap((r) => r.ids));
  for (const id of requiredIds) {
    const children = requiredIds.filter((c) => c.startsWith(`${id}-`));
    // A clause that only gathers its sub-clauses (REQ-10b: -i and -ii) is covered by their rows.
    if (!covered.has(id) && !(children.length > 0 && children.every((c) => covered.has(c))))
      problems.push(`${id}: no row in the requirements table (add one: | ${id} | what | status | code | tests |)`);
  }
  for (const row of rows) {
    const where = `line ${row.line} (${row.label})`;
    if (row.cells !== 5) problems.push(`${where}: the row has ${row.cells} cells, not 5 (a | inside a cell must be written \\|)`);
    if (row.ids.length === 0) {
      problems.push(`${where}: the first cell names no X.1368 ID`);
      continue;
    }
    for (const id of row.ids) if (!requiredIds.includes(id)) problems.push(`${where}: ${id} is not an ID of the requirements document`);
    const carriesRowId = (title) => row.ids.some((id) => carries(title, id));
    let current;
    const citedFiles = new Set();
    const provedByQuote = new Set();
    for (const m of row.tests.matchAll(/`([^`]+)`|"([^"]+)"/g)) {
      if (m[1] !== undefined) {
        const { files: hits, kind } = resolveCitation(m[1], files);
        if (kind === "none") {
          // A command or another file (`bench:e2e`, `bench/gas.ts`): what is quoted next is not a test.
          if (/[:/ .]/.test(m[1])) current = COMMAND;
          continue;
        }
        if (hits.length === 0) {
          problems.push(`${where}: cites \`${m[1]}\`, which is no test file`);
          current = COMMAND; // the problem is named; what it quotes is not checked again
        } else if (hits.length > 1 && !m[1].includes("*")) {
          problems.push(`${where}: \`${m[1]}\` names ${hits.length} test files (${hits.join(", ")}); cite it by its path`);
          current = COMMAND; // the problem is named; what it quotes is not checked again
        } else {
          current = hits;
          hits.forEach((f) => citedFiles.add(f));
        }
        continue;
      }
      if (current === undefined) {
        problems.push(`${where}: quotes "${m[2]}" before naming the test file it is in`);
        continue;
      }
      if (current === COMMAND) continue; // what a command prints, not a test
      // "…" leaves words out: its pieces must appear in the title in order.
      const pieces = m[2]
        .split(/\s*(?:…|\.\.\.)\s*/)
        .map((p) => p.trim())
        .filter(Boolean);
      const quoted = pieces.join(" … ");
      const matching = current.flatMap((f) => titles(f).filter((t) => inOrder(t, pieces)));
      const carrying = matching.filter((t) => carriesRowId(literalText(t)));
      if (carrying.length > 0) current.forEach((f) => provedByQuote.add(f));
      if (matching.length === 0) problems.push(`${where}: no test in ${current.join(", ")} has a title containing "${quoted}"`);
      else if (carrying.length === 0)
        problems.push(`${where}: the test "${quoted}" in ${current.join(", ")} does not carry ${row.ids.join(" or ")} in its title (describe blocks included)`);
    }
    for (const f of citedFiles) {
      if (provedByQuote.has(f)) continue;
      const fileTitles = titles(f);
      if (!fileTitles.some((t) => carriesRowId(literalText(t))))
        problems.push(`${where}: ${f} is cited, but none of its tests carries ${row.ids.join(" or ")} in its title`);
    }
  }
  const allTitles = files.flatMap((f) => titles(f));
  for (const id of [...covered].filter((id) => requiredIds.includes(id) && !untested.has(id)).sort())
    if (!allTitles.some((t) => carries(literalText(t), id))) problems.push(`${id}: no test carries it in its title, so --grep "${id}" runs nothing`);
  return problems;
}

/**
 * The files a row's code cell names (`agent/tracker/store/`, `reportIntake.ts`) that do not exist:
 * a file moved or removed leaves its row pointing nowhere. A name with a folder must be a path of the
 * repository or end one (`store/hierarchy.ts`); a bare name must be some file's name.
 */
function missingSources(rows, sources) {
  const problems = [];
  const names = new Set(sources.map((f) => path.posix.basename(f)));
  const found = (token) => {
    if (!token.includes("/")) return names.has(token);
    const folder = token.endsWith("/") ? token : `${token}/`;
    return sources.some((f) => f === token || f.endsWith(`/${token}`) || f.startsWith(folder) || f.includes(`/${folder}`));
  };
  for (const row of rows)
    for (const m of row.code.matchAll(/`([^`\s]+)`/g)) {
      const token = m[1];
      if (!/^[\w@./-]+(\.(ts|sol|js|sh|json|md)|\/)$/.test(token)) continue;
      if (!found(token))
        problems.push(
          `line ${row.line} (${row.label}): names \`${token}\`, which is no file or folder of the repository (moved or removed? name where the code is now)`,
        );
    }
  return problems;
}

/** The repository's files, as paths relative to its root; generated and installed folders left out. */
function repositoryFiles(dir = root, prefix = "") {
  const skip = new Set(["node_modules", ".git", "artifacts", "cache", "typechain-types", "dist", "coverage"]);
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (skip.has(e.name)) return [];
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? repositoryFiles(path.join(dir, e.name), rel) : [rel];
  });
}

function main() {
  const requirementsPath = process.env.OTA_REQUIREMENTS ?? path.join(root, "..", "shared", "docs", "X1368-requirements.md");
  const idsPath = path.join(root, "docs", "x1368-ids.txt");
  const copied = readFileSync(idsPath, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const problems = [];
  if (existsSync(requirementsPath)) {
    const ids = idsOfRequirements(readFileSync(requirementsPath, "utf8"));
    const missing = ids.filter((id) => !copied.includes(id));
    const extra = copied.filter((id) => !ids.includes(id));
    if (missing.length || extra.length)
      problems.push(
        `docs/x1368-ids.txt differs from ${requirementsPath}: ${missing.length ? `missing ${missing.join(", ")}` : ""}${extra.length ? ` not in the document ${extra.join(", ")}` : ""}; copy the document's IDs into it`,
      );
  } else {
    console.log(`(the requirements document is not at ${requirementsPath}: the IDs are taken from docs/x1368-ids.txt)`);
  }
  const files = listTests(path.join(root, "test"));
  problems.push(
    ...checkTraceability({
      markdown: readFileSync(path.join(root, "docs", "traceability.md"), "utf8"),
      requiredIds: copied,
      files,
      titlesOf: (f) => testTitles(path.join(root, f)),
    }),
  );
  const markdown = readFileSync(path.join(root, "docs", "traceability.md"), "utf8");
  problems.push(...missingSources(requirementRows(markdown), repositoryFiles()));
  if (problems.length) {
    console.error(`docs/traceability.md: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    process.exit(1);
  }
  console.log(`docs/traceability.md: ${copied.length} IDs, every row's tests exist and carry their IDs`);
}

if (require.main === module) main();
module.exports = { checkTraceability, missingSources, testTitles, idsOfRequirements, carries, requirementRows, WILDCARD };
