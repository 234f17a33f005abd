import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, ZeroAddress, keccak256, toUtf8Bytes } from "ethers";
import { ACME_SIGNER, COMPONENTS, catalogFixture, dependsOn, makeRelease, publish } from "../helpers/registryFixture";
import { encodeVersion } from "../../agent/core/version";
import { signRelease } from "../../agent/crypto/releaseSignature";
import { INSTALL_CHECK } from "../../agent/core/ledgerCodes";

/** The key a provider rotates to. */
const NEXT_KEY = new Wallet(keccak256(toUtf8Bytes("acme release signing key, 2027")));
const v = encodeVersion;

type Fixture = Awaited<ReturnType<typeof catalogFixture>>;

async function installable(f: Fixture, record: ReturnType<typeof makeRelease>, installed: { component: string; version: bigint }[] = []): Promise<string> {
  return INSTALL_CHECK[Number(await f.registry.checkInstallable(record, record.hardware[0], installed))];
}

async function term(f: Fixture, provider: number, signer: string) {
  const [ordinal, addedAt, retiredAt, compromised, compromisedSince] = await f.registry.providerSignerTerm(provider, signer);
  return { ordinal: Number(ordinal), addedAt: Number(addedAt), retiredAt: Number(retiredAt), compromised, compromisedSince: Number(compromisedSince) };
}

