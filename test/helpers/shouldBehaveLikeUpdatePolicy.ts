import { expect } from "chai";
import { id, type BaseContract } from "ethers";
import { IUpdatePolicy__factory } from "../../typechain-types";
import { EVIDENCE_ENVELOPE_MAGIC } from "../../agent/core/policyEvidence";

/** What a policy test hands the shared behaviour: the deployed policy and the registry it was built for. */
export interface UpdatePolicyUnderTest {
  policy: BaseContract;
  /** The registry the policy was built for; undefined for a composer (it has none, and names no reasons). */
  registry?: string;
  /** The policy's reason codes by name, as its public constants name them (ALLOWED excluded). */
  reasons: string[];
}

const ERC165_ID = "0x01ffc9a7";
const UPDATE_POLICY_ID = IUpdatePolicy__factory.createInterface().getFunction("check").selector;
const REASONS_ID = id("reasonName(uint256)").slice(0, 10);

type Callable = Record<string, (...args: unknown[]) => Promise<unknown>>;

/**
 * The behaviour every policy built on the kit (contracts/policies/UpdatePolicyBase.sol) shares
 * (issue 18), for any policy's own tests to run, as OpenZeppelin's shouldBehaveLike… tests are:
 * ERC-165 for IUpdatePolicy (how the tools recognise a policy) and for its reason names, the
 * registry it was built for, the registry's role ids, and a name for each of its reason codes
 * that matches its public constant.
 */
export function shouldBehaveLikeUpdatePolicy(subject: () => Promise<UpdatePolicyUnderTest>, { composer = false } = {}): void {
  describe("behaves like an update policy (the policy kit, issue 18, APP-II-3)", () => {
    it("APP-II-3: declares IUpdatePolicy through ERC-165, and not an interface it lacks", async () => {
      const { policy, registry } = await subject();
      const p = policy as unknown as Callable;
      expect(await p.supportsInterface(ERC165_ID)).to.equal(true);
      expect(await p.supportsInterface(UPDATE_POLICY_ID)).to.equal(true);
      expect(await p.supportsInterface("0xffffffff")).to.equal(false);
      expect(await p.supportsInterface(REASONS_ID)).to.equal(registry !== undefined); // composers name no reasons of their own
      // Kit policies take their own part of an evidence envelope and say so (the envelope's magic as an id); composers pass evidence on.
      expect(await p.supportsInterface(EVIDENCE_ENVELOPE_MAGIC)).to.equal(registry !== undefined);
    });

    if (composer) return; // a composer has no registry of its own and names no reasons: its refusal carries its member's
    it("APP-II-3: names the registry it was built for and the registry's role ids", async () => {
      const { policy, registry } = await subject();
      const p = policy as unknown as Callable;
      expect(await p.registry()).to.equal(registry);
      expect(await p.ADMINISTRATOR_ROLE()).to.equal(id("ADMINISTRATOR_ROLE"));
      expect(await p.TRACKER_ROLE()).to.equal(id("TRACKER_ROLE"));
    });

    it("APP-II-3: names each reason code as its constant does, ALLOWED for 0, nothing for a code it does not define", async () => {
      const { policy, reasons } = await subject();
      const p = policy as unknown as Callable;
      expect(await p.ALLOWED()).to.equal(0n);
      expect(await p.reasonName(0n)).to.equal("ALLOWED");
      const codes = new Set<bigint>();
      for (const name of reasons) {
        const code = (await p[name]()) as bigint;
        expect(code, name).to.not.equal(0n);
        expect(await p.reasonName(code), `reasonName(${code})`).to.equal(name);
        codes.add(code);
      }
      expect(codes.size, "every reason has its own code").to.equal(reasons.length);
      expect(await p.reasonName(2n ** 64n)).to.equal("");
    });
  });
}
