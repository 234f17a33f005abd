import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ZeroAddress, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { ReleaseCounts, STATUS_OUTCOME, StatusRecord, buildStatusTree } from "../../agent/crypto/statusTree";
import { encodeVersion } from "../../agent/core/version";
import { ROLES, catalogFixture } from "../helpers/registryFixture";
import { itRejectsWithoutChange, RejectionCase } from "../helpers/itRejects";
import type { StatusAnchors } from "../../typechain-types";

const RELEASES = ["sensor-fw 2.0.0", "sensor-fw 2.0.1", "bootloader 1.1.0", "radio-fw 3.0.0"].map((r) => keccak256(toUtf8Bytes(`release ${r}`)));
const OUTCOMES = [
  STATUS_OUTCOME.installed,
  STATUS_OUTCOME.installed,
  STATUS_OUTCOME.pending,
  STATUS_OUTCOME.failed,
  STATUS_OUTCOME.rolledBack,
  STATUS_OUTCOME.rejected,
];
const START = 1_767_225_600;

/** The fleet's state at one moment: `count` devices spread over the releases and outcomes. */
function fleetState(moment: string, count: number): StatusRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    deviceId: keccak256(toUtf8Bytes(`device id: ${i}`)),
    releaseId: i % 7 === 6 ? ZeroHash : RELEASES[i % RELEASES.length],
    version: i % 7 === 6 ? 0n : encodeVersion(`2.0.${i % RELEASES.length}`),
    outcome: i % 7 === 6 ? STATUS_OUTCOME.none : OUTCOMES[i % OUTCOMES.length],
    reportCounter: BigInt(moment.length * 100 + i),
    reportedAt: START + i,
  }));
}

/** An anchor's fields by name, in the struct's order. */
const fields = (a: { statusRoot: string; anchoredBy: string; deviceCount: bigint; anchoredAt: bigint }) => [
  a.statusRoot,
  a.anchoredBy,
  a.deviceCount,
  a.anchoredAt,
];

/** Counts as the event gives them back. */
const asTuples = (counts: ReleaseCounts[]) => counts.map((c) => [c.releaseId, BigInt(c.installed), BigInt(c.failed), BigInt(c.pending)]);

const MONDAY = buildStatusTree(fleetState("monday", 20));
const TUESDAY = buildStatusTree(fleetState("tuesday morning", 21));

/** The catalog (a tracker holds TRACKER_ROLE) and StatusAnchors beside the registry, nothing anchored. */
async function anchorsFixture() {
  const base = await catalogFixture();
  const anchors = (await ethers.deployContract("StatusAnchors", [await base.registry.getAddress()])) as unknown as StatusAnchors;
  return { ...base, anchors };
}

/** Monday's state anchored (index 0). */
async function anchoredFixture() {
  const f = await anchorsFixture();
  const mondayAt = (await time.latest()) + 3600;
  await time.setNextBlockTimestamp(mondayAt);
  await f.anchors.connect(f.tracker).anchor(MONDAY.root, MONDAY.deviceCount, MONDAY.counts);
  return { ...f, mondayAt };
}

type F = Awaited<ReturnType<typeof anchorsFixture>>;

/** Every anchor, read through the views. */
async function anchorsSnapshot(f: F) {
  const count = await f.anchors.anchorCount();
  const all = [];
  for (let i = 0n; i < count; i++) all.push((await f.anchors.anchorAt(i)).map(String));
  return { count, all };
}

