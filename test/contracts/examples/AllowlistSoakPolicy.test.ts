import { expect } from "chai";
import { ethers, ignition } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { AbiCoder, ZeroHash, keccak256, toUtf8Bytes, type BaseContract } from "ethers";
import { encodeVersion } from "../../../agent/core/version";
import { buildCohort, encodeListedEvidence, encodeRolloutEvidence } from "../../../agent/crypto/cohortTree";
import { EVIDENCE_ENVELOPE_MAGIC, joinEvidence } from "../../../agent/core/policyEvidence";
import { ACME_SIGNER, COMPONENTS, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import { itRejectsWithoutChange } from "../../helpers/itRejects";
import { shouldBehaveLikeUpdatePolicy } from "../../helpers/shouldBehaveLikeUpdatePolicy";
import type { AllOfPolicy, AllowlistSoakPolicy, StagedRollout } from "../../../typechain-types";
import AllowlistSoakPolicyModule from "../../../ignition/modules/AllowlistSoakPolicy";

/** The policy's reason codes, as docs/writing-a-policy.md lists them. */
const REASON = { ALLOWED: 0n, UNKNOWN_RELEASE: 1n, NO_ALLOWLIST: 2n, NO_EVIDENCE: 3n, MALFORMED_EVIDENCE: 4n, NOT_ON_ALLOWLIST: 5n, SOAKING: 6n };
const DAY = 24 * 3600;
const deviceId = (name: string) => keccak256(toUtf8Bytes(name));
const LISTED = [deviceId("rev-a-0001"), deviceId("rev-a-0002"), deviceId("lab-bench-7")];
const STRANGER = deviceId("rev-a-0420");
const device = (id: string) => ({ deviceId: id, hardwareClass: 1, network: ZeroHash, region: ZeroHash, installed: [] });

/** A release published now, an AllowlistSoakPolicy soaking a day with LISTED as its allowlist. */
async function allowlistFixture() {
  const base = await catalogFixture();
  const release = await publish(base.registry, base.acmeAuthor, makeRelease({ version: encodeVersion("1.0.0") }), ACME_SIGNER, base.domain);
  const policy = (await ethers.deployContract("AllowlistSoakPolicy", [await base.registry.getAddress(), DAY])) as unknown as AllowlistSoakPolicy;
  const list = buildCohort(LISTED);
  await policy.connect(base.admin).setAllowlist(list.root);
  return { ...base, policy, release, list, proof: (i: number) => encodeListedEvidence(list.proofs[i]) };
}

describe("AllowlistSoakPolicy: the second worked example of docs/writing-a-policy.md, built on the kit (APP-II-3, issue 18)", function () {
  describe("the kit's behaviour", () => {
    shouldBehaveLikeUpdatePolicy(async () => {
      const f = await loadFixture(allowlistFixture);
      return {
        policy: f.policy as unknown as BaseContract,
        reasons: ["UNKNOWN_RELEASE", "NO_ALLOWLIST", "NO_EVIDENCE", "MALFORMED_EVIDENCE", "NOT_ON_ALLOWLIST", "SOAKING"],
        registry: await f.registry.getAddress(),
      };
    });
  });

  it("APP-II-3: a listed device is refused while the release soaks and allowed after; the evidence is the proof policy allowlist writes", async () => {
    const { policy, release, proof } = await loadFixture(allowlistFixture);
    const ask = (id: string, evidence: string) => policy.check(release.id, COMPONENTS.bootloader, encodeVersion("1.0.0"), device(id), evidence);
    expect(await ask(LISTED[1], proof(1))).to.equal(REASON.SOAKING);
    await time.increase(DAY - 5);
    expect(await ask(LISTED[1], proof(1))).to.equal(REASON.SOAKING);
    await time.increase(5);
    for (let i = 0; i < LISTED.length; i++) expect(await ask(LISTED[i], proof(i)), `device ${i}`).to.equal(REASON.ALLOWED);
    // After the soak the list still rules.
    expect(await ask(STRANGER, proof(0))).to.equal(REASON.NOT_ON_ALLOWLIST);
    expect(await ask(LISTED[0], proof(1))).to.equal(REASON.NOT_ON_ALLOWLIST);
    expect(await ask(LISTED[0], "0x")).to.equal(REASON.NO_EVIDENCE);
  });

  it("APP-II-3: every reason, first that applies, never a revert (malformed, oversized and truncated evidence)", async () => {
    const { policy, registry, release, proof } = await loadFixture(allowlistFixture);
    const coder = AbiCoder.defaultAbiCoder();
    const ask = (releaseId: string, evidence: string, p = policy) => p.check(releaseId, ZeroHash, 0, device(LISTED[0]), evidence);
    expect(await ask(ethers.id("no such release"), proof(0))).to.equal(REASON.UNKNOWN_RELEASE);
    const unset = (await ethers.deployContract("AllowlistSoakPolicy", [await registry.getAddress(), 0])) as unknown as AllowlistSoakPolicy;
    expect(await ask(release.id, proof(0), unset)).to.equal(REASON.NO_ALLOWLIST);
    const malformed = [
      "0x01",
      proof(0).slice(0, -2), // one byte short
      proof(0) + "00", // one byte long
      coder.encode(["uint256", "bytes32[]"], [0, buildCohort(LISTED).proofs[0]]), // a rollout's evidence
      coder.encode(["bytes32[]"], [Array.from({ length: 33 }, (_, i) => ethers.id(String(i)))]), // over MAX_PROOF_LENGTH
      "0x" + 64n.toString(16).padStart(64, "0") + "00".repeat(32), // offset not 0x20
    ];
    for (const m of malformed) expect(await ask(release.id, m), m.slice(0, 80)).to.equal(REASON.MALFORMED_EVIDENCE);
    // The soak is the last rule: an unlisted device learns it at once.
    expect(await ask(release.id, proof(1))).to.equal(REASON.NOT_ON_ALLOWLIST);
    expect(await unset.SOAK_SECONDS()).to.equal(0n);
  });

  describe("administrators", () => {
    it("APP-II-3: setAllowlist replaces the root and says so; devices keep their proofs only if the new tree holds them", async () => {
      const { policy, admin, release, list, proof } = await loadFixture(allowlistFixture);
      const next = buildCohort([LISTED[0], STRANGER]);
      await expect(policy.connect(admin).setAllowlist(next.root)).to.emit(policy, "AllowlistSet").withArgs(list.root, next.root, admin.address);
      expect(await policy.allowlistRoot()).to.equal(next.root);
      await time.increase(DAY);
      expect(await policy.check(release.id, ZeroHash, 0, device(LISTED[0]), proof(0))).to.equal(REASON.NOT_ON_ALLOWLIST); // an old proof
      expect(await policy.check(release.id, ZeroHash, 0, device(STRANGER), encodeListedEvidence(next.proofs[1]))).to.equal(REASON.ALLOWED);
    });

    itRejectsWithoutChange(
      [
        {
          name: "a non-administrator's setAllowlist",
          run: async (f) => ({ call: () => f.policy.connect(f.outsider).setAllowlist(ethers.id("mine")), error: "PolicyUnauthorized" }),
        },
        { name: "the zero root", run: async (f) => ({ call: () => f.policy.connect(f.admin).setAllowlist(ZeroHash), error: "AllowlistSoakPolicyZeroRoot" }) },
      ],
      { fixture: allowlistFixture, contract: (f) => f.policy, snapshot: (f) => f.policy.allowlistRoot() },
    );

    it("refuses a soak time over a year at deployment", async () => {
      const { registry } = await loadFixture(allowlistFixture);
      const factory = await ethers.getContractFactory("AllowlistSoakPolicy");
      await expect(factory.deploy(await registry.getAddress(), 365 * DAY + 1))
        .to.be.revertedWithCustomError(factory, "AllowlistSoakPolicySoakTooLong")
        .withArgs(365 * DAY + 1, 365 * DAY);
    });
  });

  describe("evidence for several policies (the envelope, contracts/policies/PolicyEvidence.sol)", () => {
    /** The allowlist composed with a StagedRollout whose one wave holds LISTED[0]: each needs its own evidence. */
    async function composedFixture() {
      const f = await allowlistFixture();
      const rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
      const cohort = buildCohort([LISTED[0]]);
      await rollout.connect(f.admin).createRollout(f.release.id, [{ cohortRoot: cohort.root, startsAt: await time.latest() }], 3);
      const allOf = (await ethers.deployContract("AllOfPolicy", [[await f.policy.getAddress(), await rollout.getAddress()]])) as unknown as AllOfPolicy;
      await time.increase(DAY);
      const parts = new Map([
        [await f.policy.getAddress(), f.proof(0)],
        [await rollout.getAddress(), encodeRolloutEvidence(0, cohort.proofs[0])],
      ]);
      return { ...f, rollout, allOf, parts };
    }
    const ask = (p: AllOfPolicy | AllowlistSoakPolicy | StagedRollout, releaseId: string, evidence: string) =>
      p.check(releaseId, ZeroHash, 0, device(LISTED[0]), evidence);

    it("APP-II-3 issue 18: each policy of a composition reads its own part of the envelope the tools write; the magic is the contract's", async () => {
      const { allOf, policy, rollout, release, parts } = await loadFixture(composedFixture);
      // The tools' magic is the one the kit declares (ERC-165) and reads.
      expect(await policy.supportsInterface(EVIDENCE_ENVELOPE_MAGIC)).to.equal(true);
      const envelope = joinEvidence(parts);
      expect(await ask(allOf, release.id, envelope)).to.equal(0n);
      expect(await ask(policy, release.id, envelope)).to.equal(REASON.ALLOWED); // a leaf asked directly finds its part too
      expect(await ask(rollout, release.id, envelope)).to.equal(0n);
      // The same bytes given whole to both: each refuses what is not its own format.
      expect(await ask(allOf, release.id, [...parts.values()][0])).to.equal(await allOf.encodeRefusal(1, await rollout.MALFORMED_EVIDENCE()));
      // An envelope without the allowlist's part: NO_EVIDENCE from it, the rollout is not asked.
      const rolloutOnly = joinEvidence(new Map([[await rollout.getAddress(), parts.get(await rollout.getAddress())!]]));
      expect(await ask(allOf, release.id, rolloutOnly)).to.equal(await allOf.encodeRefusal(0, REASON.NO_EVIDENCE));
    });

    it("APP-II-3 issue 18: an envelope whose parts overrun or stop short of its end is MALFORMED_EVIDENCE to every kit policy, never a revert", async () => {
      const { allOf, policy, rollout, release, parts } = await loadFixture(composedFixture);
      const envelope = joinEvidence(parts);
      const broken = [
        envelope.slice(0, -2), // the last part one byte short
        envelope + "00", // a stray byte after the last part
        EVIDENCE_ENVELOPE_MAGIC + "00".repeat(21), // a part header cut short
        EVIDENCE_ENVELOPE_MAGIC + (await policy.getAddress()).slice(2).toLowerCase() + "ffff", // a part longer than the envelope
      ];
      for (const b of broken) {
        expect(await ask(policy, release.id, b), b.slice(0, 60)).to.equal(REASON.MALFORMED_EVIDENCE);
        expect(await ask(rollout, release.id, b), b.slice(0, 60)).to.equal(await rollout.MALFORMED_EVIDENCE());
        expect(await ask(allOf, release.id, b)).to.equal(await allOf.encodeRefusal(0, REASON.MALFORMED_EVIDENCE));
      }
      // An empty envelope is well formed and holds nobody's part; so is an empty part.
      expect(await ask(policy, release.id, EVIDENCE_ENVELOPE_MAGIC)).to.equal(REASON.NO_EVIDENCE);
      const me = (await policy.getAddress()).slice(2).toLowerCase();
      expect(await ask(policy, release.id, EVIDENCE_ENVELOPE_MAGIC + me + "0000")).to.equal(REASON.NO_EVIDENCE);
      // A policy named twice: the first part is its own (as agent/core/policyEvidence reads it), the second ignored.
      const proof = parts.get(await policy.getAddress())!;
      const part = (hex: string) => me + ((hex.length - 2) / 2).toString(16).padStart(4, "0") + hex.slice(2);
      expect(await ask(policy, release.id, EVIDENCE_ENVELOPE_MAGIC + part(proof) + part("0x01"))).to.equal(REASON.ALLOWED);
      expect(await ask(policy, release.id, EVIDENCE_ENVELOPE_MAGIC + part("0x01") + part(proof))).to.equal(REASON.MALFORMED_EVIDENCE);
      // Plain evidence behind another 4-byte prefix is not an envelope: read whole, and malformed as a proof.
      expect(await ask(policy, release.id, "0xdeadbeef" + proof.slice(2))).to.equal(REASON.MALFORMED_EVIDENCE);
    });
  });

  it("deploys with its Ignition module, soaking a day unless told otherwise", async () => {
    const { registry } = await loadFixture(allowlistFixture);
    const deployed = await ignition.deploy(AllowlistSoakPolicyModule, { parameters: { AllowlistSoakPolicy: { registry: await registry.getAddress() } } });
    const p = deployed.allowlistSoakPolicy as unknown as AllowlistSoakPolicy;
    expect(await p.SOAK_SECONDS()).to.equal(BigInt(DAY));
    expect(await p.registry()).to.equal(await registry.getAddress());
    expect(await p.allowlistRoot()).to.equal(ZeroHash);
  });
});
