import { expect } from "chai";
import { AbiCoder, ParamType, Wallet, getAddress, hexlify, type FunctionFragment } from "ethers";
import { decodeFunctionResult, encodeArguments, encodeFunctionCall } from "../../../agent/chain/abiCodec";
import { UpdateCheckLens__factory } from "../../../agent/chain/contracts";

/** A deterministic generator (xorshift), so a failing case can be replayed from its seed. */
function generator(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const below = (n: number) => next() % n;
  const hex = (bytes: number) => "0x" + Array.from({ length: bytes }, () => below(256).toString(16).padStart(2, "0")).join("");
  return { below, hex };
}

/** A value of `type` as ethers accepts it, mixing the forms a caller may give (bigint, number, string; array or object tuples). */
function valueOf(type: ParamType, r: ReturnType<typeof generator>): unknown {
  if (type.isTuple()) {
    const values = type.components.map((c) => valueOf(c, r));
    if (r.below(2) === 0 || type.components.some((c) => !c.name)) return values;
    return Object.fromEntries(type.components.map((c, i) => [c.name, values[i]]));
  }
  if (type.isArray()) {
    const length = type.arrayLength === -1 ? r.below(4) : type.arrayLength;
    return Array.from({ length }, () => valueOf(type.arrayChildren, r));
  }
  const t = type.type;
  if (t === "address") return r.below(2) ? getAddress(r.hex(20)) : r.hex(20);
  if (t === "bool") return r.below(2) === 1;
  if (t === "bytes") return r.below(3) === 0 ? new Uint8Array(r.below(70)) : r.hex(r.below(70));
  if (t === "string") return ["", "a", "firmware.bin", "ünïcødé ✓", "x".repeat(r.below(100))][r.below(5)];
  const fixed = /^bytes(\d+)$/.exec(t);
  if (fixed) return r.hex(Number(fixed[1]));
  const int = /^(u?)int(\d+)$/.exec(t)!;
  const bits = Number(int[2]);
  const unsignedValue = (BigInt(r.hex(bits / 8)) * BigInt(r.below(3))) / 2n; // zero, about half, or the top
  const value = int[1] === "" ? unsignedValue - (1n << BigInt(bits - 1)) : unsignedValue;
  const form = r.below(3);
  return form === 0 ? value : form === 1 && value >= -(2n ** 53n) + 1n && value <= 2n ** 53n - 1n ? Number(value) : value.toString();
}

const coder = AbiCoder.defaultAbiCoder();
const lens = UpdateCheckLens__factory.createInterface();
const answer: FunctionFragment = lens.getFunction("answer");

