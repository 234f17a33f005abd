import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { Wallet, ZeroHash, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { buildDeviceBatch, DeviceRecord } from "../../agent/crypto/deviceTree";
import { catalogFixture, ROLES } from "../helpers/registryFixture";

enum Standing {
  Unknown,
  Active,
  Suspended,
  Revoked,
}

function device(seed: string, key = seed): DeviceRecord {
  return {
    id: keccak256(toUtf8Bytes(`device ${seed}`)),
    publicKey: new Wallet(keccak256(toUtf8Bytes(`key ${key}`))).signingKey.compressedPublicKey,
    hardwareClass: 1,
    network: encodeBytes32String("lorawan"),
    region: encodeBytes32String("eu-west"),
  };
}

async function enrolledFixture() {
  const f = await catalogFixture();
  const single = device("single");
  await f.fleet.connect(f.admin).enrolDevice(single);
  const records = ["b0", "b1", "b2", "b3"].map((s) => device(s));
  const batch = buildDeviceBatch(records);
  await f.fleet.connect(f.admin).enrolDeviceBatch(batch.root, records.length, "bafkreibatch");
  return { ...f, single, records, batch };
}

describe("FleetRegistry: withdrawing device records and trusting tracker hierarchies (CAP-11.3-d, CAP-11.2-d)", function () {
  describe("revokeDeviceRecord: a leaked device key is withdrawn and replaced (CAP-11.3-d)", function () {
    it("revokes a singly enrolled record, then enrols the device again with a new key", async function () {
      const { fleet, admin, single } = await loadFixture(enrolledFixture);
      await expect(fleet.connect(admin).revokeDeviceRecord(single, 0, [], "key leaked"))
        .to.emit(fleet, "DeviceRecordRevoked")
        .withArgs(single.id, (leaf: string) => leaf.length === 66, admin.address, "key leaked");
      expect(await fleet.deviceStanding(single, 0, [])).to.equal(Standing.Revoked);

      const rotated = { ...single, publicKey: device("single", "rotated").publicKey };
      await expect(fleet.connect(admin).enrolDevice(rotated)).to.emit(fleet, "DeviceEnrolled");
      expect(await fleet.deviceStanding(rotated, 0, [])).to.equal(Standing.Active);
      // The leaked key stays withdrawn, and the device cannot be enrolled a third time while the new record stands.
      expect(await fleet.deviceStanding(single, 0, [])).to.equal(Standing.Unknown);
      await expect(fleet.connect(admin).enrolDevice(single)).to.be.revertedWithCustomError(fleet, "FleetRegistryDeviceAlreadyEnrolled").withArgs(single.id);
    });

    it("revokes one record of a batch; the rest of the batch stays active; reinstating does not bring it back", async function () {
      const { fleet, admin, records, batch } = await loadFixture(enrolledFixture);
      await fleet.connect(admin).revokeDeviceRecord(records[1], 1, batch.proofs[1], "key leaked");
      const standings = await Promise.all(records.map((r, i) => fleet.deviceStanding(r, 1, batch.proofs[i])));
      expect(standings.map(Number)).to.deep.equal([Standing.Active, Standing.Revoked, Standing.Active, Standing.Active]);
      // Suspending and reinstating the id (the attack of the review) leaves the revoked record revoked.
      await fleet.connect(admin).suspendDevice(records[1].id, "investigating");
      await fleet.connect(admin).reinstateDevice(records[1].id);
      expect(await fleet.deviceStanding(records[1], 1, batch.proofs[1])).to.equal(Standing.Revoked);
    });

    it("refuses a record that is not enrolled, one already revoked, and anyone but an administrator", async function () {
      const { fleet, admin, outsider, single, records, batch } = await loadFixture(enrolledFixture);
      const stranger = device("stranger");
      await expect(fleet.connect(admin).revokeDeviceRecord(stranger, 0, [], "x"))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryDeviceRecordNotEnrolled")
        .withArgs(stranger.id);
      await expect(fleet.connect(admin).revokeDeviceRecord(records[0], 1, batch.proofs[1], "x"))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryDeviceRecordNotEnrolled")
        .withArgs(records[0].id);
      await expect(fleet.connect(admin).revokeDeviceRecord({ ...single, id: ZeroHash }, 0, [], "x"))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryDeviceRecordNotEnrolled")
        .withArgs(ZeroHash);
      await expect(fleet.connect(outsider).revokeDeviceRecord(single, 0, [], "x"))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(outsider.address, ROLES.ADMINISTRATOR);
      expect(await fleet.deviceStanding(single, 0, [])).to.equal(Standing.Active);
      await fleet.connect(admin).revokeDeviceRecord(single, 0, [], "x");
      await expect(fleet.connect(admin).revokeDeviceRecord(single, 0, [], "again")).to.be.revertedWithCustomError(
        fleet,
        "FleetRegistryDeviceRecordAlreadyRevoked",
      );
    });
  });

  describe("revokeDeviceBatch (CAP-11.3-d)", function () {
    it("withdraws every record of a batch at once", async function () {
      const { fleet, admin, records, batch } = await loadFixture(enrolledFixture);
      await expect(fleet.connect(admin).revokeDeviceBatch(1, "batch keys generated on a compromised line"))
        .to.emit(fleet, "DeviceBatchRevoked")
        .withArgs(1, admin.address, "batch keys generated on a compromised line");
      const standings = await Promise.all(records.map((r, i) => fleet.deviceStanding(r, 1, batch.proofs[i])));
      expect(standings.map(Number)).to.deep.equal(records.map(() => Standing.Revoked));
      expect(await fleet.deviceBatch(1)).to.deep.equal([batch.root, 4n, true]);
    });

    it("refuses an unknown batch, a batch already revoked, and anyone but an administrator", async function () {
      const { fleet, admin, auditor } = await loadFixture(enrolledFixture);
      await expect(fleet.connect(admin).revokeDeviceBatch(2, "x")).to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownBatch").withArgs(2);
      await expect(fleet.connect(auditor).revokeDeviceBatch(1, "x"))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnauthorized")
        .withArgs(auditor.address, ROLES.ADMINISTRATOR);
      await fleet.connect(admin).revokeDeviceBatch(1, "x");
      await expect(fleet.connect(admin).revokeDeviceBatch(1, "x")).to.be.revertedWithCustomError(fleet, "FleetRegistryBatchAlreadyRevoked").withArgs(1);
    });
  });

  describe("tracker hierarchies (CAP-11.2-d)", function () {
    const key = (n: number) => new Wallet(keccak256(toUtf8Bytes(`module ${n}`)));
    const moduleId = (n: number) => keccak256(toUtf8Bytes(`module ${n}`));

    async function chainOf(depth: number) {
      const f = await catalogFixture();
      for (let i = 1; i <= depth; i++) {
        const k = key(i);
        await f.fleet.connect(f.tracker).registerTrackerModule(moduleId(i), k.address, k.signingKey.compressedPublicKey, i === 1 ? ZeroHash : moduleId(i - 1));
      }
      return f;
    }

    it("withdraws trust from every module below a retired one", async function () {
      const { fleet, tracker } = await chainOf(4);
      await fleet.connect(tracker).retireTrackerModule(moduleId(2));
      for (const n of [2, 3, 4]) {
        await expect(fleet.trackerModule(moduleId(n)))
          .to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownTrackerModule")
          .withArgs(moduleId(n));
      }
      expect((await fleet.trackerModule(moduleId(1)))[0]).to.equal(key(1).address);
      const k = key(9);
      await expect(fleet.connect(tracker).registerTrackerModule(moduleId(9), k.address, k.signingKey.compressedPublicKey, moduleId(3)))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryUnknownTrackerModule")
        .withArgs(moduleId(3));
    });

    it("bounds the hierarchy at MAX_TRACKER_DEPTH modules", async function () {
      const { fleet, tracker } = await chainOf(8);
      expect(await fleet.MAX_TRACKER_DEPTH()).to.equal(8n);
      expect((await fleet.trackerModule(moduleId(8)))[1]).to.equal(moduleId(7));
      const k = key(9);
      await expect(fleet.connect(tracker).registerTrackerModule(moduleId(9), k.address, k.signingKey.compressedPublicKey, moduleId(8)))
        .to.be.revertedWithCustomError(fleet, "FleetRegistryTrackerHierarchyTooDeep")
        .withArgs(moduleId(8), 8);
    });
  });
});
