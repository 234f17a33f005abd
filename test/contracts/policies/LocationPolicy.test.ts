import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { COMPONENTS, ROLES, catalogFixture } from "../../helpers/registryFixture";
import { itRejectsWithoutChange } from "../../helpers/itRejects";
import type { LocationPolicy } from "../../../typechain-types";

const label = ethers.encodeBytes32String;

const REASON = { REGION_DENIED: 1n, REGION_NOT_ALLOWED: 2n, NETWORK_DENIED: 3n, NETWORK_NOT_ALLOWED: 4n };

const RELEASE = keccak256(toUtf8Bytes("a release of the bootloader"));
const OTHER_RELEASE = keccak256(toUtf8Bytes("another release of the bootloader"));
const COMPONENT = COMPONENTS.bootloader;

interface Rule {
  allowedRegions: string[];
  deniedRegions: string[];
  allowedNetworks: string[];
  deniedNetworks: string[];
}

/** A rule from labels; lists not given are empty. */
function rule(lists: Partial<Record<keyof Rule, string[]>> = {}): Rule {
  const labels = (xs?: string[]) => (xs ?? []).map((x) => label(x));
  return {
    allowedRegions: labels(lists.allowedRegions),
    deniedRegions: labels(lists.deniedRegions),
    allowedNetworks: labels(lists.allowedNetworks),
    deniedNetworks: labels(lists.deniedNetworks),
  };
}

/** A device context in `region` on `network`. */
function device(region: string, network = "lorawan") {
  return {
    deviceId: keccak256(toUtf8Bytes(`device in ${region} on ${network}`)),
    hardwareClass: 1,
    network: label(network),
    region: label(region),
    installed: [],
  };
}

async function locationFixture() {
  const base = await catalogFixture();
  const policy = (await ethers.deployContract("LocationPolicy", [await base.registry.getAddress()])) as unknown as LocationPolicy;
  return { ...base, policy };
}

type Fixture = Awaited<ReturnType<typeof locationFixture>>;

/** The answer for RELEASE of COMPONENT (or `releaseId`) to a device in `region` on `network`. */
function ask(policy: LocationPolicy, region: string, network = "lorawan", releaseId = RELEASE): Promise<bigint> {
  return policy.check(releaseId, COMPONENT, 1, device(region, network), "0x");
}

