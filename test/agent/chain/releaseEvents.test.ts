import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { keccak256, toUtf8Bytes, Wallet } from "ethers";
import { decodeReleasePublished, fetchReleases, ReleaseEventMismatchError, LedgerRelease } from "../../../agent/chain/releaseEvents";
import { verifyLedgerRelease, ReleaseVerificationError } from "../../../agent/chain/verifyLedgerRelease";
import { computeReleaseId, signRelease } from "../../../agent/crypto/releaseSignature";
import { recoverReleaseSigner } from "../../../agent/crypto/releaseSignature";
import { encodeVersion } from "../../../agent/core/version";
import { catalogFixture, makeRelease, publish, dependsOn, ACME_SIGNER, COMPONENTS } from "../../helpers/registryFixture";

async function publishedFixture() {
  const f = await catalogFixture();
  const boot = await publish(f.registry, f.acmeAuthor, makeRelease({ hardware: [1, 2] }), ACME_SIGNER, f.domain);
  const fw = await publish(
    f.registry,
    f.acmeAuthor,
    makeRelease({ component: COMPONENTS.sensorFw, version: encodeVersion("2.0.0"), dependencies: [dependsOn(COMPONENTS.bootloader, "^1.0.0")] }),
    ACME_SIGNER,
    f.domain,
  );
  return { ...f, boot, fw };
}

