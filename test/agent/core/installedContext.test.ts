import { expect } from "chai";
import { MAX_EVIDENCE_BYTES, isEvidence } from "../../../agent/core/installedContext";

describe("agent/core/installedContext: evidence as a device or module may send it", () => {
  it("APP-II-3 issue 18: takes 0x-prefixed bytes up to MAX_EVIDENCE_BYTES; refuses an odd number of digits, no prefix, too many bytes or a non-string", () => {
    for (const good of ["0x", "0x01", "0xABcd", "0x" + "ff".repeat(MAX_EVIDENCE_BYTES)]) expect(isEvidence(good), good.slice(0, 12)).to.equal(true);
    for (const bad of ["0x1", "0x123", "01", "0xzz", "0x" + "ff".repeat(MAX_EVIDENCE_BYTES + 1), 42, null, undefined])
      expect(isEvidence(bad), String(bad).slice(0, 12)).to.equal(false);
  });
});
