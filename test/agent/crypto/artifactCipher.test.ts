import { expect } from "chai";
import fc from "fast-check";
import { createHash, randomBytes } from "node:crypto";
import {
  artifactSize,
  chunkCount,
  decryptArtifact,
  encryptArtifact,
  splitStoredChunks,
  newContentKey,
  readArtifactFile,
  HEADER_SIZE,
  TAG_SIZE,
} from "../../../agent/crypto/artifactCipher";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ChunkMerkleTree, verifyChunk } from "../../../agent/crypto/chunkMerkle";
import { ArtifactFormatError, AuthenticationError, InputError, VerificationError } from "../../../agent/core/errors";

const CHUNK = 1000;

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

async function encrypt(key: Buffer, plain: Buffer, chunkSize = CHUNK): Promise<Buffer> {
  return collect(encryptArtifact(key, [plain], { plaintextSize: BigInt(plain.length), chunkSize }));
}

/** Splits a buffer at the given offsets, as a network would. */
function split(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(data.subarray(last, p));
    last = p;
  }
  out.push(data.subarray(last));
  return out;
}

/** Offsets of each sealed chunk in an artifact. */
function chunkOffsets(plainSize: number, chunkSize = CHUNK): [number, number][] {
  const n = chunkCount(BigInt(plainSize), chunkSize);
  const out: [number, number][] = [];
  let at = HEADER_SIZE;
  for (let i = 0; i < n; i++) {
    const len = Math.min(chunkSize, plainSize - i * chunkSize) + TAG_SIZE;
    out.push([at, at + len]);
    at += len;
  }
  return out;
}

