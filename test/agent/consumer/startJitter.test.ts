import { expect } from "chai";
import { DEFAULT_START_JITTER_MS, MAX_START_JITTER_MS, startJitter } from "../../../agent/consumer/deliverySources";
import { expectCode } from "../../helpers/expectCode";

/** Issue 17: a bounded, jittered start, so that a fleet that learns of a release at once does not reach its server at once. */
describe("agent/consumer start jitter (CAP-11.3-b: a fleet at once, issue 17)", () => {
  it("draws the delay uniformly from [0, max]: the lowest and highest draws give 0 and max", async () => {
    expect(await startJitter(40, () => 0)).to.equal(0);
    const started = performance.now();
    expect(await startJitter(40, () => 0.999999)).to.equal(40);
    expect(performance.now() - started).to.be.at.least(35);
  });

  it("stays within the bound over many draws, and spreads them across it", async () => {
    const delays = await Promise.all(Array.from({ length: 200 }, () => startJitter(30)));
    for (const d of delays) expect(d).to.be.within(0, 30);
    expect(new Set(delays.map((d) => Math.min(2, Math.floor(d / 10)))).size, "draws in each third of the window").to.equal(3);
  });

  it("0 disables it: no wait at all", async () => {
    const started = performance.now();
    expect(await startJitter(0, () => 0.9)).to.equal(0);
    expect(performance.now() - started).to.be.below(20);
  });

  it("refuses a negative, endless or over-long bound (DEVICE_CONFIG)", async () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, MAX_START_JITTER_MS + 1]) await expectCode(startJitter(bad), "DEVICE_CONFIG");
  });

  it("defaults to 2 s: a fifth of a 10 s fleet budget", () => {
    expect(DEFAULT_START_JITTER_MS).to.equal(2000);
  });
});
