import { expect } from "chai";
import { createHash } from "node:crypto";
import { concat, getBytes, randomBytes } from "ethers";
import { ChunkMerkleTree, chunkLeaf, verifyChunk } from "../../../agent/crypto/chunkMerkle";

describe("chunk Merkle tree (Table II-1 Merkle root, CAP-11.4-a)", function () {
  const data = Uint8Array.from({ length: 5 * 1000 + 17 }, (_, i) => (i * 31) % 251);
  const chunks = Array.from({ length: Math.ceil(data.length / 1000) }, (_, i) => data.subarray(i * 1000, (i + 1) * 1000));
  const tree = ChunkMerkleTree.fromChunks(chunks);

  it("matches a root computed by hand (SHA-256, leaves index-bound and hashed twice, children in position order)", function () {
    const l = chunks.map((c, i) => chunkLeaf(i, c));
    const h = (a: string, b: string) =>
      "0x" +
      createHash("sha256")
        .update(getBytes(concat([a, b])))
        .digest("hex");
    // Six leaves: three pairs, then the odd node is promoted.
    const level1 = [h(l[0], l[1]), h(l[2], l[3]), h(l[4], l[5])];
    const root = h(h(level1[0], level1[1]), level1[2]);
    expect(tree.root).to.equal(root);
  });

  it("verifies every chunk with its proof", function () {
    chunks.forEach((c, i) => expect(verifyChunk(tree.root, i, c, tree.proof(i))).to.equal(true));
  });

  it("rejects a chunk with one byte altered", function () {
    const altered = Uint8Array.from(chunks[2]);
    altered[500] ^= 0x01;
    expect(verifyChunk(tree.root, 2, altered, tree.proof(2))).to.equal(false);
  });

  it("rejects a genuine chunk presented at another position (swap) and a truncated chunk", function () {
    expect(verifyChunk(tree.root, 3, chunks[2], tree.proof(2))).to.equal(false);
    expect(verifyChunk(tree.root, 3, chunks[2], tree.proof(3))).to.equal(false);
    expect(verifyChunk(tree.root, 5, chunks[5].subarray(0, 16), tree.proof(5))).to.equal(false);
  });

  it("cannot pass an inner node off as a leaf (second preimage)", function () {
    const l = chunks.map((c, i) => chunkLeaf(i, c));
    const inner = concat([l[0], l[1]]); // 64 bytes that hash to a level-1 node
    const proofOfParent = tree.proof(0).slice(1);
    expect(verifyChunk(tree.root, 0, Buffer.from(inner.slice(2), "hex"), proofOfParent)).to.equal(false);
  });

  it("changes the root when chunks are reordered or one is dropped", function () {
    const swapped = [chunks[1], chunks[0], ...chunks.slice(2)];
    expect(ChunkMerkleTree.fromChunks(swapped).root).to.not.equal(tree.root);
    expect(ChunkMerkleTree.fromChunks(chunks.slice(0, 5)).root).to.not.equal(tree.root);
  });

  it("handles a single chunk (root = its leaf) and refuses none", function () {
    const one = randomBytes(10);
    const t = ChunkMerkleTree.fromChunks([one]);
    expect(t.root).to.equal(chunkLeaf(0, one));
    expect(verifyChunk(t.root, 0, one, t.proof(0))).to.equal(true);
    expect(() => new ChunkMerkleTree([])).to.throw(RangeError, /at least one chunk/);
  });
});
