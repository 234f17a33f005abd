import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import fc from "fast-check";
import { AbiCoder, ZeroHash, concat, getBytes, keccak256, toBeHex, toUtf8Bytes, zeroPadValue } from "ethers";
import { MerkleTree } from "merkletreejs";
import { STATUS_OUTCOME, StatusRecord, buildStatusTree, releaseCounts, statusLeaf, verifyStatusProof } from "../../../agent/crypto/statusTree";
import { InputError } from "../../../agent/core/errors";
import { encodeVersion } from "../../../agent/core/version";
import { catalogFixture } from "../../helpers/registryFixture";
import type { StatusAnchors } from "../../../typechain-types";

const RELEASES = ["sensor-fw 2.0.0", "sensor-fw 2.0.1", "bootloader 1.1.0"].map((r) => keccak256(toUtf8Bytes(`release ${r}`)));
const OUTCOMES = [STATUS_OUTCOME.installed, STATUS_OUTCOME.pending, STATUS_OUTCOME.failed, STATUS_OUTCOME.rolledBack, STATUS_OUTCOME.rejected];

/** A status record whose device id derives from `seed`; override any field. */
function makeStatus(seed: string, overrides: Partial<StatusRecord> = {}): StatusRecord {
  return {
    deviceId: keccak256(toUtf8Bytes(`device id: ${seed}`)),
    releaseId: RELEASES[0],
    version: encodeVersion("2.0.0"),
    outcome: STATUS_OUTCOME.installed,
    reportCounter: 17n,
    reportedAt: 1_767_225_600,
    ...overrides,
  };
}

/** `count` records spread over the releases and outcomes. */
function makeStatuses(prefix: string, count: number): StatusRecord[] {
  return Array.from({ length: count }, (_, i) =>
    makeStatus(`${prefix} ${i}`, {
      releaseId: RELEASES[i % 3],
      outcome: OUTCOMES[i % OUTCOMES.length],
      reportCounter: BigInt(i + 1),
      reportedAt: 1_767_225_600 + i,
    }),
  );
}

function keccak256Buffer(data: Buffer): Buffer {
  return Buffer.from(getBytes(keccak256(data)));
}