describe("StatusAnchors: the fleet's state anchored on the ledger (APP-II-3 status tracking, issue 6)", function () {
  it("knows its registry, and refuses a zero one", async function () {
    const { anchors, registry } = await loadFixture(anchorsFixture);
    expect(await anchors.updateRegistry()).to.equal(await registry.getAddress());
    const factory = await ethers.getContractFactory("StatusAnchors");
    await expect(factory.deploy(ZeroAddress)).to.be.revertedWithCustomError(factory, "StatusAnchorsZeroAddress");
  });

  describe("anchor", function () {
    it("keeps the root, device count, time and tracker in storage and the counts in the event", async function () {
      const { anchors, tracker } = await loadFixture(anchorsFixture);
      expect(MONDAY.counts).to.have.length(RELEASES.length);
      expect(await anchors.anchorCount()).to.equal(0n);
      const at = (await time.latest()) + 3600;
      await time.setNextBlockTimestamp(at);
      await expect(anchors.connect(tracker).anchor(MONDAY.root, MONDAY.deviceCount, MONDAY.counts))
        .to.emit(anchors, "StatusAnchored")
        .withArgs(0n, MONDAY.root, tracker.address, 20n, asTuples(MONDAY.counts));
      expect(await anchors.anchorCount()).to.equal(1n);
      expect(fields(await anchors.anchorAt(0))).to.deep.equal([MONDAY.root, tracker.address, 20n, BigInt(at)]);
    });

    it("appends: each anchor keeps its own index and content", async function () {
      const { anchors, tracker, registry, admin, newAdmin, mondayAt } = await loadFixture(anchoredFixture);
      await registry.connect(admin).grantRole(ROLES.TRACKER, newAdmin.address);
      expect(await anchors.connect(newAdmin).anchor.staticCall(TUESDAY.root, TUESDAY.deviceCount, TUESDAY.counts)).to.equal(1n);
      await time.setNextBlockTimestamp(mondayAt + 86_400);
      await expect(anchors.connect(newAdmin).anchor(TUESDAY.root, TUESDAY.deviceCount, TUESDAY.counts))
        .to.emit(anchors, "StatusAnchored")
        .withArgs(1n, TUESDAY.root, newAdmin.address, 21n, asTuples(TUESDAY.counts));
      expect(await anchors.anchorCount()).to.equal(2n);
      expect(fields(await anchors.anchorAt(0))).to.deep.equal([MONDAY.root, tracker.address, 20n, BigInt(mondayAt)]);
      expect(fields(await anchors.anchorAt(1))).to.deep.equal([TUESDAY.root, newAdmin.address, 21n, BigInt(mondayAt + 86_400)]);
    });

    it("takes an anchor with no counts (no device has a result yet) and counts that cover every device", async function () {
      const { anchors, tracker } = await loadFixture(anchorsFixture);
      await expect(anchors.connect(tracker).anchor(MONDAY.root, 20, []))
        .to.emit(anchors, "StatusAnchored")
        .withArgs(0n, MONDAY.root, tracker.address, 20n, []);
      const full = [{ releaseId: RELEASES[0], installed: 10, failed: 6, pending: 4 }];
      await expect(anchors.connect(tracker).anchor(MONDAY.root, 20, full))
        .to.emit(anchors, "StatusAnchored")
        .withArgs(1n, MONDAY.root, tracker.address, 20n, asTuples(full));
    });

    const ascending = [...RELEASES].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    const counts = (ids: string[]) => ids.map((releaseId) => ({ releaseId, installed: 1, failed: 1, pending: 1 }));
    const roles: Array<[string, (f: F) => F["admin"]]> = [
      ["an outsider", (f) => f.outsider],
      ["an administrator (not a tracker)", (f) => f.admin],
      ["an auditor", (f) => f.auditor],
      ["an author", (f) => f.acmeAuthor],
    ];
    const cases: RejectionCase<F>[] = [
      ...roles.map(([who, account]): RejectionCase<F> => ({
        name: `an anchor by ${who}`,
        run: async (f) => {
          const a = account(f);
          return {
            call: () => f.anchors.connect(a).anchor(TUESDAY.root, TUESDAY.deviceCount, TUESDAY.counts),
            error: "StatusAnchorsUnauthorized",
            args: [a.address],
          };
        },
      })),
      {
        name: "an anchor by a tracker whose role was revoked",
        run: async (f) => {
          await f.registry.connect(f.admin).revokeRole(ROLES.TRACKER, f.tracker.address);
          return {
            call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, TUESDAY.deviceCount, TUESDAY.counts),
            error: "StatusAnchorsUnauthorized",
            args: [f.tracker.address],
          };
        },
      },
      {
        name: "a zero root",
        run: async (f) => ({ call: () => f.anchors.connect(f.tracker).anchor(ZeroHash, 21, []), error: "StatusAnchorsEmptyAnchor", args: [] }),
      },
      {
        name: "no devices",
        run: async (f) => ({ call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, 0, []), error: "StatusAnchorsEmptyAnchor", args: [] }),
      },
      {
        name: "counts for the zero release id",
        run: async (f) => ({
          call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, 21, counts([ZeroHash, ...ascending])),
          error: "StatusAnchorsCountsNotAscending",
          args: [0n],
        }),
      },
      {
        name: "counts for one release twice",
        run: async (f) => ({
          call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, 21, counts([ascending[0], ascending[1], ascending[1], ascending[2]])),
          error: "StatusAnchorsCountsNotAscending",
          args: [2n],
        }),
      },
      {
        name: "counts out of order",
        run: async (f) => ({
          call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, 21, counts([ascending[0], ascending[2], ascending[1]])),
          error: "StatusAnchorsCountsNotAscending",
          args: [2n],
        }),
      },
      {
        name: "a release counted on more devices than the anchor covers",
        run: async (f) => {
          const over = counts(ascending);
          over[3] = { ...over[3], installed: 10, failed: 6, pending: 6 };
          return {
            call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, 21, over),
            error: "StatusAnchorsCountsExceedDevices",
            args: [ascending[3], 22n, 21n],
          };
        },
      },
      {
        name: "counts that overflow 32 bits when added",
        run: async (f) => {
          const over = [{ releaseId: ascending[0], installed: 0xffffffff, failed: 0xffffffff, pending: 0xffffffff }];
          return {
            call: () => f.anchors.connect(f.tracker).anchor(TUESDAY.root, 0xffffffff, over),
            error: "StatusAnchorsCountsExceedDevices",
            args: [ascending[0], 3n * 0xffffffffn, 0xffffffffn],
          };
        },
      },
    ];
    itRejectsWithoutChange(cases, { fixture: anchoredFixture, contract: (f) => f.anchors, snapshot: anchorsSnapshot });
  });

  describe("anchorAt and verifyStatus: a device proves the state it reported", function () {
    const monday = fleetState("monday", 20);
    const tuesday = fleetState("tuesday morning", 21);

    async function twoAnchors() {
      const f = await anchoredFixture();
      await f.anchors.connect(f.tracker).anchor(TUESDAY.root, TUESDAY.deviceCount, TUESDAY.counts);
      return f;
    }

    it("every device's record verifies against its anchor", async function () {
      const { anchors } = await loadFixture(twoAnchors);
      for (const [i, r] of monday.entries()) expect((await anchors.verifyStatus(0, r, MONDAY.proofs[i])).valid, `monday ${i}`).to.equal(true);
      for (const [i, r] of tuesday.entries()) expect((await anchors.verifyStatus(1, r, TUESDAY.proofs[i])).valid, `tuesday ${i}`).to.equal(true);
    });

    it("a record does not verify against another anchor", async function () {
      const { anchors } = await loadFixture(twoAnchors);
      // Monday's records differ from Tuesday's (counters moved): neither proves the other day's state.
      expect((await anchors.verifyStatus(1, monday[3], MONDAY.proofs[3])).valid).to.equal(false);
      expect((await anchors.verifyStatus(0, tuesday[3], TUESDAY.proofs[3])).valid).to.equal(false);
    });

    it("a record does not verify with another record's proof, or with no proof", async function () {
      const { anchors } = await loadFixture(twoAnchors);
      expect((await anchors.verifyStatus(0, monday[0], MONDAY.proofs[1])).valid).to.equal(false);
      expect((await anchors.verifyStatus(0, monday[0], [])).valid).to.equal(false);
    });

    const lies: Array<[string, (r: StatusRecord) => StatusRecord]> = [
      ["another device's id", (r) => ({ ...r, deviceId: keccak256(toUtf8Bytes("impostor")) })],
      ["another release", (r) => ({ ...r, releaseId: RELEASES[(RELEASES.indexOf(r.releaseId) + 1) % RELEASES.length] })],
      ["another version", (r) => ({ ...r, version: r.version + 1n })],
      ["a better outcome than reported", (r) => ({ ...r, outcome: STATUS_OUTCOME.installed })],
      ["a later report counter", (r) => ({ ...r, reportCounter: r.reportCounter + 1n })],
      ["another report time", (r) => ({ ...r, reportedAt: r.reportedAt + 1 })],
    ];
    for (const [name, lie] of lies) {
      it(`a record altered to claim ${name} does not verify`, async function () {
        const { anchors } = await loadFixture(twoAnchors);
        const i = 3; // a failed install of RELEASES[3]
        expect(monday[i].outcome).to.equal(STATUS_OUTCOME.failed);
        expect((await anchors.verifyStatus(0, lie(monday[i]), MONDAY.proofs[i])).valid).to.equal(false);
      });
    }

    it("finding: verifyStatus says who anchored the root, so a proof is checked against the tracker one trusts (CAP-11.2-a, CAP-11.2-b)", async function () {
      const { anchors, registry, admin, tracker, outsider } = await loadFixture(twoAnchors);
      // A second tracker account anchors a tree of its own: its proofs are valid, and say whose they are.
      await registry.connect(admin).grantRole(ROLES.TRACKER, outsider.address);
      await anchors.connect(outsider).anchor(MONDAY.root, MONDAY.deviceCount, MONDAY.counts);
      const [valid, anchoredBy] = await anchors.verifyStatus(2, monday[0], MONDAY.proofs[0]);
      expect([valid, anchoredBy]).to.deep.equal([true, outsider.address]);
      expect(await anchors.verifyStatus(0, monday[0], MONDAY.proofs[0])).to.deep.equal([true, tracker.address]);
      // A proof that does not verify still names the anchor's tracker.
      expect(await anchors.verifyStatus(0, monday[0], [])).to.deep.equal([false, tracker.address]);
    });

    it("reverts for an anchor index not yet anchored", async function () {
      const { anchors } = await loadFixture(twoAnchors);
      await expect(anchors.anchorAt(2)).to.be.revertedWithCustomError(anchors, "StatusAnchorsUnknownAnchor").withArgs(2n);
      await expect(anchors.verifyStatus(2, monday[0], MONDAY.proofs[0]))
        .to.be.revertedWithCustomError(anchors, "StatusAnchorsUnknownAnchor")
        .withArgs(2n);
      await expect(anchors.anchorAt(ethers.MaxUint256)).to.be.revertedWithCustomError(anchors, "StatusAnchorsUnknownAnchor").withArgs(ethers.MaxUint256);
    });
  });
});
