import { expect } from "chai";
import { ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { SortedMerkleTree, buildSortedTree } from "../../../agent/crypto/merkle";
import { STATUS_OUTCOME, statusLeaf, statusLeafBytes, type StatusRecord } from "../../../agent/crypto/statusTree";
import { packRecord, statusOutcomeOf, unpackRecord } from "../../../agent/tracker/statusRecords";

const record = (i: number): StatusRecord => ({
  deviceId: keccak256(toUtf8Bytes(`device ${i}`)),
  releaseId: i % 3 === 0 ? ZeroHash : keccak256(toUtf8Bytes(`release ${i % 2}`)),
  version: i % 3 === 0 ? 0n : (1n << 40n) + BigInt(i),
  outcome: i % 3 === 0 ? STATUS_OUTCOME.none : STATUS_OUTCOME.installed,
  reportCounter: 2n ** 63n + BigInt(i),
  reportedAt: 1_767_225_600 + i,
});
const hex = (b: Buffer) => "0x" + b.toString("hex");

describe("agent/tracker/statusRecords: status records packed and their tree built by chunks (CAP-11.2-a, CAP-11.2-b)", () => {
  it("a leaf over buffers is statusTree's leaf, and a packed record unpacks to itself", () => {
    for (let i = 0; i < 6; i++) {
      const r = record(i);
      expect(hex(statusLeafBytes(r))).to.equal(statusLeaf(r));
      expect(unpackRecord(Buffer.from(r.deviceId.slice(2), "hex"), packRecord(r))).to.deep.equal(r);
    }
  });

  it("proofs made from one chunk and the chunk roots are buildSortedTree's, for every fleet size around the chunk edges", () => {
    const chunk = 4;
    for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33]) {
      const leaves = Array.from({ length: n }, (_, i) => statusLeafBytes(record(i)));
      const expected = buildSortedTree(leaves.map(hex));
      const chunkRoots: Buffer[] = [];
      for (let at = 0; at < n; at += chunk) chunkRoots.push(new SortedMerkleTree(leaves.slice(at, at + chunk)).root);
      expect(hex(new SortedMerkleTree(chunkRoots).root), `root of ${n}`).to.equal(expected.root);
      for (let i = 0; i < n; i++) {
        const first = Math.floor(i / chunk) * chunk;
        const proof = [...new SortedMerkleTree(leaves.slice(first, first + chunk)).proof(i - first), ...new SortedMerkleTree(chunkRoots).proof(first / chunk)];
        expect(proof.map(hex), `proof ${i} of ${n}`).to.deep.equal(expected.proofs[i]);
      }
    }
  });

  it("the outcome of a device's last result: refusals that pass by themselves are pending, the others rejected", () => {
    const table: [string | null, string | null, number][] = [
      [null, null, STATUS_OUTCOME.none],
      ["confirmed", "OK", STATUS_OUTCOME.installed],
      ["failed", "IMAGE_INVALID", STATUS_OUTCOME.failed],
      ["rolled-back", "HEALTH_CHECK_FAILED", STATUS_OUTCOME.rolledBack],
      ["rejected", "SIGNATURE_INVALID", STATUS_OUTCOME.rejected],
      ["rejected", "KEY_NOT_GRANTED", STATUS_OUTCOME.pending],
      ["rejected", "POLICY_REFUSED", STATUS_OUTCOME.pending],
      ["declined", "DEVICE_POLICY", STATUS_OUTCOME.rejected],
      ["something-new", null, STATUS_OUTCOME.none],
    ];
    for (const [outcome, code, expected] of table) expect(statusOutcomeOf(outcome, code), `${outcome} ${code}`).to.equal(expected);
  });
});
