import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { AbiCoder, keccak256, toUtf8Bytes } from "ethers";
import { encodeVersion } from "../../agent/core/version";
import type { ReleaseRecord } from "../../agent/core/release";
import { ACME_SIGNER, COMPONENTS, GLOBEX_SIGNER, catalogFixture, dependsOn, makeRelease, publish, type Published } from "../helpers/registryFixture";
import { itRejectsWithoutChange, type RejectionCase } from "../helpers/itRejects";
import type { ReleaseBundles } from "../../typechain-types";

const V = encodeVersion;

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

/** Members in a bundle's order: ascending by component id. */
function ordered(...members: Published[]): Published[] {
  return [...members].sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1));
}
const records = (members: Published[]): ReleaseRecord[] => members.map((m) => m.record);
const at = (component: string, version: string) => ({ component, version: V(version) });

/**
 * The catalog plus: bootloader 1.0.0 and 2.0.0 (hw 1, 2); sensor firmware 2.0.0 (hw 1, 2) on
 * bootloader ^1.0.0 and 3.0.0 (hw 1, 2) on bootloader ^2.0.0; radio firmware 1.0.0 (hw 2, 3) and
 * 2.0.0 (hw 1, 2) on sensor firmware ^2.0.0 (a dependency a bundle of bootloader and radio leaves
 * outside); globex app 1.0.0 (hw 1); ReleaseBundles beside the registry.
 */
async function bundlesFixture() {
  const base = await catalogFixture();
  const { registry, acmeAuthor, globexAuthor, domain } = base;
  const p = (overrides: Partial<ReleaseRecord>) => publish(registry, acmeAuthor, makeRelease(overrides), ACME_SIGNER, domain);
  const boot100 = await p({ version: V("1.0.0"), hardware: [1, 2] });
  const sensor200 = await p({
    component: COMPONENTS.sensorFw,
    version: V("2.0.0"),
    hardware: [1, 2],
    dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")],
  });
  const boot200 = await p({ version: V("2.0.0"), hardware: [1, 2] });
  const sensor300 = await p({
    component: COMPONENTS.sensorFw,
    version: V("3.0.0"),
    hardware: [1, 2],
    dependencies: [dependsOn(COMPONENTS.bootloader, "^2.0.0")],
  });
  const radio100 = await p({ component: COMPONENTS.radioFw, version: V("1.0.0"), hardware: [2, 3] });
  const radio200 = await p({ component: COMPONENTS.radioFw, version: V("2.0.0"), hardware: [1, 2], dependencies: [dependsOn(COMPONENTS.sensorFw, "^2.0.0")] });
  const app100 = await publish(registry, globexAuthor, makeRelease({ provider: 2, component: COMPONENTS.globexApp, hardware: [1] }), GLOBEX_SIGNER, domain);
  const bundles = (await ethers.deployContract("ReleaseBundles", [await registry.getAddress()])) as unknown as ReleaseBundles;
  return { ...base, bundles, boot100, boot200, sensor200, sensor300, radio100, radio200, app100 };
}
type F = Awaited<ReturnType<typeof bundlesFixture>>;

/** A fixture with the bundle "sensor-kit" 1.0.0 of bootloader 2.0.0 and sensor firmware 3.0.0 created. */
async function createdFixture() {
  const f = await bundlesFixture();
  const members = ordered(f.boot200, f.sensor300);
  await (await f.bundles.connect(f.acmeAuthor).createBundle("sensor-kit", V("1.0.0"), records(members))).wait();
  const id = await f.bundles.bundleId(1, "sensor-kit", V("1.0.0"));
  return { ...f, kit: { id, members } };
}

