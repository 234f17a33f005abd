import { expect } from "chai";
import { encodeRlp, decodeRlp, hexlify, keccak256, toBeArray } from "ethers";
import captured from "./fixtures/anvilProofs.json";
import { EMPTY_TRIE_ROOT, slotKey, verifyGetProof, verifyHeader, walkTrie, type GetProofAnswer } from "../../../agent/chain/stateProof";
import { decodeStoredRelease, standingOf } from "../../../agent/chain/provenFacts";
import type { DeviceCredential } from "../../../agent/crypto/deviceCredential";

// Real answers of anvil (fixtures/captureAnvilProofs.ts): the registries deployed, release 1.0.0
// published and revoked, 1.1.0 published, a device enrolled alone.
const block = captured.block as unknown as Record<string, string>;
const registryProof = captured.registryProof as GetProofAnswer;
const fleetProof = captured.fleetProof as GetProofAnswer;
const slots = captured.slots;
const ADMIN = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/** Checks that `fn` throws an error of this code (synchronously: these checks do no I/O). */
function expectCode(fn: () => unknown, code: string, what = ""): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect((thrown as { code?: string } | undefined)?.code, `${what} ${String(thrown)}`).to.equal(code);
}
const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
/** `hex` with one bit flipped in byte `at` (counted from the end when negative). */
function flip(hex: string, at: number): string {
  const b = Buffer.from(hex.slice(2), "hex");
  const i = at < 0 ? b.length + at : at;
  b[i] ^= 0x01;
  return "0x" + b.toString("hex");
}
const registryValues = (proof: GetProofAnswer, asked = Object.values(slots)) =>
  verifyGetProof(verifyHeader(block).stateRoot, captured.registry, asked, proof).values;

