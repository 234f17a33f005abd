import { expect } from "chai";
import { keccak256, toUtf8Bytes, ZeroHash } from "ethers";
import { componentId, dependsOn, normalizeRelease, ReleaseRecord } from "../../../agent/core/release";
import { ReleaseRecordError } from "../../../agent/core/errors";
import { encodeVersion } from "../../../agent/core/version";

const base = (): ReleaseRecord => ({
  provider: 1,
  component: componentId("acme.sensor-fw"),
  version: encodeVersion("2.0.0"),
  fileHash: keccak256(toUtf8Bytes("image")),
  fileLink: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
  fileName: "fw.bin",
  fileSize: 10n,
  merkleRoot: keccak256(toUtf8Bytes("root")),
  hardware: [3, 1],
  dependencies: [],
});

const dep = (name: string, range: string) => dependsOn(componentId(name), range);

describe("agent/core/release: records checked before a transaction is paid for", function () {
  it("component ids are keccak256 of the name, as the registry computes them", function () {
    expect(componentId("acme.bootloader")).to.equal(keccak256(toUtf8Bytes("acme.bootloader")));
  });

  it("sorts hardware and dependencies into the order the registry requires", function () {
    const a = dep("acme.bootloader", "^1.0.0");
    const b = dep("acme.radio-fw", "^3.0.0");
    const [first, second] = BigInt(a.component) < BigInt(b.component) ? [a, b] : [b, a];
    const out = normalizeRelease({ ...base(), dependencies: [second, first] });
    expect(out.hardware).to.deep.equal([1, 3]);
    expect(out.dependencies).to.deep.equal([first, second]);
  });

  const bad: [string, Partial<ReleaseRecord>, RegExp][] = [
    ["a malformed version", { version: 0n }, /version/],
    ["a zero file hash", { fileHash: ZeroHash }, /file hash/],
    ["a file hash of the wrong length", { fileHash: "0x1234" }, /file hash/],
    ["a zero Merkle root", { merkleRoot: ZeroHash }, /Merkle root/],
    ["a zero size", { fileSize: 0n }, /file size/],
    ["an empty link", { fileLink: "" }, /file link must be 1\.\.128 bytes \(got 0\)/],
    ["a link over 128 bytes", { fileLink: "x".repeat(129) }, /got 129/],
    ["an empty name", { fileName: "" }, /file name/],
    ["no hardware", { hardware: [] }, /at least one hardware/],
    ["hardware id 0", { hardware: [0] }, /not in 1\.\.65535/],
    ["a hardware id listed twice", { hardware: [2, 2] }, /listed twice/],
    ["a self-dependency", { dependencies: [dep("acme.sensor-fw", "^1.0.0")] }, /depend on itself/],
    ["a duplicate dependency", { dependencies: [dep("acme.bootloader", "^1.0.0"), dep("acme.bootloader", "^1.0.0")] }, /listed twice/],
    ["an empty range", { dependencies: [{ component: componentId("x"), minVersion: 5n, maxVersion: 5n }] }, /empty range/],
  ];
  for (const [name, patch, message] of bad) {
    it(`refuses ${name} with a message that says what is wrong`, function () {
      expect(() => normalizeRelease({ ...base(), ...patch })).to.throw(ReleaseRecordError, message);
    });
  }
});
