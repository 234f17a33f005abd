import { expect } from "chai";
import { splitWhenRefused } from "../../../agent/chain/queryLogs";

describe("agent/chain/queryLogs: one-off log scans on nodes that cap eth_getLogs", () => {
  it("splits refused ranges in halves until the node answers, skipping and repeating no block", async () => {
    const asked: [number, number][] = [];
    const node = async (from: number, to: number) => {
      asked.push([from, to]);
      if (to - from + 1 > 7) throw new Error("query returned more than 10000 results; block range too large");
      return Array.from({ length: to - from + 1 }, (_, i) => from + i);
    };
    expect(await splitWhenRefused(node, 3, 60)).to.deep.equal(Array.from({ length: 58 }, (_, i) => 3 + i));
    expect(asked.filter(([f, t]) => t - f + 1 <= 7).every(([f, t]) => t >= f)).to.equal(true);
  });

  it("passes other errors on at once", async () => {
    let error: unknown;
    try {
      await splitWhenRefused(async () => Promise.reject(new Error("connection refused")), 0, 100);
    } catch (err) {
      error = err;
    }
    expect(String(error)).to.match(/connection refused/);
  });
});