describe("ReleaseBundles: releases of several components installed together (issue 19)", function () {
  describe("createBundle", function () {
    it("APP-II-2 creates a bundle whose member depends on another member's version, with every field in the event and the views", async function () {
      const { bundles, acmeAuthor, boot200, sensor300 } = await loadFixture(bundlesFixture);
      const members = ordered(boot200, sensor300);
      const id = await bundles.bundleId(1, "sensor-kit", V("1.0.0"));
      expect(id).to.equal(
        keccak256(
          AbiCoder.defaultAbiCoder().encode(
            ["uint256", "address", "uint32", "bytes32", "uint64"],
            [(await ethers.provider.getNetwork()).chainId, await bundles.getAddress(), 1, keccak256(toUtf8Bytes("sensor-kit")), V("1.0.0")],
          ),
        ),
      );
      const tx = bundles.connect(acmeAuthor).createBundle("sensor-kit", V("1.0.0"), records(members));
      await expect(tx)
        .to.emit(bundles, "BundleCreated")
        .withArgs(
          id,
          1,
          keccak256(toUtf8Bytes("sensor-kit")),
          "sensor-kit",
          V("1.0.0"),
          (t: bigint) => t > 0n,
          members.map((m) => m.id),
          members.map((m) => m.record.component),
          [1, 2],
          acmeAuthor.address,
        );
      const stored = await bundles.bundle(id);
      expect(stored.provider).to.equal(1n);
      expect(stored.version).to.equal(V("1.0.0"));
      expect(stored.createdAt).to.equal(BigInt((await ethers.provider.getBlock("latest"))!.timestamp));
      expect(stored.releaseIds).to.deep.equal(members.map((m) => m.id));
      expect(await bundles.latestBundleVersion(1, "sensor-kit")).to.equal(V("1.0.0"));
      expect(await bundles.latestBundleVersion(1, "other")).to.equal(0n);
    });

    it("emits the hardware every member supports, and takes a newer version of the same name", async function () {
      const { bundles, acmeAuthor, boot200, radio100 } = await loadFixture(bundlesFixture);
      const first = ordered(boot200, radio100);
      await expect(bundles.connect(acmeAuthor).createBundle("radio-kit", V("1.0.0"), records(first)))
        .to.emit(bundles, "BundleCreated")
        .withArgs(
          await bundles.bundleId(1, "radio-kit", V("1.0.0")),
          1,
          keccak256(toUtf8Bytes("radio-kit")),
          "radio-kit",
          V("1.0.0"),
          (t: bigint) => t > 0n,
          first.map((m) => m.id),
          first.map((m) => m.record.component),
          [2],
          acmeAuthor.address,
        );
      await expect(bundles.connect(acmeAuthor).createBundle("radio-kit", V("1.1.0"), records(ordered(boot200, radio100)))).to.emit(bundles, "BundleCreated");
      expect(await bundles.latestBundleVersion(1, "radio-kit")).to.equal(V("1.1.0"));
    });

    it("takes a member flagged vulnerable (not revoked), and a member whose dependency is outside the bundle", async function () {
      const { bundles, registry, auditor, acmeAuthor, boot200, radio200 } = await loadFixture(bundlesFixture);
      await registry.connect(auditor).flagVulnerable(boot200.id, "CVE-2026-0001");
      await expect(bundles.connect(acmeAuthor).createBundle("radio-kit", V("2.0.0"), records(ordered(boot200, radio200)))).to.emit(bundles, "BundleCreated");
    });

    it("knows its registry", async function () {
      const { bundles, registry } = await loadFixture(bundlesFixture);
      expect(await bundles.updateRegistry()).to.equal(await registry.getAddress());
    });

    const cases: RejectionCase<F>[] = [
      {
        name: "a single member (a bundle has 2 to 8)",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), [f.boot200.record]),
          error: "ReleaseBundlesMemberCount",
          args: [1, 2, 8],
        }),
      },
      {
        name: "nine members",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), Array(9).fill(f.boot200.record)),
          error: "ReleaseBundlesMemberCount",
          args: [9, 2, 8],
        }),
      },
      {
        name: "an empty name",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("", V("1.0.0"), records(ordered(f.boot200, f.sensor300))),
          error: "ReleaseBundlesEmptyName",
        }),
      },
      {
        name: "a name longer than 64 bytes",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("k".repeat(65), V("1.0.0"), records(ordered(f.boot200, f.sensor300))),
          error: "ReleaseBundlesNameTooLong",
          args: [65, 64],
        }),
      },
      {
        name: "a malformed version",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", 0xc000n, records(ordered(f.boot200, f.sensor300))),
          error: "ReleaseBundlesInvalidVersion",
          args: [0xc000n],
        }),
      },
      {
        name: "REQ-10d-i a version not above the name's latest",
        run: async (f) => {
          await f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.1.0"), records(ordered(f.boot200, f.sensor300)));
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(ordered(f.boot200, f.sensor300))),
            error: "ReleaseBundlesVersionNotIncreasing",
            args: [1, "kit", V("1.1.0"), V("1.0.0")],
          };
        },
      },
      {
        name: "a record that is not on the registry",
        run: async (f) => {
          const forged = { ...f.sensor300.record, fileHash: keccak256(toUtf8Bytes("other bytes")) };
          const members = [f.boot200, { ...f.sensor300, record: forged }].sort((a, b) => (BigInt(a.record.component) < BigInt(b.record.component) ? -1 : 1));
          const index = members.findIndex((m) => m.record === forged);
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(members)),
            error: "ReleaseBundlesUnknownRelease",
            args: [index, await f.registry.releaseId(forged)],
          };
        },
      },
      {
        name: "a revoked member",
        run: async (f) => {
          await f.registry.connect(f.auditor).revokeRelease(f.sensor300.id, "malicious");
          const members = ordered(f.boot200, f.sensor300);
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(members)),
            error: "ReleaseBundlesMemberRevoked",
            args: [members.indexOf(f.sensor300), f.sensor300.id],
          };
        },
      },
      {
        name: "members of two providers",
        run: async (f) => {
          const members = ordered(f.boot200, f.app100);
          const [first, second] = members.map((m) => Number(m.record.provider));
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(members)),
            error: "ReleaseBundlesMixedProviders",
            args: [1, first, second],
          };
        },
      },
      {
        name: "a caller who is no author",
        run: async (f) => ({
          call: () => f.bundles.connect(f.outsider).createBundle("kit", V("1.0.0"), records(ordered(f.boot200, f.sensor300))),
          error: "ReleaseBundlesCreatorNotAuthor",
          args: [f.outsider.address, 1],
        }),
      },
      {
        name: "an author of another provider",
        run: async (f) => ({
          call: () => f.bundles.connect(f.globexAuthor).createBundle("kit", V("1.0.0"), records(ordered(f.boot200, f.sensor300))),
          error: "ReleaseBundlesCreatorNotAuthor",
          args: [f.globexAuthor.address, 1],
        }),
      },
      {
        name: "CAP-11.3-c members of a barred provider",
        run: async (f) => {
          await f.registry.connect(f.admin).barProvider(1, "key leak");
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(ordered(f.boot200, f.sensor300))),
            error: "ReleaseBundlesProviderBarred",
            args: [1],
          };
        },
      },
      {
        name: "members out of component order",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(ordered(f.boot200, f.sensor300).reverse())),
          error: "ReleaseBundlesMembersNotAscending",
          args: [1],
        }),
      },
      {
        name: "two releases of one component",
        run: async (f) => ({
          call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), [f.boot100.record, f.boot200.record]),
          error: "ReleaseBundlesMembersNotAscending",
          args: [1],
        }),
      },
      {
        name: "APP-II-2 members with no hardware class in common",
        run: async (f) => {
          const boot = await publish(f.registry, f.acmeAuthor, makeRelease({ version: V("2.1.0"), hardware: [1] }), ACME_SIGNER, f.domain);
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(ordered(boot, f.radio100))),
            error: "ReleaseBundlesNoCommonHardware",
          };
        },
      },
      {
        name: "APP-II-2 a member whose dependency on another member's component that member's version does not meet",
        run: async (f) => {
          const members = ordered(f.boot100, f.sensor300); // sensor 3.0.0 needs bootloader ^2.0.0
          return {
            call: () => f.bundles.connect(f.acmeAuthor).createBundle("kit", V("1.0.0"), records(members)),
            error: "ReleaseBundlesDependencyNotSatisfied",
            args: [members.indexOf(f.sensor300), 0, COMPONENTS.bootloader, V("1.0.0")],
          };
        },
      },
    ];
    itRejectsWithoutChange(cases, {
      fixture: bundlesFixture,
      contract: (f) => f.bundles,
      snapshot: async (f) => [
        await f.bundles.latestBundleVersion(1, "kit"),
        await f.bundles.latestBundleVersion(2, "kit"),
        (await f.bundles.queryFilter(f.bundles.filters.BundleCreated())).length,
      ],
    });

    it("keeps bundles of the same name apart per provider", async function () {
      const { bundles } = await loadFixture(createdFixture);
      expect(await bundles.bundleId(2, "sensor-kit", V("1.0.0"))).to.not.equal(await bundles.bundleId(1, "sensor-kit", V("1.0.0")));
      expect(await bundles.latestBundleVersion(2, "sensor-kit")).to.equal(0n);
    });
  });

  describe("bundle", function () {
    it("reverts for an unknown id", async function () {
      const { bundles } = await loadFixture(createdFixture);
      const unknown = keccak256(toUtf8Bytes("no such bundle"));
      await expect(bundles.bundle(unknown)).to.be.revertedWithCustomError(bundles, "ReleaseBundlesUnknownBundle").withArgs(unknown);
    });
  });

  describe("checkBundle: is the bundle installable on this device, as one transaction", function () {
    it("APP-II-2 a member that depends on another member's version is installable with it, though not alone", async function () {
      const { bundles, registry, kit, sensor300 } = await loadFixture(createdFixture);
      const installed = [at(COMPONENTS.bootloader, "1.0.0"), at(COMPONENTS.sensorFw, "2.0.0")];
      expect(await registry.checkInstallable(sensor300.record, 1, installed)).to.equal(Check.DependencyVersionOutOfRange);
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, installed)).to.deep.equal([Check.Installable, 0n]);
      expect(await bundles.checkBundle(kit.id, records(kit.members), 2, [])).to.deep.equal([Check.Installable, 0n]);
    });

    it("APP-II-2 refuses hardware a member does not support, naming the first member", async function () {
      const { bundles, kit } = await loadFixture(createdFixture);
      expect(await bundles.checkBundle(kit.id, records(kit.members), 3, [])).to.deep.equal([Check.HardwareNotSupported, 0n]);
    });

    it("APP-II-2 checks a dependency outside the bundle against the device's installed versions", async function () {
      const { bundles, acmeAuthor, boot200, radio200 } = await loadFixture(bundlesFixture);
      const members = ordered(boot200, radio200);
      await bundles.connect(acmeAuthor).createBundle("radio-kit", V("2.0.0"), records(members));
      const id = await bundles.bundleId(1, "radio-kit", V("2.0.0"));
      const radio = members.indexOf(radio200);
      expect(await bundles.checkBundle(id, records(members), 1, [at(COMPONENTS.bootloader, "1.0.0")])).to.deep.equal([
        Check.DependencyNotInstalled,
        BigInt(radio),
      ]);
      expect(await bundles.checkBundle(id, records(members), 1, [at(COMPONENTS.sensorFw, "3.0.0")])).to.deep.equal([
        Check.DependencyVersionOutOfRange,
        BigInt(radio),
      ]);
      expect(await bundles.checkBundle(id, records(members), 1, [at(COMPONENTS.sensorFw, "2.0.0")])).to.deep.equal([Check.Installable, 0n]);
    });

    it("REQ-10d-i refuses a bundle with a member older than the installed version, and one installed whole already", async function () {
      const { bundles, kit } = await loadFixture(createdFixture);
      const sensor = kit.members.findIndex((m) => m.record.component === COMPONENTS.sensorFw);
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, [at(COMPONENTS.sensorFw, "3.1.0")])).to.deep.equal([
        Check.NotNewerThanInstalled,
        BigInt(sensor),
      ]);
      const whole = [at(COMPONENTS.bootloader, "2.0.0"), at(COMPONENTS.sensorFw, "3.0.0")];
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, whole)).to.deep.equal([Check.NotNewerThanInstalled, 0n]);
    });

    it("leaves a member already installed at its version in place and checks the others", async function () {
      const { bundles, kit } = await loadFixture(createdFixture);
      const installed = [at(COMPONENTS.bootloader, "2.0.0"), at(COMPONENTS.sensorFw, "2.0.0")];
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, installed)).to.deep.equal([Check.Installable, 0n]);
    });

    it("CAP-11.3-c refuses a bundle whose member was revoked since, naming it", async function () {
      const { bundles, registry, auditor, kit, sensor300 } = await loadFixture(createdFixture);
      await registry.connect(auditor).revokeRelease(sensor300.id, "malicious");
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, [])).to.deep.equal([Check.ReleaseRevoked, BigInt(kit.members.indexOf(sensor300))]);
    });

    it("REQ-10b-ii says vulnerable, naming the first vulnerable member, when that is all; a refusal of another member goes first", async function () {
      const { bundles, registry, auditor, kit } = await loadFixture(createdFixture);
      await registry.connect(auditor).flagVulnerable(kit.members[0].id, "CVE-2026-0002");
      await registry.connect(auditor).flagVulnerable(kit.members[1].id, "CVE-2026-0003");
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, [])).to.deep.equal([Check.ReleaseVulnerable, 0n]);
      await registry.connect(auditor).revokeRelease(kit.members[1].id, "malicious");
      expect(await bundles.checkBundle(kit.id, records(kit.members), 1, [])).to.deep.equal([Check.ReleaseRevoked, 1n]);
    });

    it("reverts for an unknown bundle, and for records that are not the bundle's members in its order", async function () {
      const { bundles, kit, boot100 } = await loadFixture(createdFixture);
      const unknown = keccak256(toUtf8Bytes("no such bundle"));
      await expect(bundles.checkBundle(unknown, records(kit.members), 1, []))
        .to.be.revertedWithCustomError(bundles, "ReleaseBundlesUnknownBundle")
        .withArgs(unknown);
      await expect(bundles.checkBundle(kit.id, [kit.members[0].record], 1, []))
        .to.be.revertedWithCustomError(bundles, "ReleaseBundlesMembersMismatch")
        .withArgs(kit.id, 1);
      await expect(bundles.checkBundle(kit.id, [...records(kit.members), boot100.record], 1, []))
        .to.be.revertedWithCustomError(bundles, "ReleaseBundlesMembersMismatch")
        .withArgs(kit.id, 2);
      await expect(bundles.checkBundle(kit.id, records(kit.members).reverse(), 1, []))
        .to.be.revertedWithCustomError(bundles, "ReleaseBundlesMembersMismatch")
        .withArgs(kit.id, 0);
    });
  });
});