describe("agent/chain/stateProof: eth_getProof answers and block headers checked without trusting the endpoint", () => {
  describe("block headers", () => {
    it("CAP-11.4-a: a Cancun header from anvil hashes to its hash; its state root and number are taken from it", () => {
      const h = verifyHeader(block);
      expect(h.hash).to.equal(block.hash);
      expect(h.stateRoot).to.equal(block.stateRoot);
      expect(h.number).to.equal(Number(block.number));
      expect(h.timestamp).to.equal(Number(block.timestamp));
      expect(verifyHeader(block, block.hash.toUpperCase().replace("0X", "0x")).hash).to.equal(block.hash);
    });

    it("CAP-11.4-a: a header whose state root (or any field) was changed, or that is not the agreed block, is refused HEADER_INVALID", () => {
      expectCode(() => verifyHeader({ ...block, stateRoot: flip(block.stateRoot, -1) }), "HEADER_INVALID");
      expectCode(() => verifyHeader({ ...block, timestamp: "0x1" }), "HEADER_INVALID");
      // A forged header with its own hash recomputed is still not the block the endpoints agreed on.
      expectCode(() => verifyHeader(block, keccak256("0x00")), "HEADER_INVALID");
      // Fork fields are a prefix: a Cancun field without the Shanghai one is no fork's header.
      const { withdrawalsRoot: _dropped, ...noShanghai } = block;
      expectCode(() => verifyHeader(noShanghai), "HEADER_INVALID");
      expectCode(() => verifyHeader(null), "HEADER_INVALID");
      expectCode(() => verifyHeader({ ...block, number: "twelve" }), "HEADER_INVALID");
    });

    it("hashes a Prague header with requestsHash, and a pre-London one without the optional fields", () => {
      const prague: Record<string, string> = { ...block, requestsHash: keccak256("0x01") };
      const ints = new Set(["difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas", "blobGasUsed", "excessBlobGas"]);
      const fields = (b: Record<string, string>, names: string[]) => names.map((n) => (ints.has(n) ? hexlify(toBeArray(BigInt(b[n]))) : b[n]));
      const base = [
        "parentHash",
        "sha3Uncles",
        "miner",
        "stateRoot",
        "transactionsRoot",
        "receiptsRoot",
        "logsBloom",
        "difficulty",
        "number",
        "gasLimit",
        "gasUsed",
        "timestamp",
        "extraData",
        "mixHash",
        "nonce",
      ];
      const all = [...base, "baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot", "requestsHash"];
      prague.hash = keccak256(encodeRlp(fields(prague, all)));
      expect(verifyHeader(prague).hash).to.equal(prague.hash);
      const old: Record<string, string> = Object.fromEntries(base.map((n) => [n, block[n]]));
      old.hash = keccak256(encodeRlp(fields(old, base)));
      expect(verifyHeader(old).hash).to.equal(old.hash);
    });
  });

  describe("account and storage proofs", () => {
    it("CAP-11.4-a REQ-10d-ii: anvil's proofs of the registry's slots verify: the revoked and the active release, the bar, the signer, an absent slot (0)", () => {
      const values = registryValues(registryProof);
      expect(decodeStoredRelease(values.get(slots.revokedRelease)!).status).to.equal("revoked");
      expect(decodeStoredRelease(values.get(slots.activeRelease)!).status).to.equal("active");
      expect(values.get(slots.barred)).to.equal(0n);
      expect(values.get(slots.signer)).to.equal(1n);
      expect(values.get(slots.absent)).to.equal(0n);
    });

    it("CAP-11.3-d: the device's standing, proven from the fleet registry's slots, is active", () => {
      const { values } = verifyGetProof(verifyHeader(block).stateRoot, captured.fleet, Object.values(captured.fleetSlots), fleetProof);
      const words = Object.fromEntries(Object.entries(captured.fleetSlots).map(([k, slot]) => [k, values.get(slot)!]));
      expect(standingOf(captured.device as DeviceCredential, words as Parameters<typeof standingOf>[1])).to.equal("active");
      expect(standingOf(captured.device as DeviceCredential, { ...words, suspended: 1n } as Parameters<typeof standingOf>[1])).to.equal("suspended");
      expect(standingOf(captured.device as DeviceCredential, { ...words, revokedLeaf: 1n } as Parameters<typeof standingOf>[1])).to.equal("revoked");
      expect(standingOf(captured.device as DeviceCredential, { ...words, single: 0n } as Parameters<typeof standingOf>[1])).to.equal("unknown");
    });

    it("an account without storage and one that does not exist are proven as such", () => {
      const root = verifyHeader(block).stateRoot;
      const eoa = verifyGetProof(root, ADMIN, [slotKey(0n)], captured.eoaProof);
      expect(eoa.account.storageRoot).to.equal(EMPTY_TRIE_ROOT);
      expect(eoa.account.nonce > 0n).to.equal(true);
      expect(eoa.values.get(slotKey(0n))).to.equal(0n);
      const missing = verifyGetProof(root, "0x000000000000000000000000000000000000dEaD", [], captured.missingProof);
      expect([missing.account.nonce, missing.account.balance, missing.account.storageRoot]).to.deep.equal([0n, 0n, EMPTY_TRIE_ROOT]);
      // Claiming a balance for it is refused.
      expectCode(() => verifyGetProof(root, "0x000000000000000000000000000000000000dEaD", [], { ...captured.missingProof, balance: "0x1" }), "PROOF_INVALID");
    });

    it("CAP-11.4-a: a flipped byte in any node of the account proof or of a storage proof is refused PROOF_INVALID", () => {
      for (let i = 0; i < registryProof.accountProof.length; i++) {
        const p = copy(registryProof);
        p.accountProof[i] = flip(p.accountProof[i], -3);
        expectCode(() => registryValues(p), "PROOF_INVALID", `account node ${i}`);
      }
      const revoked = registryProof.storageProof.findIndex((s) => slotKey(s.key) === slots.revokedRelease);
      for (let i = 0; i < registryProof.storageProof[revoked].proof.length; i++) {
        const p = copy(registryProof);
        p.storageProof[revoked].proof[i] = flip(p.storageProof[revoked].proof[i], 5);
        expectCode(() => registryValues(p), "PROOF_INVALID", `storage node ${i}`);
      }
    });

    it("CAP-11.3-c: a wrong value is refused: the revoked release stated active, a value stated for an absent slot, a false storage root", () => {
      const p = copy(registryProof);
      const revoked = p.storageProof.find((s) => slotKey(s.key) === slots.revokedRelease)!;
      const active = p.storageProof.find((s) => slotKey(s.key) === slots.activeRelease)!;
      revoked.value = active.value; // what a lying endpoint would say: the same word with status active
      expectCode(() => registryValues(p), "PROOF_INVALID");
      const q = copy(registryProof);
      q.storageProof.find((s) => slotKey(s.key) === slots.absent)!.value = "0x1";
      expectCode(() => registryValues(q), "PROOF_INVALID");
      const r = copy(registryProof);
      r.storageHash = keccak256("0x01");
      expectCode(() => registryValues(r), "PROOF_INVALID");
    });

    it("CAP-11.3-c: the proof of another slot (the active release's, for the revoked one) is refused PROOF_INVALID", () => {
      const p = copy(registryProof);
      const revoked = p.storageProof.find((s) => slotKey(s.key) === slots.revokedRelease)!;
      const active = p.storageProof.find((s) => slotKey(s.key) === slots.activeRelease)!;
      revoked.proof = active.proof;
      revoked.value = active.value;
      expectCode(() => registryValues(p), "PROOF_INVALID");
      // An answer that leaves out a slot asked, or answers for the wrong account.
      const q = copy(registryProof);
      q.storageProof = q.storageProof.filter((s) => slotKey(s.key) !== slots.revokedRelease);
      expectCode(() => registryValues(q), "PROOF_INVALID");
      expectCode(() => verifyGetProof(verifyHeader(block).stateRoot, captured.fleet, [], registryProof), "PROOF_INVALID");
    });

    it("an absent key is proven absent (0) only by a proof that shows it: a truncated proof, or nodes past the end, are refused", () => {
      const absent = registryProof.storageProof.find((s) => slotKey(s.key) === slots.absent)!;
      expect(walkTrie(registryProof.storageHash, keccak256(slots.absent), absent.proof, "the absent slot")).to.equal(null);
      expectCode(() => walkTrie(registryProof.storageHash, keccak256(slots.absent), absent.proof.slice(0, -1), "x"), "PROOF_INVALID");
      const present = registryProof.storageProof.find((s) => slotKey(s.key) === slots.signer)!;
      expectCode(() => walkTrie(registryProof.storageHash, keccak256(slots.signer), [...present.proof, present.proof[0]], "x"), "PROOF_INVALID");
      expectCode(() => walkTrie(registryProof.storageHash, keccak256(slots.signer), present.proof.slice(0, -1), "x"), "PROOF_INVALID");
      // The empty trie: no node (geth) or its one empty node (Hardhat's EDR) both prove absence.
      expect(walkTrie(EMPTY_TRIE_ROOT, keccak256(slotKey(1n)), [], "x")).to.equal(null);
      expect(walkTrie(EMPTY_TRIE_ROOT, keccak256(slotKey(1n)), ["0x80"], "x")).to.equal(null);
      expectCode(() => walkTrie(EMPTY_TRIE_ROOT, keccak256(slotKey(1n)), ["0x80", "0x80"], "x"), "PROOF_INVALID");
    });

    it("a node embedded in its parent (RLP under 32 bytes) is followed without a proof entry of its own", () => {
      // A root branch, an extension over nibbles 1..62, then a branch holding a tiny leaf (the key's
      // last nibble, an empty rest of path) inline: the leaf is in its parent, not in the proof.
      const key = keccak256(slotKey(7n));
      const nibble = (i: number) => parseInt(key[2 + i], 16);
      const branch: unknown[] = Array.from({ length: 17 }, () => "0x");
      branch[nibble(63)] = ["0x20", encodeRlp("0x2a")];
      const branchRlp = encodeRlp(branch as string[]);
      const extensionRlp = encodeRlp(["0x00" + key.slice(3, 65), keccak256(branchRlp)]);
      const rootBranch: string[] = Array.from({ length: 17 }, () => "0x");
      rootBranch[nibble(0)] = keccak256(extensionRlp);
      const rootRlp = encodeRlp(rootBranch);
      const value = walkTrie(keccak256(rootRlp), key, [rootRlp, extensionRlp, branchRlp], "an embedded leaf");
      expect(value && decodeRlp(value)).to.equal("0x2a");
      // The same trie does not show another key: its path leaves the extension.
      expect(walkTrie(keccak256(rootRlp), "0x" + key.slice(2, 4) + "ff".repeat(31), [rootRlp, extensionRlp], "another key")).to.equal(null);
    });

    it("an answer that is not an EIP-1186 proof is PROOF_MALFORMED", () => {
      const root = verifyHeader(block).stateRoot;
      expectCode(() => verifyGetProof(root, captured.registry, [], null), "PROOF_MALFORMED");
      expectCode(() => verifyGetProof(root, captured.registry, [], { ...registryProof, accountProof: "0x00" }), "PROOF_MALFORMED");
      expectCode(() => verifyGetProof(root, captured.registry, [], { ...registryProof, storageProof: [{ key: "0x0" }] }), "PROOF_MALFORMED");
    });
  });
});