describe("agent/chain/abiCodec: the lens query's encoder, checked against ethers' (issue 17, REQ-10d-ii)", () => {
  it("REQ-10d-ii: encodes 300 generated lens queries (1 to 4 per read) exactly as ethers' coder does, call data and constructor arguments", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = generator(seed);
      const queries = Array.from({ length: 1 + r.below(4) }, () => valueOf(answer.inputs[0].arrayChildren!, r)) as never[];
      expect(encodeFunctionCall(answer, [queries]), `seed ${seed}`).to.equal(lens.encodeFunctionData("answer", [queries]));
      expect("0x" + encodeArguments(lens.deploy.inputs, [queries]), `seed ${seed}`).to.equal(lens.encodeDeploy([queries]));
    }
  });

  it("REQ-10d-ii: and every kind of type ethers knows that the agents could meet: signed integers, fixed arrays of dynamic types, nested tuples", () => {
    const types = [
      "int8",
      "int256",
      "uint256",
      "bytes1",
      "tuple(uint8 a, int64 b, bytes c, string[2] d, bool e, address[] f)[]",
      "tuple(tuple(bytes32, uint16[])[3], string)",
      "bytes[][]",
      "string[]",
      "uint16[2][]",
    ].map((t) => ParamType.from(t));
    for (let seed = 1; seed <= 200; seed++) {
      const r = generator(seed);
      const values = types.map((t) => valueOf(t, r));
      expect("0x" + encodeArguments(types, values), `seed ${seed}`).to.equal(coder.encode(types, values));
    }
  });

  it("REQ-10d-ii: a real query: a release with its signature, a device with its batch proof, installed versions, running releases, evidence", async () => {
    const signer = Wallet.createRandom();
    const query = {
      registry: getAddress("0x" + "11".repeat(20)),
      fleet: getAddress("0x" + "22".repeat(20)),
      policies: "0x" + "00".repeat(20),
      releaseId: "0x" + "ab".repeat(32),
      release: {
        provider: 1,
        component: "0x" + "01".repeat(32),
        version: 10203n,
        fileHash: "0x" + "02".repeat(32),
        fileLink: "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        fileName: "bootloader-1.2.3.otae",
        fileSize: 262_144,
        merkleRoot: "0x" + "03".repeat(32),
        hardware: [1, 2, 3],
        dependencies: [{ component: "0x" + "04".repeat(32), minVersion: 1n, maxVersion: 2n ** 64n - 1n }],
      },
      signer: signer.address,
      signature: await signer.signMessage("release"),
      device: {
        id: "0x" + "05".repeat(32),
        publicKey: hexlify(new Uint8Array(33).fill(2)),
        hardwareClass: 2,
        network: "0x" + "06".repeat(32),
        region: "0x" + "07".repeat(32),
      },
      batchId: 7,
      proof: Array.from({ length: 10 }, (_, i) => "0x" + String(i).repeat(64)),
      installed: [{ component: "0x" + "01".repeat(32), version: 10202n }],
      running: ["0x" + "cd".repeat(32)],
      evidence: "0x1234",
    };
    expect(encodeFunctionCall(answer, [[query, query]])).to.equal(lens.encodeFunctionData("answer", [[query, query]]));
  });

  it("REQ-10d-ii: bad values are a TypeError that names the value's path and what was expected, as ethers refuses them too", () => {
    const type = [ParamType.from("tuple(address who, uint16[] hardware, bytes32 id, bytes data, bool flag, uint64 n)[]")];
    const good = { who: "0x" + "aa".repeat(20), hardware: [1], id: "0x" + "00".repeat(32), data: "0x", flag: true, n: 1n };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ who: "0x" + "aA".repeat(20) }, /items\[0\]\.who: .* is not an address/],
      [{ who: 42 }, /items\[0\]\.who: an address .* expected, got 42/],
      [{ hardware: [1, 70_000] }, /items\[0\]\.hardware\[1\]: 70000 is out of range for uint16/],
      [{ hardware: [-1] }, /items\[0\]\.hardware\[0\]: -1 is out of range for uint16/],
      [{ hardware: "1,2" }, /items\[0\]\.hardware: an array expected/],
      [{ id: "0x1234" }, /items\[0\]\.id: 32 bytes expected for bytes32, got 2/],
      [{ data: "0x123" }, /items\[0\]\.data: bytes \(0x and an even number of hex digits\) expected/],
      [{ data: "1234" }, /items\[0\]\.data: bytes/],
      [{ n: 2 ** 60 }, /items\[0\]\.n: .* is not a safe integer \(give a bigint\)/],
      [{ n: 1.5 }, /items\[0\]\.n: 1\.5 is not a safe integer/],
      [{ n: "ten" }, /items\[0\]\.n: an integer expected, got "ten"/],
      [{ n: undefined }, /items\[0\]\.n: an integer expected, got undefined/],
    ];
    const named = [ParamType.from("tuple(address who, uint16[] hardware, bytes32 id, bytes data, bool flag, uint64 n)[] items")];
    expect(() => encodeArguments(named, [[good]])).not.to.throw();
    for (const [change, message] of cases) {
      const value = [{ ...good, ...change }];
      expect(() => encodeArguments(named, [value]), JSON.stringify(change)).to.throw(TypeError, message);
      expect(() => coder.encode(type, [value]), `ethers also refuses ${JSON.stringify(change)}`).to.throw();
    }
    // Stricter than ethers, which takes any truthy value for a bool.
    expect(() => encodeArguments(named, [[{ ...good, flag: 1 }]])).to.throw(TypeError, /items\[0\]\.flag: a boolean expected, got 1/);
    expect(() => encodeArguments(type, [])).to.throw(TypeError, /1 arguments expected, 0 given/);
    expect(() => encodeArguments([ParamType.from("uint8[2]")], [[1]])).to.throw(TypeError, /0: 2 elements expected, got 1/);
    expect(() => encodeArguments([ParamType.from("tuple(uint8,uint8)")], [[1]])).to.throw(TypeError, /0: 2 values expected, got 1/);
    expect(() => encodeArguments([ParamType.from("tuple(uint8,uint8)")], [null])).to.throw(TypeError, /0: a tuple \(array or object\) expected, got null/);
  });

  it("REQ-10d-ii: decodes 300 generated lens answers exactly as ethers' coder does (tuples as objects by name)", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = generator(seed);
      const facts = Array.from({ length: r.below(4) }, () => valueOf(answer.outputs[0].arrayChildren!, r));
      const data = coder.encode(answer.outputs, [facts]);
      const ours = decodeFunctionResult(answer, data);
      const theirs = lens.decodeFunctionResult("answer", data);
      expect(ours, `seed ${seed}`).to.deep.equal(answer.outputs.map((t, i) => plain(t, theirs[i])));
    }
  });

  it("REQ-10d-ii: a lying or cut answer is a TypeError naming where it is wrong, never a huge allocation or a masked value", () => {
    const types = [ParamType.from("tuple(uint8 code, bool ok, address who, string name, uint16[] list)[] facts")];
    const fragment = { name: "answer", outputs: types } as unknown as FunctionFragment;
    const good = coder.encode(types, [[{ code: 7, ok: true, who: "0x" + "aa".repeat(20), name: "acme", list: [1, 2] }]]);
    expect(decodeFunctionResult(fragment, good)).to.deep.equal([
      [{ code: 7n, ok: true, who: getAddress("0x" + "aa".repeat(20)), name: "acme", list: [1n, 2n] }],
    ]);
    const words = good.slice(2).match(/.{64}/g)!;
    const at = (i: number, w: string) => "0x" + words.map((x, j) => (j === i ? w.padStart(64, "0") : x)).join("");
    // words: 0 offset of facts, 1 length 1, 2 offset of element 0, 3 code, 4 ok, 5 who, 6 offset of name, 7 offset of list, 8 name length, 9 name, 10 list length, 11-12 list
    const cases: [string, RegExp][] = [
      [good.slice(0, -64), /answer\(\)\.facts\[0\]\.list: 2 elements do not fit/],
      [at(1, "ffffffff"), /answer\(\)\.facts: 4294967295 is beyond the data/],
      [at(1, "10"), /answer\(\)\.facts: 16 elements do not fit/],
      [at(0, "2000"), /answer\(\)\.facts: 8192 is beyond the data/],
      [at(3, "100"), /facts\[0\]\.code: 256 is out of range for uint8/],
      [at(4, "2"), /facts\[0\]\.ok: 2 is not a bool/],
      [at(5, "01" + "aa".repeat(20)), /facts\[0\]\.who: not an address/],
      [at(9, "ff".padEnd(64, "0")), /facts\[0\]\.name: not UTF-8 text/],
      [at(8, "c0"), /facts\[0\]\.name: 192 bytes do not fit/],
      ["0x12", /answer\(\)\.facts: the data ends/],
      ["0xzz", /not hex data/],
    ];
    for (const [data, message] of cases) expect(() => decodeFunctionResult(fragment, data), String(message)).to.throw(TypeError, message);
  });
});

/** ethers' decoded Result as plain values: tuples as objects by name, arrays as arrays. */
function plain(type: ParamType, value: unknown): unknown {
  if (type.isTuple()) {
    const values = type.components.map((c, i) => plain(c, (value as unknown[])[i]));
    return type.components.some((c) => !c.name) ? values : Object.fromEntries(type.components.map((c, i) => [c.name, values[i]]));
  }
  if (type.isArray()) return (value as unknown[]).map((v) => plain(type.arrayChildren!, v));
  return value;
}
