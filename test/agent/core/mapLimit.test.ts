import { expect } from "chai";
import { mapLimit } from "../../../agent/core/mapLimit";

describe("agent/core/mapLimit: bounded concurrent map", () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it("answers in the items' order with at most `limit` calls in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (ms, i) => {
      most = Math.max(most, ++inFlight);
      await tick(ms * 3);
      inFlight--;
      return `${i}:${ms}`;
    });
    expect(out).to.deep.equal(["0:5", "1:1", "2:4", "3:2", "4:3", "5:0", "6:6"]);
    expect(most).to.equal(3);
  });

  it("handles no items and a limit above the count", async () => {
    expect(await mapLimit([], 4, async () => 1)).to.deep.equal([]);
    expect(await mapLimit([1, 2], 10, async (x) => x * 2)).to.deep.equal([2, 4]);
  });

  it("rejects with the first failure and starts no new call after it", async () => {
    const started: number[] = [];
    const run = mapLimit([0, 1, 2, 3, 4, 5], 2, async (x) => {
      started.push(x);
      await tick(5);
      if (x === 1) throw new Error("ledger down");
      return x;
    });
    await expect(run).to.be.rejectedWith("ledger down");
    await tick(30);
    expect(started).to.deep.equal([0, 1, 2]);
  });
});
