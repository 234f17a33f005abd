import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { SimpleMerkleTree, StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { keccak256, toUtf8Bytes } from "ethers";
import {
  PositionalMerkleTree,
  SortedMerkleTree,
  buildSortedTree,
  hashSortedPair,
  verifyPositionalProof,
  verifySortedProof,
  type PositionalProof,
} from "../../../agent/crypto/merkle";
import { buildDeviceBatch, deviceLeaf, verifyDeviceProof, type DeviceRecord } from "../../../agent/crypto/deviceTree";
import { buildCohort, cohortLeaf, verifyCohortProof } from "../../../agent/crypto/cohortTree";
import { buildStatusTree, releaseCounts, statusLeaf, statusLeafBytes, verifyStatusProof, type StatusRecord } from "../../../agent/crypto/statusTree";
import { ChunkMerkleTree, chunkLeaf, verifyChunk } from "../../../agent/crypto/chunkMerkle";
import { CHUNK_SIZE, deviceNodeBuffer, tagsLeafBuffer } from "../../../agent/tracker/statusRecords";
import { catalogFixture } from "../../helpers/registryFixture";
import type { MerkleProofHarness, StatusAnchors } from "../../../typechain-types";
import vectors from "./merkleVectors.json";
import { ANCHOR_SIZES, VECTOR_SIZES, vectorChunk, vectorDeviceId, vectorDeviceRecord, vectorStatusRecord, vectorTags } from "./merkleInputs";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const hex = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");
const digest = (v: unknown) => keccak256(toUtf8Bytes(JSON.stringify(v)));

interface Vector {
  root: string;
  proofsDigest: string;
  proofs?: unknown[];
  chunkRoots?: string[];
}
const vectorsOf = (kind: string) => (vectors as unknown as Record<string, Record<string, Vector>>)[kind];

/** Each tree as its owner builds it, from the inputs of the vectors: the root and every proof. */
const TREES: Record<string, (n: number) => { root: string; proofs: unknown[] }> = {
  device: (n) => buildDeviceBatch(range(n).map(vectorDeviceRecord)),
  cohort: (n) => buildCohort(range(n).map(vectorDeviceId)),
  status: (n) => buildStatusTree(range(n).map(vectorStatusRecord)),
  chunk: (n) => {
    const tree = ChunkMerkleTree.fromChunks(range(n).map(vectorChunk));
    return { root: tree.root, proofs: range(n).map((i) => tree.proof(i)) };
  },
};

/**
 * The tracker's status tree of an anchor as agent/tracker/statusAnchoring builds and proves it:
 * chunk roots of the devices' nodes (format 1: the status leaf; format 2: the status leaf paired
 * with the tags leaf), the root of the chunk roots, and a proof per device (format 2: the tags
 * leaf first).
 */
function anchorTree(records: StatusRecord[], tags: (string | null)[], format: 1 | 2, chunkSize = CHUNK_SIZE) {
  const nodes = records.map((r, i) => (format === 2 ? deviceNodeBuffer(r, tags[i]) : statusLeafBytes(r)));
  const chunks = range(Math.ceil(nodes.length / chunkSize)).map((c) => new SortedMerkleTree(nodes.slice(c * chunkSize, (c + 1) * chunkSize)));
  const top = new SortedMerkleTree(chunks.map((c) => c.root));
  const proofs = records.map((r, i) => {
    const own = format === 2 ? [tagsLeafBuffer(r.deviceId, tags[i])] : [];
    return [...own, ...chunks[Math.floor(i / chunkSize)].proof(i % chunkSize), ...top.proof(Math.floor(i / chunkSize))].map(hex);
  });
  return { root: hex(top.root), chunkRoots: chunks.map((c) => hex(c.root)), proofs };
}

// The leaf encodings as OpenZeppelin's StandardMerkleTree takes them: its leaf is
// keccak256(bytes.concat(keccak256(abi.encode(values)))) with these types.
const DEVICE_ENCODING = ["bytes32", "bytes32", "uint16", "bytes32", "bytes32"];
const deviceValues = (r: DeviceRecord) => [r.id, keccak256(r.publicKey), r.hardwareClass, r.network, r.region];
const COHORT_ENCODING = ["bytes32"];
const cohortValues = (id: string) => [id];
const STATUS_ENCODING = ["bytes32", "bytes32", "uint64", "uint8", "uint64", "uint40"];
const statusValues = (r: StatusRecord) => [r.deviceId, r.releaseId, r.version, r.outcome, r.reportCounter, r.reportedAt];

/** Each sorted-pair tree kind: its leaves from n inputs, as the module builds them and as OpenZeppelin does. */
const SORTED_KINDS = [
  {
    kind: "device batch",
    encoding: DEVICE_ENCODING,
    values: (n: number) => range(n).map((i) => deviceValues(vectorDeviceRecord(i))),
    leaves: (n: number) => range(n).map((i) => deviceLeaf(vectorDeviceRecord(i))),
    build: (n: number) => buildDeviceBatch(range(n).map(vectorDeviceRecord)),
  },
  {
    kind: "cohort",
    encoding: COHORT_ENCODING,
    values: (n: number) => range(n).map((i) => cohortValues(vectorDeviceId(i))),
    leaves: (n: number) => range(n).map((i) => cohortLeaf(vectorDeviceId(i))),
    build: (n: number) => buildCohort(range(n).map(vectorDeviceId)),
  },
  {
    kind: "status tree",
    encoding: STATUS_ENCODING,
    values: (n: number) => range(n).map((i) => statusValues(vectorStatusRecord(i))),
    leaves: (n: number) => range(n).map((i) => statusLeaf(vectorStatusRecord(i))),
    build: (n: number) => buildStatusTree(range(n).map(vectorStatusRecord)),
  },
];

/**
 * OpenZeppelin's trees (makeMerkleTree) are complete binary trees laid out as a heap; merkletreejs
 * carries a node without a sibling up a level. Both hash a node as the sorted pair of its children,
 * so the two trees are the same exactly when their shapes are: for 2^k and 3 * 2^k leaves (each
 * checked from 1 to 70 leaves: 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64). For other sizes the two
 * libraries pair other nodes, so the roots differ; the proofs of each still verify with the other's
 * verifier, since verifying (MerkleProof.processProof) depends on the pair hash only.
 */
const SAME_SHAPE = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];
const OTHER_SHAPE = [5, 7, 9, 17, 33, 100];

