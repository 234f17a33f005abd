import { expect } from "chai";
import { ConcurrencyLimit } from "../../../agent/core/concurrencyLimit";

describe("agent/core/concurrencyLimit (issue 17)", () => {
  const tick = () => new Promise((r) => setImmediate(r));

  it("runs at most `limit` tasks at once, the rest in the order they asked, and frees a place however a task ends", async () => {
    const limit = new ConcurrencyLimit(2);
    const started: number[] = [];
    const release = new Map<number, (fail: boolean) => void>();
    const task = (i: number) =>
      limit.run(
        () =>
          new Promise<number>((resolve, reject) => {
            started.push(i);
            release.set(i, (fail) => (fail ? reject(new Error(`task ${i}`)) : resolve(i)));
          }),
      );
    const results = [0, 1, 2, 3, 4].map((i) => task(i).catch((e: Error) => e.message));
    await tick();
    expect(started).to.deep.equal([0, 1]);
    expect(limit.load).to.deep.equal({ running: 2, waiting: 3 });
    release.get(1)!(true); // a failure frees its place too
    await tick();
    expect(started).to.deep.equal([0, 1, 2]);
    release.get(0)!(false);
    release.get(2)!(false);
    await tick();
    expect(started).to.deep.equal([0, 1, 2, 3, 4]);
    release.get(3)!(false);
    release.get(4)!(false);
    expect(await Promise.all(results)).to.deep.equal([0, "task 1", 2, 3, 4]);
    expect(limit.load).to.deep.equal({ running: 0, waiting: 0 });
  });

  it("refuses a limit that is not a whole number of at least 1", () => {
    for (const bad of [0, -1, 1.5, NaN]) expect(() => new ConcurrencyLimit(bad)).to.throw(RangeError, /whole number of at least 1/);
  });
});
