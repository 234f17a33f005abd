import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { ACME_SIGNER, COMPONENTS, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import type {
  AllOfPolicy,
  AnyOfPolicy,
  ApprovalPolicy,
  IUpdatePolicy,
  LocationPolicy,
  MaintenanceWindowPolicy,
  UpdatePolicies,
} from "../../../typechain-types";

const label = ethers.encodeBytes32String;

/** The leaf reason of a member that reverted, ran out of gas or answered malformed data. */
const MEMBER_FAILED = (1n << 128n) - 1n;
/** UpdatePolicies' answer for a policy that itself failed. */
const POLICY_FAILED = ethers.MaxUint256;
/** InstallCheck.Installable */
const INSTALLABLE = 0n;

/** The encoded refusal for a path of member indices (outermost first) and a leaf reason. */
function refusal(path: number[], leaf: bigint): bigint {
  const packed = path.reduceRight((acc, index) => (acc << 8n) | BigInt(index + 1), 0n);
  return (packed << 128n) | leaf;
}

const PASSPHRASE = toUtf8Bytes("cohort proof");
const RELEASE = keccak256(toUtf8Bytes("a release"));

const DEVICE = {
  deviceId: keccak256(toUtf8Bytes("a composed device")),
  hardwareClass: 1,
  network: label("lorawan"),
  region: label("eu-west"),
  installed: [],
};

type Policy = { getAddress(): Promise<string> };

async function fixed(reason: bigint | number, passphrase = ZeroHash): Promise<IUpdatePolicy> {
  return (await ethers.deployContract("PolicyMockFixed", [reason, passphrase])) as unknown as IUpdatePolicy;
}

async function addresses(members: Policy[]): Promise<string[]> {
  return Promise.all(members.map((m) => m.getAddress()));
}

async function allOf(...members: Policy[]): Promise<AllOfPolicy> {
  return (await ethers.deployContract("AllOfPolicy", [await addresses(members)])) as unknown as AllOfPolicy;
}

async function anyOf(...members: Policy[]): Promise<AnyOfPolicy> {
  return (await ethers.deployContract("AnyOfPolicy", [await addresses(members)])) as unknown as AnyOfPolicy;
}

/** Mock members: allowing, refusing with 7 or 9, allowing only with the passphrase, and failing ones. */
async function membersFixture() {
  const [admin, outsider] = await ethers.getSigners();
  return {
    admin,
    outsider,
    allow: await fixed(0),
    refuse7: await fixed(7),
    refuse9: await fixed(9),
    gated: await fixed(5, keccak256(PASSPHRASE)),
    reverting: (await ethers.deployContract("PolicyMockReverting")) as unknown as IUpdatePolicy,
    burner: (await ethers.deployContract("PolicyMockGasBurner", [ethers.MaxUint256])) as unknown as IUpdatePolicy,
    silent: (await ethers.deployContract("PolicyMockMalformed", [0])) as unknown as Policy,
  };
}

/** A composer's answer for RELEASE and DEVICE, with `evidence` and a gas limit for the call. */
function ask(policy: AllOfPolicy | AnyOfPolicy, evidence: Uint8Array | string = "0x", gasLimit = 2_000_000): Promise<bigint> {
  return policy.check(RELEASE, COMPONENTS.bootloader, 1, DEVICE, evidence, { gasLimit });
}

describe("Composed policies (all-of, any-of, APP-II-3)", function () {
  describe("AllOfPolicy", function () {
    it("allows when every member allows", async function () {
      const { allow } = await loadFixture(membersFixture);
      expect(await ask(await allOf(allow, allow, allow))).to.equal(0n);
    });

    it("answers the first refusal with the refusing member's index", async function () {
      const { allow, refuse7, refuse9 } = await loadFixture(membersFixture);
      const policy = await allOf(allow, refuse7, refuse9);
      const reason = await ask(policy);
      expect(reason).to.equal((2n << 128n) | 7n);
      const [path, leaf] = await policy.decodeRefusal(reason);
      expect([[...path], leaf]).to.deep.equal([[1n], 7n]);
      expect(await ask(await allOf(refuse9, refuse7))).to.equal(refusal([0], 9n));
    });

    it("passes the same evidence to every member", async function () {
      const { gated, allow } = await loadFixture(membersFixture);
      const policy = await allOf(gated, allow, gated);
      expect(await ask(policy, PASSPHRASE)).to.equal(0n);
      expect(await ask(policy)).to.equal(refusal([0], 5n));
      expect(await ask(policy, toUtf8Bytes("another proof"))).to.equal(refusal([0], 5n));
    });

    it("counts a reverting, silent or gas-burning member as refusing, without reverting itself", async function () {
      const { allow, reverting, silent, burner } = await loadFixture(membersFixture);
      expect(await ask(await allOf(allow, reverting))).to.equal(refusal([1], MEMBER_FAILED));
      expect(await ask(await allOf(silent, allow))).to.equal(refusal([0], MEMBER_FAILED));
      expect(await ask(await allOf(allow, allow, burner), "0x", 600_000)).to.equal(refusal([2], MEMBER_FAILED));
    });
  });

  describe("AnyOfPolicy", function () {
    it("allows when any member allows", async function () {
      const { allow, refuse7, refuse9 } = await loadFixture(membersFixture);
      expect(await ask(await anyOf(refuse7, refuse9, allow))).to.equal(0n);
      expect(await ask(await anyOf(allow, refuse7))).to.equal(0n);
    });

    it("when every member refuses, answers the first refusal with its index", async function () {
      const { refuse7, refuse9 } = await loadFixture(membersFixture);
      const policy = await anyOf(refuse9, refuse7);
      expect(await ask(policy)).to.equal(refusal([0], 9n));
    });

    it("passes the same evidence to every member", async function () {
      const { gated, refuse7 } = await loadFixture(membersFixture);
      const policy = await anyOf(refuse7, gated);
      expect(await ask(policy, PASSPHRASE)).to.equal(0n);
      expect(await ask(policy)).to.equal(refusal([0], 7n));
    });

    it("asks the next members after one fails, even one that burns its whole share of gas", async function () {
      const { allow, refuse9, reverting, silent, burner } = await loadFixture(membersFixture);
      expect(await ask(await anyOf(reverting, allow))).to.equal(0n);
      expect(await ask(await anyOf(burner, allow), "0x", 600_000)).to.equal(0n);
      expect(await ask(await anyOf(burner, burner, burner, allow), "0x", 600_000)).to.equal(0n);
      expect(await ask(await anyOf(silent, refuse9))).to.equal(refusal([0], MEMBER_FAILED));
      expect(await ask(await anyOf(refuse9, burner), "0x", 600_000)).to.equal(refusal([0], 9n));
    });

    it("answers MEMBER_FAILED when too little gas is left to ask a member", async function () {
      const { allow, refuse7 } = await loadFixture(membersFixture);
      // With 45,000 gas for the whole call, less than GAS_RESERVE is left by the time a member is asked.
      const policy = await anyOf(refuse7, allow);
      const data = policy.interface.encodeFunctionData("check", [RELEASE, COMPONENTS.bootloader, 1, DEVICE, "0x"]);
      const answer = await ethers.provider.call({ to: await policy.getAddress(), data, gasLimit: 45_000 });
      expect(BigInt(answer)).to.equal(refusal([0], MEMBER_FAILED));
    });
  });

  describe("nesting", function () {
    it("encodes the path through nested composers, outermost index first", async function () {
      const { allow, refuse7, refuse9 } = await loadFixture(membersFixture);
      const inner = await anyOf(refuse7, refuse9);
      const outer = await allOf(allow, inner);
      const reason = await ask(outer);
      expect(reason).to.equal(refusal([1, 0], 7n));
      expect(reason).to.equal((0x0102n << 128n) | 7n);
      const [path, leaf] = await outer.decodeRefusal(reason);
      expect([[...path], leaf]).to.deep.equal([[1n, 0n], 7n]);
    });

    it("an any-of of all-ofs allows when one branch allows", async function () {
      const { allow, refuse7, gated } = await loadFixture(membersFixture);
      const strict = await allOf(allow, refuse7);
      const proven = await allOf(allow, gated);
      const either = await anyOf(strict, proven);
      expect(await ask(either, PASSPHRASE)).to.equal(0n);
      expect(await ask(either)).to.equal(refusal([0, 1], 7n));
      const deeper = await allOf(allow, either);
      expect(await ask(deeper)).to.equal(refusal([1, 0, 1], 7n));
    });

    it("a failing member deep inside is reported with its path", async function () {
      const { allow, reverting } = await loadFixture(membersFixture);
      const inner = await allOf(allow, allow, reverting);
      const outer = await anyOf(inner);
      expect(await ask(outer)).to.equal(refusal([0, 2], MEMBER_FAILED));
    });
  });

  describe("the reason encoding", function () {
    it("encodes and decodes through 16 levels, keeps the outermost 16 beyond, and never encodes a refusal as 0", async function () {
      const { allow } = await loadFixture(membersFixture);
      const policy = await allOf(allow);
      const path = Array.from({ length: 17 }, (_, i) => i % 8);
      let reason = 3n;
      for (let level = path.length - 1; level >= 0; level--) reason = await policy.encodeRefusal(path[level], reason);
      const [decoded, leaf] = await policy.decodeRefusal(reason);
      expect(decoded.map(Number)).to.deep.equal(path.slice(0, 16));
      expect(leaf).to.equal(3n);
      expect(await policy.encodeRefusal(0, 0)).to.equal(1n << 128n);
      // A leaf that answered a reason of 2**128 or more still refuses once wrapped.
      expect(await policy.encodeRefusal(0, ethers.MaxUint256)).to.not.equal(0n);
      const [none, plain] = await policy.decodeRefusal(42);
      expect([[...none], plain]).to.deep.equal([[], 42n]);
    });
  });

  describe("construction", function () {
    it("keeps its members in order and announces them", async function () {
      const { allow, refuse7 } = await loadFixture(membersFixture);
      const members = await addresses([refuse7, allow]);
      const policy = await anyOf(refuse7, allow);
      expect([...(await policy.members())]).to.deep.equal(members);
      expect(await policy.MAX_MEMBERS()).to.equal(8n);
      expect(await policy.MEMBER_FAILED()).to.equal(MEMBER_FAILED);
      await expect(policy.deploymentTransaction()).to.emit(policy, "PolicyComposed").withArgs(members);
    });

    for (const kind of ["AllOfPolicy", "AnyOfPolicy"]) {
      it(`${kind} refuses no members, more than MAX_MEMBERS, or an address with no code`, async function () {
        const { allow, outsider } = await loadFixture(membersFixture);
        const factory = await ethers.getContractFactory(kind);
        const a = await allow.getAddress();
        await expect(factory.deploy([])).to.be.revertedWithCustomError(factory, "ComposedPolicyNoMembers");
        await expect(factory.deploy(Array(9).fill(a)))
          .to.be.revertedWithCustomError(factory, "ComposedPolicyTooManyMembers")
          .withArgs(9, 8);
        await expect(factory.deploy([a, outsider.address]))
          .to.be.revertedWithCustomError(factory, "ComposedPolicyNotAContract")
          .withArgs(outsider.address);
        expect(await (await factory.deploy(Array(8).fill(a))).getAddress()).to.be.properAddress;
      });
    }
  });

  describe("through UpdatePolicies with a published release", function () {
    /**
     * A published bootloader release and a composition attached to the bootloader: an all-of of a
     * location rule (eu-west only), two-of-three approval and an every-day maintenance window.
     */
    async function ledgerFixture() {
      const base = await catalogFixture();
      const { registry, admin, acmeAuthor, domain } = base;
      const signers = await ethers.getSigners();
      const [a, b, c] = signers.slice(7, 10);
      const registryAddress = await registry.getAddress();
      const published = await publish(registry, acmeAuthor, makeRelease(), ACME_SIGNER, domain);
      const location = (await ethers.deployContract("LocationPolicy", [registryAddress])) as unknown as LocationPolicy;
      await location.connect(admin).setRule(COMPONENTS.bootloader, {
        allowedRegions: [label("eu-west")],
        deniedRegions: [],
        allowedNetworks: [],
        deniedNetworks: [],
      });
      const approval = (await ethers.deployContract("ApprovalPolicy", [registryAddress, [a.address, b.address, c.address], 2])) as unknown as ApprovalPolicy;
      const window = (await ethers.deployContract("MaintenanceWindowPolicy", [registryAddress, 0, 0, 0x7f])) as unknown as MaintenanceWindowPolicy;
      const composed = await allOf(location, approval, window);
      const policies = (await ethers.deployContract("UpdatePolicies", [registryAddress])) as unknown as UpdatePolicies;
      await policies.connect(admin).attachPolicy(COMPONENTS.bootloader, await composed.getAddress());
      return { ...base, published, location, approval, window, composed, policies, a, b };
    }

    it("answers the refusing member and its reason, then allows once every member does", async function () {
      const { policies, composed, approval, location, published, a, b } = await loadFixture(ledgerFixture);
      const check = (device: typeof DEVICE) => policies.checkUpdate(published.record, device, "0x");

      let answer = await check(DEVICE);
      expect([answer.verdict, answer.policy, answer.reason]).to.deep.equal([
        INSTALLABLE,
        await composed.getAddress(),
        refusal([1], await approval.NOT_ENOUGH_APPROVALS()),
      ]);

      await approval.connect(a).approve(published.id);
      await approval.connect(b).approve(published.id);
      answer = await check(DEVICE);
      expect([answer.verdict, answer.reason]).to.deep.equal([INSTALLABLE, 0n]);

      answer = await check({ ...DEVICE, region: label("apac") });
      expect(answer.reason).to.equal(refusal([0], await location.REGION_NOT_ALLOWED()));
    });

    it("a failing member is the composer's refusal, not POLICY_FAILED", async function () {
      const { policies, admin, published } = await loadFixture(ledgerFixture);
      const { allow, reverting, burner } = await membersFixture();
      await policies.connect(admin).attachPolicy(published.id, await (await allOf(allow, reverting)).getAddress());
      let answer = await policies.checkUpdate(published.record, DEVICE, "0x");
      expect(answer.reason).to.equal(refusal([1], MEMBER_FAILED));
      expect(answer.reason).to.not.equal(POLICY_FAILED);

      // Within the checker's gas cap, a member burning its share leaves enough for the next one.
      await policies.connect(admin).attachPolicy(published.id, await (await anyOf(burner, allow)).getAddress());
      answer = await policies.checkUpdate(published.record, DEVICE, "0x");
      expect([answer.verdict, answer.reason]).to.deep.equal([INSTALLABLE, 0n]);
    });
  });
});