describe("agent/chain/releaseEvents: a release rebuilt from its event alone (APP-II-1)", function () {
  it("rebuilds every Table II-1 field, the signer and a signature that verifies, with no other call", async function () {
    const { registry, domain, boot, fw } = await loadFixture(publishedFixture);
    const releases = await fetchReleases(registry, domain, 0);
    expect(releases.map((r) => r.id)).to.deep.equal([boot.id, fw.id]);
    const got = releases[1];
    expect(got.record).to.deep.equal(fw.record);
    expect(got.providerName).to.equal("Acme Devices");
    const block = await ethers.provider.getBlock(got.blockNumber);
    expect(got.releasedAt).to.equal(block!.timestamp);
    expect(got.signer).to.equal(ACME_SIGNER.address);
    expect(recoverReleaseSigner(domain, got.record, got.signature)).to.equal(ACME_SIGNER.address);
    const state = await registry.releaseState(got.id);
    expect(state.version).to.equal(got.record.version);
  });

  it("rejects event data altered in transit: a lying RPC node (CAP-11.4-a)", async function () {
    const { registry, domain } = await loadFixture(publishedFixture);
    const [log] = await registry.queryFilter(registry.filters.ReleasePublished(), 0);
    const parsed = registry.interface.parseLog(log)!;
    const r = parsed.args.release;
    const forgedRelease = {
      provider: r.provider,
      component: r.component,
      version: r.version,
      fileHash: r.fileHash,
      fileLink: "bafkreiforgedlinkforgedlinkforgedlinkforgedlinkforgedlink",
      fileName: r.fileName,
      fileSize: r.fileSize,
      merkleRoot: r.merkleRoot,
      hardware: [...r.hardware],
      dependencies: [...r.dependencies],
    };
    const { data, topics } = registry.interface.encodeEventLog(registry.interface.getEvent("ReleasePublished"), [
      parsed.args.releaseId,
      parsed.args.component,
      parsed.args.provider,
      parsed.args.version,
      parsed.args.releasedAt,
      parsed.args.providerName,
      forgedRelease,
      parsed.args.signer,
      parsed.args.signature,
    ]);
    const forged = Object.assign(Object.create(Object.getPrototypeOf(log)), log, { data, topics });
    expect(() => decodeReleasePublished(registry, domain, forged)).to.throw(ReleaseEventMismatchError, /hashes to/);
  });

  it("refuses a log emitted by another contract than the registry", async function () {
    const { registry, domain } = await loadFixture(publishedFixture);
    const [log] = await registry.queryFilter(registry.filters.ReleasePublished(), 0);
    const foreign = Object.assign(Object.create(Object.getPrototypeOf(log)), log, { address: Wallet.createRandom().address });
    expect(() => decodeReleasePublished(registry, domain, foreign)).to.throw(ReleaseEventMismatchError, /not the registry/);
  });

  describe("verifyLedgerRelease: an event checked against storage and the author's keys (REQ-10d-ii, CAP-11.4-a)", function () {
    it("accepts a published release and returns its status", async function () {
      const { registry, domain, auditor, fw } = await loadFixture(publishedFixture);
      const [, release] = await fetchReleases(registry, domain, 0);
      expect(await verifyLedgerRelease({ registry, domain }, release)).to.equal(1n);
      expect(await verifyLedgerRelease({ registry, domain }, release, { pinnedSigners: [ACME_SIGNER.address] })).to.equal(1n);
      await registry.connect(auditor).revokeRelease(fw.id, "malicious");
      expect(await verifyLedgerRelease({ registry, domain }, release)).to.equal(3n);
    });

    it("catches a whole event fabricated by a lying node: self-consistent id, but unknown to the registry", async function () {
      const { registry, domain } = await loadFixture(publishedFixture);
      const [, genuine] = await fetchReleases(registry, domain, 0);
      const record = { ...genuine.record, fileLink: "bafkreiattackerattackerattackerattackerattackerattacker" };
      const forged: LedgerRelease = { ...genuine, record, id: computeReleaseId(domain, record), signature: "0x1234" };
      await expect(verifyLedgerRelease({ registry, domain }, forged)).to.be.rejectedWith(ReleaseVerificationError, /does not know this release/);
    });

    const tamper: [string, (r: LedgerRelease) => LedgerRelease, RegExp][] = [
      ["a release time the registry did not record", (r) => ({ ...r, releasedAt: r.releasedAt + 1 }), /disagrees with the registry/],
      ["a provider name the registry did not register", (r) => ({ ...r, providerName: "Evil Corp" }), /disagrees with the registry/],
      ["a signer the provider never registered", (r) => ({ ...r, signer: Wallet.createRandom().address }), /not a signing key/],
      [
        "a signature that is not the signer's",
        (r) => ({ ...r, signature: r.signature.slice(0, -4) + (r.signature.endsWith("1b") ? "1c" : "1b") }),
        /signature/,
      ],
    ];
    for (const [name, spoil, message] of tamper) {
      it(`refuses ${name}`, async function () {
        const { registry, domain } = await loadFixture(publishedFixture);
        const [, release] = await fetchReleases(registry, domain, 0);
        await expect(verifyLedgerRelease({ registry, domain }, spoil(release))).to.be.rejectedWith(ReleaseVerificationError, message);
      });
    }

    it("refuses a registered signer that is not pinned on the device", async function () {
      const { registry, domain } = await loadFixture(publishedFixture);
      const [release] = await fetchReleases(registry, domain, 0);
      await expect(verifyLedgerRelease({ registry, domain }, release, { pinnedSigners: [Wallet.createRandom().address] })).to.be.rejectedWith(
        ReleaseVerificationError,
        /not among the pinned/,
      );
    });

    it("checks a contract signer's signature by asking the contract (ERC-1271)", async function () {
      const f = await loadFixture(catalogFixture);
      const owner = new Wallet(keccak256(toUtf8Bytes("multisig owner")));
      const wallet = await ethers.deployContract("ERC1271SignerMock", [owner.address]);
      const signerAddress = await wallet.getAddress();
      await f.registry.connect(f.admin).addProviderSigner(1, signerAddress);
      const record = makeRelease();
      const signature = await signRelease(owner, f.domain, record);
      await (await f.registry.connect(f.acmeAuthor).publishRelease(record, signerAddress, signature, [])).wait();
      const [release] = await fetchReleases(f.registry, f.domain, 0);
      expect(release.signer).to.equal(signerAddress);
      expect(await verifyLedgerRelease({ registry: f.registry, domain: f.domain }, release)).to.equal(1n);
      const other = await signRelease(new Wallet(keccak256(toUtf8Bytes("not the owner"))), f.domain, record);
      await expect(verifyLedgerRelease({ registry: f.registry, domain: f.domain }, { ...release, signature: other })).to.be.rejectedWith(
        ReleaseVerificationError,
        /does not vouch/,
      );
    });
  });
});
