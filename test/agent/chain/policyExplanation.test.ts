import { expect } from "chai";
import { AbiCoder, Interface } from "ethers";
import { describeRevert } from "../../../agent/chain/policyExplanation";
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
