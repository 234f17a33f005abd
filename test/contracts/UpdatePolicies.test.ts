import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { AbiCoder, ZeroAddress, ZeroHash, hexlify, keccak256, toUtf8Bytes } from "ethers";
import { encodeVersion } from "../../agent/core/version";
import { ReleaseRecord } from "../../agent/core/release";
import { ACME_SIGNER, COMPONENTS, ROLES, catalogFixture, dependsOn, makeRelease, publish } from "../helpers/registryFixture";
import { itRejectsWithoutChange, RejectionCase } from "../helpers/itRejects";
import type { UpdatePolicies } from "../../typechain-types";
import type { DeviceContextStruct } from "../../typechain-types/contracts/UpdatePolicies";

const V = encodeVersion;
const label = ethers.encodeBytes32String;

enum Check {
  Installable,
  UnknownRelease,
  ReleaseRevoked,
  ReleaseVulnerable,
  ProviderBarred,
  HardwareNotSupported,
  NotNewerThanInstalled,
  DependencyNotInstalled,
  DependencyVersionOutOfRange,
}

const POLICY_FAILED = ethers.MaxUint256;
const POLICY_GAS = 500_000n;

interface Installed {
  component: string;
  version: bigint;
}

/** The context of a device enrolled on hardware class `hardwareClass`; override any field. */
function makeContext(seed: string, overrides: Partial<DeviceContextStruct> = {}): DeviceContextStruct {
  return {
    deviceId: keccak256(toUtf8Bytes(`device id: ${seed}`)),
    hardwareClass: 1,
    network: label("lorawan"),
    region: label("eu-west"),
    installed: [] as Installed[],
    ...overrides,
  };
}

const coder = AbiCoder.defaultAbiCoder();
const CONTEXT_TYPE = "tuple(bytes32 deviceId, uint16 hardwareClass, bytes32 network, bytes32 region, tuple(bytes32 component, uint64 version)[] installed)";

/** What PolicyMockEcho answers, computed off-chain from what the test meant to send. */
function echoReason(releaseId: string, record: ReleaseRecord, device: DeviceContextStruct, evidence: string): bigint {
  const encoded = coder.encode(["bytes32", "bytes32", "uint64", CONTEXT_TYPE, "bytes"], [releaseId, record.component, record.version, device, evidence]);
  return (BigInt(keccak256(encoded)) % 1000n) + 1n;
}

/** A cohort proof as a device would bring it: some bytes32 words, ABI-encoded. */
const EVIDENCE = coder.encode(["bytes32[]"], [[keccak256(toUtf8Bytes("sibling 1")), keccak256(toUtf8Bytes("sibling 2"))]]);

/**
 * The catalog plus: bootloader 1.0.0 (hw 1,2) and 1.1.0 (hw 1); sensor firmware 2.0.0 (hw 1,2)
 * depending on bootloader ^1.0.0; UpdatePolicies beside the registry, nothing attached; one policy
 * mock of each kind deployed.
 */
async function policiesFixture() {
  const base = await catalogFixture();
  const { registry, acmeAuthor, domain } = base;
  const p = (overrides: Parameters<typeof makeRelease>[0]) => publish(registry, acmeAuthor, makeRelease(overrides), ACME_SIGNER, domain);
  const boot100 = await p({ version: V("1.0.0"), hardware: [1, 2] });
  const boot110 = await p({ version: V("1.1.0"), hardware: [1] });
  const sensor200 = await p({
    component: COMPONENTS.sensorFw,
    version: V("2.0.0"),
    hardware: [1, 2],
    dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")],
  });
  const policies = (await ethers.deployContract("UpdatePolicies", [await registry.getAddress()])) as unknown as UpdatePolicies;
  const deploy = async (name: string, args: unknown[] = []) => (await ethers.deployContract(name, args)).getAddress();
  const mocks = {
    echo: await deploy("PolicyMockEcho"),
    allow: await deploy("PolicyMockFixed", [0, ZeroHash]),
    deny: await deploy("PolicyMockFixed", [7, ZeroHash]),
    reverting: await deploy("PolicyMockReverting"),
    withinGas: await deploy("PolicyMockGasBurner", [POLICY_GAS - 100_000n]),
    overGas: await deploy("PolicyMockGasBurner", [POLICY_GAS + 1n]),
    writer: await deploy("PolicyMockWriter"),
    silent: await deploy("PolicyMockMalformed", [0]),
    short: await deploy("PolicyMockMalformed", [31]),
    long: await deploy("PolicyMockMalformed", [64]),
  };
  return { ...base, policies, mocks, boot100, boot110, sensor200 };
}

