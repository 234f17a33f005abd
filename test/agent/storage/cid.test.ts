import { expect } from "chai";
import { createHash } from "node:crypto";
import { computeCid, IMPORT_SETTINGS } from "../../../agent/storage/cid";
import { rawCidV1 } from "../../helpers/rawCid";

const MiB = 1024 * 1024;
const bytes = (n: number, seed = 7) => Uint8Array.from({ length: n }, (_, i) => (i * seed + (i >> 10)) % 251);

describe("agent/storage/cid: one CID for an artifact, whoever computes it (REQ-10f-ii)", function () {
  it("records Helia's default import settings", function () {
    expect(IMPORT_SETTINGS).to.deep.equal({ cidVersion: 1, rawLeaves: true, chunkSize: MiB, maxChildrenPerNode: 1024, reduceSingleLeafToSelf: true });
  });

  it("gives a file of one chunk the CID of its raw block (the well-known CID of empty content included)", async function () {
    expect(await computeCid([new Uint8Array(0)])).to.equal("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    const small = bytes(MiB);
    expect(await computeCid([small])).to.equal(rawCidV1(createHash("sha256").update(small).digest()));
  });

  it("gives a larger file a dag-pb root, the same however the stream is split", async function () {
    const big = bytes(3 * MiB + 5);
    const whole = await computeCid([big]);
    expect(whole.startsWith("bafybei")).to.equal(true);
    const pieces = [big.subarray(0, 10), big.subarray(10, MiB + 3), big.subarray(MiB + 3)];
    expect(await computeCid(pieces)).to.equal(whole);
  });

  it("changes when one byte changes", async function () {
    const big = bytes(2 * MiB);
    const a = await computeCid([big]);
    const altered = Uint8Array.from(big);
    altered[MiB + 1] ^= 1;
    expect(await computeCid([altered])).to.not.equal(a);
  });
});