/** keccak256 of the two nodes, smaller first (OpenZeppelin's commutative pair hash). */
function hashPair(a: string, b: string): string {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** StatusAnchors beside a registry, with one anchor of `records` by the tracker. */
async function anchorOf(records: StatusRecord[]) {
  const base = await loadFixture(catalogFixture);
  const anchors = (await ethers.deployContract("StatusAnchors", [await base.registry.getAddress()])) as unknown as StatusAnchors;
  const tree = buildStatusTree(records);
  await anchors.connect(base.tracker).anchor(tree.root, tree.deviceCount, tree.counts);
  return { anchors, tree };
}

describe("agent/crypto/statusTree: device status records as Merkle leaves (APP-II-3 status anchoring)", function () {
  describe("statusLeaf", function () {
    it("is keccak256(keccak256(abi.encode(deviceId, releaseId, version, outcome, reportCounter, reportedAt))), recomputed by hand", function () {
      const record = makeStatus("device 7", { outcome: STATUS_OUTCOME.rolledBack, reportCounter: 1234n, reportedAt: 1_800_000_000 });
      const word = (n: bigint | number) => zeroPadValue(toBeHex(n), 32);
      const encoded = concat([record.deviceId, record.releaseId, word(record.version), word(4), word(1234n), word(1_800_000_000)]);
      expect(getBytes(encoded)).to.have.length(192);
      expect(statusLeaf(record)).to.equal(keccak256(keccak256(encoded)));
      expect(statusLeaf(record)).to.not.equal(keccak256(encoded));
    });

    it("changes when any one field changes", function () {
      const record = makeStatus("device 7");
      const variants: StatusRecord[] = [
        { ...record, deviceId: keccak256(toUtf8Bytes("another device")) },
        { ...record, releaseId: RELEASES[1] },
        { ...record, version: encodeVersion("2.0.1") },
        { ...record, outcome: STATUS_OUTCOME.failed },
        { ...record, reportCounter: 18n },
        { ...record, reportedAt: record.reportedAt + 1 },
      ];
      expect(new Set([record, ...variants].map(statusLeaf)).size).to.equal(variants.length + 1);
    });

    const STATUS_TYPES = ["bytes32", "bytes32", "uint64", "uint8", "uint64", "uint40"];
    const abiLeaf = (r: StatusRecord) =>
      keccak256(keccak256(AbiCoder.defaultAbiCoder().encode(STATUS_TYPES, [r.deviceId, r.releaseId, r.version, r.outcome, r.reportCounter, r.reportedAt])));

    it("writes abi.encode's words itself: equal to AbiCoder's for any record, each field from zero to its type's largest value", function () {
      const word = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => "0x" + Buffer.from(b).toString("hex"));
      const record = fc.record({
        deviceId: word,
        releaseId: fc.oneof(word, fc.constant(ZeroHash)),
        version: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        outcome: fc.constantFrom(...Object.values(STATUS_OUTCOME)),
        reportCounter: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        reportedAt: fc.integer({ min: 0, max: 2 ** 40 - 1 }),
      });
      fc.assert(
        fc.property(record, (r) => {
          expect(statusLeaf(r)).to.equal(abiLeaf(r));
        }),
        { numRuns: 300 },
      );
      const widest: StatusRecord = {
        deviceId: "0x" + "ff".repeat(32),
        releaseId: "0x" + "FF".repeat(32),
        version: 2n ** 64n - 1n,
        outcome: 5,
        reportCounter: 2n ** 64n - 1n,
        reportedAt: 2 ** 40 - 1,
      };
      expect(statusLeaf(widest)).to.equal(abiLeaf(widest));
    });

    it("throws, as abi.encode does, for a value its type cannot hold", function () {
      const record = makeStatus("device 7");
      const spoilt: StatusRecord[] = [
        { ...record, deviceId: "0x1234" },
        { ...record, releaseId: record.releaseId + "00" },
        { ...record, version: 2n ** 64n },
        { ...record, version: -1n },
        { ...record, outcome: 256 as StatusRecord["outcome"] },
        { ...record, reportCounter: 2n ** 64n },
        { ...record, reportedAt: 2 ** 40 },
        { ...record, reportedAt: 1.5 },
      ];
      for (const r of spoilt) {
        expect(
          () => abiLeaf(r),
          JSON.stringify(r, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
        ).to.throw();
        expect(
          () => statusLeaf(r),
          JSON.stringify(r, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
        ).to.throw();
      }
    });
  });

  describe("buildStatusTree", function () {
    it("for one record: the root is the record's leaf and its proof is empty", function () {
      const record = makeStatus("lonely device");
      const tree = buildStatusTree([record]);
      expect(tree.root).to.equal(statusLeaf(record));
      expect(tree.proofs).to.deep.equal([[]]);
      expect(tree.deviceCount).to.equal(1);
      expect(verifyStatusProof(record, [], tree.root)).to.equal(true);
    });

    it("for three records: sorted pairs, the odd leaf carried up unpaired", function () {
      const records = makeStatuses("triple", 3);
      const [l0, l1, l2] = records.map(statusLeaf);
      const tree = buildStatusTree(records);
      expect(tree.root).to.equal(hashPair(hashPair(l0, l1), l2));
      expect(tree.proofs).to.deep.equal([[l1, l2], [l0, l2], [hashPair(l0, l1)]]);
    });

    it("matches a merkletreejs tree built independently", function () {
      const records = makeStatuses("independent", 11);
      const leaves = records.map((r) => Buffer.from(getBytes(statusLeaf(r))));
      const independent = new MerkleTree(leaves, keccak256Buffer, { sortPairs: true });
      const tree = buildStatusTree(records);
      expect(tree.root).to.equal(independent.getHexRoot());
      expect(tree.proofs).to.deep.equal(leaves.map((leaf) => independent.getHexProof(leaf)));
    });

    for (const count of [2, 5, 8, 33]) {
      it(`for ${count} records: every proof verifies off-chain, and only for its own record, unaltered`, function () {
        const records = makeStatuses(`fleet of ${count}`, count);
        const tree = buildStatusTree(records);
        for (let i = 0; i < count; i++) {
          expect(verifyStatusProof(records[i], tree.proofs[i], tree.root), `record ${i}`).to.equal(true);
          expect(MerkleTree.verify(tree.proofs[i], statusLeaf(records[i]), tree.root, keccak256Buffer, { sortPairs: true })).to.equal(true);
          expect(verifyStatusProof(records[i], tree.proofs[(i + 1) % count], tree.root), `record ${i} with another proof`).to.equal(false);
          expect(verifyStatusProof({ ...records[i], reportCounter: records[i].reportCounter + 1n }, tree.proofs[i], tree.root)).to.equal(false);
        }
      });
    }

    for (const count of [1, 2, 7, 16]) {
      it(`for ${count} records: every proof verifies on-chain (StatusAnchors.verifyStatus), another record's does not`, async function () {
        const records = makeStatuses(`on-chain fleet of ${count}`, count);
        const { anchors, tree } = await anchorOf(records);
        const results = await Promise.all(records.map(async (r, i) => (await anchors.verifyStatus(0, r, tree.proofs[i])).valid));
        expect(results).to.deep.equal(records.map(() => true));
        const altered = await anchors.verifyStatus(
          0,
          { ...records[0], outcome: STATUS_OUTCOME.installed === records[0].outcome ? STATUS_OUTCOME.failed : STATUS_OUTCOME.installed },
          tree.proofs[0],
        );
        expect(altered.valid).to.equal(false);
        if (count > 1) expect((await anchors.verifyStatus(0, records[0], tree.proofs[1])).valid).to.equal(false);
      });
    }

    it("gives the counts per release, ascending by release id, as StatusAnchors takes them", function () {
      const records = makeStatuses("counted", 30);
      const tree = buildStatusTree(records);
      expect(tree.counts).to.deep.equal(releaseCounts(records));
      const ids = tree.counts.map((c) => BigInt(c.releaseId));
      expect(ids).to.deep.equal([...ids].sort((a, b) => (a < b ? -1 : 1)));
      const total = tree.counts.reduce((n, c) => n + c.installed + c.failed + c.pending, 0);
      expect(total).to.equal(30);
    });

    it("throws InputError STATUS_TREE_EMPTY for no records", function () {
      expect(() => buildStatusTree([]))
        .to.throw(InputError)
        .with.property("code", "STATUS_TREE_EMPTY");
    });

    it("throws InputError STATUS_TREE_DUPLICATE for a device given twice (a device has one state)", function () {
      const records = makeStatuses("dup", 3);
      const again = { ...records[0], reportCounter: 99n, deviceId: records[0].deviceId.toUpperCase().replace("0X", "0x") };
      expect(() => buildStatusTree([...records, again]))
        .to.throw(InputError)
        .with.property("code", "STATUS_TREE_DUPLICATE");
    });

    const invalid: [string, (r: StatusRecord) => StatusRecord, RegExp][] = [
      ["a zero device id", (r) => ({ ...r, deviceId: ZeroHash }), /non-zero 32-byte/],
      ["a short device id", (r) => ({ ...r, deviceId: "0x1234" }), /non-zero 32-byte/],
      ["a release id that is not 32 bytes", (r) => ({ ...r, releaseId: "0x01" }), /release id/],
      ["an unknown outcome", (r) => ({ ...r, outcome: 9 as StatusRecord["outcome"] }), /outcome must be/],
      ["an outcome without a release", (r) => ({ ...r, releaseId: ZeroHash }), /exactly when/],
      ["a release without an outcome", (r) => ({ ...r, outcome: STATUS_OUTCOME.none }), /exactly when/],
      ["a version above uint64", (r) => ({ ...r, version: 1n << 64n }), /uint64/],
      ["a negative report counter", (r) => ({ ...r, reportCounter: -1n }), /counter/],
      ["a report time above uint40", (r) => ({ ...r, reportedAt: 2 ** 40 }), /uint40/],
      ["a fractional report time", (r) => ({ ...r, reportedAt: 1.5 }), /uint40/],
    ];
    for (const [name, spoil, message] of invalid) {
      it(`throws InputError STATUS_RECORD_INVALID for ${name}, naming the record`, function () {
        const records = makeStatuses("invalid", 3);
        records[2] = spoil(records[2]);
        expect(() => buildStatusTree(records))
          .to.throw(InputError, message)
          .with.property("code", "STATUS_RECORD_INVALID");
        expect(() => buildStatusTree(records)).to.throw(/status record 2/);
      });
    }
  });

  describe("releaseCounts", function () {
    it("counts installed, failed (failed, rolled back, rejected) and pending per release; leaves out devices with no result", function () {
      const [a, b] = RELEASES;
      const records = [
        makeStatus("1", { releaseId: a, outcome: STATUS_OUTCOME.installed }),
        makeStatus("2", { releaseId: a, outcome: STATUS_OUTCOME.installed }),
        makeStatus("3", { releaseId: a, outcome: STATUS_OUTCOME.failed }),
        makeStatus("4", { releaseId: a, outcome: STATUS_OUTCOME.rolledBack }),
        makeStatus("5", { releaseId: b, outcome: STATUS_OUTCOME.rejected }),
        makeStatus("6", { releaseId: b, outcome: STATUS_OUTCOME.pending }),
        makeStatus("7", { releaseId: ZeroHash, version: 0n, outcome: STATUS_OUTCOME.none }),
      ];
      const expected = [
        { releaseId: a.toLowerCase(), installed: 2, failed: 2, pending: 0 },
        { releaseId: b.toLowerCase(), installed: 0, failed: 1, pending: 1 },
      ].sort((x, y) => (BigInt(x.releaseId) < BigInt(y.releaseId) ? -1 : 1));
      expect(releaseCounts(records)).to.deep.equal(expected);
      expect(buildStatusTree(records).deviceCount).to.equal(7);
    });
  });

  describe("verifyStatusProof", function () {
    it("refuses a malformed proof instead of throwing", function () {
      const records = makeStatuses("malformed", 4);
      const tree = buildStatusTree(records);
      expect(verifyStatusProof(records[0], ["0x1234"], tree.root)).to.equal(false);
      expect(verifyStatusProof(records[0], "nope" as unknown as string[], tree.root)).to.equal(false);
      expect(verifyStatusProof(records[0], Array(65).fill(ZeroHash), tree.root)).to.equal(false);
    });
  });
});
