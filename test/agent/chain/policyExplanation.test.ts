import { expect } from "chai";
import { ethers } from "hardhat";
import { AbiCoder, Interface, Wallet } from "ethers";
import { RefusalNames, describeRevert } from "../../../agent/chain/policyExplanation";
import { AllOfPolicy__factory } from "../../../agent/chain/contracts";

describe("agent/chain/policyExplanation: a failed policy's revert, named (issue 18)", () => {
  it("APP-II-3 issue 18: names the shipped policies' errors and Solidity's own with their arguments; unknown or cut data is null", () => {
    const composer = AllOfPolicy__factory.createInterface();
    expect(describeRevert(composer.encodeErrorResult("ComposedPolicyTooManyMembers", [9, 8]))).to.equal("ComposedPolicyTooManyMembers(9, 8)");
    const builtin = new Interface(["error Error(string)", "error Panic(uint256)"]);
    expect(describeRevert(builtin.encodeErrorResult("Error", ["not yet"]))).to.equal('Error("not yet")');
    expect(describeRevert(builtin.encodeErrorResult("Panic", [0x11]))).to.equal("Panic(17)");
    expect(
      describeRevert(
        "0x5f618bac" +
          AbiCoder.defaultAbiCoder()
            .encode(["bytes32"], ["0x" + "00".repeat(32)])
            .slice(2),
      ),
    ).to.equal(null); // a mock's own error
    expect(describeRevert("0x")).to.equal(null);
    expect(describeRevert("0x12")).to.equal(null);
  });
});

describe("agent/chain/policyExplanation: RefusalNames, the names of reported refusals (issue 18)", () => {
  /** The in-process chain's provider, counting the eth_calls made through it. */
  function counting() {
    let calls = 0;
    const provider = new Proxy(ethers.provider, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop === "call") return (...args: unknown[]) => (calls++, (value as (...a: unknown[]) => unknown).apply(target, args));
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    return { provider, calls: () => calls };
  }

  it("APP-II-3 issue 18: names a kit policy's reason once, then from its cache; shares a question while it is asked", async () => {
    const registry = Wallet.createRandom().address;
    const policy = await ethers.deployContract("AllowlistSoakPolicy", [registry, 0]);
    const address = await policy.getAddress();
    const c = counting();
    const names = new RefusalNames(c.provider);
    const [a, b] = await Promise.all([names.of(address, "6"), names.of(address, "6")]);
    expect(a).to.deep.equal({ policy: address, reason: "6", path: [], decidedBy: { policy: address, reason: "6", name: "SOAKING" } });
    expect(b).to.equal(a);
    const asked = c.calls();
    expect(await names.of(address, "6")).to.deep.equal(a);
    expect(c.calls(), "answered from the cache").to.equal(asked);
  });

  it("a device's made-up reason gives null; an address with no code, no name; an unanswered ledger, null for a minute, then asked again", async () => {
    const c = counting();
    const names = new RefusalNames(c.provider);
    expect(await names.of(Wallet.createRandom().address, "not a number")).to.equal(null);
    const noCode = Wallet.createRandom().address;
    expect(await names.of(noCode, "1")).to.deep.equal({ policy: noCode, reason: "1", path: [], decidedBy: { policy: noCode, reason: "1", name: null } });

    let calls = 0;
    const down = new Proxy(ethers.provider, {
      get(target, prop) {
        if (prop === "call") return () => (calls++, Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8545"), { code: "ECONNREFUSED" })));
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    let now = 1_000;
    const offline = new RefusalNames(down, { failureMs: 60_000, now: () => now });
    const policy = Wallet.createRandom().address;
    expect(await offline.of(policy, "1")).to.equal(null);
    const first = calls;
    expect(first).to.be.greaterThan(0);
    expect(await offline.of(policy, "1")).to.equal(null);
    expect(calls, "remembered: not asked again within the minute").to.equal(first);
    now += 60_001;
    await offline.of(policy, "1");
    expect(calls, "asked again after it").to.be.greaterThan(first);
  });
});
