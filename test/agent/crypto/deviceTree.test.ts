import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { SigningKey, Wallet, concat, getBytes, keccak256, toBeHex, toUtf8Bytes, zeroPadValue } from "ethers";
import { MerkleTree } from "merkletreejs";
import { DeviceRecord, buildDeviceBatch, deviceLeaf } from "../../../agent/crypto/deviceTree";
import { InputError } from "../../../agent/core/errors";
import { catalogFixture } from "../../helpers/registryFixture";

const label = ethers.encodeBytes32String;

/** A device record whose id and key derive from a fixed seed (CAP-11.3-d device identity). */
function makeDevice(seed: string, overrides: Partial<DeviceRecord> = {}): DeviceRecord {
  const wallet = new Wallet(keccak256(toUtf8Bytes(seed)));
  return {
    id: keccak256(toUtf8Bytes(`device id: ${seed}`)),
    publicKey: SigningKey.computePublicKey(wallet.signingKey.publicKey, true),
    hardwareClass: 1,
    network: label("lorawan"),
    region: label("eu-west"),
    ...overrides,
  };
}

function makeDevices(prefix: string, count: number): DeviceRecord[] {
  return Array.from({ length: count }, (_, i) =>
    makeDevice(`${prefix} ${i}`, { hardwareClass: (i % 3) + 1, region: label(i % 2 === 0 ? "eu-west" : "us-east") }),
  );
}

function keccak256Buffer(data: Buffer): Buffer {
  return Buffer.from(getBytes(keccak256(data)));
}

