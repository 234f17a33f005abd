// Mocha's spec reporter, plus one closing line in the plain form CI tools read:
// "N passed, N failed, N skipped". With OTA_TEST_TOTALS set to a file, the counts are also
// added to it as one JSON line, so `npm test` (three suites, three runs) can print one total.
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
      if (totals) appendFileSync(totals, JSON.stringify({ passed: s.passes, failed: s.failures, skipped: s.pending }) + "\n");
    });
  }
}

module.exports = SpecWithSummary;
