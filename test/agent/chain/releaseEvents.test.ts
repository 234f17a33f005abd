import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { decodeReleasePublished, fetchReleases, ReleaseEventMismatchError } from "../../../agent/chain/releaseEvents";
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
      provider: r.provider, component: r.component, version: r.version, fileHash: r.fileHash,
      fileLink: "bafkreiforgedlinkforgedlinkforgedlinkforgedlinkforgedlink", fileName: r.fileName, fileSize: r.fileSize,
      merkleRoot: r.merkleRoot, hardware: [...r.hardware], dependencies: [...r.dependencies],
    };
    const { data, topics } = registry.interface.encodeEventLog(registry.interface.getEvent("ReleasePublished"), [
      parsed.args.releaseId, parsed.args.component, parsed.args.provider, parsed.args.version, parsed.args.releasedAt,
      parsed.args.providerName, forgedRelease, parsed.args.signer, parsed.args.signature,
    ]);
    const forged = Object.assign(Object.create(Object.getPrototypeOf(log)), log, { data, topics });
    expect(() => decodeReleasePublished(registry, domain, forged)).to.throw(ReleaseEventMismatchError, /hashes to/);
  });
});
