import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash, type BaseContract } from "ethers";
import { ACME_SIGNER, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import { shouldBehaveLikeUpdatePolicy } from "../../helpers/shouldBehaveLikeUpdatePolicy";

/** One of each policy the project ships, deployed on the catalogue fixture's registry. */
async function kitFixture() {
  const base = await catalogFixture();
  const registry = await base.registry.getAddress();
  const deployed = {
    approval: await ethers.deployContract("ApprovalPolicy", [registry, [base.admin.address], 1]),
    location: await ethers.deployContract("LocationPolicy", [registry]),
    window: await ethers.deployContract("MaintenanceWindowPolicy", [registry, 0, 0, 0x7f]),
    rollout: await ethers.deployContract("StagedRollout", [registry, await base.fleet.getAddress()]),
    pilot: await ethers.deployContract("PilotFleetPolicy", [registry, []]),
    strict: await ethers.deployContract("PolicyMockStrict", [registry, 24 * 3600]),
  };
  const allOf = await ethers.deployContract("AllOfPolicy", [[await deployed.window.getAddress(), await deployed.location.getAddress()]]);
  return { ...base, ...deployed, allOf };
}

describe("contracts/policies: the policy kit (issue 18)", () => {
  const cases: [string, (f: Awaited<ReturnType<typeof kitFixture>>) => { policy: BaseContract; reasons: string[]; composer?: true }][] = [
    ["ApprovalPolicy", (f) => ({ policy: f.approval, reasons: ["NOT_ENOUGH_APPROVALS"] })],
    ["LocationPolicy", (f) => ({ policy: f.location, reasons: ["REGION_DENIED", "REGION_NOT_ALLOWED", "NETWORK_DENIED", "NETWORK_NOT_ALLOWED"] })],
    ["MaintenanceWindowPolicy", (f) => ({ policy: f.window, reasons: ["OUTSIDE_WINDOW"] })],
    [
      "StagedRollout",
      (f) => ({
        policy: f.rollout,
        reasons: ["NO_ROLLOUT", "NOT_IN_COHORT", "WAVE_NOT_STARTED", "PAUSED", "HALTED", "ABORTED", "MALFORMED_EVIDENCE", "NO_SUCH_WAVE", "NO_EVIDENCE"],
      }),
    ],
    ["PilotFleetPolicy (example)", (f) => ({ policy: f.pilot, reasons: ["NOT_IN_PILOT", "RELEASE_HELD"] })],
    ["PolicyMockStrict (a policy that refuses all-zero inputs)", (f) => ({ policy: f.strict, reasons: ["SOAKING"] })],
    ["AllOfPolicy (a composer)", (f) => ({ policy: f.allOf, reasons: [], composer: true })],
  ];
  for (const [name, pick] of cases) {
    describe(name, () => {
      shouldBehaveLikeUpdatePolicy(
        async () => {
          const f = await loadFixture(kitFixture);
          const { policy, reasons, composer } = pick(f);
          return { policy, reasons, registry: composer ? undefined : await f.registry.getAddress() };
        },
        { composer: name.includes("composer") },
      );
    });
  }

  it("APP-II-3: _publishedAt gives a policy the release's publication time, and an unknown release answers instead of reverting (a soak rule)", async () => {
    const f = await loadFixture(kitFixture);
    const { id: releaseId } = await publish(f.registry, f.acmeAuthor, makeRelease(), ACME_SIGNER, f.domain);
    const device = { deviceId: ethers.id("a device"), hardwareClass: 1, network: ZeroHash, region: ZeroHash, installed: [] };
    const soaking = await f.strict.SOAKING();
    expect(await f.strict.check(releaseId, ZeroHash, 0, device, "0x")).to.equal(soaking);
    await time.increase(24 * 3600);
    expect(await f.strict.check(releaseId, ZeroHash, 0, device, "0x")).to.equal(0n);
    expect(await f.strict.check(ethers.id("no such release"), ZeroHash, 0, device, "0x")).to.equal(soaking);
    await expect(f.strict.check(releaseId, ZeroHash, 0, { ...device, deviceId: ZeroHash }, "0x")).to.be.revertedWithCustomError(
      f.strict,
      "PolicyMockStrictNoDevice",
    );
  });
});