describe("agent/crypto/artifactCipher: images encrypted by their author in authenticated chunks (REQ-10f-i, REQ-10f-ii, CAP-11.4-b, CAP-11.4-c)", function () {
  const key = newContentKey();
  const plain = randomBytes(4 * CHUNK + 123);
  let artifact: Buffer;
  before(async function () {
    artifact = await encrypt(key, plain);
  });

  describe("round trips", function () {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7]) {
      it(`decrypts a ${size}-byte image to the same bytes, with the artifact size it predicts`, async function () {
        const p = randomBytes(size);
        const a = await encrypt(key, p);
        expect(BigInt(a.length)).to.equal(artifactSize(BigInt(size), CHUNK));
        expect((await collect(decryptArtifact(key, [a]))).equals(p)).to.equal(true);
      });
    }

    it("decrypts however the artifact is split in transit, and encrypts however the image is fed (property)", async function () {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), async (cutsIn, cutsOut) => {
          const a = await collect(encryptArtifact(key, split(plain, cutsIn), { plaintextSize: BigInt(plain.length), chunkSize: CHUNK }));
          expect((await collect(decryptArtifact(key, split(a, cutsOut)))).equals(plain)).to.equal(true);
        }),
        { numRuns: 100 },
      );
    });

    it("encrypts the same image differently each time (fresh nonce prefix), and yields one chunk at a time", async function () {
      const again = await encrypt(key, plain);
      expect(again.equals(artifact)).to.equal(false);
      const sizes: number[] = [];
      for await (const piece of encryptArtifact(key, [plain], { plaintextSize: BigInt(plain.length), chunkSize: CHUNK })) sizes.push(piece.length);
      expect(sizes).to.deep.equal([HEADER_SIZE, CHUNK + TAG_SIZE, CHUNK + TAG_SIZE, CHUNK + TAG_SIZE, CHUNK + TAG_SIZE, 123 + TAG_SIZE]);
      const out: number[] = [];
      for await (const piece of decryptArtifact(key, [artifact])) out.push(piece.length);
      expect(out).to.deep.equal([CHUNK, CHUNK, CHUNK, CHUNK, 123]);
    });

    it("splits the stored artifact into the chunks the Merkle root is built over, however it arrives", async function () {
      const sealedPieces: Buffer[] = [];
      for await (const sealed of encryptArtifact(key, [plain], { plaintextSize: BigInt(plain.length), chunkSize: CHUNK })) sealedPieces.push(sealed);
      const authorTree = ChunkMerkleTree.fromChunks(sealedPieces);
      const a = Buffer.concat(sealedPieces);
      const stored: Buffer[] = [];
      for await (const c of splitStoredChunks(split(a, [3, 500, 1500, 2600, 4000]))) stored.push(c);
      expect(stored.map((c) => c.length)).to.deep.equal([HEADER_SIZE, ...chunkOffsets(plain.length).map(([s, e]) => e - s)]);
      // Each stored chunk verifies against the author's root with its proof, as a device checks a download.
      stored.forEach((c, i) => expect(verifyChunk(authorTree.root, i, c, authorTree.proof(i)), `chunk ${i}`).to.equal(true));
      await expect(collect(splitStoredChunks([a.subarray(0, a.length - 1)]))).to.be.rejectedWith(ArtifactFormatError, /ends after/);
      await expect(collect(splitStoredChunks([a, Buffer.from([1])]))).to.be.rejectedWith(ArtifactFormatError, /follow the last chunk/);
    });

    it("makes a fresh 32-byte content key per release", function () {
      expect(newContentKey()).to.have.length(32);
      expect(newContentKey().equals(newContentKey())).to.equal(false);
    });
  });

  describe("reading a stored artifact from its file (issue 17)", function () {
    it("decrypts from two reused buffers, whether a piece holds many chunks or a chunk is longer than the pieces asked for", async function () {
      const dir = mkdtempSync(path.join(tmpdir(), "ota-artifact-file-"));
      try {
        const key = newContentKey();
        for (const [size, chunkSize, minPiece] of [
          [50_003, 1000, 4096], // 4 chunks and more a piece; chunks span pieces
          [50_003, 9000, 4096], // a chunk longer than minPiece: pieces grow to a chunk
          [999, 1000, 64], // one chunk, shorter than a piece
          [0, 1000, 64], // an empty image
        ]) {
          const plain = randomBytes(size);
          const file = path.join(dir, `${size}-${chunkSize}.otae`);
          writeFileSync(file, await encrypt(key, plain, chunkSize));
          expect((await collect(decryptArtifact(key, readArtifactFile(file, minPiece)))).equals(plain), `${size} / ${chunkSize} / ${minPiece}`).to.equal(true);
        }
        // A flipped byte in a file is still caught: the reuse changes only where bytes sit in memory.
        const plain = randomBytes(20_000);
        const bytes = await encrypt(key, plain, 1000);
        bytes[HEADER_SIZE + 5 * (1000 + TAG_SIZE) + 7] ^= 1;
        const file = path.join(dir, "flipped.otae");
        writeFileSync(file, bytes);
        let caught: unknown;
        try {
          await collect(decryptArtifact(key, readArtifactFile(file, 4096)));
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(AuthenticationError);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("attacks: each is detected and no unverified byte is released", function () {
    /** Decrypts, returning what was yielded before the error and the error. */
    async function attempt(a: Buffer | Buffer[], k = key): Promise<{ yielded: Buffer; error: unknown }> {
      const parts: Buffer[] = [];
      try {
        for await (const p of decryptArtifact(k, Array.isArray(a) ? a : [a])) parts.push(p);
        return { yielded: Buffer.concat(parts), error: undefined };
      } catch (error) {
        return { yielded: Buffer.concat(parts), error };
      }
    }
    const offsets = () => chunkOffsets(plain.length);
    /** Every yielded byte must be a verified prefix of the plaintext, whole chunks only. */
    const onlyVerifiedPrefix = (yielded: Buffer) => {
      expect(yielded.length % CHUNK).to.equal(0);
      expect(yielded.equals(plain.subarray(0, yielded.length))).to.equal(true);
    };

    it("rejects one flipped bit anywhere: header, ciphertext or tag", async function () {
      for (const at of [0, 5, 9, 17, HEADER_SIZE, HEADER_SIZE + 500, offsets()[2][0] + 3, offsets()[4][1] - 1]) {
        const a = Buffer.from(artifact);
        a[at] ^= 0x01;
        const { yielded, error } = await attempt(a);
        expect(error, `byte ${at}`).to.be.instanceOf(at < 17 ? ArtifactFormatError : AuthenticationError);
        onlyVerifiedPrefix(yielded);
      }
    });

    it("rejects truncation at every chunk boundary and inside chunks", async function () {
      for (const end of [0, 10, HEADER_SIZE, ...offsets().map(([s]) => s), ...offsets().map(([s]) => s + 7), artifact.length - 1]) {
        const { yielded, error } = await attempt(artifact.subarray(0, end));
        expect(error, `cut at ${end}`).to.be.instanceOf(ArtifactFormatError);
        expect((error as ArtifactFormatError).code).to.equal("ARTIFACT_TRUNCATED");
        onlyVerifiedPrefix(yielded);
      }
    });

    it("rejects a truncation that drops whole trailing chunks even if the header is rewritten to match", async function () {
      // The attacker shortens the declared size to 2 chunks: the header is authenticated by every chunk.
      const a = Buffer.from(artifact.subarray(0, offsets()[2][0]));
      a.writeBigUInt64BE(BigInt(2 * CHUNK), 9);
      const { error } = await attempt(a);
      expect(error).to.be.instanceOf(AuthenticationError);
    });

    it("rejects bytes appended after the last chunk", async function () {
      const { yielded, error } = await attempt([artifact, Buffer.from([0])]);
      expect(error).to.be.instanceOf(ArtifactFormatError);
      expect((error as ArtifactFormatError).code).to.equal("ARTIFACT_EXTRA_DATA");
      expect(yielded.equals(plain)).to.equal(true); // the image was whole; the extra byte is refused
    });

    it("rejects two chunks swapped, a chunk duplicated, and a chunk dropped from the middle", async function () {
      const o = offsets();
      const c = o.map(([s, e]) => artifact.subarray(s, e));
      const head = artifact.subarray(0, HEADER_SIZE);
      for (const [name, chunks] of [
        ["swapped", [c[0], c[2], c[1], c[3], c[4]]],
        ["duplicated", [c[0], c[1], c[1], c[3], c[4]]],
        ["dropped", [c[0], c[1], c[3], c[4]]],
      ] as [string, Buffer[]][]) {
        const { yielded, error } = await attempt(Buffer.concat([head, ...chunks]));
        // Swaps and duplicates fail authentication; a drop may also leave the stream short.
        expect(error, name).to.be.instanceOf(VerificationError);
        onlyVerifiedPrefix(yielded);
      }
    });

    it("rejects a chunk taken from another artifact under the same key (mix and match)", async function () {
      const other = await encrypt(key, randomBytes(plain.length));
      const [s, e] = offsets()[1];
      const mixed = Buffer.concat([artifact.subarray(0, s), other.subarray(s, e), artifact.subarray(e)]);
      const { yielded, error } = await attempt(mixed);
      expect(error).to.be.instanceOf(AuthenticationError);
      expect(yielded.length).to.equal(CHUNK);
    });

    it("rejects the wrong key and refuses a key that is not 32 bytes", async function () {
      expect((await attempt(artifact, newContentKey())).error).to.be.instanceOf(AuthenticationError);
      expect((await attempt(artifact, key.subarray(0, 16))).error).to.be.instanceOf(InputError);
    });

    it("refuses to encrypt an image whose length differs from the declared size", async function () {
      await expect(collect(encryptArtifact(key, [plain], { plaintextSize: BigInt(plain.length - 1), chunkSize: CHUNK }))).to.be.rejectedWith(
        InputError,
        /longer than the declared/,
      );
      await expect(collect(encryptArtifact(key, [plain], { plaintextSize: BigInt(plain.length + 1), chunkSize: CHUNK }))).to.be.rejectedWith(
        InputError,
        /not the declared/,
      );
      await expect(collect(encryptArtifact(key, [plain], { plaintextSize: 1n, chunkSize: 0 }))).to.be.rejectedWith(InputError, /chunk size/);
    });

    it("hashes back to the plaintext's SHA-256, the file hash the ledger records", async function () {
      const digest = createHash("sha256");
      for await (const p of decryptArtifact(key, [artifact])) digest.update(p);
      expect(digest.digest("hex")).to.equal(createHash("sha256").update(plain).digest("hex"));
    });
  });
});