describe("UpdateRegistry: signer rotation that keeps old releases valid (issue 19, item 7; docs/adr/0016)", function () {
  describe("rotation", function () {
    it("REQ-10d-ii CAP-11.4-a: after rotation a rotated-out key's releases stay valid and installable, new releases need the new key, and the retired key signs no new one", async function () {
      const f = await loadFixture(catalogFixture);
      const old = await publish(f.registry, f.acmeAuthor, makeRelease({ version: v("1.0.0") }), ACME_SIGNER, f.domain);
      expect(await f.registry.releaseSigner(old.id)).to.deep.equal([ACME_SIGNER.address, true]);

      // Rotation: the new key first, then the old one retired; there is always a key.
      await expect(f.registry.connect(f.admin).addProviderSigner(1, NEXT_KEY.address)).to.emit(f.registry, "ProviderSignerAdded").withArgs(1, NEXT_KEY.address);
      const retire = await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
      await expect(retire).to.emit(f.registry, "ProviderSignerRemoved").withArgs(1, ACME_SIGNER.address);
      const retiredAt = (await ethers.provider.getBlock((await retire.wait())!.blockNumber))!.timestamp;

      expect(await f.registry.isProviderSigner(1, ACME_SIGNER.address)).to.equal(false);
      expect(await term(f, 1, ACME_SIGNER.address)).to.deep.include({ ordinal: 1, retiredAt, compromised: false });
      expect(await term(f, 1, NEXT_KEY.address)).to.deep.include({ ordinal: 2, retiredAt: 0 });
      // The old release: still signed validly, still installable.
      expect(await f.registry.releaseSigner(old.id)).to.deep.equal([ACME_SIGNER.address, true]);
      expect(await installable(f, old.record)).to.equal("INSTALLABLE");

      // The retired key cannot sign a new release; the new key can.
      const next = makeRelease({ version: v("1.1.0") });
      const byOld = await signRelease(ACME_SIGNER, f.domain, next);
      await expect(f.registry.connect(f.acmeAuthor).publishRelease(next, ACME_SIGNER.address, byOld, []))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerNotAuthorized")
        .withArgs(1, ACME_SIGNER.address);
      const published = await publish(f.registry, f.acmeAuthor, next, NEXT_KEY, f.domain);
      expect(await f.registry.releaseSigner(published.id)).to.deep.equal([NEXT_KEY.address, true]);
      expect(await installable(f, next, [{ component: COMPONENTS.bootloader, version: v("1.0.0") }])).to.equal("INSTALLABLE");
      // An unknown id has no signer.
      expect(await f.registry.releaseSigner(keccak256("0x01"))).to.deep.equal([ZeroAddress, false]);
      // Retiring it again is refused: it cannot sign now.
      await expect(f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerNotAuthorized")
        .withArgs(1, ACME_SIGNER.address);
    });

    it("REQ-10d-ii: a key added back after its retirement keeps its ordinal and first time, so what it signed before stays valid", async function () {
      const f = await loadFixture(catalogFixture);
      const addedAt = (await term(f, 1, ACME_SIGNER.address)).addedAt;
      const old = await publish(f.registry, f.acmeAuthor, makeRelease({ version: v("1.0.0") }), ACME_SIGNER, f.domain);
      await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
      await time.increase(3600);
      await f.registry.connect(f.admin).addProviderSigner(1, ACME_SIGNER.address);
      expect(await term(f, 1, ACME_SIGNER.address)).to.deep.equal({ ordinal: 1, addedAt, retiredAt: 0, compromised: false, compromisedSince: 0 });
      const again = await publish(f.registry, f.acmeAuthor, makeRelease({ version: v("1.1.0") }), ACME_SIGNER, f.domain);
      for (const r of [old, again]) expect(await f.registry.releaseSigner(r.id)).to.deep.equal([ACME_SIGNER.address, true]);
    });

    it("APP-II-2 REQ-10d-ii: an old dependency stays installable after rotation: a release whose dependency's only satisfying release was signed by a rotated-out key is published and installable", async function () {
      const f = await loadFixture(catalogFixture);
      const boot = await publish(f.registry, f.acmeAuthor, makeRelease({ component: COMPONENTS.bootloader, version: v("1.0.0") }), ACME_SIGNER, f.domain);
      await f.registry.connect(f.admin).addProviderSigner(1, NEXT_KEY.address);
      await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
      const sensor = makeRelease({ component: COMPONENTS.sensorFw, version: v("2.0.0"), dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")] });
      expect(await f.registry.findSatisfyingRelease(COMPONENTS.bootloader, v("1.0.0"), v("2.0.0"))).to.equal(boot.id);
      await publish(f.registry, f.acmeAuthor, sensor, NEXT_KEY, f.domain);
      expect(await installable(f, sensor, [{ component: COMPONENTS.bootloader, version: v("1.0.0") }])).to.equal("INSTALLABLE");
      expect(await installable(f, boot.record)).to.equal("INSTALLABLE");
    });

    it("refuses a 256th key for one provider: a release slot names its key in one byte", async function () {
      const f = await loadFixture(catalogFixture);
      expect(await f.registry.MAX_SIGNERS_PER_PROVIDER()).to.equal(255n);
      for (let i = 2; i <= 255; i++) await f.registry.connect(f.admin).addProviderSigner(1, ethers.toBeHex(0x1000 + i, 20));
      expect((await term(f, 1, ethers.toBeHex(0x1000 + 255, 20))).ordinal).to.equal(255);
      await expect(f.registry.connect(f.admin).addProviderSigner(1, NEXT_KEY.address))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerLimitReached")
        .withArgs(1, 255);
      // Another provider's keys are counted apart.
      await expect(f.registry.connect(f.admin).addProviderSigner(2, NEXT_KEY.address)).to.emit(f.registry, "ProviderSignerAdded");
    });
  });

  describe("a key retired as compromised", function () {
    async function compromised() {
      const f = await catalogFixture();
      const before = await publish(f.registry, f.acmeAuthor, makeRelease({ component: COMPONENTS.bootloader, version: v("1.0.0") }), ACME_SIGNER, f.domain);
      await time.increase(3600);
      const since = (await time.latest()) + 1;
      await time.setNextBlockTimestamp(since);
      // The attacker's release, signed with the stolen key at the compromise time.
      const after = await publish(f.registry, f.acmeAuthor, makeRelease({ component: COMPONENTS.bootloader, version: v("1.0.1") }), ACME_SIGNER, f.domain);
      await f.registry.connect(f.admin).addProviderSigner(1, NEXT_KEY.address);
      return { ...f, before, after, since };
    }

    it("REQ-10d-ii CAP-11.3-c: releases the compromised key signed from the compromise time are invalid (SignerCompromised), those before it valid; the key is retired and never signs or returns", async function () {
      const f = await loadFixture(compromised);
      const tx = f.registry.connect(f.auditor).retireCompromisedSigner(1, ACME_SIGNER.address, f.since);
      await expect(tx).to.emit(f.registry, "ProviderSignerCompromised").withArgs(1, ACME_SIGNER.address, f.since, f.auditor.address);
      expect(await term(f, 1, ACME_SIGNER.address)).to.deep.include({ compromised: true, compromisedSince: f.since });
      expect((await term(f, 1, ACME_SIGNER.address)).retiredAt).to.be.greaterThan(0);
      expect(await f.registry.isProviderSigner(1, ACME_SIGNER.address)).to.equal(false);

      expect(await f.registry.releaseSigner(f.before.id)).to.deep.equal([ACME_SIGNER.address, true]);
      expect(await f.registry.releaseSigner(f.after.id)).to.deep.equal([ACME_SIGNER.address, false]);
      expect(await installable(f, f.before.record)).to.equal("INSTALLABLE");
      expect(await installable(f, f.after.record)).to.equal("SIGNER_COMPROMISED");
      // Revoked first stays revoked; the bar still comes before the key.
      await f.registry.connect(f.auditor).barProvider(1, "stolen key");
      expect(await installable(f, f.after.record)).to.equal("PROVIDER_BARRED");
      await f.registry.connect(f.admin).unbarProvider(1);

      // The compromised key signs nothing new and cannot be added back.
      const next = makeRelease({ component: COMPONENTS.bootloader, version: v("1.1.0") });
      await expect(f.registry.connect(f.acmeAuthor).publishRelease(next, ACME_SIGNER.address, await signRelease(ACME_SIGNER, f.domain, next), []))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerNotAuthorized")
        .withArgs(1, ACME_SIGNER.address);
      await expect(f.registry.connect(f.admin).addProviderSigner(1, ACME_SIGNER.address))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerCompromised")
        .withArgs(1, ACME_SIGNER.address, f.since);
      // The new key publishes; a release above the attacker's version is installable over it.
      await publish(f.registry, f.acmeAuthor, next, NEXT_KEY, f.domain);
      expect(await installable(f, next, [{ component: COMPONENTS.bootloader, version: v("1.0.0") }])).to.equal("INSTALLABLE");
    });

    it("APP-II-2 CAP-11.3-c: a release signed after its key's compromise time witnesses no dependency; one signed before still does", async function () {
      const f = await loadFixture(compromised);
      await f.registry.connect(f.admin).retireCompromisedSigner(1, ACME_SIGNER.address, f.since);
      const onAfter = makeRelease({ component: COMPONENTS.sensorFw, version: v("2.0.0"), dependencies: [dependsOn(COMPONENTS.bootloader, ">=1.0.1 <2.0.0")] });
      await expect(
        f.registry.connect(f.acmeAuthor).publishRelease(onAfter, NEXT_KEY.address, await signRelease(NEXT_KEY, f.domain, onAfter), [f.after.id]),
      ).to.be.revertedWithCustomError(f.registry, "UpdateRegistryDependencyNotSatisfied");
      const onBefore = makeRelease({ component: COMPONENTS.sensorFw, version: v("2.0.0"), dependencies: [dependsOn(COMPONENTS.bootloader, "1.0.0")] });
      await expect(
        f.registry.connect(f.acmeAuthor).publishRelease(onBefore, NEXT_KEY.address, await signRelease(NEXT_KEY, f.domain, onBefore), [f.before.id]),
      ).to.emit(f.registry, "ReleasePublished");
    });

    it("REQ-10d-ii: a key rotated out and later found compromised: the time may move earlier, never later, nor into the future; only administrators and auditors declare it, of a key the provider had", async function () {
      const f = await loadFixture(compromised);
      await f.registry.connect(f.admin).removeProviderSigner(1, ACME_SIGNER.address);
      const retiredAt = (await term(f, 1, ACME_SIGNER.address)).retiredAt;
      // Declared on a retired key: its retirement time stays.
      await expect(f.registry.connect(f.admin).retireCompromisedSigner(1, ACME_SIGNER.address, f.since)).to.emit(f.registry, "ProviderSignerCompromised");
      expect(await term(f, 1, ACME_SIGNER.address)).to.deep.include({ retiredAt, compromised: true, compromisedSince: f.since });
      expect(await f.registry.releaseSigner(f.before.id)).to.deep.equal([ACME_SIGNER.address, true]);
      for (const later of [f.since, f.since + 1]) {
        await expect(f.registry.connect(f.admin).retireCompromisedSigner(1, ACME_SIGNER.address, later))
          .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerCompromised")
          .withArgs(1, ACME_SIGNER.address, f.since);
      }
      // Earlier: the investigation found the key was stolen before the first release, too.
      await f.registry.connect(f.auditor).retireCompromisedSigner(1, ACME_SIGNER.address, 0);
      expect(await f.registry.releaseSigner(f.before.id)).to.deep.equal([ACME_SIGNER.address, false]);
      expect(await installable(f, f.before.record)).to.equal("SIGNER_COMPROMISED");

      const now = await time.latest();
      await expect(f.registry.connect(f.admin).retireCompromisedSigner(1, NEXT_KEY.address, now + 3600))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistryCompromiseInFuture")
        .withArgs(now + 3600, now + 1);
      await expect(f.registry.connect(f.admin).retireCompromisedSigner(2, NEXT_KEY.address, now))
        .to.be.revertedWithCustomError(f.registry, "UpdateRegistrySignerNotAuthorized")
        .withArgs(2, NEXT_KEY.address);
      await expect(f.registry.connect(f.outsider).retireCompromisedSigner(1, NEXT_KEY.address, now)).to.be.revertedWithCustomError(
        f.registry,
        "UpdateRegistryUnauthorized",
      );
      expect(await f.registry.isProviderSigner(1, NEXT_KEY.address)).to.equal(true);
    });
  });

  describe("contract (ERC-1271) signers", function () {
    it("REQ-10d-ii CAP-11.4-a: a contract signer rotated out keeps its releases valid; retired as compromised, what it signed from the time on is invalid", async function () {
      const f = await loadFixture(catalogFixture);
      const owner = new Wallet(keccak256(toUtf8Bytes("multisig owner")));
      const wallet = await ethers.deployContract("ERC1271SignerMock", [owner.address]);
      const address = await wallet.getAddress();
      await f.registry.connect(f.admin).addProviderSigner(1, address);
      const viaContract = async (version: string) => {
        const record = makeRelease({ version: v(version) });
        await f.registry.connect(f.acmeAuthor).publishRelease(record, address, await signRelease(owner, f.domain, record), []);
        return { id: await f.registry.releaseId(record), record };
      };
      const first = await viaContract("1.0.0");
      await time.increase(60);
      const since = (await time.latest()) + 1;
      await time.setNextBlockTimestamp(since);
      const second = await viaContract("1.0.1");
      await f.registry.connect(f.admin).removeProviderSigner(1, address);
      for (const r of [first, second]) {
        expect(await f.registry.releaseSigner(r.id)).to.deep.equal([address, true]);
        expect(await installable(f, r.record)).to.equal("INSTALLABLE");
      }
      await f.registry.connect(f.auditor).retireCompromisedSigner(1, address, since);
      expect(await f.registry.releaseSigner(first.id)).to.deep.equal([address, true]);
      expect(await f.registry.releaseSigner(second.id)).to.deep.equal([address, false]);
      expect(await installable(f, second.record)).to.equal("SIGNER_COMPROMISED");
    });
  });
});
