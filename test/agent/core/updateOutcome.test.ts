import { expect } from "chai";
import Database from "../../../agent/io/sqlite";
import { isFailedResult, NOT_APPLICABLE_CODES, RETRY_LATER_CODES } from "../../../agent/core/updateOutcome";
import { FAILED_SQL } from "../../../agent/tracker/fleetDatabase";

describe("what counts as a failed update (CAP-11.2-b-ii)", function () {
  const cases: [string | null, string | null, boolean][] = [
    ["confirmed", "OK", false],
    ["rolled-back", "HEALTH_CHECK_FAILED", true],
    ["failed", "INSTALL_FAILED", true],
    ["rejected", "CHUNK_MISMATCH", true],
    ["rejected", "RELEASE_REVOKED", true],
    ["rejected", "KEY_NOT_GRANTED", false],
    ["rejected", "POLICY_REFUSED", false],
    // Lifted by installing the dependency first: not a failure, and the release stays needed.
    ["rejected", "DEPENDENCY_NOT_INSTALLED", false],
    ["rejected", "DEPENDENCY_OUT_OF_RANGE", false],
    // Releases never meant for the device: a device following the ledger sees them all.
    ["rejected", "HARDWARE_NOT_SUPPORTED", false],
    ["rejected", "NOT_NEWER_THAN_INSTALLED", false],
    ["rejected", "BELOW_ANTI_ROLLBACK_FLOOR", false],
    // A device in safe mode waits for a person: not a failed update of the release it was told of.
    ["rejected", "SAFE_MODE", false],
    [null, null, false],
  ];

  it("a refusal that passes by itself or a release not meant for the device never counts against a rollout (APP-II-3)", function () {
    for (const [outcome, code, failed] of cases) expect(isFailedResult(outcome, code), `${outcome} ${code}`).to.equal(failed);
    for (const code of NOT_APPLICABLE_CODES) expect(RETRY_LATER_CODES.has(code), code).to.equal(false);
  });

  it("the tracker's SQL says the same as isFailedResult for every case", function () {
    const db = new Database(":memory:");
    try {
      for (const [outcome, code, failed] of cases) {
        const row = db.prepare(`SELECT ${FAILED_SQL} AS failed FROM (SELECT ? AS last_outcome, ? AS last_code)`).get(outcome, code) as { failed: number };
        expect(row.failed === 1, `${outcome} ${code}`).to.equal(failed);
      }
    } finally {
      db.close();
    }
  });
});
