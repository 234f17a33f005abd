import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { encodeVersion } from "../../agent/core/version";
import { catalogFixture, makeRelease, publish, dependsOn, ACME_SIGNER, COMPONENTS, ROLES } from "../helpers/registryFixture";

const V = encodeVersion;

enum Status {
  None,
  Active,
  Vulnerable,
  Revoked,
}

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

/**
 * Bootloader 1.0.0 (hw 1,2), 1.1.0 (hw 1), 1.2.0 (hw 2); sensor firmware 2.0.0 (hw 1,2)
 * depending on bootloader ^1.0.0.
 */
async function releasesFixture() {
  const base = await catalogFixture();
  const { registry, acmeAuthor, domain } = base;
  const p = (overrides: Parameters<typeof makeRelease>[0]) => publish(registry, acmeAuthor, makeRelease(overrides), ACME_SIGNER, domain);
  const boot100 = await p({ version: V("1.0.0"), hardware: [1, 2] });
  const boot110 = await p({ version: V("1.1.0"), hardware: [1] });
  const boot120 = await p({ version: V("1.2.0"), hardware: [2] });
  const sensor200 = await p({
    component: COMPONENTS.sensorFw,
    version: V("2.0.0"),
    hardware: [1, 2],
    dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")],
  });
  return { ...base, boot100, boot110, boot120, sensor200 };
}

