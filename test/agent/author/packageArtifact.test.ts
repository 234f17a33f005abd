import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { packageArtifact } from "../../../agent/author/packageArtifact";
import { artifactSize, decryptArtifact, newContentKey, splitStoredChunks } from "../../../agent/crypto/artifactCipher";
import { ChunkMerkleTree, chunkLeaf } from "../../../agent/crypto/chunkMerkle";
import { computeCid } from "../../../agent/storage/cid";
import { ChunkHashPipeline } from "../../../agent/author/chunkHashing";
import { WorkerChunkHashing } from "../../../agent/author/chunkHashingWorker";

describe("agent/author/packageArtifact: one pass from image to Table II-1 fields (REQ-10f-i, REQ-10f-ii)", function () {
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
    expect(p.artifactSize)
      .to.equal(BigInt(artifact.length))
      .and.to.equal(artifactSize(BigInt(image.length), 4096));
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

  it("computes the same leaves and CID on a worker thread as on this one, for multi-block artifacts", async function () {
    this.timeout(30_000);
    const chunks = Array.from({ length: 9 }, (_, i) => randomBytes(300 * 1024 + i)); // > 2 MiB: several 1 MiB blocks
    const inline = new ChunkHashPipeline();
    const worker = new WorkerChunkHashing(2); // a small window, so the producer must wait for the worker
    for (const c of chunks) {
      await inline.push(c);
      await worker.push(c);
    }
    const a = await inline.finish();
    const b = await worker.finish();
    expect(b).to.deep.equal(a);
    expect(a.cid).to.equal(await computeCid([Buffer.concat(chunks)]));
    expect(a.leaves).to.deep.equal(chunks.map((c, i) => chunkLeaf(i, c)));
  });

  it("fails instead of hanging when the hashing worker dies with its queue full", async function () {
    this.timeout(30_000);
    const worker = new WorkerChunkHashing(2);
    await worker.abort(); // the worker is gone; the producer keeps pushing
    let error: unknown;
    try {
      for (let i = 0; i < 10; i++) await worker.push(randomBytes(1024));
    } catch (err) {
      error = err;
    }
    expect(String(error)).to.match(/worker/);
  });
});
