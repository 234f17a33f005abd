import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { AbiCoder, ZeroHash, concat, getBytes, keccak256, toUtf8Bytes } from "ethers";
import { MerkleTree } from "merkletreejs";
import { MAX_COHORT_PROOF_LENGTH, buildCohort, cohortLeaf, cohortProof, encodeRolloutEvidence, verifyCohortProof } from "../../../agent/crypto/cohortTree";
import { InputError } from "../../../agent/core/errors";
import { catalogFixture } from "../../helpers/registryFixture";
import type { StagedRollout } from "../../../typechain-types";

/**
 * The off-chain cohort trees (agent/crypto/cohortTree.ts) against the on-chain check
 * (StagedRollout, OpenZeppelin MerkleProof): one scheme, tested on both sides.
 */

const coder = AbiCoder.defaultAbiCoder();
const deviceIds = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => keccak256(toUtf8Bytes(`${prefix} ${i}`)));
const ALLOWED = 0n;
const NOT_IN_COHORT = 2n;

/** keccak256 of the two nodes, smaller first (OpenZeppelin's commutative pair hash). */
function hashPair(a: string, b: string): string {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

const SIZES = [1, 2, 3, 4, 5, 8, 13];

/** A StagedRollout with one rollout per cohort size, each a single wave open since the epoch. */
async function cohortsOnChainFixture() {
  const f = await catalogFixture();
  const rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
  const cohorts = SIZES.map((n) => ({ releaseId: keccak256(toUtf8Bytes(`release for ${n}`)), ids: deviceIds(`cohort of ${n}`, n) }));
  const built = cohorts.map((c) => ({ ...c, cohort: buildCohort(c.ids) }));
  for (const c of built) await rollout.connect(f.admin).createRollout(c.releaseId, [{ cohortRoot: c.cohort.root, startsAt: 0 }], 1);
  return { rollout, built };
}

async function onChain(rollout: StagedRollout, releaseId: string, id: string, proof: string[]): Promise<bigint> {
  const device = { deviceId: id, hardwareClass: 1, network: ZeroHash, region: ZeroHash, installed: [] };
  return rollout.check(releaseId, ZeroHash, 1n, device, encodeRolloutEvidence(0, proof));
}

describe("cohortTree (APP-II-3: a staged rollout's cohorts)", function () {
  it("hashes a leaf as keccak256(keccak256(abi.encode(deviceId)))", function () {
    const id = keccak256(toUtf8Bytes("a device"));
    expect(cohortLeaf(id)).to.equal(keccak256(keccak256(coder.encode(["bytes32"], [id]))));
  });

  it("makes a one-device cohort's root its leaf, with an empty proof", function () {
    const [id] = deviceIds("alone", 1);
    const cohort = buildCohort([id]);
    expect(cohort.root).to.equal(cohortLeaf(id));
    expect(cohortProof(cohort, id)).to.deep.equal([]);
  });

  it("gives the root merkletreejs computes and proofs our own verifier accepts", function () {
    for (const n of SIZES) {
      const ids = deviceIds(`size ${n}`, n);
      const cohort = buildCohort(ids);
      const tree = new MerkleTree(
        ids.map((id) => cohortLeaf(id)),
        (d: Buffer) => Buffer.from(getBytes(keccak256(d))),
        { sortPairs: true },
      );
      expect(cohort.root).to.equal(tree.getHexRoot());
      for (const id of ids) expect(verifyCohortProof(id, cohortProof(cohort, id), cohort.root), `size ${n}`).to.equal(true);
    }
  });

  it("finds a device's proof whatever the case of its id", function () {
    const ids = deviceIds("case", 3);
    const cohort = buildCohort(ids);
    expect(cohortProof(cohort, ids[1].toUpperCase().replace("0X", "0x"))).to.deep.equal(cohort.proofs[1]);
  });

  describe("on-chain, against StagedRollout", function () {
    it("the contract's leaf is the off-chain leaf", async function () {
      const { rollout, built } = await loadFixture(cohortsOnChainFixture);
      for (const id of built.flatMap((c) => c.ids)) expect(await rollout.cohortLeaf(id)).to.equal(cohortLeaf(id));
    });

    it("every off-chain proof verifies on-chain, for cohorts of 1 to 13 devices", async function () {
      const { rollout, built } = await loadFixture(cohortsOnChainFixture);
      for (const c of built) {
        for (const id of c.ids) expect(await onChain(rollout, c.releaseId, id, cohortProof(c.cohort, id)), `${c.ids.length}`).to.equal(ALLOWED);
      }
    });

    it("an altered proof fails on both sides: a flipped bit, a dropped sibling, an added sibling, swapped siblings", async function () {
      const { rollout, built } = await loadFixture(cohortsOnChainFixture);
      const c = built.find((x) => x.ids.length === 13)!;
      const id = c.ids[6];
      const proof = cohortProof(c.cohort, id);
      expect(proof.length).to.be.greaterThan(2);
      const flip = (h: string) => `${h.slice(0, -1)}${(parseInt(h.slice(-1), 16) ^ 1).toString(16)}`;
      const alterations: Array<[string, string[]]> = [
        ["flipped bit", [flip(proof[0]), ...proof.slice(1)]],
        ["dropped sibling", proof.slice(0, -1)],
        ["added sibling", [...proof, keccak256("0x01")]],
        ["swapped siblings", [proof[1], proof[0], ...proof.slice(2)]],
      ];
      for (const [name, altered] of alterations) {
        expect(verifyCohortProof(id, altered, c.cohort.root), name).to.equal(false);
        expect(await onChain(rollout, c.releaseId, id, altered), name).to.equal(NOT_IN_COHORT);
      }
    });

    it("a proof for another cohort, or another device, fails on both sides", async function () {
      const { rollout, built } = await loadFixture(cohortsOnChainFixture);
      const [a, b] = [built.find((x) => x.ids.length === 5)!, built.find((x) => x.ids.length === 8)!];
      const id = b.ids[0];
      expect(verifyCohortProof(id, cohortProof(b.cohort, id), a.cohort.root)).to.equal(false);
      expect(await onChain(rollout, a.releaseId, id, cohortProof(b.cohort, id))).to.equal(NOT_IN_COHORT);
      expect(verifyCohortProof(b.ids[1], cohortProof(b.cohort, id), b.cohort.root)).to.equal(false);
      expect(await onChain(rollout, b.releaseId, b.ids[1], cohortProof(b.cohort, id))).to.equal(NOT_IN_COHORT);
    });

    it("an inner node presented as a device id is no member (the double-hashed leaf)", async function () {
      const { rollout, built } = await loadFixture(cohortsOnChainFixture);
      const c = built.find((x) => x.ids.length === 4)!;
      const leaves = c.ids.map(cohortLeaf);
      const [left, right] = [hashPair(leaves[0], leaves[1]), hashPair(leaves[2], leaves[3])];
      expect(hashPair(left, right)).to.equal(c.cohort.root);
      expect(verifyCohortProof(left, [right], c.cohort.root)).to.equal(false);
      expect(await onChain(rollout, c.releaseId, left, [right])).to.equal(NOT_IN_COHORT);
    });
  });

  describe("encodeRolloutEvidence", function () {
    it("is abi.encode(uint256 waveIndex, bytes32[] proof)", function () {
      const proof = [keccak256("0x01"), keccak256("0x02")];
      const encoded = encodeRolloutEvidence(3, proof);
      const [wave, decoded] = coder.decode(["uint256", "bytes32[]"], encoded);
      expect([wave, [...decoded]]).to.deep.equal([3n, proof]);
      expect(encodeRolloutEvidence(3n, proof)).to.equal(encoded);
      expect(getBytes(encoded).length).to.equal(96 + 32 * proof.length);
    });

    const bad: Array<[string, () => unknown, string]> = [
      ["a negative wave index", () => encodeRolloutEvidence(-1, []), "ROLLOUT_WAVE_INVALID"],
      ["a fractional wave index", () => encodeRolloutEvidence(1.5, []), "ROLLOUT_WAVE_INVALID"],
      ["a proof longer than the contract takes", () => encodeRolloutEvidence(0, Array(MAX_COHORT_PROOF_LENGTH + 1).fill(ZeroHash)), "COHORT_PROOF_INVALID"],
      ["a sibling that is not 32 bytes", () => encodeRolloutEvidence(0, ["0x1234"]), "COHORT_PROOF_INVALID"],
    ];
    for (const [name, call, code] of bad) {
      it(`refuses ${name}`, function () {
        expect(call).to.throw(InputError).with.property("code", code);
      });
    }
  });

  describe("input checks", function () {
    const [a, b] = deviceIds("input", 2);
    const bad: Array<[string, () => unknown, string]> = [
      ["an empty cohort", () => buildCohort([]), "COHORT_EMPTY"],
      ["a zero device id", () => buildCohort([a, ZeroHash]), "COHORT_DEVICE_ID_INVALID"],
      ["a device id that is not 32 bytes", () => buildCohort([a, "0x1234"]), "COHORT_DEVICE_ID_INVALID"],
      ["a device listed twice (in another case)", () => buildCohort([a, b, a.toUpperCase().replace("0X", "0x")]), "COHORT_DUPLICATE"],
      ["the proof of a device not in the cohort", () => cohortProof(buildCohort([a]), b), "COHORT_DEVICE_UNKNOWN"],
    ];
    for (const [name, call, code] of bad) {
      it(`refuses ${name}`, function () {
        expect(call).to.throw(InputError).with.property("code", code);
      });
    }

    it("verifies nothing from malformed input", function () {
      const cohort = buildCohort([a, b]);
      expect(verifyCohortProof("0x1234", cohortProof(cohort, a), cohort.root)).to.equal(false);
      expect(verifyCohortProof(a, ["0x1234"], cohort.root)).to.equal(false);
      expect(verifyCohortProof(a, Array(MAX_COHORT_PROOF_LENGTH + 1).fill(ZeroHash), cohort.root)).to.equal(false);
    });
  });
});
