import { expect } from "chai";
import { backoffDelayMs } from "../../../agent/core/backoff";

describe("agent/core/backoff: exponential backoff with jitter (REQ-10f-ii, issue 15)", function () {
  it("doubles the ceiling per attempt up to maxMs; full jitter spans [0, ceiling], equal jitter [ceiling/2, ceiling]", function () {
    const o = { baseMs: 1000, maxMs: 5000 };
    expect([1, 2, 3, 4, 40].map((a) => backoffDelayMs(a, o, () => 0.999999))).to.deep.equal([999, 1999, 3999, 4999, 4999]);
    expect(backoffDelayMs(3, o, () => 0)).to.equal(0);
    expect(backoffDelayMs(3, { ...o, floor: 0.5 }, () => 0)).to.equal(2000);
    expect(backoffDelayMs(3, { ...o, floor: 0.5 }, () => 0.5)).to.equal(3000);
  });
});