describe("UpdateRegistry: release status and views (CAP-11.3-c, CAP-11.3-e, REQ-10b-ii, APP-II-2)", function () {
  describe("revokeRelease (CAP-11.3-c)", function () {
    it("revokes a release as malicious, finally, with the reason in the event", async function () {
      const { registry, auditor, boot110 } = await loadFixture(releasesFixture);
      await expect(registry.connect(auditor).revokeRelease(boot110.id, "signed image contains a backdoor"))
        .to.emit(registry, "ReleaseRevoked")
        .withArgs(boot110.id, COMPONENTS.bootloader, auditor.address, "signed image contains a backdoor");
      expect(await registry.releaseStatus(boot110.id)).to.equal(Status.Revoked);
      expect((await registry.releaseState(boot110.id)).status).to.equal(Status.Revoked);
    });

    it("lets an administrator revoke, and refuses everyone else", async function () {
      const { registry, admin, outsider, acmeAuthor, boot100 } = await loadFixture(releasesFixture);
      for (const who of [outsider, acmeAuthor]) {
        await expect(registry.connect(who).revokeRelease(boot100.id, "x"))
          .to.be.revertedWithCustomError(registry, "UpdateRegistryUnauthorized")
          .withArgs(who.address, ROLES.ADMINISTRATOR, ROLES.AUDITOR);
      }
      expect(await registry.releaseStatus(boot100.id)).to.equal(Status.Active);
      await expect(registry.connect(admin).revokeRelease(boot100.id, "x")).to.emit(registry, "ReleaseRevoked");
    });

    it("never lets a revoked release become active again: revoke and flag both refuse it", async function () {
      const { registry, auditor, boot100 } = await loadFixture(releasesFixture);
      await registry.connect(auditor).revokeRelease(boot100.id, "malicious");
      await expect(registry.connect(auditor).revokeRelease(boot100.id, "again"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryReleaseRevoked")
        .withArgs(boot100.id);
      await expect(registry.connect(auditor).flagVulnerable(boot100.id, "CVE-2026-0001"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryReleaseRevoked")
        .withArgs(boot100.id);
      expect(await registry.releaseStatus(boot100.id)).to.equal(Status.Revoked);
    });

    it("refuses an unknown release and an empty reason", async function () {
      const { registry, auditor, boot100 } = await loadFixture(releasesFixture);
      const unknown = keccak256(toUtf8Bytes("no such release"));
      await expect(registry.connect(auditor).revokeRelease(unknown, "x"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryUnknownRelease")
        .withArgs(unknown);
      await expect(registry.connect(auditor).revokeRelease(boot100.id, "")).to.be.revertedWithCustomError(registry, "UpdateRegistryEmptyReason");
      expect(await registry.releaseStatus(boot100.id)).to.equal(Status.Active);
    });

    it("keeps the component's latest version: a revoked version cannot be published again (REQ-10d-i)", async function () {
      const { registry, auditor, acmeAuthor, domain, boot120 } = await loadFixture(releasesFixture);
      await registry.connect(auditor).revokeRelease(boot120.id, "malicious");
      const [, , latest] = await registry.component(COMPONENTS.bootloader);
      expect(latest).to.equal(V("1.2.0"));
      await expect(publish(registry, acmeAuthor, makeRelease({ version: V("1.2.0") }), ACME_SIGNER, domain))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryVersionNotIncreasing")
        .withArgs(COMPONENTS.bootloader, V("1.2.0"), V("1.2.0"));
    });
  });

  describe("flagVulnerable (REQ-10b-ii)", function () {
    it("flags a release with an advisory reference", async function () {
      const { registry, auditor, boot100 } = await loadFixture(releasesFixture);
      await expect(registry.connect(auditor).flagVulnerable(boot100.id, "CVE-2026-12345"))
        .to.emit(registry, "ReleaseFlaggedVulnerable")
        .withArgs(boot100.id, COMPONENTS.bootloader, auditor.address, "CVE-2026-12345");
      expect(await registry.releaseStatus(boot100.id)).to.equal(Status.Vulnerable);
    });

    it("refuses a second flag, an unknown release, an empty advisory and an outsider", async function () {
      const { registry, auditor, outsider, boot100 } = await loadFixture(releasesFixture);
      await registry.connect(auditor).flagVulnerable(boot100.id, "CVE-1");
      await expect(registry.connect(auditor).flagVulnerable(boot100.id, "CVE-2"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryReleaseAlreadyVulnerable")
        .withArgs(boot100.id);
      await expect(registry.connect(auditor).flagVulnerable(ZeroHash, "CVE-3"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryUnknownRelease")
        .withArgs(ZeroHash);
      await expect(registry.connect(auditor).flagVulnerable(boot100.id, "")).to.be.revertedWithCustomError(registry, "UpdateRegistryEmptyReason");
      await expect(registry.connect(outsider).flagVulnerable(boot100.id, "CVE-4"))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR, ROLES.AUDITOR);
    });

    it("lets a vulnerable release still satisfy dependencies, and a revoked one not (APP-II-2)", async function () {
      const { registry, auditor, boot100, boot110, boot120 } = await loadFixture(releasesFixture);
      const range = dependsOn(COMPONENTS.bootloader, "^1.0.0");
      await registry.connect(auditor).flagVulnerable(boot120.id, "CVE-1");
      expect(await registry.findSatisfyingRelease(COMPONENTS.bootloader, range.minVersion, range.maxVersion)).to.equal(boot120.id);
      await registry.connect(auditor).revokeRelease(boot120.id, "malicious");
      expect(await registry.findSatisfyingRelease(COMPONENTS.bootloader, range.minVersion, range.maxVersion)).to.equal(boot110.id);
      await registry.connect(auditor).revokeRelease(boot110.id, "malicious");
      await registry.connect(auditor).revokeRelease(boot100.id, "malicious");
      expect(await registry.findSatisfyingRelease(COMPONENTS.bootloader, range.minVersion, range.maxVersion)).to.equal(ZeroHash);
    });
  });

  describe("views", function () {
    it("latestRelease: the newest not revoked, skipping vulnerable ones unless asked, so an outdated install shows (REQ-10b-i)", async function () {
      const { registry, auditor, boot110, boot120 } = await loadFixture(releasesFixture);
      expect(await registry.latestRelease(COMPONENTS.bootloader, false)).to.equal(boot120.id);
      await registry.connect(auditor).flagVulnerable(boot120.id, "CVE-1");
      expect(await registry.latestRelease(COMPONENTS.bootloader, false)).to.equal(boot110.id);
      expect(await registry.latestRelease(COMPONENTS.bootloader, true)).to.equal(boot120.id);
      await registry.connect(auditor).revokeRelease(boot120.id, "malicious");
      expect(await registry.latestRelease(COMPONENTS.bootloader, true)).to.equal(boot110.id);
      expect(await registry.latestRelease(COMPONENTS.globexApp, true)).to.equal(ZeroHash);
    });

    it("latestReleaseForHardware: the newest release that supports the device's hardware (REQ-10b-i, APP-II-2)", async function () {
      const { registry, auditor, boot100, boot110, boot120 } = await loadFixture(releasesFixture);
      expect(await registry.latestReleaseForHardware(COMPONENTS.bootloader, 1, false)).to.equal(boot110.id);
      expect(await registry.latestReleaseForHardware(COMPONENTS.bootloader, 2, false)).to.equal(boot120.id);
      expect(await registry.latestReleaseForHardware(COMPONENTS.bootloader, 3, false)).to.equal(ZeroHash);
      await registry.connect(auditor).revokeRelease(boot110.id, "malicious");
      expect(await registry.latestReleaseForHardware(COMPONENTS.bootloader, 1, false)).to.equal(boot100.id);
      await expect(registry.latestReleaseForHardware(COMPONENTS.bootloader, 4, false))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryUnknownHardwareClass")
        .withArgs(4);
    });

    it("findSatisfyingRelease: the newest unrevoked release inside [min, max)", async function () {
      const { registry, boot100, boot110 } = await loadFixture(releasesFixture);
      const r = (range: string) => {
        const d = dependsOn(COMPONENTS.bootloader, range);
        return registry.findSatisfyingRelease(COMPONENTS.bootloader, d.minVersion, d.maxVersion);
      };
      expect(await r("~1.1.0")).to.equal(boot110.id);
      expect(await r(">=1.0.0 <1.1.0")).to.equal(boot100.id);
      expect(await r("^2.0.0")).to.equal(ZeroHash);
      expect(await r(">=0.1.0 <1.0.0")).to.equal(ZeroHash);
    });

    describe("finding: latestRelease, latestReleaseForHardware and findSatisfyingRelease no longer walk every release (REQ-10b-i, APP-II-2)", function () {
      /**
       * 121 releases of the bootloader, 1.0.0 .. 1.120.0: the first for hardware 1, 2 and 3, the
       * next 60 for 1 and 2, the last 60 for 1 only. 100..120 revoked (in descending order, then
       * one out of order), 90..99 flagged vulnerable, 45 revoked, 30 flagged. Before the index each
       * view below walked up to all 121 releases (757,146 gas for hardware 3).
       */
      async function manyReleasesFixture() {
        const base = await catalogFixture();
        const { registry, acmeAuthor, auditor, domain } = base;
        const hardwareOf = (i: number) => (i === 0 ? [1, 2, 3] : i <= 60 ? [1, 2] : [1]);
        const releases: { id: string; version: bigint; hardware: number[]; status: "Active" | "Vulnerable" | "Revoked" }[] = [];
        for (let i = 0; i <= 120; i++) {
          const version = V(`1.${i}.0`);
          const { id } = await publish(registry, acmeAuthor, makeRelease({ version, hardware: hardwareOf(i) }), ACME_SIGNER, domain);
          releases.push({ id, version, hardware: hardwareOf(i), status: "Active" });
        }
        const flag = async (i: number) => {
          await registry.connect(auditor).flagVulnerable(releases[i].id, "CVE");
          releases[i].status = "Vulnerable";
        };
        const revoke = async (i: number) => {
          await registry.connect(auditor).revokeRelease(releases[i].id, "malicious");
          releases[i].status = "Revoked";
        };
        for (let i = 119; i >= 100; i--) await revoke(i);
        await revoke(120);
        for (let i = 90; i <= 99; i++) await flag(i);
        await flag(30);
        await revoke(45);
        await revoke(95); // vulnerable, then revoked
        return { ...base, releases };
      }

      type R = Awaited<ReturnType<typeof manyReleasesFixture>>["releases"];
      const newest = (releases: R, pick: (r: R[number]) => boolean) => [...releases].reverse().find(pick)?.id ?? ZeroHash;
      const usable = (r: R[number], includeVulnerable: boolean) => r.status === "Active" || (includeVulnerable && r.status === "Vulnerable");
      /**
       * Most gas a view may take here (an eth_call's gas, 21,000 of it the call itself): a binary
       * search over versions, at most log2(n) hops over revoked or vulnerable blocks, one look per
       * run of releases with the same hardware (three runs here).
       */
      const MAX_VIEW_GAS = 75_000n;

      it("answers what a walk over every release answers, within a bounded gas", async function () {
        const { registry, releases } = await loadFixture(manyReleasesFixture);
        const gasOf = async (data: string) => registry.runner!.provider!.estimateGas({ to: await registry.getAddress(), data });
        for (const includeVulnerable of [false, true]) {
          expect(await registry.latestRelease(COMPONENTS.bootloader, includeVulnerable)).to.equal(newest(releases, (r) => usable(r, includeVulnerable)));
          const call = registry.interface.encodeFunctionData("latestRelease", [COMPONENTS.bootloader, includeVulnerable]);
          expect(await gasOf(call)).to.be.lessThan(MAX_VIEW_GAS);
          for (const hw of [1, 2, 3]) {
            const expected = newest(releases, (r) => usable(r, includeVulnerable) && r.hardware.includes(hw));
            expect(await registry.latestReleaseForHardware(COMPONENTS.bootloader, hw, includeVulnerable), `hardware ${hw}`).to.equal(expected);
            const forHw = registry.interface.encodeFunctionData("latestReleaseForHardware", [COMPONENTS.bootloader, hw, includeVulnerable]);
            expect(await gasOf(forHw), `gas for hardware ${hw}`).to.be.lessThan(MAX_VIEW_GAS);
          }
        }
        for (const [min, max] of [
          ["1.0.0", "1.200.0"],
          ["1.0.0", "1.46.0"],
          ["1.40.0", "1.46.0"],
          ["1.45.0", "1.46.0"],
          ["1.100.0", "2.0.0"],
          ["1.96.0", "1.101.0"],
          ["2.0.0", "3.0.0"],
          ["0.1.0", "1.0.0"],
        ]) {
          const expected = newest(releases, (r) => r.status !== "Revoked" && r.version >= V(min) && r.version < V(max));
          expect(await registry.findSatisfyingRelease(COMPONENTS.bootloader, V(min), V(max)), `[${min}, ${max})`).to.equal(expected);
          const call = registry.interface.encodeFunctionData("findSatisfyingRelease", [COMPONENTS.bootloader, V(min), V(max)]);
          expect(await gasOf(call), `gas for [${min}, ${max})`).to.be.lessThan(MAX_VIEW_GAS);
        }
      });
    });

    it("releaseAt lists a component's releases in publishing order and refuses an index past the end", async function () {
      const { registry, boot100, boot110, boot120 } = await loadFixture(releasesFixture);
      expect(await Promise.all([0, 1, 2].map((i) => registry.releaseAt(COMPONENTS.bootloader, i)))).to.deep.equal([boot100.id, boot110.id, boot120.id]);
      await expect(registry.releaseAt(COMPONENTS.bootloader, 3))
        .to.be.revertedWithCustomError(registry, "UpdateRegistryReleaseIndexOutOfRange")
        .withArgs(COMPONENTS.bootloader, 3, 3);
    });

    it("releaseState and releaseStatus of an unknown release", async function () {
      const { registry } = await loadFixture(releasesFixture);
      await expect(registry.releaseState(ZeroHash)).to.be.revertedWithCustomError(registry, "UpdateRegistryUnknownRelease").withArgs(ZeroHash);
      expect(await registry.releaseStatus(ZeroHash)).to.equal(Status.None);
    });

    it("views on an unknown component revert with UpdateRegistryUnknownComponent", async function () {
      const { registry } = await loadFixture(releasesFixture);
      const c = keccak256(toUtf8Bytes("nobody"));
      for (const call of [
        () => registry.latestRelease(c, true),
        () => registry.latestReleaseForHardware(c, 1, true),
        () => registry.findSatisfyingRelease(c, 1, 2),
        () => registry.releaseAt(c, 0),
        () => registry.component(c),
      ]) {
        await expect(call()).to.be.revertedWithCustomError(registry, "UpdateRegistryUnknownComponent").withArgs(c);
      }
    });
  });

  describe("checkInstallable: hardware, dependencies and version order from the ledger (APP-II-2, REQ-10d-i)", function () {
    type F = Awaited<ReturnType<typeof releasesFixture>>;
    const boot = (v: string) => ({ component: COMPONENTS.bootloader, version: V(v) });
    const sensor = (v: string) => ({ component: COMPONENTS.sensorFw, version: V(v) });

    const cases: {
      name: string;
      setup?: (f: F) => Promise<unknown>;
      release: (f: F) => Parameters<F["registry"]["checkInstallable"]>[0];
      hw: number;
      installed: { component: string; version: bigint }[];
      expected: Check;
    }[] = [
      {
        name: "installable: hardware supported, dependency met, newer than installed",
        release: (f) => f.sensor200.record,
        hw: 1,
        installed: [boot("1.1.0"), sensor("1.9.0")],
        expected: Check.Installable,
      },
      {
        name: "installable as a first install of the component",
        release: (f) => f.sensor200.record,
        hw: 2,
        installed: [boot("1.0.0")],
        expected: Check.Installable,
      },
      {
        name: "unknown: a record that is not on the ledger (one field altered)",
        release: (f) => ({ ...f.sensor200.record, fileLink: "bafkreiforged" }),
        hw: 1,
        installed: [boot("1.1.0")],
        expected: Check.UnknownRelease,
      },
      {
        name: "revoked",
        setup: (f) => f.registry.connect(f.auditor).revokeRelease(f.sensor200.id, "malicious"),
        release: (f) => f.sensor200.record,
        hw: 1,
        installed: [boot("1.1.0")],
        expected: Check.ReleaseRevoked,
      },
      {
        name: "provider barred (REQ-10d-ii)",
        setup: (f) => f.registry.connect(f.auditor).barProvider(1, "malicious"),
        release: (f) => f.sensor200.record,
        hw: 1,
        installed: [boot("1.1.0")],
        expected: Check.ProviderBarred,
      },
      { name: "hardware not supported", release: (f) => f.boot110.record, hw: 2, installed: [], expected: Check.HardwareNotSupported },
      {
        name: "not newer than installed (same version)",
        release: (f) => f.sensor200.record,
        hw: 1,
        installed: [boot("1.1.0"), sensor("2.0.0")],
        expected: Check.NotNewerThanInstalled,
      },
      {
        name: "not newer than installed (downgrade)",
        release: (f) => f.boot100.record,
        hw: 1,
        installed: [boot("1.1.0")],
        expected: Check.NotNewerThanInstalled,
      },
      { name: "dependency not installed", release: (f) => f.sensor200.record, hw: 1, installed: [], expected: Check.DependencyNotInstalled },
      { name: "dependency out of range", release: (f) => f.sensor200.record, hw: 1, installed: [boot("0.9.0")], expected: Check.DependencyVersionOutOfRange },
      {
        name: "vulnerable but otherwise installable (the device policy decides)",
        setup: (f) => f.registry.connect(f.auditor).flagVulnerable(f.sensor200.id, "CVE-1"),
        release: (f) => f.sensor200.record,
        hw: 1,
        installed: [boot("1.1.0")],
        expected: Check.ReleaseVulnerable,
      },
      {
        name: "vulnerable and on the wrong hardware: the hard failure wins",
        setup: (f) => f.registry.connect(f.auditor).flagVulnerable(f.boot110.id, "CVE-1"),
        release: (f) => f.boot110.record,
        hw: 2,
        installed: [],
        expected: Check.HardwareNotSupported,
      },
    ];

    for (const c of cases) {
      it(`reports ${Check[c.expected]}: ${c.name}`, async function () {
        const f = await loadFixture(releasesFixture);
        if (c.setup) await c.setup(f);
        expect(await f.registry.checkInstallable(c.release(f), c.hw, c.installed)).to.equal(c.expected);
      });
    }
  });
});
