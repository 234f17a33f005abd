import { expect } from "chai";
import { ethers } from "hardhat";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { catalogFixture } from "../../helpers/registryFixture";
import { sealMessage } from "../../../agent/crypto/sealedMessage";
import { verifyUpdateNotice } from "../../../agent/consumer/upstreamNotice";
import { NOTICE_KIND } from "../../../agent/core/updateNotice";
import { expectCode } from "../../helpers/expectCode";

const deviceKey = new Wallet(keccak256(toUtf8Bytes("notice test device")));
const deviceId = keccak256(toUtf8Bytes("device-n1"));
const moduleKey = new Wallet(keccak256(toUtf8Bytes("notice test module")));
const moduleId = keccak256(toUtf8Bytes("plant-1 intermediate"));
const notice = { releaseId: "0x" + "ab".repeat(32), component: "0x" + "cd".repeat(32), reason: "new-release" };

async function fixture() {
  const base = await catalogFixture();
  await base.fleet.connect(base.tracker).registerTrackerModule(moduleId, moduleKey.address, moduleKey.signingKey.compressedPublicKey, ethers.ZeroHash);
  return base;
}

const seal = (signer: { signMessage(m: string): Promise<string> }, from = moduleId, issuedAt = Date.now(), body: object = notice, kind = NOTICE_KIND) =>
  sealMessage(
    { kind, from, to: deviceId, issuedAt, body },
    { kind: "account", signMessage: (m) => signer.signMessage(m) },
    deviceKey.signingKey.compressedPublicKey,
  );

describe("agent/consumer/upstreamNotice: a client module acting on its upstream (DEP-8.2.2, CAP-11.2-d)", () => {
  const expectFrom = (lastIssuedAt = 0) => ({ upstream: moduleId, lastIssuedAt, maxAgeMs: 60_000, now: Date.now() });
  const device = { id: deviceId, privateKey: deviceKey.privateKey };

  it("CAP-11.2-d: takes a notice signed by its upstream's registered key", async () => {
    const { fleet } = await loadFixture(fixture);
    const { notice: n, issuedAt } = await verifyUpdateNotice(fleet, await seal(moduleKey), device, expectFrom());
    expect(n).to.deep.equal(notice);
    expect(issuedAt).to.be.above(0);
  });

  it("REQ-10b-i: takes the newest ledger block its upstream signed it had read (the device's floor); a notice without one, from before issue 16, still verifies", async () => {
    const { fleet } = await loadFixture(fixture);
    const { notice: n } = await verifyUpdateNotice(fleet, await seal(moduleKey, moduleId, Date.now(), { ...notice, ledgerBlock: 1234 }), device, expectFrom());
    expect(n.ledgerBlock).to.equal(1234);
    expect((await verifyUpdateNotice(fleet, await seal(moduleKey), device, expectFrom())).notice.ledgerBlock).to.equal(undefined);
  });

  it("CAP-11.2-d: refuses a notice from an unregistered or retired module, or signed by another key", async () => {
    const { fleet, tracker } = await loadFixture(fixture);
    const stranger = keccak256(toUtf8Bytes("unregistered module"));
    await expectCode(verifyUpdateNotice(fleet, await seal(moduleKey, stranger), device, { ...expectFrom(), upstream: stranger }), "UPSTREAM_NOT_REGISTERED");
    await expectCode(verifyUpdateNotice(fleet, await seal(Wallet.createRandom()), device, expectFrom()), "UPSTREAM_SIGNATURE");
    await fleet.connect(tracker).retireTrackerModule(moduleId);
    await expectCode(verifyUpdateNotice(fleet, await seal(moduleKey), device, expectFrom()), "UPSTREAM_NOT_REGISTERED");
  });

  it("refuses a notice from a module that is not this device's upstream, a stale one, and a replay", async () => {
    const { fleet } = await loadFixture(fixture);
    await expectCode(
      verifyUpdateNotice(fleet, await seal(moduleKey), device, { ...expectFrom(), upstream: keccak256(toUtf8Bytes("other")) }),
      "UPSTREAM_UNEXPECTED",
    );
    await expectCode(verifyUpdateNotice(fleet, await seal(moduleKey, moduleId, Date.now() - 3_600_000), device, expectFrom()), "NOTICE_STALE");
    const e = await seal(moduleKey);
    const { issuedAt } = await verifyUpdateNotice(fleet, e, device, expectFrom());
    await expectCode(verifyUpdateNotice(fleet, e, device, expectFrom(issuedAt)), "NOTICE_REPLAYED");
  });

  it("refuses a malformed notice body and another kind of message", async () => {
    const { fleet } = await loadFixture(fixture);
    await expectCode(verifyUpdateNotice(fleet, await seal(moduleKey, moduleId, Date.now(), { releaseId: "x" }), device, expectFrom()), "NOTICE_MALFORMED");
    for (const ledgerBlock of [-1, 1.5, "12"])
      await expectCode(
        verifyUpdateNotice(fleet, await seal(moduleKey, moduleId, Date.now(), { ...notice, ledgerBlock }), device, expectFrom()),
        "NOTICE_MALFORMED",
      );
    await expectCode(verifyUpdateNotice(fleet, await seal(moduleKey, moduleId, Date.now(), notice, "status-report"), device, expectFrom()), "NOTICE_KIND");
  });
});