/** keccak256 of the two nodes, smaller first (OpenZeppelin's commutative pair hash). */
function hashPair(a: string, b: string): string {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** Whether merkletreejs, on its own, accepts the proof of `record` against `root`. */
function verifiesOffChain(proof: string[], record: DeviceRecord, root: string): boolean {
  return MerkleTree.verify(proof, deviceLeaf(record), root, keccak256Buffer, { sortPairs: true });
}

describe("agent/crypto/deviceTree: device records as Merkle leaves (CAP-11.3-d)", function () {
  describe("deviceLeaf", function () {
    it("is keccak256(keccak256(abi.encode(id, keccak256(publicKey), hardwareClass, network, region))), recomputed by hand", function () {
      const record = makeDevice("device 7", { hardwareClass: 258, network: label("nb-iot"), region: label("line-7") });
      // abi.encode of five static 32-byte words, laid out by hand.
      const encoded = concat([record.id, keccak256(record.publicKey), zeroPadValue(toBeHex(258), 32), record.network, record.region]);
      expect(getBytes(encoded)).to.have.length(160);
      const byHand = keccak256(keccak256(encoded));
      expect(deviceLeaf(record)).to.equal(byHand);
      // And through ethers' ABI coder.
      const viaCoder = keccak256(
        keccak256(
          ethers.AbiCoder.defaultAbiCoder().encode(
            ["bytes32", "bytes32", "uint16", "bytes32", "bytes32"],
            [record.id, keccak256(record.publicKey), record.hardwareClass, record.network, record.region],
          ),
        ),
      );
      expect(deviceLeaf(record)).to.equal(viaCoder);
    });

    it("hashes twice: the leaf is not the single hash of the record's encoding", function () {
      const record = makeDevice("device 7");
      const encoded = concat([record.id, keccak256(record.publicKey), zeroPadValue(toBeHex(1), 32), record.network, record.region]);
      expect(deviceLeaf(record)).to.not.equal(keccak256(encoded));
    });

    it("changes when any one field changes", function () {
      const record = makeDevice("device 7");
      const variants: DeviceRecord[] = [
        { ...record, id: keccak256(toUtf8Bytes("another id")) },
        { ...record, publicKey: makeDevice("device 8").publicKey },
        { ...record, hardwareClass: 2 },
        { ...record, network: label("lte-m") },
        { ...record, region: label("apac") },
      ];
      const leaves = new Set([record, ...variants].map(deviceLeaf));
      expect(leaves.size).to.equal(variants.length + 1);
    });

    it("matches the contract's leaf: a record enrolled singly is Active only in exactly that form", async function () {
      const { fleet, admin } = await loadFixture(catalogFixture);
      const record = makeDevice("device 7", { hardwareClass: 3, network: label("nb-iot"), region: label("line-7") });
      await fleet.connect(admin).enrolDevice(record);
      expect(await fleet.deviceStanding(record, 0, [])).to.equal(1n);
      // A one-record batch's root is the leaf, so the contract's leaf equals deviceLeaf (another
      // device: one enrolled singly is never active through a batch, issue 15).
      const batched = makeDevice("device 8", { hardwareClass: 2, network: label("lorawan"), region: label("line-8") });
      await fleet.connect(admin).enrolDeviceBatch(deviceLeaf(batched), 1, "");
      expect(await fleet.deviceStanding(batched, 1, [])).to.equal(1n);
      // The singly enrolled record's own leaf as a batch root proves it too, and is superseded: Revoked, not Unknown.
      await fleet.connect(admin).enrolDeviceBatch(deviceLeaf(record), 1, "");
      expect(await fleet.deviceStanding(record, 2, [])).to.equal(3n);
    });
  });

  describe("buildDeviceBatch", function () {
    it("for one record: the root is the record's leaf and its proof is empty", function () {
      const record = makeDevice("lonely device");
      const batch = buildDeviceBatch([record]);
      expect(batch.root).to.equal(deviceLeaf(record));
      expect(batch.proofs).to.deep.equal([[]]);
      expect(verifiesOffChain([], record, batch.root)).to.equal(true);
    });

    it("for two records: the root is the sorted-pair hash of the two leaves, each proof the other leaf", function () {
      const [a, b] = makeDevices("pair", 2);
      const batch = buildDeviceBatch([a, b]);
      expect(batch.root).to.equal(hashPair(deviceLeaf(a), deviceLeaf(b)));
      expect(batch.proofs).to.deep.equal([[deviceLeaf(b)], [deviceLeaf(a)]]);
      // The order of the records does not change the root (pairs are sorted).
      expect(buildDeviceBatch([b, a]).root).to.equal(batch.root);
    });

    it("for three records: the odd leaf is carried up unpaired, as OpenZeppelin's MerkleProof expects", function () {
      const records = makeDevices("triple", 3);
      const [l0, l1, l2] = records.map(deviceLeaf);
      const batch = buildDeviceBatch(records);
      expect(batch.root).to.equal(hashPair(hashPair(l0, l1), l2));
      expect(batch.proofs).to.deep.equal([[l1, l2], [l0, l2], [hashPair(l0, l1)]]);
    });

    for (const count of [2, 3, 4, 5, 7, 8, 9, 16, 33]) {
      it(`for ${count} records (${count % 2 === 0 ? "even" : "odd"}): every proof verifies with merkletreejs, and only for its own record`, function () {
        const records = makeDevices(`batch of ${count}`, count);
        const batch = buildDeviceBatch(records);
        expect(batch.proofs).to.have.length(count);
        for (let i = 0; i < count; i++) {
          expect(verifiesOffChain(batch.proofs[i], records[i], batch.root), `record ${i}`).to.equal(true);
          const j = (i + 1) % count;
          expect(verifiesOffChain(batch.proofs[j], records[i], batch.root), `record ${i} with proof ${j}`).to.equal(false);
        }
      });
    }

    for (const count of [1, 2, 5, 6, 13]) {
      it(`for ${count} records: every proof verifies on-chain (FleetRegistry.deviceStanding is Active)`, async function () {
        const { fleet, admin } = await loadFixture(catalogFixture);
        const records = makeDevices(`on-chain batch of ${count}`, count);
        const batch = buildDeviceBatch(records);
        await fleet.connect(admin).enrolDeviceBatch(batch.root, count, "");
        const standings = await Promise.all(records.map((r, i) => fleet.deviceStanding(r, 1, batch.proofs[i])));
        expect(standings).to.deep.equal(records.map(() => 1n));
        if (count > 1) {
          // Another record's proof does not vouch for it.
          expect(await fleet.deviceStanding(records[0], 1, batch.proofs[1])).to.equal(0n);
        }
      });
    }

    it("gives proofs in the order of the records given, matching a merkletreejs tree built independently", function () {
      const records = makeDevices("order", 6);
      for (const order of [records, [...records].reverse()]) {
        const leaves = order.map((r) => Buffer.from(getBytes(deviceLeaf(r))));
        const tree = new MerkleTree(leaves, keccak256Buffer, { sortPairs: true });
        const batch = buildDeviceBatch(order);
        expect(batch.root).to.equal(tree.getHexRoot());
        expect(batch.proofs).to.deep.equal(leaves.map((leaf) => tree.getHexProof(leaf)));
      }
    });

    it("throws InputError DEVICE_BATCH_EMPTY for no records", function () {
      expect(() => buildDeviceBatch([]))
        .to.throw(InputError)
        .with.property("code", "DEVICE_BATCH_EMPTY");
    });

    it("throws InputError DEVICE_BATCH_DUPLICATE for a device id given twice", function () {
      const records = makeDevices("dup", 4);
      const repeated = { ...records[3], id: records[1].id };
      expect(() => buildDeviceBatch([...records.slice(0, 3), repeated]))
        .to.throw(InputError)
        .with.property("code", "DEVICE_BATCH_DUPLICATE");
    });

    const invalid: [string, (r: DeviceRecord) => DeviceRecord, RegExp][] = [
      ["a zero id", (r) => ({ ...r, id: "0x" + "00".repeat(32) }), /non-zero 32-byte/],
      ["a short id", (r) => ({ ...r, id: "0x1234" }), /non-zero 32-byte/],
      ["an uncompressed key", (r) => ({ ...r, publicKey: "0x04" + "11".repeat(64) }), /33-byte compressed/],
      ["a key off the curve", (r) => ({ ...r, publicKey: "0x02" + "ff".repeat(32) }), /not a point/],
      ["hardware class 0", (r) => ({ ...r, hardwareClass: 0 }), /1\.\.65535/],
      ["hardware class 65536", (r) => ({ ...r, hardwareClass: 65536 }), /1\.\.65535/],
      ["a network that is not 32 bytes", (r) => ({ ...r, network: "0x01" }), /network/],
      ["a region that is not 32 bytes", (r) => ({ ...r, region: "eu-west" }), /region/],
    ];
    for (const [name, spoil, message] of invalid) {
      it(`throws InputError DEVICE_RECORD_INVALID for ${name}, naming the record`, function () {
        const records = makeDevices("invalid", 3);
        records[2] = spoil(records[2]);
        expect(() => buildDeviceBatch(records))
          .to.throw(InputError, message)
          .with.property("code", "DEVICE_RECORD_INVALID");
        expect(() => buildDeviceBatch(records)).to.throw(/device record 2/);
      });
    }

    it("throws InputError DEVICE_BATCH_DUPLICATE for the same id in another letter case", function () {
      const record = makeDevice("case", { id: "0x" + "ab".repeat(32) });
      const upper = makeDevice("case 2", { id: "0x" + "AB".repeat(32) });
      expect(() => buildDeviceBatch([record, upper]))
        .to.throw(InputError)
        .with.property("code", "DEVICE_BATCH_DUPLICATE");
    });
  });
});
