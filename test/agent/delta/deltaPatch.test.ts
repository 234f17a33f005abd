import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { brotliCompressSync } from "node:zlib";
import { encodeDelta } from "../../../agent/delta/deltaEncode";
import { applyDelta, encodeDeltaHeader, DELTA_HEADER_SIZE, type DeltaExpectation } from "../../../agent/delta/deltaPatch";

const sha = (b: Buffer) => "0x" + createHash("sha256").update(b).digest("hex");
const expectOf = (base: Buffer, target: Buffer): DeltaExpectation => ({
  baseSize: BigInt(base.length),
  baseHash: sha(base),
  targetSize: BigInt(target.length),
  targetHash: sha(target),
});

/** A code-like image and the same with bytes inserted early and every later 4-byte "address" moved. */
function imagePair(size: number): { base: Buffer; target: Buffer } {
  const base = Buffer.alloc(size);
  for (let i = 0; i < size; i++) base[i] = (i * 7 + (i >> 5)) & 0xff;
  for (let i = 0; i + 4 <= size; i += 24) base.writeUInt32LE(0x400000 + i, i);
  const target = Buffer.concat([base.subarray(0, 1000), randomBytes(37), base.subarray(1000)]);
  for (let i = 1037; i + 4 <= target.length; i += 24) target.writeUInt32LE(target.readUInt32LE(i) + 37, i);
  return { base, target };
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

async function* once(b: Buffer) {
  yield b;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

describe("delta format (ADR 0018)", function () {
  let dir: string;
  let baseFile: string;
  const { base, target } = imagePair(300_000);
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-delta-"));
    baseFile = path.join(dir, "base.bin");
    writeFileSync(baseFile, base);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("REQ-10e-i: rebuilds the target from the base with a delta far smaller than the image", async function () {
    const delta = encodeDelta(base, target);
    expect(delta.length).to.be.below(target.length / 20);
    expect((await collect(applyDelta(baseFile, once(delta), expectOf(base, target)))).equals(target)).to.equal(true);
  });

  it("REQ-10e-i: handles identical, empty and unrelated images", async function () {
    const other = randomBytes(5000);
    const pairs: [Buffer, Buffer][] = [
      [base, base],
      [base, Buffer.alloc(0)],
      [base, other],
      [other, base],
    ];
    for (const [b, t] of pairs) {
      const f = path.join(dir, "b2.bin");
      writeFileSync(f, b);
      expect((await collect(applyDelta(f, once(encodeDelta(b, t)), expectOf(b, t)))).equals(t)).to.equal(true);
    }
  });

  const flip = (d: Buffer, at: number) => {
    const c = Buffer.from(d);
    c[at] ^= 0xff;
    return c;
  };
  const cases: [string, (d: Buffer) => Buffer, RegExp][] = [
    ["REQ-10d-ii: refuses a delta whose body was altered", (d) => flip(d, DELTA_HEADER_SIZE + 10), /^DELTA_(FORMAT|TRUNCATED|TOO_LONG)$/],
    ["REQ-10d-ii: refuses a truncated delta", (d) => d.subarray(0, d.length - 20), /^DELTA_(TRUNCATED|FORMAT)$/],
    ["REQ-10d-ii: refuses a delta cut inside its header", (d) => d.subarray(0, 40), /^DELTA_TRUNCATED$/],
    ["REQ-10d-ii: refuses a delta with bytes after its end", (d) => Buffer.concat([d, Buffer.from("more")]), /^DELTA_(FORMAT|TOO_LONG)$/],
    ["REQ-10d-ii: refuses bytes that are no delta", () => randomBytes(500), /^DELTA_FORMAT$/],
  ];
  for (const [name, mangle, codes] of cases) {
    it(name, async function () {
      expect(await codeOf(collect(applyDelta(baseFile, once(mangle(encodeDelta(base, target))), expectOf(base, target))))).to.match(codes);
    });
  }

  it("REQ-10d-ii: refuses a delta for another base before its body is read", async function () {
    const other = Buffer.from(base);
    other[5] ^= 1;
    expect(await codeOf(collect(applyDelta(baseFile, once(encodeDelta(other, target)), expectOf(base, target))))).to.equal("DELTA_BASE_MISMATCH");
  });

  it("REQ-10d-ii: refuses a delta that makes another image than the release's, at its header", async function () {
    const other = Buffer.from(target);
    other[7] ^= 1;
    expect(await codeOf(collect(applyDelta(baseFile, once(encodeDelta(base, other)), expectOf(base, target))))).to.equal("DELTA_TARGET_MISMATCH");
  });

  it("REQ-10d-ii: refuses a huge declared length before anything of that size is allocated", async function () {
    const header = encodeDeltaHeader({ baseSize: BigInt(base.length), targetSize: BigInt(target.length), baseHash: sha(base), targetHash: sha(target) });
    const addOf2To62 = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]); // one record adding 2^62 bytes
    const body = brotliCompressSync(Buffer.concat([addOf2To62, Buffer.from([0, 0])]));
    expect(await codeOf(collect(applyDelta(baseFile, once(Buffer.concat([header, body])), expectOf(base, target))))).to.equal("DELTA_TOO_LONG");
    const huge = encodeDeltaHeader({ baseSize: BigInt(base.length), targetSize: 2n ** 60n, baseHash: sha(base), targetHash: sha(target) });
    expect(await codeOf(collect(applyDelta(baseFile, once(Buffer.concat([huge, body])), expectOf(base, target))))).to.equal("DELTA_TARGET_MISMATCH");
  });
});