describe("LocationPolicy (APP-II-3, CAP-11.3-h)", function () {
  it("publishes its reason codes", async function () {
    const { policy } = await loadFixture(locationFixture);
    expect(await policy.REGION_DENIED()).to.equal(REASON.REGION_DENIED);
    expect(await policy.REGION_NOT_ALLOWED()).to.equal(REASON.REGION_NOT_ALLOWED);
    expect(await policy.NETWORK_DENIED()).to.equal(REASON.NETWORK_DENIED);
    expect(await policy.NETWORK_NOT_ALLOWED()).to.equal(REASON.NETWORK_NOT_ALLOWED);
  });

  it("allows every device of a release when neither the release nor its component has a rule", async function () {
    const { policy } = await loadFixture(locationFixture);
    expect(await ask(policy, "eu-west")).to.equal(0n);
    expect(await policy.ruleTarget(RELEASE, COMPONENT)).to.equal(ZeroHash);
  });

  describe("regions and groups", function () {
    it("refuses a denied region and, with an empty allow list, allows any other", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ deniedRegions: ["embargoed", "line-7"] }));
      expect(await ask(policy, "embargoed")).to.equal(REASON.REGION_DENIED);
      expect(await ask(policy, "line-7")).to.equal(REASON.REGION_DENIED);
      expect(await ask(policy, "eu-west")).to.equal(0n);
      expect(await ask(policy, "apac")).to.equal(0n);
    });

    it("allows only the regions of a non-empty allow list", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedRegions: ["eu-west", "pilot-group"] }));
      expect(await ask(policy, "eu-west")).to.equal(0n);
      expect(await ask(policy, "pilot-group")).to.equal(0n);
      expect(await ask(policy, "us-east")).to.equal(REASON.REGION_NOT_ALLOWED);
      expect(await policy.check(RELEASE, COMPONENT, 1, { ...device("x"), region: ZeroHash }, "0x")).to.equal(REASON.REGION_NOT_ALLOWED);
    });

    it("answers REGION_DENIED, not REGION_NOT_ALLOWED, for a denied region outside the allow list", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedRegions: ["eu-west"], deniedRegions: ["embargoed"] }));
      expect(await ask(policy, "embargoed")).to.equal(REASON.REGION_DENIED);
      expect(await ask(policy, "apac")).to.equal(REASON.REGION_NOT_ALLOWED);
      expect(await ask(policy, "eu-west")).to.equal(0n);
    });
  });

  describe("networks", function () {
    it("refuses a denied network and allows only the networks of a non-empty allow list", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ deniedNetworks: ["sigfox"] }));
      expect(await ask(policy, "eu-west", "sigfox")).to.equal(REASON.NETWORK_DENIED);
      expect(await ask(policy, "eu-west", "nb-iot")).to.equal(0n);
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedNetworks: ["lorawan", "lte-m"] }));
      expect(await ask(policy, "eu-west", "lte-m")).to.equal(0n);
      expect(await ask(policy, "eu-west", "nb-iot")).to.equal(REASON.NETWORK_NOT_ALLOWED);
    });

    it("keeps the dimensions apart: a region label is not a network label", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      // "campus" is an allowed group and a denied network at once.
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedRegions: ["campus"], deniedNetworks: ["campus"] }));
      expect(await ask(policy, "campus", "lorawan")).to.equal(0n);
      expect(await ask(policy, "campus", "campus")).to.equal(REASON.NETWORK_DENIED);
      expect(await ask(policy, "lorawan", "lorawan")).to.equal(REASON.REGION_NOT_ALLOWED);
    });
  });

  describe("precedence: deny wins, region before network", function () {
    const full = rule({
      allowedRegions: ["eu-west"],
      deniedRegions: ["embargoed"],
      allowedNetworks: ["lorawan"],
      deniedNetworks: ["sigfox"],
    });
    const table: Array<[string, string, string, bigint]> = [
      ["allowed region and network", "eu-west", "lorawan", 0n],
      ["denied region, denied network", "embargoed", "sigfox", REASON.REGION_DENIED],
      ["denied region, network not allowed", "embargoed", "nb-iot", REASON.REGION_DENIED],
      ["region not allowed, denied network", "apac", "sigfox", REASON.NETWORK_DENIED],
      ["allowed region, denied network", "eu-west", "sigfox", REASON.NETWORK_DENIED],
      ["region not allowed, network not allowed", "apac", "nb-iot", REASON.REGION_NOT_ALLOWED],
      ["allowed region, network not allowed", "eu-west", "nb-iot", REASON.NETWORK_NOT_ALLOWED],
    ];
    for (const [name, region, network, expected] of table) {
      const answer = Object.entries(REASON).find(([, code]) => code === expected)?.[0] ?? "allowed";
      it(`${name}: ${answer}`, async function () {
        const { policy, admin } = await loadFixture(locationFixture);
        await policy.connect(admin).setRule(COMPONENT, full);
        expect(await ask(policy, region, network)).to.equal(expected);
      });
    }
  });

  describe("release over component", function () {
    it("a release's own rule replaces its component's, for that release only", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ deniedRegions: ["apac"] }));
      await policy.connect(admin).setRule(RELEASE, rule({ allowedRegions: ["apac"] }));
      expect(await policy.ruleTarget(RELEASE, COMPONENT)).to.equal(RELEASE);
      expect(await policy.ruleTarget(OTHER_RELEASE, COMPONENT)).to.equal(COMPONENT);
      expect(await ask(policy, "apac", "lorawan", RELEASE)).to.equal(0n);
      expect(await ask(policy, "eu-west", "lorawan", RELEASE)).to.equal(REASON.REGION_NOT_ALLOWED);
      expect(await ask(policy, "apac", "lorawan", OTHER_RELEASE)).to.equal(REASON.REGION_DENIED);
      expect(await ask(policy, "eu-west", "lorawan", OTHER_RELEASE)).to.equal(0n);
    });

    it("an empty release rule lifts its component's restrictions for that release", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedRegions: ["eu-west"] }));
      await policy.connect(admin).setRule(RELEASE, rule());
      expect(await ask(policy, "apac", "lorawan", RELEASE)).to.equal(0n);
      expect(await ask(policy, "apac", "lorawan", OTHER_RELEASE)).to.equal(REASON.REGION_NOT_ALLOWED);
    });

    it("clearing a release's rule falls back to its component's, clearing that allows every device", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ deniedRegions: ["apac"] }));
      await policy.connect(admin).setRule(RELEASE, rule());
      await expect(policy.connect(admin).clearRule(RELEASE)).to.emit(policy, "LocationRuleCleared").withArgs(RELEASE, admin.address);
      expect(await ask(policy, "apac")).to.equal(REASON.REGION_DENIED);
      await policy.connect(admin).clearRule(COMPONENT);
      expect(await ask(policy, "apac")).to.equal(0n);
      expect(await policy.ruleTarget(RELEASE, COMPONENT)).to.equal(ZeroHash);
      const [exists, stored] = await policy.rule(COMPONENT);
      expect(exists).to.equal(false);
      expect(stored.deniedRegions).to.deep.equal([]);
    });
  });

  describe("administration", function () {
    it("sets a rule, emits it and returns it from the getter", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      const r = rule({ allowedRegions: ["eu-west", "us-east"], deniedRegions: ["x"], allowedNetworks: ["lorawan"], deniedNetworks: ["sigfox"] });
      await expect(policy.connect(admin).setRule(COMPONENT, r))
        .to.emit(policy, "LocationRuleSet")
        .withArgs(COMPONENT, r.allowedRegions, r.deniedRegions, r.allowedNetworks, r.deniedNetworks, admin.address);
      const [exists, stored] = await policy.rule(COMPONENT);
      expect(exists).to.equal(true);
      expect([...stored.allowedRegions]).to.deep.equal(r.allowedRegions);
      expect([...stored.deniedRegions]).to.deep.equal(r.deniedRegions);
      expect([...stored.allowedNetworks]).to.deep.equal(r.allowedNetworks);
      expect([...stored.deniedNetworks]).to.deep.equal(r.deniedNetworks);
    });

    it("replacing a rule forgets every label of the old one", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      await policy.connect(admin).setRule(COMPONENT, rule({ deniedRegions: ["apac"], allowedNetworks: ["lorawan"] }));
      expect(await ask(policy, "apac")).to.equal(REASON.REGION_DENIED);
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedRegions: ["apac"] }));
      expect(await ask(policy, "apac", "nb-iot")).to.equal(0n);
      expect(await ask(policy, "eu-west")).to.equal(REASON.REGION_NOT_ALLOWED);
      // A label of the old deny list may now be allowed in the same dimension.
      await policy.connect(admin).setRule(COMPONENT, rule({ deniedRegions: ["apac"] }));
      expect(await ask(policy, "apac")).to.equal(REASON.REGION_DENIED);
    });

    it("accepts lists of MAX_LABELS labels", async function () {
      const { policy, admin } = await loadFixture(locationFixture);
      const many = Array.from({ length: 32 }, (_, i) => `region ${i}`);
      expect(await policy.MAX_LABELS()).to.equal(32n);
      await policy.connect(admin).setRule(COMPONENT, rule({ allowedRegions: many, deniedNetworks: many }));
      expect(await ask(policy, "region 31")).to.equal(0n);
      expect(await ask(policy, "region 32")).to.equal(REASON.REGION_NOT_ALLOWED);
    });
  });

  describe("rejections", function () {
    const snapshot = async (f: Fixture) => {
      const [cExists, cRule] = await f.policy.rule(COMPONENT);
      const [rExists, rRule] = await f.policy.rule(RELEASE);
      return { c: [cExists, cRule.map((l) => [...l])], r: [rExists, rRule.map((l) => [...l])] };
    };
    /** The component's rule denies apac, so a rejected call must leave that in place. */
    const withRule = async (f: Fixture) => {
      await f.policy.connect(f.admin).setRule(COMPONENT, rule({ deniedRegions: ["apac"] }));
    };
    itRejectsWithoutChange<Fixture>(
      [
        {
          name: "a rule set by a non-administrator",
          run: async (f) => ({
            call: () => f.policy.connect(f.outsider).setRule(COMPONENT, rule()),
            error: "PolicyUnauthorized",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a rule set by an auditor",
          run: async (f) => ({
            call: () => f.policy.connect(f.auditor).setRule(RELEASE, rule()),
            error: "PolicyUnauthorized",
            args: [f.auditor.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a rule cleared by a non-administrator",
          run: async (f) => {
            await withRule(f);
            return {
              call: () => f.policy.connect(f.outsider).clearRule(COMPONENT),
              error: "PolicyUnauthorized",
              args: [f.outsider.address, ROLES.ADMINISTRATOR],
            };
          },
        },
        {
          name: "clearing a target with no rule",
          run: async (f) => ({ call: () => f.policy.connect(f.admin).clearRule(RELEASE), error: "LocationPolicyNoRule", args: [RELEASE] }),
        },
        {
          name: "a list of more than MAX_LABELS labels",
          run: async (f) => {
            await withRule(f);
            const many = Array.from({ length: 33 }, (_, i) => `n${i}`);
            return {
              call: () => f.policy.connect(f.admin).setRule(COMPONENT, rule({ deniedNetworks: many })),
              error: "LocationPolicyTooManyLabels",
              args: [33, 32],
            };
          },
        },
        {
          name: "the zero label",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setRule(COMPONENT, { ...rule(), allowedNetworks: [ZeroHash] }),
            error: "LocationPolicyZeroLabel",
            args: [],
          }),
        },
        {
          name: "a label twice in one list",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setRule(COMPONENT, rule({ allowedRegions: ["eu-west", "apac", "eu-west"] })),
            error: "LocationPolicyDuplicateLabel",
            args: [label("eu-west")],
          }),
        },
        {
          name: "a region both allowed and denied",
          run: async (f) => {
            await withRule(f);
            return {
              call: () => f.policy.connect(f.admin).setRule(COMPONENT, rule({ allowedRegions: ["apac"], deniedRegions: ["apac"] })),
              error: "LocationPolicyDuplicateLabel",
              args: [label("apac")],
            };
          },
        },
        {
          name: "a network both denied and allowed",
          run: async (f) => ({
            call: () => f.policy.connect(f.admin).setRule(RELEASE, rule({ allowedNetworks: ["sigfox"], deniedNetworks: ["sigfox"] })),
            error: "LocationPolicyDuplicateLabel",
            args: [label("sigfox")],
          }),
        },
      ],
      { fixture: locationFixture, contract: (f) => f.policy, snapshot },
    );
  });
});
