// npm test and its parts: `node scripts/testSuite.js unit|integration|e2e|all|unit-agents [hardhat test flags]`.
// A test file's suite is in its name, so a new file lands in a suite without a list to keep:
//   *.e2e.test.ts          whole-system runs: test/e2e/, the demo;
//   *.integration.test.ts  a file that starts a chain node, the js-ipfs daemon, a browser or
//                          CLI/agent processes, or drives the whole CLI against a chain;
//   any other *.test.ts    a unit test: in-process only (the in-process Hardhat network and
//                          loopback servers inside the test process are fine), run in parallel.
// `all` runs the three in that order and ends with one total line. Hardhat runs under this
// script's own Node binary, so `<node 22> scripts/testSuite.js unit` tests on Node 22.
"use strict";
const { mkdtempSync, readFileSync, readdirSync, rmSync } = require("node:fs");
const { spawnSync } = require("node:child_process");
const os = require("node:os");
const path = require("node:path");

const root = path.join(__dirname, "..");
const SUITES = {
  unit: { files: (f) => !/\.(e2e|integration)\.test\.ts$/.test(f), flags: ["--parallel"] },
  integration: { files: (f) => f.endsWith(".integration.test.ts"), flags: [] },
  e2e: { files: (f) => f.endsWith(".e2e.test.ts"), flags: [] },
};

// Not part of `all`: the unit tests of everything but the contracts (test/contracts), which .ci/run
// runs on the other Node majors (the contracts' tests run the same EVM on any Node; they run
// under the main Node and again under coverage).
const ALONE = {
  "unit-agents": { files: (f) => SUITES.unit.files(f) && !f.startsWith(`test${path.sep}contracts${path.sep}`), flags: ["--parallel"] },
};

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return testFiles(p);
    return e.name.endsWith(".test.ts") ? [path.relative(root, p)] : [];
  });
}

/** Runs one suite with Hardhat's test task; returns its exit status. */
function runSuite(name, extra, env) {
  const suite = SUITES[name] ?? ALONE[name];
  const files = testFiles(path.join(root, "test")).filter(suite.files).sort();
  console.log(`\n== ${name} tests: ${files.length} files, Node ${process.version}`);
  const hardhat = require.resolve("hardhat/internal/cli/bootstrap.js", { paths: [root] });
  const run = spawnSync(process.execPath, [hardhat, "test", ...suite.flags, ...extra, ...files], { cwd: root, stdio: "inherit", env });
  return run.status ?? 1;
}

const [which, ...extra] = process.argv.slice(2);
if (which !== "all" && !SUITES[which] && !ALONE[which]) {
  console.error(`usage: node scripts/testSuite.js ${[...Object.keys(SUITES), ...Object.keys(ALONE), "all"].join("|")} [hardhat test flags]`);
  process.exit(2);
}
if (which !== "all") process.exit(runSuite(which, extra, process.env));

// All three, every one run even when an earlier one failed, so one run shows every failure.
const dir = mkdtempSync(path.join(os.tmpdir(), "ota-test-totals-"));
const totalsFile = path.join(dir, "totals.jsonl");
let status = 0;
for (const name of Object.keys(SUITES)) {
  // Contracts compile once, before the first suite.
  const flags = name === "unit" ? extra : ["--no-compile", ...extra];
  if (runSuite(name, flags, { ...process.env, OTA_TEST_TOTALS: totalsFile }) !== 0) status = 1;
}
let lines = [];
try {
  lines = readFileSync(totalsFile, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
} catch {
  // no suite got as far as its reporter: the status says it failed
}
rmSync(dir, { recursive: true, force: true });
const sum = (k) => lines.reduce((n, l) => n + l[k], 0);
if (lines.length !== Object.keys(SUITES).length) status = 1;
console.log(`\nall suites (${lines.length} of ${Object.keys(SUITES).length} reported):`);
for (const f of lines.flatMap((l) => l.failures ?? [])) console.log(`  failed: ${f.title}\n          ${f.error}`);
console.log(`tests: ${sum("passed")} passed, ${sum("failed")} failed, ${sum("skipped")} skipped`);
process.exit(status);
