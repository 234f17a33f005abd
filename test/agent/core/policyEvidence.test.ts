import { expect } from "chai";
import { Wallet, getAddress, hexlify, randomBytes } from "ethers";
import { EVERY_POLICY, EVIDENCE_ENVELOPE_MAGIC, isEnvelope, joinEvidence, splitEvidence, withEvidencePart } from "../../../agent/core/policyEvidence";
import { MAX_EVIDENCE_BYTES } from "../../../agent/core/installedContext";
import { evidenceBatches } from "../../../agent/cli/evidenceFiles";

const policy = () => Wallet.createRandom().address;

describe("agent/core/policyEvidence: evidence for several policies in one string (APP-II-3, issue 18)", () => {
  it("APP-II-3: joins parts keyed by policy and splits them back, in order, checksummed; the layout is magic, then address, length and bytes", () => {
    const [a, b] = [policy(), policy()];
    const parts = new Map([
      [a.toLowerCase(), "0x0102"],
      [b, hexlify(randomBytes(300))],
    ]);
    const joined = joinEvidence(parts);
    expect(isEnvelope(joined)).to.equal(true);
    expect(joined.slice(0, 10)).to.equal(EVIDENCE_ENVELOPE_MAGIC);
    expect(joined.slice(10, 10 + 40 + 4)).to.equal(a.slice(2).toLowerCase() + "0002");
    expect([...splitEvidence(joined)]).to.deep.equal([
      [getAddress(a), "0x0102"],
      [b, parts.get(b)],
    ]);
    expect(joinEvidence(new Map())).to.equal(EVIDENCE_ENVELOPE_MAGIC);
  });

  it("evidence for every policy travels as it is, and plain evidence splits to one part for every policy", () => {
    expect(joinEvidence(new Map([[EVERY_POLICY, "0xabcd"]]))).to.equal("0xabcd");
    expect([...splitEvidence("0xabcd")]).to.deep.equal([[EVERY_POLICY, "0xabcd"]]);
    expect(isEnvelope("0xabcd")).to.equal(false);
  });

  it("refuses mixing evidence for every policy with keyed parts, a key that is no address, odd hex, and a whole over the limit", () => {
    expect(() =>
      joinEvidence(
        new Map([
          [EVERY_POLICY, "0x01"],
          [policy(), "0x02"],
        ]),
      ),
    ).to.throw(/cannot be mixed/);
    expect(() => joinEvidence(new Map([["0x1234", "0x02"]]))).to.throw(/not a policy address/);
    expect(() => joinEvidence(new Map([[policy(), "0x123"]]))).to.throw(/not 0x-prefixed hex bytes/);
    // Each part carries 22 bytes of header: two parts of 2,030 bytes make 4 + 2 x 2,052 = 4,108 bytes.
    const big = hexlify(randomBytes(2030));
    expect(() =>
      joinEvidence(
        new Map([
          [policy(), big],
          [policy(), big],
        ]),
      ),
    ).to.throw(new RegExp(`at most ${MAX_EVIDENCE_BYTES} bytes \\(it is 4108 bytes\\)`));
    expect(() => joinEvidence(new Map([[EVERY_POLICY, "0x" + "00".repeat(MAX_EVIDENCE_BYTES + 1)]]))).to.throw(/EVIDENCE_INVALID|at most/);
  });

  it("refuses an envelope whose parts overrun or stop short of its end, as the contracts do", () => {
    const joined = joinEvidence(new Map([[policy(), "0x010203"]]));
    expect(() => splitEvidence(joined.slice(0, -2))).to.throw(/runs past its end/);
    expect(() => splitEvidence(joined + "00")).to.throw(/ends inside a part's header/);
    // A policy named twice: the first part is the one the contracts read.
    const a = policy();
    const twice = joinEvidence(new Map([[a, "0x01"]])) + joinEvidence(new Map([[a, "0x02"]])).slice(10);
    expect(splitEvidence(twice).get(getAddress(a))).to.equal("0x01");
  });

  it("withEvidencePart sets one policy's part and keeps the others; a keyed part replaces plain evidence, and evidence for every policy replaces all", () => {
    const [a, b] = [policy(), policy()];
    let held = withEvidencePart(undefined, a, "0x01");
    held = withEvidencePart(held, b, "0x02");
    held = withEvidencePart(held, a, "0x03");
    expect([...splitEvidence(held)]).to.deep.equal([
      [a, "0x03"],
      [b, "0x02"],
    ]);
    expect(withEvidencePart(held, EVERY_POLICY, "0x09")).to.equal("0x09");
    expect([...splitEvidence(withEvidencePart("0x09", a, "0x04"))]).to.deep.equal([[a, "0x04"]]);
  });
});

describe("agent/cli/evidenceFiles: evidenceBatches, policy evidence's requests to a tracker (issue 18)", () => {
  it("splits a file's devices into requests under the size limit, each device once, in the file's order", () => {
    const devices = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`0x${i.toString(16).padStart(64, "0")}`, "0x" + "ab".repeat(100)]));
    const batches = [...evidenceBatches(devices, 50_000)];
    expect(batches.length).to.be.greaterThan(1);
    for (const b of batches) expect(JSON.stringify(b).length).to.be.at.most(50_000);
    expect(batches.flatMap((b) => Object.keys(b))).to.deep.equal(Object.keys(devices));
    expect([...evidenceBatches({})]).to.deep.equal([]);
    expect([...evidenceBatches(devices)]).to.have.length(1); // 270 KB: one request
  });
});
