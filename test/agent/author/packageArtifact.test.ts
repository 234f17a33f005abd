import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { packageArtifact } from "../../../agent/author/packageArtifact";
import { artifactSize, decryptArtifact, newContentKey, splitStoredChunks } from "../../../agent/crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../../../agent/crypto/chunkMerkle";
import { computeCid } from "../../../agent/storage/cid";

describe("agent/author/packageArtifact: one pass from image to Table II-1 fields (REQ-10f-i)", function () {
  it("yields the plaintext hash, and the root, CID and size of exactly the bytes it stored", async function () {
    const key = newContentKey();
    const image = randomBytes(3 * 4096 + 11);
    const stored: Buffer[] = [];
    const p = await packageArtifact(key, [image.subarray(0, 5000), image.subarray(5000)], {
      plaintextSize: BigInt(image.length),
      chunkSize: 4096,
      sink: (c) => {
        stored.push(c);
      },
    });
    const artifact = Buffer.concat(stored);
    expect(p.fileHash).to.equal("0x" + createHash("sha256").update(image).digest("hex"));
    expect(p.artifactSize).to.equal(BigInt(artifact.length)).and.to.equal(artifactSize(BigInt(image.length), 4096));
    expect(p.fileLink).to.equal(await computeCid([artifact]));
    // The root is over the stored chunks as a device splits them on arrival.
    const leaves: string[] = [];
    for await (const c of splitStoredChunks([artifact])) leaves.push(chunkLeaf(leaves.length, c));
    expect(p.merkleRoot).to.equal(new ChunkMerkleTree(leaves).root);
    // And the stored bytes decrypt to the image.
    const plain: Buffer[] = [];
    for await (const c of decryptArtifact(key, [artifact])) plain.push(c);
    expect(Buffer.concat(plain).equals(image)).to.equal(true);
  });

  it("refuses an image whose length differs from the declared size", async function () {
    await expect(packageArtifact(newContentKey(), [randomBytes(10)], { plaintextSize: 11n })).to.be.rejectedWith(/not the declared 11/);
  });
});
