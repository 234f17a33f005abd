// Mocha's spec reporter, plus one closing line in the plain form CI tools read:
// "N passed, N failed, N skipped". With OTA_TEST_TOTALS set to a file, the counts are also
// added to it as one JSON line, so `npm test` (three suites, three runs) can print one total,
// with the failed tests' titles and first error lines again at its very end (a CI log is often
// read from its tail only).
const { appendFileSync } = require("node:fs");
const Mocha = require("mocha");

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const s = this.stats;
      process.stdout.write(`\ntests: ${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
      const totals = process.env.OTA_TEST_TOTALS;
      const failures = this.failures.map((t) => ({
        title: typeof t.fullTitle === "function" ? t.fullTitle() : t.title,
        error: String(t.err?.message ?? t.err ?? "")
          .split("\n")[0]
          .slice(0, 300),
      }));
      if (totals) appendFileSync(totals, JSON.stringify({ passed: s.passes, failed: s.failures, skipped: s.pending, failures }) + "\n");
    });
  }
}

module.exports = SpecWithSummary;
