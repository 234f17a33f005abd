import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, dataSlice, getAddress, keccak256, toUtf8Bytes } from "ethers";
import { ACME_SIGNER, ROLES, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import { itRejectsWithoutChange } from "../../helpers/itRejects";
import type { ApprovalPolicy, UpdatePolicies } from "../../../typechain-types";

const NOT_ENOUGH_APPROVALS = 1n;
/** InstallCheck.Installable */
const INSTALLABLE = 0n;

const DEVICE = {
  deviceId: keccak256(toUtf8Bytes("device on the approval board's watch")),
  hardwareClass: 1,
  network: ethers.encodeBytes32String("lorawan"),
  region: ethers.encodeBytes32String("eu-west"),
  installed: [],
};

/** Addresses of further approvers, who never sign in these tests. */
const EXTRA = Array.from({ length: 16 }, (_, i) => getAddress(dataSlice(keccak256(toUtf8Bytes(`extra approver ${i}`)), 12)));

/** Three approvers a, b, c with M = 2, and two published releases of the bootloader. */
async function approvalFixture() {
  const base = await catalogFixture();
  const { registry, acmeAuthor, domain } = base;
  const signers = await ethers.getSigners();
  const [a, b, c, d] = signers.slice(7, 11);
  const policy = (await ethers.deployContract("ApprovalPolicy", [
    await registry.getAddress(),
    [a.address, b.address, c.address],
    2,
  ])) as unknown as ApprovalPolicy;
  const first = await publish(registry, acmeAuthor, makeRelease(), ACME_SIGNER, domain);
  const second = await publish(registry, acmeAuthor, makeRelease({ version: first.record.version + 1n }), ACME_SIGNER, domain);
  return { ...base, policy, a, b, c, d, first, second };
}

type Fixture = Awaited<ReturnType<typeof approvalFixture>>;

function ask(policy: ApprovalPolicy, releaseId: string): Promise<bigint> {
  return policy.check(releaseId, ethers.ZeroHash, 0, DEVICE, "0x");
}

describe("ApprovalPolicy (M of N approvers, APP-II-3)", function () {
  describe("deployment", function () {
    it("starts with its approvers and M, and says so in events", async function () {
      const { policy, a, b, c, d, admin } = await loadFixture(approvalFixture);
      expect(await policy.threshold()).to.equal(2n);
      expect([...(await policy.approvers())]).to.have.members([a.address, b.address, c.address]);
      expect(await policy.isApprover(a.address)).to.equal(true);
      expect(await policy.isApprover(d.address)).to.equal(false);
      expect(await policy.NOT_ENOUGH_APPROVALS()).to.equal(NOT_ENOUGH_APPROVALS);
      const tx = policy.deploymentTransaction()!;
      await expect(tx).to.emit(policy, "ApproverAdded").withArgs(a.address, admin.address);
      await expect(tx).to.emit(policy, "ApproverAdded").withArgs(c.address, admin.address);
      await expect(tx).to.emit(policy, "ThresholdChanged").withArgs(2, admin.address);
    });

    const deployments: Array<[string, (f: Fixture) => [string[], number], string, (f: Fixture) => unknown[]]> = [
      ["M = 0", (f) => [[f.a.address], 0], "ApprovalPolicyInvalidThreshold", () => [0, 1]],
      ["M above N", (f) => [[f.a.address, f.b.address], 3], "ApprovalPolicyInvalidThreshold", () => [3, 2]],
      ["no approvers", () => [[], 1], "ApprovalPolicyInvalidThreshold", () => [1, 0]],
      ["the zero address", (f) => [[f.a.address, ZeroAddress], 1], "ApprovalPolicyZeroAddress", () => []],
      ["an approver twice", (f) => [[f.a.address, f.b.address, f.a.address], 1], "ApprovalPolicyAlreadyApprover", (f) => [f.a.address]],
      [
        "more than MAX_APPROVERS",
        (f) => [[f.a.address, f.b.address, f.c.address, f.d.address, ...EXTRA.slice(0, 13)], 1],
        "ApprovalPolicyTooManyApprovers",
        () => [16],
      ],
    ];
    for (const [name, params, error, args] of deployments) {
      it(`refuses to deploy with ${name}`, async function () {
        const f = await loadFixture(approvalFixture);
        const [list, m] = params(f);
        const factory = await ethers.getContractFactory("ApprovalPolicy");
        await expect(factory.deploy(await f.registry.getAddress(), list, m))
          .to.be.revertedWithCustomError(factory, error)
          .withArgs(...args(f));
      });
    }
  });

  describe("approvals below and at M", function () {
    it("refuses every device until M approvers approve, then allows", async function () {
      const { policy, a, b, c, first } = await loadFixture(approvalFixture);
      expect(await ask(policy, first.id)).to.equal(NOT_ENOUGH_APPROVALS);
      expect(await policy.approvalCount(first.id)).to.equal(0n);

      await expect(policy.connect(a).approve(first.id)).to.emit(policy, "ReleaseApproved").withArgs(first.id, a.address, 1);
      expect(await policy.approvalCount(first.id)).to.equal(1n);
      expect(await policy.hasApproved(first.id, a.address)).to.equal(true);
      expect(await ask(policy, first.id)).to.equal(NOT_ENOUGH_APPROVALS);

      await expect(policy.connect(c).approve(first.id)).to.emit(policy, "ReleaseApproved").withArgs(first.id, c.address, 2);
      expect(await ask(policy, first.id)).to.equal(0n);

      await policy.connect(b).approve(first.id);
      expect(await policy.approvalCount(first.id)).to.equal(3n);
      expect(await ask(policy, first.id)).to.equal(0n);
    });

    it("counts approvals per release", async function () {
      const { policy, a, b, first, second } = await loadFixture(approvalFixture);
      await policy.connect(a).approve(first.id);
      await policy.connect(b).approve(first.id);
      expect(await ask(policy, first.id)).to.equal(0n);
      expect(await ask(policy, second.id)).to.equal(NOT_ENOUGH_APPROVALS);
      expect(await policy.approvalCount(second.id)).to.equal(0n);
      expect(await policy.hasApproved(second.id, a.address)).to.equal(false);
    });

    it("an approver withdraws an approval, and may give it again", async function () {
      const { policy, a, b, first } = await loadFixture(approvalFixture);
      await policy.connect(a).approve(first.id);
      await policy.connect(b).approve(first.id);
      await expect(policy.connect(a).revokeApproval(first.id)).to.emit(policy, "ApprovalRevoked").withArgs(first.id, a.address, 1);
      expect(await policy.hasApproved(first.id, a.address)).to.equal(false);
      expect(await ask(policy, first.id)).to.equal(NOT_ENOUGH_APPROVALS);
      await policy.connect(a).approve(first.id);
      expect(await ask(policy, first.id)).to.equal(0n);
    });
  });

  describe("changing the approver set and M", function () {
    it("counts only current approvers: removing one withdraws their approvals", async function () {
      const { policy, admin, a, b, first, second } = await loadFixture(approvalFixture);
      await policy.connect(a).approve(first.id);
      await policy.connect(b).approve(first.id);
      await policy.connect(a).approve(second.id);
      await expect(policy.connect(admin).removeApprover(a.address)).to.emit(policy, "ApproverRemoved").withArgs(a.address, admin.address);
      expect(await policy.isApprover(a.address)).to.equal(false);
      expect([...(await policy.approvers())]).to.not.include(a.address);
      expect(await policy.approvalCount(first.id)).to.equal(1n);
      expect(await policy.hasApproved(first.id, a.address)).to.equal(false);
      expect(await ask(policy, first.id)).to.equal(NOT_ENOUGH_APPROVALS);
      expect(await policy.approvalCount(second.id)).to.equal(0n);
    });

    it("an approver removed and added again starts afresh", async function () {
      const { policy, admin, a, b, first } = await loadFixture(approvalFixture);
      await policy.connect(a).approve(first.id);
      await policy.connect(b).approve(first.id);
      await policy.connect(admin).removeApprover(a.address);
      await expect(policy.connect(admin).addApprover(a.address)).to.emit(policy, "ApproverAdded").withArgs(a.address, admin.address);
      expect(await policy.hasApproved(first.id, a.address)).to.equal(false);
      expect(await ask(policy, first.id)).to.equal(NOT_ENOUGH_APPROVALS);
      await policy.connect(a).approve(first.id);
      expect(await ask(policy, first.id)).to.equal(0n);
    });

    it("a new approver's approval counts from when they give it", async function () {
      const { policy, admin, a, d, first } = await loadFixture(approvalFixture);
      await policy.connect(a).approve(first.id);
      await policy.connect(admin).addApprover(d.address);
      expect(await policy.approvalCount(first.id)).to.equal(1n);
      await policy.connect(d).approve(first.id);
      expect(await ask(policy, first.id)).to.equal(0n);
    });

    it("a new M applies at once to releases already approved", async function () {
      const { policy, admin, a, b, c, first } = await loadFixture(approvalFixture);
      await policy.connect(a).approve(first.id);
      await policy.connect(b).approve(first.id);
      await expect(policy.connect(admin).setThreshold(3)).to.emit(policy, "ThresholdChanged").withArgs(3, admin.address);
      expect(await ask(policy, first.id)).to.equal(NOT_ENOUGH_APPROVALS);
      await policy.connect(c).approve(first.id);
      expect(await ask(policy, first.id)).to.equal(0n);
      await policy.connect(admin).setThreshold(1);
      await policy.connect(b).revokeApproval(first.id);
      await policy.connect(c).revokeApproval(first.id);
      expect(await ask(policy, first.id)).to.equal(0n);
    });

    it("takes up to MAX_APPROVERS approvers", async function () {
      const { policy, admin, d } = await loadFixture(approvalFixture);
      expect(await policy.MAX_APPROVERS()).to.equal(16n);
      for (const account of [d.address, ...EXTRA.slice(0, 12)]) await policy.connect(admin).addApprover(account);
      expect(await policy.approvers()).to.have.lengthOf(16);
    });
  });

  describe("through UpdatePolicies with a published release", function () {
    it("the registry's check answers NOT_ENOUGH_APPROVALS until M approve", async function () {
      const { registry, policy, admin, a, b, first } = await loadFixture(approvalFixture);
      const policies = (await ethers.deployContract("UpdatePolicies", [await registry.getAddress()])) as unknown as UpdatePolicies;
      await policies.connect(admin).attachPolicy(first.record.component, await policy.getAddress());
      const before = await policies.checkUpdate(first.record, DEVICE, "0x");
      expect([before.verdict, before.policy, before.reason]).to.deep.equal([INSTALLABLE, await policy.getAddress(), NOT_ENOUGH_APPROVALS]);
      await policy.connect(a).approve(first.id);
      await policy.connect(b).approve(first.id);
      const after = await policies.checkUpdate(first.record, DEVICE, "0x");
      expect([after.verdict, after.reason]).to.deep.equal([INSTALLABLE, 0n]);
    });
  });

  describe("rejections", function () {
    const snapshot = async (f: Fixture) => ({
      threshold: await f.policy.threshold(),
      approvers: [...(await f.policy.approvers())].sort(),
      first: await Promise.all([f.a, f.b, f.c, f.d].map((s) => f.policy.hasApproved(f.first.id, s.address))),
      count: await f.policy.approvalCount(f.first.id),
    });
    const approvedByA = async (f: Fixture) => {
      await f.policy.connect(f.a).approve(f.first.id);
    };
    itRejectsWithoutChange<Fixture>(
      [
        {
          name: "an approval by a non-approver",
          run: async (f) => ({ call: () => f.policy.connect(f.d).approve(f.first.id), error: "ApprovalPolicyNotAnApprover", args: [f.d.address] }),
        },
        {
          name: "an approval by an administrator who is not an approver",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).approve(f.first.id),
            error: "ApprovalPolicyNotAnApprover",
            args: [f.admin.address],
          }),
        },
        {
          name: "a second approval by the same approver",
          run: async (f) => {
            await approvedByA(f);
            return { call: () => f.policy.connect(f.a).approve(f.first.id), error: "ApprovalPolicyAlreadyApproved", args: [f.first.id, f.a.address] };
          },
        },
        {
          name: "an approval by a removed approver",
          run: async (f) => {
            await approvedByA(f);
            await f.policy.connect(f.admin).removeApprover(f.b.address);
            return { call: () => f.policy.connect(f.b).approve(f.first.id), error: "ApprovalPolicyNotAnApprover", args: [f.b.address] };
          },
        },
        {
          name: "an approval of a release the registry does not know",
          run: async (f) => {
            const unknown = keccak256(toUtf8Bytes("never published"));
            return { call: () => f.policy.connect(f.a).approve(unknown), error: "ApprovalPolicyUnknownRelease", args: [unknown] };
          },
        },
        {
          name: "withdrawing an approval never given",
          run: async (f) => ({
            call: () => f.policy.connect(f.b).revokeApproval(f.first.id),
            error: "ApprovalPolicyNotApproved",
            args: [f.first.id, f.b.address],
          }),
        },
        {
          name: "withdrawing an approval by a non-approver",
          run: async (f) => {
            await approvedByA(f);
            return { call: () => f.policy.connect(f.d).revokeApproval(f.first.id), error: "ApprovalPolicyNotAnApprover", args: [f.d.address] };
          },
        },
        {
          name: "an approver added by a non-administrator",
          run: async (f) => ({
            call: () => f.policy.connect(f.a).addApprover(f.d.address),
            error: "PolicyUnauthorized",
            args: [f.a.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "an approver removed by a non-administrator",
          run: async (f) => ({
            call: () => f.policy.connect(f.outsider).removeApprover(f.a.address),
            error: "PolicyUnauthorized",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "M set by a non-administrator",
          run: async (f) => ({
            call: () => f.policy.connect(f.a).setThreshold(1),
            error: "PolicyUnauthorized",
            args: [f.a.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "adding the zero address",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).addApprover(ZeroAddress), error: "ApprovalPolicyZeroAddress", args: [] }),
        },
        {
          name: "adding an approver already in the set",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).addApprover(f.b.address), error: "ApprovalPolicyAlreadyApprover", args: [f.b.address] }),
        },
        {
          name: "adding a seventeenth approver",
          run: async (f) => {
            for (const account of [f.d.address, ...EXTRA.slice(0, 12)]) await f.policy.connect(f.admin).addApprover(account);
            const late = EXTRA[12];
            return { call: () => f.policy.connect(f.admin).addApprover(late), error: "ApprovalPolicyTooManyApprovers", args: [16] };
          },
        },
        {
          name: "removing an account that is not an approver",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).removeApprover(f.d.address), error: "ApprovalPolicyNotAnApprover", args: [f.d.address] }),
        },
        {
          name: "removing an approver when M would become unreachable",
          run: async (f) => {
            await approvedByA(f);
            await f.policy.connect(f.admin).removeApprover(f.c.address);
            return { call: () => f.policy.connect(f.admin).removeApprover(f.b.address), error: "ApprovalPolicyInvalidThreshold", args: [2, 1] };
          },
        },
        {
          name: "M = 0",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).setThreshold(0), error: "ApprovalPolicyInvalidThreshold", args: [0, 3] }),
        },
        {
          name: "M above the number of approvers",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).setThreshold(4), error: "ApprovalPolicyInvalidThreshold", args: [4, 3] }),
        },
      ],
      { fixture: approvalFixture, contract: (f) => f.policy, snapshot },
    );
  });
});
