import { expect } from "chai";
import { ethers, ignition } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { encodeVersion } from "../../../agent/core/version";
import { ACME_SIGNER, COMPONENTS, ROLES, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import { itRejectsWithoutChange } from "../../helpers/itRejects";
import type { AllOfPolicy, MaintenanceWindowPolicy, PilotFleetPolicy, UpdatePolicies } from "../../../typechain-types";
import PilotFleetPolicyModule from "../../../ignition/modules/PilotFleetPolicy";
import PilotFleetInWindowModule from "../../../ignition/modules/PilotFleetInWindow";

/** The policy's reason codes, as docs/writing-a-policy.md lists them. */
const REASON = { ALLOWED: 0n, NOT_IN_PILOT: 1n, RELEASE_HELD: 2n };
/** PilotFleetPolicy.Stage */
enum Stage {
  Pilot,
  Open,
  Held,
}
/** InstallCheck.Installable and InstallCheck.HardwareNotSupported */
const INSTALLABLE = 0n;
const HARDWARE_NOT_SUPPORTED = 5n;

/** A device id as the FleetRegistry holds it: keccak256 of the label `device enrol --id` takes. */
const deviceId = (name: string) => keccak256(toUtf8Bytes(name));
const PILOT = deviceId("rev-a-0001");
const LAB = deviceId("lab-bench-7");
const FLEET = deviceId("rev-a-0420");

/** The context the ledger gives a device on hardware class 1 in eu-west. */
function device(id: string) {
  return {
    deviceId: id,
    hardwareClass: 1,
    network: ethers.encodeBytes32String("lorawan"),
    region: ethers.encodeBytes32String("eu-west"),
    installed: [],
  };
}

/** Two published bootloader releases and a PilotFleetPolicy with PILOT and LAB in its pilot group. */
async function pilotFixture() {
  const base = await catalogFixture();
  const { registry, acmeAuthor, domain } = base;
  const first = await publish(registry, acmeAuthor, makeRelease({ version: encodeVersion("1.0.0") }), ACME_SIGNER, domain);
  const second = await publish(registry, acmeAuthor, makeRelease({ version: encodeVersion("1.1.0") }), ACME_SIGNER, domain);
  const policy = (await ethers.deployContract("PilotFleetPolicy", [await registry.getAddress(), [PILOT, LAB]])) as unknown as PilotFleetPolicy;
  return { ...base, policy, first, second };
}

type Fixture = Awaited<ReturnType<typeof pilotFixture>>;

/** The policy's answer for `releaseId` of the bootloader and the device `id`. */
function ask(policy: PilotFleetPolicy, releaseId: string, id: string): Promise<bigint> {
  return policy.check(releaseId, COMPONENTS.bootloader, encodeVersion("1.0.0"), device(id), "0x");
}

describe("PilotFleetPolicy: the worked example of docs/writing-a-policy.md (APP-II-3)", function () {
  describe("deployment", function () {
    it("APP-II-3: starts with its pilot group, says so in events, and publishes its reason codes", async function () {
      const { policy, admin } = await loadFixture(pilotFixture);
      expect(await policy.ALLOWED()).to.equal(REASON.ALLOWED);
      expect(await policy.NOT_IN_PILOT()).to.equal(REASON.NOT_IN_PILOT);
      expect(await policy.RELEASE_HELD()).to.equal(REASON.RELEASE_HELD);
      expect(await policy.MAX_BATCH()).to.equal(64n);
      expect(await policy.pilotSize()).to.equal(2n);
      expect([await policy.isPilotDevice(PILOT), await policy.isPilotDevice(LAB), await policy.isPilotDevice(FLEET)]).to.deep.equal([true, true, false]);
      const tx = policy.deploymentTransaction()!;
      await expect(tx).to.emit(policy, "PilotDeviceEnrolled").withArgs(PILOT, admin.address);
      await expect(tx).to.emit(policy, "PilotDeviceEnrolled").withArgs(LAB, admin.address);
    });

    it("may start with an empty pilot group, which refuses every release still in its pilot", async function () {
      const { registry, first } = await loadFixture(pilotFixture);
      const empty = (await ethers.deployContract("PilotFleetPolicy", [await registry.getAddress(), []])) as unknown as PilotFleetPolicy;
      expect(await empty.pilotSize()).to.equal(0n);
      expect(await ask(empty, first.id, PILOT)).to.equal(REASON.NOT_IN_PILOT);
    });

    const deployments: Array<[string, string[], string, unknown[]]> = [
      ["more than MAX_BATCH devices", Array.from({ length: 65 }, (_, i) => deviceId(`device ${i}`)), "PilotFleetPolicyBatchSize", [65, 64]],
      ["the zero device id", [PILOT, ZeroHash], "PilotFleetPolicyZeroDevice", []],
      ["a device twice", [PILOT, LAB, PILOT], "PilotFleetPolicyAlreadyEnrolled", [PILOT]],
    ];
    for (const [name, ids, error, args] of deployments) {
      it(`refuses to deploy with ${name}`, async function () {
        const { registry } = await loadFixture(pilotFixture);
        const factory = await ethers.getContractFactory("PilotFleetPolicy");
        await expect(factory.deploy(await registry.getAddress(), ids))
          .to.be.revertedWithCustomError(factory, error)
          .withArgs(...args);
      });
    }

    it("accepts MAX_BATCH devices at deployment", async function () {
      const { registry } = await loadFixture(pilotFixture);
      const ids = Array.from({ length: 64 }, (_, i) => deviceId(`device ${i}`));
      const full = (await ethers.deployContract("PilotFleetPolicy", [await registry.getAddress(), ids])) as unknown as PilotFleetPolicy;
      expect(await full.pilotSize()).to.equal(64n);
    });
  });

  describe("the rule: every stage against a pilot device and a fleet device", function () {
    const table: Array<[Stage, string, string, bigint]> = [
      [Stage.Pilot, "a pilot device", PILOT, REASON.ALLOWED],
      [Stage.Pilot, "a fleet device", FLEET, REASON.NOT_IN_PILOT],
      [Stage.Open, "a pilot device", PILOT, REASON.ALLOWED],
      [Stage.Open, "a fleet device", FLEET, REASON.ALLOWED],
      [Stage.Held, "a pilot device", PILOT, REASON.RELEASE_HELD],
      [Stage.Held, "a fleet device", FLEET, REASON.RELEASE_HELD],
    ];
    for (const [stage, who, id, expected] of table) {
      const answer = Object.entries(REASON).find(([, code]) => code === expected)![0];
      it(`APP-II-3: a release in ${Stage[stage]}, ${who}: ${answer}`, async function () {
        const { policy, admin, first } = await loadFixture(pilotFixture);
        if (stage !== Stage.Pilot) await policy.connect(admin).setStage(first.id, stage);
        expect(await policy.stageOf(first.id)).to.equal(stage);
        expect(await ask(policy, first.id, id)).to.equal(expected);
      });
    }

    it("keeps stages per release: opening one release of a component leaves its others in their pilot", async function () {
      const { policy, admin, first, second } = await loadFixture(pilotFixture);
      await policy.connect(admin).setStage(first.id, Stage.Open);
      expect(await ask(policy, first.id, FLEET)).to.equal(REASON.ALLOWED);
      expect(await ask(policy, second.id, FLEET)).to.equal(REASON.NOT_IN_PILOT);
      expect(await policy.stageOf(second.id)).to.equal(Stage.Pilot);
    });

    it("uses only the release id and the device id: component, version, region and evidence change nothing", async function () {
      const { policy, first } = await loadFixture(pilotFixture);
      const elsewhere = { ...device(FLEET), hardwareClass: 3, network: ZeroHash, region: ethers.encodeBytes32String("apac") };
      expect(await policy.check(first.id, COMPONENTS.globexApp, 0, elsewhere, "0x1234")).to.equal(REASON.NOT_IN_PILOT);
      expect(await policy.check(first.id, ZeroHash, 0, { ...elsewhere, deviceId: LAB }, "0x")).to.equal(REASON.ALLOWED);
    });

    it("is a view, so the checker may call it with staticcall", async function () {
      const { policy } = await loadFixture(pilotFixture);
      expect(policy.interface.getFunction("check").stateMutability).to.equal("view");
    });
  });

  describe("administration", function () {
    it("APP-II-3: an administrator enrols devices, which may then take releases in their pilot", async function () {
      const { policy, admin, first } = await loadFixture(pilotFixture);
      const more = [FLEET, deviceId("rev-a-0421")];
      const tx = policy.connect(admin).enrolDevices(more);
      await expect(tx).to.emit(policy, "PilotDeviceEnrolled").withArgs(FLEET, admin.address);
      await expect(tx).to.emit(policy, "PilotDeviceEnrolled").withArgs(more[1], admin.address);
      expect(await policy.pilotSize()).to.equal(4n);
      expect(await policy.isPilotDevice(FLEET)).to.equal(true);
      expect(await ask(policy, first.id, FLEET)).to.equal(REASON.ALLOWED);
    });

    it("APP-II-3: an administrator withdraws devices, which then wait for the release to open", async function () {
      const { policy, admin, first } = await loadFixture(pilotFixture);
      await expect(policy.connect(admin).withdrawDevices([LAB]))
        .to.emit(policy, "PilotDeviceWithdrawn")
        .withArgs(LAB, admin.address);
      expect(await policy.pilotSize()).to.equal(1n);
      expect(await policy.isPilotDevice(LAB)).to.equal(false);
      expect(await ask(policy, first.id, LAB)).to.equal(REASON.NOT_IN_PILOT);
      await policy.connect(admin).setStage(first.id, Stage.Open);
      expect(await ask(policy, first.id, LAB)).to.equal(REASON.ALLOWED);
      // Withdrawn, a device may be enrolled again.
      await policy.connect(admin).enrolDevices([LAB]);
      expect(await policy.pilotSize()).to.equal(2n);
    });

    it("takes batches of MAX_BATCH devices", async function () {
      const { policy, admin } = await loadFixture(pilotFixture);
      const ids = Array.from({ length: 64 }, (_, i) => deviceId(`batch device ${i}`));
      await policy.connect(admin).enrolDevices(ids);
      expect(await policy.pilotSize()).to.equal(66n);
      await policy.connect(admin).withdrawDevices(ids);
      expect(await policy.pilotSize()).to.equal(2n);
    });

    it("APP-II-3: moves a release through its stages, each move with the previous stage in the event", async function () {
      const { policy, admin, first } = await loadFixture(pilotFixture);
      const moves: Array<[Stage, Stage]> = [
        [Stage.Pilot, Stage.Open],
        [Stage.Open, Stage.Held],
        [Stage.Held, Stage.Pilot],
        [Stage.Pilot, Stage.Held],
        [Stage.Held, Stage.Open],
        [Stage.Open, Stage.Pilot],
      ];
      for (const [previous, next] of moves) {
        await expect(policy.connect(admin).setStage(first.id, next)).to.emit(policy, "ReleaseStageChanged").withArgs(first.id, previous, next, admin.address);
        expect(await policy.stageOf(first.id)).to.equal(next);
      }
    });

    it("stages a revoked release too (holding it changes nothing the registry has not already refused)", async function () {
      const { policy, registry, admin, auditor, first } = await loadFixture(pilotFixture);
      await registry.connect(auditor).revokeRelease(first.id, "malicious");
      await policy.connect(admin).setStage(first.id, Stage.Held);
      expect(await ask(policy, first.id, PILOT)).to.equal(REASON.RELEASE_HELD);
    });

    it("follows the registry's administrators: one granted the role may act, and no longer once it is revoked", async function () {
      const { policy, registry, admin, outsider, first } = await loadFixture(pilotFixture);
      await registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, outsider.address);
      await policy.connect(outsider).setStage(first.id, Stage.Open);
      await registry.connect(admin).revokeRole(ROLES.ADMINISTRATOR, outsider.address);
      await expect(policy.connect(outsider).setStage(first.id, Stage.Held))
        .to.be.revertedWithCustomError(policy, "PolicyUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR);
    });
  });

  describe("rejections leave the pilot group and the stages as they were", function () {
    const snapshot = async (f: Fixture) => ({
      size: await f.policy.pilotSize(),
      members: await Promise.all([PILOT, LAB, FLEET].map((id) => f.policy.isPilotDevice(id))),
      stages: await Promise.all([f.first.id, f.second.id].map((id) => f.policy.stageOf(id))),
    });
    itRejectsWithoutChange<Fixture>(
      [
        {
          name: "an enrolment by a non-administrator",
          run: async (f) => ({
            call: () => f.policy.connect(f.outsider).enrolDevices([FLEET]),
            error: "PolicyUnauthorized",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a withdrawal by a tracker",
          run: async (f) => ({
            call: () => f.policy.connect(f.tracker).withdrawDevices([PILOT]),
            error: "PolicyUnauthorized",
            args: [f.tracker.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a stage set by an auditor",
          run: async (f) => ({
            call: () => f.policy.connect(f.auditor).setStage(f.first.id, Stage.Held),
            error: "PolicyUnauthorized",
            args: [f.auditor.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "an empty enrolment",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).enrolDevices([]), error: "PilotFleetPolicyBatchSize", args: [0, 64] }),
        },
        {
          name: "a withdrawal of more than MAX_BATCH devices",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).withdrawDevices(Array(65).fill(PILOT)),
            error: "PilotFleetPolicyBatchSize",
            args: [65, 64],
          }),
        },
        {
          name: "the zero device id",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).enrolDevices([FLEET, ZeroHash]), error: "PilotFleetPolicyZeroDevice", args: [] }),
        },
        {
          name: "a device already in the pilot (the whole batch is refused)",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).enrolDevices([FLEET, LAB]),
            error: "PilotFleetPolicyAlreadyEnrolled",
            args: [LAB],
          }),
        },
        {
          name: "a withdrawal of a device not in the pilot (the whole batch is refused)",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).withdrawDevices([PILOT, FLEET]),
            error: "PilotFleetPolicyNotEnrolled",
            args: [FLEET],
          }),
        },
        {
          name: "a stage for a release the registry does not have",
          run: async (f) => {
            const unknown = keccak256(toUtf8Bytes("not a release"));
            return { call: () => f.policy.connect(f.admin).setStage(unknown, Stage.Open), error: "PilotFleetPolicyUnknownRelease", args: [unknown] };
          },
        },
        {
          name: "a release moved to the stage it is in",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setStage(f.second.id, Stage.Pilot),
            error: "PilotFleetPolicyStageUnchanged",
            args: [f.second.id, Stage.Pilot],
          }),
        },
      ],
      { fixture: pilotFixture, contract: (f) => f.policy, snapshot },
    );
  });

  describe("through UpdatePolicies.checkUpdate, attached to the bootloader", function () {
    /** UpdatePolicies beside the registry, with the pilot policy attached to the bootloader component. */
    async function attachedFixture() {
      const base = await pilotFixture();
      const policies = (await ethers.deployContract("UpdatePolicies", [await base.registry.getAddress()])) as unknown as UpdatePolicies;
      await policies.connect(base.admin).attachPolicy(COMPONENTS.bootloader, await base.policy.getAddress());
      return { ...base, policies };
    }

    it("APP-II-3: the registry's check first, then the pilot: fleet devices wait until the release opens", async function () {
      const { policies, policy, admin, first } = await loadFixture(attachedFixture);
      const pilotAddress = await policy.getAddress();
      const checkFor = async (id: string) => {
        const answer = await policies.checkUpdate(first.record, device(id), "0x");
        return [answer.verdict, answer.policy, answer.reason];
      };
      expect(await checkFor(PILOT)).to.deep.equal([INSTALLABLE, pilotAddress, REASON.ALLOWED]);
      expect(await checkFor(FLEET)).to.deep.equal([INSTALLABLE, pilotAddress, REASON.NOT_IN_PILOT]);

      await policy.connect(admin).setStage(first.id, Stage.Open);
      expect(await checkFor(FLEET)).to.deep.equal([INSTALLABLE, pilotAddress, REASON.ALLOWED]);

      await policy.connect(admin).setStage(first.id, Stage.Held);
      expect(await checkFor(PILOT)).to.deep.equal([INSTALLABLE, pilotAddress, REASON.RELEASE_HELD]);
    });

    it("APP-II-3: a registry refusal is answered as is and the pilot is not asked, pilot device or not", async function () {
      const { policies, first } = await loadFixture(attachedFixture);
      const onOtherHardware = { ...device(PILOT), hardwareClass: 2 };
      const answer = await policies.checkUpdate(first.record, onOtherHardware, "0x");
      expect([answer.verdict, answer.policy, answer.reason]).to.deep.equal([HARDWARE_NOT_SUPPORTED, ZeroAddress, 0n]);
    });

    it("APP-II-3: composed with a maintenance window, a refusal names the member and its reason", async function () {
      const { policies, policy, registry, admin, first } = await loadFixture(attachedFixture);
      // 02:00-05:00 UTC every day.
      const window = (await ethers.deployContract("MaintenanceWindowPolicy", [
        await registry.getAddress(),
        120,
        300,
        0x7f,
      ])) as unknown as MaintenanceWindowPolicy;
      const composed = (await ethers.deployContract("AllOfPolicy", [[await policy.getAddress(), await window.getAddress()]])) as unknown as AllOfPolicy;
      await policies.connect(admin).attachPolicy(first.id, await composed.getAddress());
      const now = await time.latest();
      const midnight = now - (now % 86_400) + 86_400;
      await time.increaseTo(midnight + 60 * 60); // 01:00 UTC, outside the window

      let answer = await policies.checkUpdate(first.record, device(FLEET), "0x");
      expect(answer.policy).to.equal(await composed.getAddress());
      expect(answer.reason).to.equal((1n << 128n) | REASON.NOT_IN_PILOT); // member 0, NOT_IN_PILOT
      answer = await policies.checkUpdate(first.record, device(PILOT), "0x");
      expect(answer.reason).to.equal((2n << 128n) | (await window.OUTSIDE_WINDOW())); // member 1, OUTSIDE_WINDOW
      const [path, leaf] = await composed.decodeRefusal(answer.reason);
      expect([[...path], leaf]).to.deep.equal([[1n], 1n]);

      await time.increaseTo(midnight + 3 * 60 * 60); // 03:00 UTC
      answer = await policies.checkUpdate(first.record, device(PILOT), "0x");
      expect([answer.verdict, answer.reason]).to.deep.equal([INSTALLABLE, 0n]);
    });
  });

  describe("the Ignition modules", function () {
    it("APP-II-3: PilotFleetPolicy deploys the example for the registry given as a parameter, with its pilot devices", async function () {
      const { registry, first } = await loadFixture(pilotFixture);
      const deployed = await ignition.deploy(PilotFleetPolicyModule, {
        parameters: { PilotFleetPolicy: { registry: await registry.getAddress(), pilotDevices: [PILOT] } },
      });
      const pilot = deployed.pilotFleetPolicy as unknown as PilotFleetPolicy;
      expect(await pilot.pilotSize()).to.equal(1n);
      expect(await ask(pilot, first.id, PILOT)).to.equal(REASON.ALLOWED);
      expect(await ask(pilot, first.id, LAB)).to.equal(REASON.NOT_IN_PILOT);
    });

    it("APP-II-3: PilotFleetInWindow composes the pilot and a maintenance window in one AllOfPolicy", async function () {
      const { registry } = await loadFixture(pilotFixture);
      const deployed = await ignition.deploy(PilotFleetInWindowModule, {
        parameters: { $global: { registry: await registry.getAddress() }, PilotFleetInWindow: { startMinute: 60, endMinute: 90, weekdays: 0x1f } },
      });
      const composed = deployed.pilotInWindow as unknown as AllOfPolicy;
      const window = deployed.maintenanceWindowPolicy as unknown as MaintenanceWindowPolicy;
      expect([...(await composed.members())]).to.deep.equal([await deployed.pilotFleetPolicy.getAddress(), await window.getAddress()]);
      expect(await window.window()).to.deep.equal([60n, 90n, 0x1fn]);
      expect(await (deployed.pilotFleetPolicy as unknown as PilotFleetPolicy).pilotSize()).to.equal(0n);
    });
  });
});