async function harness(): Promise<MerkleProofHarness> {
  return (await ethers.deployContract("MerkleProofHarness")) as unknown as MerkleProofHarness;
}

describe("agent/crypto/merkle: one module builds every Merkle tree and checks its proofs (issue 20)", function () {
  describe("fixed vectors: roots and proofs are byte for byte those of the code before the module (commit 800a1a5)", function () {
    for (const kind of ["device", "cohort", "status", "chunk"]) {
      it(`${kind} trees of ${VECTOR_SIZES.length} sizes (1 to 257 leaves): the same root and the same proofs`, function () {
        for (const n of VECTOR_SIZES) {
          const v = vectorsOf(kind)[n];
          const tree = TREES[kind](n);
          expect(tree.root, `root of ${n}`).to.equal(v.root);
          if (v.proofs) expect(tree.proofs, `proofs of ${n}`).to.deep.equal(v.proofs);
          expect(digest(tree.proofs), `proofs of ${n}`).to.equal(v.proofsDigest);
        }
      });
    }

    for (const format of [1, 2] as const) {
      it(`the tracker's anchors of format ${format}, built by chunks of ${CHUNK_SIZE}: the same root, chunk roots and proofs, up to 3,001 devices`, function () {
        this.timeout(300_000);
        for (const n of ANCHOR_SIZES) {
          const v = vectorsOf(`anchor`)[`format${format}`] as unknown as Record<string, Vector>;
          const tree = anchorTree(range(n).map(vectorStatusRecord), range(n).map(vectorTags), format);
          expect(tree.root, `root of ${n}`).to.equal(v[n].root);
          expect(tree.chunkRoots, `chunk roots of ${n}`).to.deep.equal(v[n].chunkRoots);
          if (v[n].proofs) expect(tree.proofs, `proofs of ${n}`).to.deep.equal(v[n].proofs);
          expect(digest(tree.proofs), `proofs of ${n}`).to.equal(v[n].proofsDigest);
        }
      });
    }

    it("an anchor of format 1 is the status tree of its records (buildStatusTree), however it is chunked", function () {
      const records = range(37).map(vectorStatusRecord);
      const whole = buildStatusTree(records);
      for (const chunkSize of [1, 2, 4, 8, 32, 64]) {
        const tree = anchorTree(records, [], 1, chunkSize);
        expect(tree.root, `chunks of ${chunkSize}`).to.equal(whole.root);
        expect(tree.proofs, `chunks of ${chunkSize}`).to.deep.equal(whole.proofs);
      }
    });
  });

  describe("OpenZeppelin's @openzeppelin/merkle-tree as an oracle", function () {
    it("StandardMerkleTree hashes a leaf exactly as deviceLeaf, cohortLeaf and statusLeaf do; SimpleMerkleTree takes a leaf as it is", function () {
      // StandardMerkleTree's leaf is keccak256(keccak256(abi.encode(values))): ours, field for field
      // (a device's key enters as keccak256(publicKey), as DeviceRecords.sol hashes it).
      for (const { kind, encoding, values, leaves } of SORTED_KINDS) {
        const oz = StandardMerkleTree.of(values(9), encoding, { sortLeaves: false });
        expect(
          values(9).map((v) => oz.leafHash(v)),
          kind,
        ).to.deep.equal(leaves(9));
      }
      // SimpleMerkleTree hashes nothing: its leaves are bytes32 values used as they are. It gives our
      // tree only when handed our leaves already hashed, so it checks the tree but not the leaf.
      const id = vectorDeviceId(0);
      expect(SimpleMerkleTree.of([cohortLeaf(id)]).root).to.equal(cohortLeaf(id));
      expect(SimpleMerkleTree.of([id]).root).to.equal(id);
      expect(StandardMerkleTree.of([[id]], COHORT_ENCODING).root).to.equal(cohortLeaf(id));
    });

    for (const { kind, encoding, values, build } of SORTED_KINDS) {
      it(`a ${kind} of 2^k or 3 * 2^k leaves: the root and every proof are StandardMerkleTree's (leaves in the order given)`, function () {
        for (const n of SAME_SHAPE) {
          const oz = StandardMerkleTree.of(values(n), encoding, { sortLeaves: false });
          const ours = build(n);
          expect(ours.root, `root of ${n}`).to.equal(oz.root);
          expect(ours.proofs, `proofs of ${n}`).to.deep.equal(range(n).map((i) => oz.getProof(i)));
        }
      });

      it(`a ${kind} of another size: StandardMerkleTree.verify takes each of its proofs, and ours each of OpenZeppelin's; another leaf's proof neither`, function () {
        for (const n of OTHER_SHAPE) {
          const vs = values(n);
          const oz = StandardMerkleTree.of(vs, encoding, { sortLeaves: false });
          const ours = build(n);
          expect(ours.root, `a heap-shaped tree of ${n} pairs other nodes`).to.not.equal(oz.root);
          for (const i of range(n)) {
            expect(StandardMerkleTree.verify(ours.root, encoding, vs[i], ours.proofs[i]), `our proof ${i} of ${n}`).to.equal(true);
            expect(verifySortedProof(oz.leafHash(vs[i]), oz.getProof(i), oz.root), `OpenZeppelin's proof ${i} of ${n}`).to.equal(true);
            const other = (i + 1) % n;
            expect(StandardMerkleTree.verify(ours.root, encoding, vs[i], ours.proofs[other]), `proof ${other} for ${i}`).to.equal(false);
            expect(verifySortedProof(oz.leafHash(vs[i]), oz.getProof(other), oz.root), `proof ${other} for ${i}`).to.equal(false);
          }
        }
      });
    }

    it("the tracker's anchor of format 2: its tree of device nodes is SimpleMerkleTree's, and StandardMerkleTree.verify takes a status proof", function () {
      for (const n of [8, 12, 24]) {
        const records = range(n).map(vectorStatusRecord);
        const tags = range(n).map(vectorTags);
        const tree = anchorTree(records, tags, 2, 4);
        // A device's node pairs its status leaf with its tags leaf: an inner node, given to SimpleMerkleTree as it is.
        const oz = SimpleMerkleTree.of(
          records.map((r, i) => hex(deviceNodeBuffer(r, tags[i]))),
          { sortLeaves: false },
        );
        expect(tree.root, `root of ${n}`).to.equal(oz.root);
        for (const i of range(n)) {
          expect(tree.proofs[i].slice(1), `path of ${i}`).to.deep.equal(oz.getProof(i));
          expect(StandardMerkleTree.verify(tree.root, STATUS_ENCODING, statusValues(records[i]), tree.proofs[i]), `status proof ${i}`).to.equal(true);
        }
      }
    });
  });

  describe("on-chain: OpenZeppelin's MerkleProof agrees with the module", function () {
    it("MerkleProof.verify and verifyCalldata take every proof of a device batch, a cohort and a status tree, and refuse another leaf's or an altered one", async function () {
      const h = await loadFixture(harness);
      for (const { kind, leaves, build } of SORTED_KINDS) {
        for (const n of [1, 5, 16]) {
          const ls = leaves(n);
          const tree = build(n);
          for (const i of range(n)) {
            expect(await h.verify(tree.proofs[i], tree.root, ls[i]), `${kind} ${n}: proof ${i}`).to.equal(true);
            expect(await h.verifyCalldata(tree.proofs[i], tree.root, ls[i]), `${kind} ${n}: proof ${i}`).to.equal(true);
          }
          if (n > 1) {
            expect(await h.verify(tree.proofs[1], tree.root, ls[0]), `${kind} ${n}: another leaf's proof`).to.equal(false);
            const altered = [...tree.proofs[0]];
            altered[0] = keccak256(altered[0]);
            expect(await h.verifyCalldata(altered, tree.root, ls[0]), `${kind} ${n}: an altered proof`).to.equal(false);
            expect(verifySortedProof(ls[0], altered, tree.root)).to.equal(false);
          }
        }
      }
    });

    it("MerkleProof.multiProofVerify takes OpenZeppelin's multiproofs against the module's roots, and refuses one with a leaf swapped", async function () {
      const h = await loadFixture(harness);
      for (const { kind, encoding, values, leaves, build } of SORTED_KINDS) {
        for (const n of [8, 12]) {
          const ours = build(n);
          const oz = StandardMerkleTree.of(values(n), encoding, { sortLeaves: false });
          const multi = oz.getMultiProof([0, 3, n - 1]);
          const multiLeaves = multi.leaves.map((v) => oz.leafHash(v));
          expect(await h.multiProofVerify(multi.proof, multi.proofFlags, ours.root, multiLeaves), `${kind} ${n}`).to.equal(true);
          const swapped = [leaves(n)[1], ...multiLeaves.slice(1)];
          expect(await h.multiProofVerify(multi.proof, multi.proofFlags, ours.root, swapped), `${kind} ${n}, a leaf swapped`).to.equal(false);
        }
      }
    });

    it("StatusAnchors.verifyStatus proves a device's status in an anchor of format 2 built by chunks, and refuses an altered record or another's proof", async function () {
      const base = await loadFixture(catalogFixture);
      const anchors = (await ethers.deployContract("StatusAnchors", [await base.registry.getAddress()])) as unknown as StatusAnchors;
      const records = range(21).map(vectorStatusRecord);
      const tree = anchorTree(records, range(21).map(vectorTags), 2, 4);
      await anchors.connect(base.tracker).anchor(tree.root, records.length, releaseCounts(records));
      for (const i of [0, 3, 4, 20]) expect((await anchors.verifyStatus(0, records[i], tree.proofs[i])).valid, `device ${i}`).to.equal(true);
      expect((await anchors.verifyStatus(0, { ...records[3], reportCounter: 999n }, tree.proofs[3])).valid).to.equal(false);
      expect((await anchors.verifyStatus(0, records[3], tree.proofs[4])).valid).to.equal(false);
    });
  });

  describe("properties (fast-check)", function () {
    const leaf32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex);

    it("a sorted-pair tree: every proof verifies, with ours and with OpenZeppelin's processProof; one byte flipped, it does not", function () {
      fc.assert(
        fc.property(fc.uniqueArray(leaf32, { minLength: 1, maxLength: 70 }), fc.nat(), fc.nat(31), (leaves, pick, byte) => {
          const tree = buildSortedTree(leaves);
          for (const [i, l] of leaves.entries()) {
            expect(verifySortedProof(l, tree.proofs[i], tree.root)).to.equal(true);
            expect(SimpleMerkleTree.verify(tree.root, l, tree.proofs[i])).to.equal(true);
          }
          const i = pick % leaves.length;
          if (tree.proofs[i].length === 0) return;
          const flipped = tree.proofs[i].map((p, k) => (k === 0 ? hex(Buffer.from(p.slice(2), "hex").map((b, j) => (j === byte ? b ^ 1 : b))) : p));
          expect(verifySortedProof(leaves[i], flipped, tree.root)).to.equal(false);
          expect(SimpleMerkleTree.verify(tree.root, leaves[i], flipped)).to.equal(false);
        }),
        { numRuns: 60 },
      );
    });

    it("a sorted-pair tree built by aligned chunks of 2^k leaves has the same root and proofs as the whole", function () {
      fc.assert(
        fc.property(fc.array(leaf32, { minLength: 1, maxLength: 70 }), fc.integer({ min: 0, max: 5 }), (leaves, k) => {
          const size = 2 ** k;
          const whole = buildSortedTree(leaves);
          const chunks = range(Math.ceil(leaves.length / size)).map((c) => SortedMerkleTree.fromHex(leaves.slice(c * size, (c + 1) * size)));
          const top = new SortedMerkleTree(chunks.map((c) => c.root));
          expect(hex(top.root)).to.equal(whole.root);
          for (const i of range(leaves.length))
            expect([...chunks[Math.floor(i / size)].proof(i % size), ...top.proof(Math.floor(i / size))].map(hex)).to.deep.equal(whole.proofs[i]);
        }),
        { numRuns: 60 },
      );
    });

    it("a chunk tree: every chunk verifies at its index with its proof, not at another index nor with a proof's side turned", function () {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 40 }), fc.nat(), (chunks, pick) => {
          const tree = ChunkMerkleTree.fromChunks(chunks);
          for (const [i, c] of chunks.entries()) expect(verifyChunk(tree.root, i, c, tree.proof(i))).to.equal(true);
          const i = pick % chunks.length;
          const proof = tree.proof(i);
          if (chunks.length > 1) expect(verifyChunk(tree.root, (i + 1) % chunks.length, chunks[i], proof)).to.equal(false);
          if (proof.length > 0) {
            const turned: PositionalProof = proof.map((s, k) => (k === 0 ? { ...s, position: s.position === "left" ? "right" : "left" } : s));
            expect(verifyChunk(tree.root, i, chunks[i], turned)).to.equal(false);
          }
        }),
        { numRuns: 60 },
      );
    });
  });

  describe("the module's edges", function () {
    it("a tree needs a leaf, and a proof a leaf that is in the tree (RangeError)", function () {
      expect(() => new SortedMerkleTree([])).to.throw(RangeError, /at least one leaf/);
      expect(() => new PositionalMerkleTree([])).to.throw(RangeError, /at least one leaf/);
      const sorted = SortedMerkleTree.fromHex(range(3).map((i) => cohortLeaf(vectorDeviceId(i))));
      const positional = new PositionalMerkleTree(range(3).map((i) => chunkLeaf(i, vectorChunk(i))));
      for (const index of [-1, 3, 1.5]) {
        expect(() => sorted.proof(index), `index ${index}`).to.throw(RangeError, /no leaf/);
        expect(() => positional.proof(index), `index ${index}`).to.throw(RangeError, /no leaf/);
      }
      expect(() => SortedMerkleTree.fromHex(["0xnothex"])).to.throw();
    });

    it("a malformed proof is refused, not thrown: not an array, too long, not 32-byte values, a side that is neither", function () {
      const tree = buildCohort(range(4).map(vectorDeviceId));
      const id = vectorDeviceId(0);
      expect(verifyCohortProof(id, tree.proofs[0], tree.root)).to.equal(true);
      expect(verifySortedProof(cohortLeaf(id), "nope" as unknown as string[], tree.root)).to.equal(false);
      expect(verifySortedProof(cohortLeaf(id), [tree.proofs[0][0].slice(0, 40), tree.proofs[0][1]], tree.root)).to.equal(false);
      expect(verifySortedProof(cohortLeaf(id), tree.proofs[0], tree.root, 1)).to.equal(false);
      expect(verifySortedProof("0x1234", tree.proofs[0], tree.root)).to.equal(false);

      const chunks = range(4).map(vectorChunk);
      const chunkTree = ChunkMerkleTree.fromChunks(chunks);
      const proof = chunkTree.proof(0);
      expect(verifyChunk(chunkTree.root, 0, chunks[0], proof)).to.equal(true);
      expect(verifyChunk(chunkTree.root, 0, chunks[0], "nope" as unknown as PositionalProof)).to.equal(false);
      expect(verifyChunk(chunkTree.root, 0, chunks[0], [{ ...proof[0], hash: "0x12" }, proof[1]])).to.equal(false);
      expect(verifyChunk(chunkTree.root, 0, chunks[0], [{ ...proof[0], position: "up" as "left" }, proof[1]])).to.equal(false);
      expect(verifyPositionalProof(chunkLeaf(0, chunks[0]), proof, chunkTree.root, 1)).to.equal(false);
    });

    it("hashSortedPair is the parent in both orders, keccak256 of the smaller first (OpenZeppelin's commutative hash)", function () {
      const [a, b] = [vectorDeviceId(1), vectorDeviceId(2)].map((h) => Buffer.from(h.slice(2), "hex"));
      const [lo, hi] = Buffer.compare(a, b) < 0 ? [a, b] : [b, a];
      expect(hex(hashSortedPair(a, b))).to.equal(keccak256(Buffer.concat([lo, hi])));
      expect(hex(hashSortedPair(b, a))).to.equal(hex(hashSortedPair(a, b)));
      expect(hex(new SortedMerkleTree([a, b]).root)).to.equal(hex(hashSortedPair(a, b)));
    });

    it("the owners' verifiers are the module's: a device, a cohort and a status proof each verify", function () {
      const records = range(5).map(vectorDeviceRecord);
      const batch = buildDeviceBatch(records);
      expect(records.every((r, i) => verifyDeviceProof(r, batch.proofs[i], batch.root))).to.equal(true);
      const status = range(5).map(vectorStatusRecord);
      const tree = buildStatusTree(status);
      expect(status.every((r, i) => verifyStatusProof(r, tree.proofs[i], tree.root))).to.equal(true);
      expect(verifyStatusProof(status[0], tree.proofs[1], tree.root)).to.equal(false);
    });
  });
});