type F = Awaited<ReturnType<typeof policiesFixture>>;

/** A device on hardware class 1 running bootloader 1.0.0: boot110 and sensor200 are installable. */
const ON_BOOT_100 = makeContext("line 7 sensor", { installed: [{ component: COMPONENTS.bootloader, version: V("1.0.0") }] });

/** Every target the tests attach to, and what each resolves to, read through the views. */
async function policiesSnapshot(f: F) {
  const { policies, boot100, boot110, sensor200 } = f;
  const releases = [boot100, boot110, sensor200];
  return Promise.all(
    releases.flatMap((r) => [
      policies.policyFor(r.id, r.record.component),
      policies.policyFor(r.id, ZeroHash),
      policies.policyFor(ZeroHash, r.record.component),
    ]),
  );
}

describe("UpdatePolicies: policies administrators attach to components and releases (APP-II-3)", function () {
  describe("attachPolicy and detachPolicy", function () {
    it("knows its registry", async function () {
      const { policies, registry } = await loadFixture(policiesFixture);
      expect(await policies.updateRegistry()).to.equal(await registry.getAddress());
    });

    it("attaches a policy to a component, for every release of it, with the administrator in the event", async function () {
      const { policies, admin, mocks, boot100, boot110, sensor200 } = await loadFixture(policiesFixture);
      await expect(policies.connect(admin).attachPolicy(COMPONENTS.bootloader, mocks.deny))
        .to.emit(policies, "PolicyAttached")
        .withArgs(COMPONENTS.bootloader, mocks.deny, admin.address);
      expect(await policies.policyFor(boot100.id, COMPONENTS.bootloader)).to.equal(mocks.deny);
      expect(await policies.policyFor(boot110.id, COMPONENTS.bootloader)).to.equal(mocks.deny);
      expect(await policies.policyFor(sensor200.id, COMPONENTS.sensorFw)).to.equal(ZeroAddress);
    });

    it("APP-II-3 issue 18: refuses a kit policy built for another registry (its roles and reads would be another ledger's); takes one built for this one", async function () {
      const { policies, registry, admin } = await loadFixture(policiesFixture);
      const other = await ethers.deployContract("UpdateRegistry", [3 * 24 * 3600, admin.address]);
      const foreign = await ethers.deployContract("PolicyMockStrict", [await other.getAddress(), 0]);
      await expect(policies.connect(admin).attachPolicy(COMPONENTS.bootloader, foreign))
        .to.be.revertedWithCustomError(policies, "UpdatePoliciesWrongRegistry")
        .withArgs(await foreign.getAddress(), await other.getAddress());
      const own = await ethers.deployContract("PolicyMockStrict", [await registry.getAddress(), 0]);
      await expect(policies.connect(admin).attachPolicy(COMPONENTS.bootloader, own)).to.emit(policies, "PolicyAttached");
      // A policy with no registry() getter (a mock written before the kit, a composer) is taken as it is: the other tests attach them.
    });

    it("replaces a component's policy with the one attached last", async function () {
      const { policies, admin, mocks, boot100 } = await loadFixture(policiesFixture);
      await policies.connect(admin).attachPolicy(COMPONENTS.bootloader, mocks.deny);
      await expect(policies.connect(admin).attachPolicy(COMPONENTS.bootloader, mocks.allow))
        .to.emit(policies, "PolicyAttached")
        .withArgs(COMPONENTS.bootloader, mocks.allow, admin.address);
      expect(await policies.policyFor(boot100.id, COMPONENTS.bootloader)).to.equal(mocks.allow);
    });

    it("lets a release's own policy replace its component's, for that release only", async function () {
      const { policies, admin, mocks, boot100, boot110 } = await loadFixture(policiesFixture);
      await policies.connect(admin).attachPolicy(COMPONENTS.bootloader, mocks.deny);
      await policies.connect(admin).attachPolicy(boot110.id, mocks.allow);
      expect(await policies.policyFor(boot110.id, COMPONENTS.bootloader)).to.equal(mocks.allow);
      expect(await policies.policyFor(boot100.id, COMPONENTS.bootloader)).to.equal(mocks.deny);
      const device = makeContext("hw 2", { hardwareClass: 2 });
      expect(await policies.checkUpdate(boot110.record, ON_BOOT_100, "0x")).to.deep.equal([Check.Installable, mocks.allow, 0n]);
      expect(await policies.checkUpdate(boot100.record, device, "0x")).to.deep.equal([Check.Installable, mocks.deny, 7n]);
    });

    it("detaches a release's own policy, giving the decision back to its component's", async function () {
      const { policies, admin, mocks, boot110 } = await loadFixture(policiesFixture);
      await policies.connect(admin).attachPolicy(COMPONENTS.bootloader, mocks.deny);
      await policies.connect(admin).attachPolicy(boot110.id, mocks.allow);
      await expect(policies.connect(admin).detachPolicy(boot110.id)).to.emit(policies, "PolicyDetached").withArgs(boot110.id, mocks.allow, admin.address);
      expect(await policies.policyFor(boot110.id, COMPONENTS.bootloader)).to.equal(mocks.deny);
      expect(await policies.checkUpdate(boot110.record, ON_BOOT_100, "0x")).to.deep.equal([Check.Installable, mocks.deny, 7n]);
    });

    it("detaches a component's policy: its releases have none", async function () {
      const { policies, admin, mocks, boot110 } = await loadFixture(policiesFixture);
      await policies.connect(admin).attachPolicy(COMPONENTS.bootloader, mocks.deny);
      await expect(policies.connect(admin).detachPolicy(COMPONENTS.bootloader))
        .to.emit(policies, "PolicyDetached")
        .withArgs(COMPONENTS.bootloader, mocks.deny, admin.address);
      expect(await policies.policyFor(boot110.id, COMPONENTS.bootloader)).to.equal(ZeroAddress);
      expect(await policies.checkUpdate(boot110.record, ON_BOOT_100, "0x")).to.deep.equal([Check.Installable, ZeroAddress, 0n]);
    });

    it("accepts any account holding the registry's ADMINISTRATOR_ROLE, and no longer once it is revoked", async function () {
      const { policies, registry, admin, newAdmin, mocks } = await loadFixture(policiesFixture);
      await registry.connect(admin).grantRole(ROLES.ADMINISTRATOR, newAdmin.address);
      await expect(policies.connect(newAdmin).attachPolicy(COMPONENTS.radioFw, mocks.allow))
        .to.emit(policies, "PolicyAttached")
        .withArgs(COMPONENTS.radioFw, mocks.allow, newAdmin.address);
      await registry.connect(admin).revokeRole(ROLES.ADMINISTRATOR, newAdmin.address);
      await expect(policies.connect(newAdmin).detachPolicy(COMPONENTS.radioFw))
        .to.be.revertedWithCustomError(policies, "UpdatePoliciesUnauthorized")
        .withArgs(newAdmin.address);
    });

    /** Each case starts from a deny policy on the bootloader and an allow policy on boot110. */
    async function withAttached(f: F) {
      await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.deny);
      await f.policies.connect(f.admin).attachPolicy(f.boot110.id, f.mocks.allow);
    }
    const roles: Array<[string, (f: F) => F["admin"]]> = [
      ["an outsider", (f) => f.outsider],
      ["an author", (f) => f.acmeAuthor],
      ["an auditor", (f) => f.auditor],
      ["a tracker", (f) => f.tracker],
    ];
    const cases: RejectionCase<F>[] = [
      ...roles.flatMap(([who, account]): RejectionCase<F>[] => [
        {
          name: `an attach by ${who}`,
          run: async (f) => {
            await withAttached(f);
            const a = account(f);
            return {
              call: () => f.policies.connect(a).attachPolicy(COMPONENTS.sensorFw, f.mocks.echo),
              error: "UpdatePoliciesUnauthorized",
              args: [a.address],
            };
          },
        },
        {
          name: `a detach by ${who}`,
          run: async (f) => {
            await withAttached(f);
            const a = account(f);
            return { call: () => f.policies.connect(a).detachPolicy(COMPONENTS.bootloader), error: "UpdatePoliciesUnauthorized", args: [a.address] };
          },
        },
      ]),
      {
        name: "a policy address with no code (an account)",
        run: async (f) => {
          await withAttached(f);
          const eoa = f.outsider.address;
          return { call: () => f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, eoa), error: "UpdatePoliciesNotAContract", args: [eoa] };
        },
      },
      {
        name: "the zero address as a policy",
        run: async (f) => {
          await withAttached(f);
          return { call: () => f.policies.connect(f.admin).attachPolicy(f.boot110.id, ZeroAddress), error: "UpdatePoliciesNotAContract", args: [ZeroAddress] };
        },
      },
      {
        name: "detaching from a target with nothing attached",
        run: async (f) => {
          await withAttached(f);
          return { call: () => f.policies.connect(f.admin).detachPolicy(f.boot100.id), error: "UpdatePoliciesNothingAttached", args: [f.boot100.id] };
        },
      },
      {
        name: "detaching twice",
        run: async (f) => {
          await withAttached(f);
          await f.policies.connect(f.admin).detachPolicy(f.boot110.id);
          return { call: () => f.policies.connect(f.admin).detachPolicy(f.boot110.id), error: "UpdatePoliciesNothingAttached", args: [f.boot110.id] };
        },
      },
    ];
    itRejectsWithoutChange(cases, { fixture: policiesFixture, contract: (f) => f.policies, snapshot: policiesSnapshot });
  });

  describe("checkUpdate: the registry's verdict, then the policy's", function () {
    /** The echo policy decides for every component and every release. */
    async function echoEverywhere(f: F) {
      for (const target of [...Object.values(COMPONENTS), f.boot100.id, f.boot110.id, f.sensor200.id]) {
        await f.policies.connect(f.admin).attachPolicy(target, f.mocks.echo);
      }
    }

    it("answers the registry's verdict alone when no policy is attached", async function () {
      const { policies, boot110 } = await loadFixture(policiesFixture);
      expect(await policies.checkUpdate(boot110.record, ON_BOOT_100, EVIDENCE)).to.deep.equal([Check.Installable, ZeroAddress, 0n]);
    });

    const refusals: { name: string; verdict: Check; setup?: (f: F) => Promise<unknown>; release: (f: F) => ReleaseRecord; device: DeviceContextStruct }[] = [
      { name: "an unknown release", verdict: Check.UnknownRelease, release: () => makeRelease({ version: V("1.2.0") }), device: ON_BOOT_100 },
      {
        name: "a revoked release",
        verdict: Check.ReleaseRevoked,
        setup: (f) => f.registry.connect(f.auditor).revokeRelease(f.boot110.id, "backdoor"),
        release: (f) => f.boot110.record,
        device: ON_BOOT_100,
      },
      {
        name: "a release of a barred provider",
        verdict: Check.ProviderBarred,
        setup: (f) => f.registry.connect(f.auditor).barProvider(1, "signing key stolen"),
        release: (f) => f.boot110.record,
        device: ON_BOOT_100,
      },
      { name: "another hardware class", verdict: Check.HardwareNotSupported, release: (f) => f.boot110.record, device: { ...ON_BOOT_100, hardwareClass: 2 } },
      {
        name: "a version not newer than the installed one",
        verdict: Check.NotNewerThanInstalled,
        release: (f) => f.boot110.record,
        device: makeContext("up to date", { installed: [{ component: COMPONENTS.bootloader, version: V("1.1.0") }] }),
      },
      { name: "a dependency not installed", verdict: Check.DependencyNotInstalled, release: (f) => f.sensor200.record, device: makeContext("bare") },
      {
        name: "a dependency out of range",
        verdict: Check.DependencyVersionOutOfRange,
        release: (f) => f.sensor200.record,
        device: makeContext("old bootloader", { installed: [{ component: COMPONENTS.bootloader, version: V("0.9.0") }] }),
      },
    ];
    for (const c of refusals) {
      it(`passes on the registry's refusal without asking the policy: ${c.name}`, async function () {
        const f = await loadFixture(policiesFixture);
        await echoEverywhere(f);
        if (c.setup) await c.setup(f);
        expect(await f.policies.checkUpdate(c.release(f), c.device, EVIDENCE)).to.deep.equal([c.verdict, ZeroAddress, 0n]);
      });
    }

    it("asks the policy when the registry finds the release installable", async function () {
      const f = await loadFixture(policiesFixture);
      await echoEverywhere(f);
      const expected = echoReason(f.boot110.id, f.boot110.record, ON_BOOT_100, EVIDENCE);
      expect(await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, EVIDENCE)).to.deep.equal([Check.Installable, f.mocks.echo, expected]);
    });

    it("asks the policy when the release is installable but for being flagged vulnerable", async function () {
      const f = await loadFixture(policiesFixture);
      await echoEverywhere(f);
      await f.registry.connect(f.auditor).flagVulnerable(f.boot110.id, "CVE-2026-0042");
      const expected = echoReason(f.boot110.id, f.boot110.record, ON_BOOT_100, EVIDENCE);
      expect(await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, EVIDENCE)).to.deep.equal([Check.ReleaseVulnerable, f.mocks.echo, expected]);
    });

    it("answers the policy's reason as it gives it: 0 allows, any other code refuses", async function () {
      const f = await loadFixture(policiesFixture);
      await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.allow);
      await f.policies.connect(f.admin).attachPolicy(COMPONENTS.sensorFw, f.mocks.deny);
      expect(await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, "0x")).to.deep.equal([Check.Installable, f.mocks.allow, 0n]);
      expect(await f.policies.checkUpdate(f.sensor200.record, ON_BOOT_100, "0x")).to.deep.equal([Check.Installable, f.mocks.deny, 7n]);
    });

    describe("gives the policy the release, the device context and the evidence exactly as given", function () {
      const devices: Array<[string, DeviceContextStruct]> = [
        ["a device with one component installed", ON_BOOT_100],
        [
          "a device on another network and region, with several components",
          makeContext("gateway 3", {
            network: label("nb-iot"),
            region: label("line-7"),
            installed: [
              { component: COMPONENTS.bootloader, version: V("1.0.3") },
              { component: COMPONENTS.radioFw, version: V("3.1.4") },
              { component: COMPONENTS.globexApp, version: V("0.2.0-rc.1") },
            ],
          }),
        ],
      ];
      const evidence: Array<[string, string]> = [
        ["no evidence", "0x"],
        ["a cohort proof", EVIDENCE],
        ["an odd length", hexlify(toUtf8Bytes("thirty-three bytes of evidence!!!"))],
      ];
      for (const [deviceName, device] of devices) {
        for (const [evidenceName, bytes] of evidence) {
          it(`${deviceName}, ${evidenceName}`, async function () {
            const f = await loadFixture(policiesFixture);
            await echoEverywhere(f);
            for (const r of [f.boot110, f.sensor200]) {
              const answer = await f.policies.checkUpdate(r.record, device, bytes);
              expect(answer).to.deep.equal([Check.Installable, f.mocks.echo, echoReason(r.id, r.record, device, bytes)]);
            }
          });
        }
      }

      it("a change to any one field of the context changes the policy's answer", async function () {
        const f = await loadFixture(policiesFixture);
        await echoEverywhere(f);
        const base = devices[1][1];
        const variants: DeviceContextStruct[] = [
          { ...base, deviceId: keccak256(toUtf8Bytes("another device")) },
          { ...base, network: label("lte-m") },
          { ...base, region: label("apac") },
          { ...base, installed: [...(base.installed as Installed[]), { component: COMPONENTS.sensorFw, version: V("1.0.0") }] },
        ];
        const answers = new Set<bigint>();
        for (const device of [base, ...variants]) {
          const [verdict, , reason] = await f.policies.checkUpdate(f.boot110.record, device, EVIDENCE);
          expect(verdict).to.equal(Check.Installable);
          expect(reason).to.equal(echoReason(f.boot110.id, f.boot110.record, device, EVIDENCE));
          answers.add(reason);
        }
        expect(answers.size).to.equal(variants.length + 1);
      });
    });

    describe("fails closed: a policy that cannot answer answers POLICY_FAILED, and the check still returns", function () {
      it("exposes the failure code and the gas cap", async function () {
        const { policies } = await loadFixture(policiesFixture);
        expect(await policies.POLICY_FAILED()).to.equal(POLICY_FAILED);
        expect(await policies.POLICY_GAS()).to.equal(POLICY_GAS);
      });

      const failing: Array<[string, keyof F["mocks"], string]> = [
        ["a policy that reverts with its own error", "reverting", "0x"],
        ["a policy that reverts with no data", "reverting", EVIDENCE],
        ["a policy that needs more than POLICY_GAS (it runs out of gas)", "overGas", "0x"],
        ["a policy that tries to write state (it is called static)", "writer", "0x"],
      ];
      for (const [name, mock, evidence] of failing) {
        it(name, async function () {
          const f = await loadFixture(policiesFixture);
          await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks[mock]);
          // A caller with ample gas: the cap, not the caller's budget, stops the policy.
          const answer = await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, evidence, { gasLimit: 30_000_000 });
          expect(answer).to.deep.equal([Check.Installable, f.mocks[mock], POLICY_FAILED]);
        });
      }

      it("for a vulnerable release too", async function () {
        const f = await loadFixture(policiesFixture);
        await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.overGas);
        await f.registry.connect(f.auditor).flagVulnerable(f.boot110.id, "CVE-2026-0042");
        expect(await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, "0x")).to.deep.equal([Check.ReleaseVulnerable, f.mocks.overGas, POLICY_FAILED]);
      });

      it("a policy within POLICY_GAS answers normally", async function () {
        const f = await loadFixture(policiesFixture);
        await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.withinGas);
        expect(await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, "0x", { gasLimit: 30_000_000 })).to.deep.equal([
          Check.Installable,
          f.mocks.withinGas,
          0n,
        ]);
      });

      it("a state-writing policy has written nothing", async function () {
        const f = await loadFixture(policiesFixture);
        await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.writer);
        await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, "0x");
        const writer = await ethers.getContractAt("PolicyMockWriter", f.mocks.writer);
        expect(await writer.calls()).to.equal(0n);
      });

      const malformed: Array<[string, keyof F["mocks"]]> = [
        ["a contract that returns nothing", "silent"],
        ["a contract that returns less than a word", "short"],
        ["a contract that returns more than a word", "long"],
      ];
      for (const [name, mock] of malformed) {
        it(name, async function () {
          const f = await loadFixture(policiesFixture);
          await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks[mock]);
          expect(await f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, "0x")).to.deep.equal([Check.Installable, f.mocks[mock], POLICY_FAILED]);
        });
      }

      it("a caller's transaction that runs the check goes through", async function () {
        // The checker in a state-changing transaction (as another contract would call it): the
        // policy's failure does not revert it.
        const f = await loadFixture(policiesFixture);
        await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.overGas);
        const data = f.policies.interface.encodeFunctionData("checkUpdate", [f.boot110.record, ON_BOOT_100, "0x"]);
        const tx = await f.outsider.sendTransaction({ to: await f.policies.getAddress(), data, gasLimit: 2_000_000 });
        const receipt = await tx.wait();
        expect(receipt!.status).to.equal(1);
        expect(receipt!.gasUsed).to.be.greaterThan(POLICY_GAS);
      });

      it("a caller that leaves the policy short of gas is told so (UpdatePoliciesOutOfGas), not given a refusal", async function () {
        const f = await loadFixture(policiesFixture);
        await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, f.mocks.overGas);
        await expect(f.policies.checkUpdate(f.boot110.record, ON_BOOT_100, "0x", { gasLimit: 300_000 })).to.be.revertedWithCustomError(
          f.policies,
          "UpdatePoliciesOutOfGas",
        );
      });
    });
  });
});
