import { expect } from "chai";
import { Wallet } from "ethers";
import { policyChain, type PolicyChain } from "./cliHarness";
import { ApprovalPolicy__factory } from "../../../typechain-types";

describe("ota-ledger release approve / approvals (ApprovalPolicy, APP-II-3)", function () {
  this.timeout(120_000);
  let c: PolicyChain;
  let releaseId: string;
  let approval: string;
  let asOutsider: Record<string, string>;

  before(async () => {
    c = await policyChain();
    releaseId = await c.publish("1.0.0");
    const deployed = await c.run([
      "policy",
      "deploy",
      "approval",
      "--approver",
      c.admin.address,
      "--approver",
      c.outsider.address,
      "--threshold",
      "2",
      "--json",
    ]);
    approval = deployed.json().policy.address;
    const rollout = (await c.run(["policy", "deploy", "staged-rollout", "--json"])).json().policy.address;
    // The approval policy inside a composer attached to the component: the commands find it there.
    const all = (await c.run(["policy", "deploy", "all-of", "--member", rollout, "--member", approval, "--json"])).json().policy.address;
    expect((await c.run(["policy", "attach", all, "--component", "acme.bootloader"])).code).to.equal(0);
    asOutsider = { OTA_PRIVATE_KEY: c.outsider.privateKey };
  });
  after(async () => {
    await c?.stop();
  });

  const refuses = (...args: Parameters<PolicyChain["refuses"]>) => c.refuses(...args);

  it("APP-II-3: approvers approve a release until M of N have; approvals lists who", async () => {
    const policy = ApprovalPolicy__factory.connect(approval, c.provider);
    const first = await c.run(["release", "approve", releaseId, "--json"]);
    expect(first.code, first.stdout + first.stderr).to.equal(0);
    expect(first.json()).to.deep.include({ releaseId, policy: approval, approver: c.admin.address, approved: true, approvals: 1, threshold: 2 });
    expect(first.json().tx.gasUsed).to.be.above(0);
    expect(await policy.hasApproved(releaseId, c.admin.address)).to.equal(true);

    const pending = await c.run(["release", "approvals", releaseId, "--json"]);
    expect(pending.json()).to.deep.include({ approvals: 1, threshold: 2, approved: false });

    expect((await c.run(["release", "approve", releaseId], asOutsider)).code).to.equal(0);
    expect(await policy.approvalCount(releaseId)).to.equal(2n);
    const done = await c.run(["release", "approvals", releaseId, "--json"]);
    expect(done.json()).to.deep.include({ releaseId, policy: approval, approvals: 2, threshold: 2, approved: true });
    expect(done.json().approvers).to.have.deep.members([
      { approver: c.admin.address, approved: true },
      { approver: c.outsider.address, approved: true },
    ]);
    const human = await c.run(["release", "approvals", releaseId]);
    expect(human.stdout).to.include(`release ${releaseId}: 2 of 2 approvals needed (approved)`);
    expect(human.stdout).to.include(`  + ${c.outsider.address}`);
  });

  it("withdraws an approval with --withdraw", async () => {
    const r = await c.run(["release", "approve", releaseId, "--withdraw", "--json"], asOutsider);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.json()).to.deep.include({ approver: c.outsider.address, approved: false, approvals: 1 });
    expect(await ApprovalPolicy__factory.connect(approval, c.provider).hasApproved(releaseId, c.outsider.address)).to.equal(false);
  });

  it("refuses, before sending, an approval given twice, a withdrawal of none, a non-approver and an unknown release", async () => {
    await refuses(["release", "approve", releaseId], 1, "ALREADY_APPROVED", new RegExp(`${c.admin.address} has already approved release ${releaseId}`));
    await refuses(["release", "approve", releaseId, "--withdraw"], 1, "NOT_APPROVED", /has not approved .*: there is no approval to withdraw/, asOutsider);
    const stranger = Wallet.createRandom();
    await refuses(
      ["release", "approve", releaseId],
      1,
      "NOT_AN_APPROVER",
      new RegExp(`${stranger.address} is not an approver of the approval policy ${approval}`),
      { OTA_PRIVATE_KEY: stranger.privateKey },
    );
    await refuses(["release", "approve", "0x" + "cd".repeat(32)], 2, "UNKNOWN_RELEASE", /no release 0xcdcd.* is published/);
    await refuses(["release", "approve", "latest"], 2, "INVALID_INPUT", /release id: "latest" is not an id/);
  });

  it("takes --policy, and refuses a policy of the wrong kind or a release whose policy has no approval policy", async () => {
    const r = await c.run(["release", "approvals", releaseId, "--policy", approval, "--json"]);
    expect(r.json()).to.deep.include({ policy: approval, approvals: 1 });
    const rollout = (await c.run(["policy", "deploy", "staged-rollout", "--json"])).json().policy.address;
    await refuses(["release", "approve", releaseId, "--policy", rollout], 2, "POLICY_WRONG_KIND", /is a staged rollout, not an approval policy/);
    expect((await c.run(["policy", "attach", rollout, "--release", releaseId])).code).to.equal(0);
    await refuses(["release", "approve", releaseId], 1, "NO_SUCH_POLICY", /does not contain an approval policy/);
    await refuses(["release", "approvals", releaseId], 1, "NO_SUCH_POLICY", /does not contain an approval policy/);
  });
});
