import { expect } from "chai";
import Database from "../../../agent/database/sqlite";
import {
  DELIVERY_FAULT_CODES,
  isFailedResult,
  isRetriedLater,
  RELEASE_FAILURE_CODES,
  resultKind,
  resultKindSql,
  RETRY_LATER_REFUSALS,
  type ResultKind,
} from "../../../agent/core/updateOutcome";
import { REPORT_CODES } from "../../../agent/core/updateErrors";

describe("the three kinds of result: failed, blocked, refused (issue 15, CAP-11.2-b-ii, APP-II-3)", function () {
  const cases: [string | null, string | null, ResultKind | null][] = [
    ["confirmed", "OK", "installed"],
    ["rolled-back", "HEALTH_CHECK_FAILED", "failed"],
    ["failed", "INSTALL_FAILED", "failed"],
    ["failed", "FILE_HASH_MISMATCH", "failed"],
    // agents before issue 15 reported content failures as rejected: they still count
    ["rejected", "FILE_HASH_MISMATCH", "failed"],
    ["rejected", "CHUNK_AUTHENTICATION", "failed"],
    // finding: delivery faults were counted as failed updates. A mirror's flipped byte, the
    // server's own 503, a proxy's 5xx, a device clock off, a key not granted or not the release's:
    ["rejected", "CHUNK_MISMATCH", "blocked"],
    ["rejected", "MANIFEST_ROOT_MISMATCH", "blocked"],
    ["rejected", "ARTIFACT_TRUNCATED", "blocked"],
    ["rejected", "SERVER_BUSY", "blocked"],
    ["rejected", "INTERNAL", "blocked"],
    ["rejected", "AUTH_STALE", "blocked"],
    ["rejected", "KEY_UNWRAP_FAILED", "blocked"],
    ["rejected", "KEY_NOT_GRANTED", "blocked"],
    // a proxy's or gateway's answer without the server's error body
    ["rejected", "HTTP_503", "blocked"],
    ["rejected", "HTTP_429", "blocked"],
    ["rejected", "HTTP_5031", "refused"],
    ["blocked", "CHUNK_MISMATCH", "blocked"],
    // a code this tracker does not know yet, on a blocked result: blocked all the same
    ["blocked", "SOMETHING_NEW", "blocked"],
    // finding: a correct refusal was shown as a failure
    ["rejected", "RELEASE_REVOKED", "refused"],
    ["rejected", "RELEASE_VULNERABLE", "refused"],
    ["rejected", "PROVIDER_BARRED", "refused"],
    ["rejected", "POLICY_REFUSED", "refused"],
    ["rejected", "DEPENDENCY_NOT_INSTALLED", "refused"],
    ["rejected", "HARDWARE_NOT_SUPPORTED", "refused"],
    ["rejected", "NOT_NEWER_THAN_INSTALLED", "refused"],
    ["rejected", "SAFE_MODE", "refused"],
    ["declined", "NOT_A_SECURITY_FIX", "refused"],
    [null, null, null],
    ["something-else", "X", null],
  ];

  it("every outcome and code has its kind, and only a release that failed after an intact delivery is a failure", function () {
    for (const [outcome, code, kind] of cases) {
      expect(resultKind(outcome, code), `${outcome} ${code}`).to.equal(kind);
      expect(isFailedResult(outcome, code), `${outcome} ${code}`).to.equal(kind === "failed");
    }
  });

  it("a blocked delivery and a refusal that passes are tried again; a failure or a final refusal is not", function () {
    expect(isRetriedLater("blocked", "SERVER_BUSY")).to.equal(true);
    expect(isRetriedLater("rejected", "CHUNK_MISMATCH")).to.equal(true);
    expect(isRetriedLater("rejected", "DEFERRED_TO_WINDOW")).to.equal(true);
    expect(isRetriedLater("rejected", "POLICY_REFUSED")).to.equal(true);
    expect(isRetriedLater("rejected", "RELEASE_REVOKED")).to.equal(false);
    expect(isRetriedLater("failed", "FILE_HASH_MISMATCH")).to.equal(false);
    expect(isRetriedLater("rolled-back", "HEALTH_CHECK_FAILED")).to.equal(false);
  });

  it("the code lists do not overlap, and every code the device defines is known", function () {
    for (const c of RELEASE_FAILURE_CODES) expect(DELIVERY_FAULT_CODES.has(c) || RETRY_LATER_REFUSALS.has(c), c).to.equal(false);
    for (const c of RETRY_LATER_REFUSALS) expect(DELIVERY_FAULT_CODES.has(c), c).to.equal(false);
    const known = new Set<string>(REPORT_CODES);
    for (const c of RELEASE_FAILURE_CODES) expect(known.has(c), c).to.equal(true);
  });

  it("the tracker's SQL says the same as resultKind for every case and every listed code", function () {
    const db = new Database(":memory:");
    try {
      const all: [string | null, string | null][] = [...cases.map(([o, c]) => [o, c] as [string | null, string | null])];
      for (const outcome of ["rejected", "blocked", "failed", "declined"])
        for (const code of [...RELEASE_FAILURE_CODES, ...DELIVERY_FAULT_CODES, ...RETRY_LATER_REFUSALS, ...REPORT_CODES]) all.push([outcome, code]);
      const stmt = db.prepare(`SELECT ${resultKindSql("last_outcome", "last_code")} AS kind FROM (SELECT ? AS last_outcome, ? AS last_code)`);
      for (const [outcome, code] of all) {
        const row = stmt.get(outcome, code) as { kind: string | null };
        expect(row.kind, `${outcome} ${code}`).to.equal(resultKind(outcome, code));
      }
    } finally {
      db.close();
    }
  });
});
