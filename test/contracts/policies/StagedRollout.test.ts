import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { AbiCoder, MaxUint256, ZeroAddress, ZeroHash, concat, keccak256, toBeHex, toUtf8Bytes, zeroPadValue } from "ethers";
import { Cohort, buildCohort, cohortLeaf, cohortProof, encodeRolloutEvidence } from "../../../agent/crypto/cohortTree";
import { ACME_SIGNER, COMPONENTS, ROLES, catalogFixture, makeRelease, publish } from "../../helpers/registryFixture";
import { itRejectsWithoutChange } from "../../helpers/itRejects";
import { encodeVersion } from "../../../agent/core/version";
import type { StagedRollout, UpdatePolicies } from "../../../typechain-types";
import { Wallet } from "ethers";

/**
 * StagedRollout (issue 6, APP-II-3): waves of device cohorts, each wave opening at its start time;
 * an automatic halt when the tracker's failure total reaches the threshold; pause, resume, a new
 * threshold and abort by administrators. Every reason code, every rule, and the policy attached
 * to a component through UpdatePolicies.checkUpdate.
 */

// ---------------------------------------------------------------- deterministic test data

const coder = AbiCoder.defaultAbiCoder();
const label = ethers.encodeBytes32String;
const HOUR = 3600;
const DAY = 24 * HOUR;

/** Reason codes as the contract documents them: stable, distinct. */
const REASON = {
  ALLOWED: 0n,
  NO_ROLLOUT: 1n,
  NOT_IN_COHORT: 2n,
  WAVE_NOT_STARTED: 3n,
  PAUSED: 4n,
  HALTED: 5n,
  ABORTED: 6n,
  MALFORMED_EVIDENCE: 7n,
  NO_SUCH_WAVE: 8n,
  NO_EVIDENCE: 9n,
};

/** RolloutState as rolloutStatus returns it. */
const STATE = { None: 0n, Scheduled: 1n, Open: 2n, Paused: 3n, Halted: 4n, Aborted: 5n };

const deviceId = (name: string) => keccak256(toUtf8Bytes(`device id: ${name}`));

/** Wave 0: the pilot devices; wave 1: the fleet; one device is in both; OUTSIDER is in neither. */
const PILOT = ["pilot 0", "pilot 1", "pilot 2", "shared"].map(deviceId);
const FLEET = ["fleet 0", "fleet 1", "fleet 2", "fleet 3", "fleet 4", "shared"].map(deviceId);
const [PILOT_DEVICE] = PILOT;
const [FLEET_DEVICE] = FLEET;
const SHARED = deviceId("shared");
const OUTSIDER = deviceId("in no wave");
const PILOT_COHORT = buildCohort(PILOT);
const FLEET_COHORT = buildCohort(FLEET);
const THRESHOLD = 3;
/** The release id the rollout of the bare fixture is for (no registry record needed for `check`). */
const RELEASE = keccak256(toUtf8Bytes("release under rollout"));
const OTHER_RELEASE = keccak256(toUtf8Bytes("release without rollout"));
/** Tracker modules in the FleetRegistry: MODULE and SUBMODULE (under it) owned by the tracker, ROGUE by a second tracker account. */
const MODULE = keccak256(toUtf8Bytes("tracker module: server eu-west"));
const SUBMODULE = keccak256(toUtf8Bytes("tracker module: gateway hall 3"));
const ROGUE = keccak256(toUtf8Bytes("tracker module: rogue operator"));
const UNREGISTERED = keccak256(toUtf8Bytes("tracker module: never registered"));
const moduleKey = (name: string) => new Wallet(keccak256(toUtf8Bytes(`module key ${name}`)));

function device(id: string) {
  return { deviceId: id, hardwareClass: 1, network: label("lorawan"), region: label("eu-west"), installed: [] };
}

function evidence(cohort: Cohort, waveIndex: number, id: string): string {
  return encodeRolloutEvidence(waveIndex, cohortProof(cohort, id));
}

// ---------------------------------------------------------------- fixtures

/** The catalog, UpdatePolicies and a StagedRollout, no rollout yet. */
async function deployFixture() {
  const base = await catalogFixture();
  const registryAddress = await base.registry.getAddress();
  const policies = (await ethers.deployContract("UpdatePolicies", [registryAddress])) as unknown as UpdatePolicies;
  const rollout = (await ethers.deployContract("StagedRollout", [registryAddress, await base.fleet.getAddress()])) as unknown as StagedRollout;
  // A second tracker operator (the rogue key of the findings), each operator with its own module.
  const rogue = base.newAdmin;
  await base.registry.connect(base.admin).grantRole(ROLES.TRACKER, rogue.address);
  for (const [id, parent, owner] of [
    [MODULE, ZeroHash, base.tracker],
    [SUBMODULE, MODULE, base.tracker],
    [ROGUE, ZeroHash, rogue],
  ] as const) {
    const key = moduleKey(id);
    await base.fleet.connect(owner).registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, parent);
  }
  const now = await time.latest();
  const waves = [
    { cohortRoot: PILOT_COHORT.root, startsAt: now + HOUR },
    { cohortRoot: FLEET_COHORT.root, startsAt: now + DAY },
  ];
  return { ...base, policies, rollout, waves, rogue };
}

/** A rollout of RELEASE in two waves (pilot in an hour, fleet in a day), threshold 3. */
async function rolloutFixture() {
  const f = await deployFixture();
  await f.rollout.connect(f.admin).createRollout(RELEASE, f.waves, THRESHOLD);
  return f;
}

/** rolloutFixture, with the pilot wave open. */
async function pilotOpenFixture() {
  const f = await rolloutFixture();
  await time.increaseTo(f.waves[0].startsAt);
  return f;
}

type F = Awaited<ReturnType<typeof deployFixture>>;

async function reason(f: F, id: string, ev: string, releaseId = RELEASE): Promise<bigint> {
  return f.rollout.check(releaseId, COMPONENTS.bootloader, 1n, device(id), ev);
}

/** What a rejected call must leave untouched. */
async function rolloutSnapshot(f: F) {
  const read = async (id: string) => ({
    status: (await f.rollout.rolloutStatus(id)).map(String),
    modules: await Promise.all([MODULE, SUBMODULE, ROGUE].map(async (m) => String(await f.rollout.moduleFailures(id, m)))),
    waves: (await f.rollout.rolloutWaves(id)).map((w) => w.map(String)),
  });
  return { release: await read(RELEASE), other: await read(OTHER_RELEASE) };
}

// ---------------------------------------------------------------- tests

describe("StagedRollout (APP-II-3)", function () {
  it("publishes its reason codes as stable, distinct constants", async function () {
    const { rollout } = await loadFixture(deployFixture);
    const onChain = {
      ALLOWED: await rollout.ALLOWED(),
      NO_ROLLOUT: await rollout.NO_ROLLOUT(),
      NOT_IN_COHORT: await rollout.NOT_IN_COHORT(),
      WAVE_NOT_STARTED: await rollout.WAVE_NOT_STARTED(),
      PAUSED: await rollout.PAUSED(),
      HALTED: await rollout.HALTED(),
      ABORTED: await rollout.ABORTED(),
      MALFORMED_EVIDENCE: await rollout.MALFORMED_EVIDENCE(),
      NO_SUCH_WAVE: await rollout.NO_SUCH_WAVE(),
      NO_EVIDENCE: await rollout.NO_EVIDENCE(),
    };
    expect(onChain).to.deep.equal(REASON);
    expect(new Set(Object.values(onChain)).size).to.equal(Object.keys(onChain).length);
  });

  it("refuses the zero address as its fleet registry, and names the one it asks about module owners", async function () {
    const { registry, fleet, rollout } = await loadFixture(deployFixture);
    const factory = await ethers.getContractFactory("StagedRollout");
    await expect(factory.deploy(await registry.getAddress(), ZeroAddress)).to.be.revertedWithCustomError(rollout, "StagedRolloutZeroAddress");
    expect(await rollout.FLEET()).to.equal(await fleet.getAddress());
  });

  describe("createRollout", function () {
    it("records the waves and threshold, emitting RolloutCreated and a WaveScheduled per wave", async function () {
      const { rollout, admin, waves } = await loadFixture(deployFixture);
      const tx = rollout.connect(admin).createRollout(RELEASE, waves, THRESHOLD);
      await expect(tx).to.emit(rollout, "RolloutCreated").withArgs(RELEASE, 2, THRESHOLD, admin.address);
      await expect(tx).to.emit(rollout, "WaveScheduled").withArgs(RELEASE, 0, waves[0].cohortRoot, waves[0].startsAt);
      await expect(tx).to.emit(rollout, "WaveScheduled").withArgs(RELEASE, 1, waves[1].cohortRoot, waves[1].startsAt);
      expect((await rollout.rolloutWaves(RELEASE)).map((w) => [w.cohortRoot, Number(w.startsAt)])).to.deep.equal(waves.map((w) => [w.cohortRoot, w.startsAt]));
      const status = await rollout.rolloutStatus(RELEASE);
      expect(status.state).to.equal(STATE.Scheduled);
      expect([status.failures, status.failureThreshold, status.waveCount, status.openWaves]).to.deep.equal([0n, 3n, 2n, 0n]);
      expect(status.nextWaveAt).to.equal(waves[0].startsAt);
    });

    it("accepts waves that start together and waves whose start time has passed (open at once)", async function () {
      const f = await loadFixture(deployFixture);
      const { rollout, admin } = f;
      const now = await time.latest();
      await rollout.connect(admin).createRollout(
        RELEASE,
        [
          { cohortRoot: PILOT_COHORT.root, startsAt: now - DAY },
          { cohortRoot: FLEET_COHORT.root, startsAt: now - DAY },
        ],
        1,
      );
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.equal(REASON.ALLOWED);
      expect(await reason(f, FLEET_DEVICE, evidence(FLEET_COHORT, 1, FLEET_DEVICE))).to.equal(REASON.ALLOWED);
      const status = await rollout.rolloutStatus(RELEASE);
      expect([status.state, status.openWaves, status.nextWaveAt]).to.deep.equal([STATE.Open, 2n, 0n]);
    });

    const root = PILOT_COHORT.root;
    itRejectsWithoutChange<F>(
      [
        {
          name: "a rollout created by a non-administrator",
          run: async (f) => ({
            call: () => f.rollout.connect(f.outsider).createRollout(RELEASE, f.waves, THRESHOLD),
            error: "PolicyUnauthorized",
            args: [f.outsider.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a second rollout for the same release",
          run: async (f) => {
            await f.rollout.connect(f.admin).createRollout(RELEASE, f.waves, THRESHOLD);
            return {
              call: () => f.rollout.connect(f.admin).createRollout(RELEASE, f.waves, 9),
              error: "StagedRolloutExists",
              args: [RELEASE],
            };
          },
        },
        {
          name: "a new rollout for a release whose rollout was aborted (abort is final)",
          run: async (f) => {
            await f.rollout.connect(f.admin).createRollout(RELEASE, f.waves, THRESHOLD);
            await f.rollout.connect(f.admin).abort(RELEASE);
            return {
              call: () => f.rollout.connect(f.admin).createRollout(RELEASE, f.waves, THRESHOLD),
              error: "StagedRolloutExists",
              args: [RELEASE],
            };
          },
        },
        {
          name: "a rollout without waves",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).createRollout(RELEASE, [], THRESHOLD),
            error: "StagedRolloutWaveCount",
            args: [0, 64],
          }),
        },
        {
          name: "a rollout of more than MAX_WAVES waves",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).createRollout(RELEASE, Array(65).fill(f.waves[0]), THRESHOLD),
            error: "StagedRolloutWaveCount",
            args: [65, 64],
          }),
        },
        {
          name: "a wave with a zero cohort root",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).createRollout(RELEASE, [f.waves[0], { cohortRoot: ZeroHash, startsAt: f.waves[1].startsAt }], THRESHOLD),
            error: "StagedRolloutZeroCohortRoot",
            args: [1],
          }),
        },
        {
          name: "waves out of start-time order",
          run: async (f) => ({
            call: () =>
              f.rollout.connect(f.admin).createRollout(
                RELEASE,
                [
                  { cohortRoot: root, startsAt: 100 },
                  { cohortRoot: root, startsAt: 300 },
                  { cohortRoot: root, startsAt: 200 },
                ],
                THRESHOLD,
              ),
            error: "StagedRolloutWavesOutOfOrder",
            args: [2, 200, 300],
          }),
        },
        {
          name: "a zero failure threshold",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).createRollout(RELEASE, f.waves, 0),
            error: "StagedRolloutZeroThreshold",
          }),
        },
      ],
      { fixture: deployFixture, contract: (f) => f.rollout, snapshot: rolloutSnapshot },
    );
  });

  describe("check: cohorts and waves", function () {
    it("answers NO_ROLLOUT for a release without a rollout, whatever the evidence (fail closed)", async function () {
      const f = await loadFixture(pilotOpenFixture);
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE), OTHER_RELEASE)).to.equal(REASON.NO_ROLLOUT);
      expect(await reason(f, PILOT_DEVICE, "0x", OTHER_RELEASE)).to.equal(REASON.NO_ROLLOUT);
      expect((await f.rollout.rolloutStatus(OTHER_RELEASE)).state).to.equal(STATE.None);
      expect(await f.rollout.rolloutWaves(OTHER_RELEASE)).to.deep.equal([]);
    });

    it("opens a wave exactly at its start time, and not a second before", async function () {
      const f = await loadFixture(rolloutFixture);
      const ev = evidence(PILOT_COHORT, 0, PILOT_DEVICE);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.WAVE_NOT_STARTED);
      await time.increaseTo(f.waves[0].startsAt - 1);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.WAVE_NOT_STARTED);
      await time.increaseTo(f.waves[0].startsAt);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ALLOWED);
      await time.increaseTo(f.waves[0].startsAt + DAY * 30);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ALLOWED);
    });

    it("lets every pilot device in once the pilot wave opens, and no fleet device until the fleet wave does", async function () {
      const f = await loadFixture(pilotOpenFixture);
      for (const id of PILOT) expect(await reason(f, id, evidence(PILOT_COHORT, 0, id)), id).to.equal(REASON.ALLOWED);
      for (const id of FLEET) expect(await reason(f, id, evidence(FLEET_COHORT, 1, id)), id).to.equal(REASON.WAVE_NOT_STARTED);
      await time.increaseTo(f.waves[1].startsAt);
      for (const id of FLEET) expect(await reason(f, id, evidence(FLEET_COHORT, 1, id)), id).to.equal(REASON.ALLOWED);
    });

    it("lets a device in two cohorts in through either, once that wave is open", async function () {
      const f = await loadFixture(pilotOpenFixture);
      expect(await reason(f, SHARED, evidence(PILOT_COHORT, 0, SHARED))).to.equal(REASON.ALLOWED);
      expect(await reason(f, SHARED, evidence(FLEET_COHORT, 1, SHARED))).to.equal(REASON.WAVE_NOT_STARTED);
    });

    const altered = (proof: string[]) => [keccak256(concat([proof[0], "0x01"])), ...proof.slice(1)];
    const cases: { name: string; id: string; ev: () => string; expected: bigint }[] = [
      {
        name: "a fleet device claiming the open pilot wave with its fleet proof (a proof for another cohort)",
        id: FLEET_DEVICE,
        ev: () => evidence(FLEET_COHORT, 0, FLEET_DEVICE),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a fleet device bringing a pilot device's proof",
        id: FLEET_DEVICE,
        ev: () => evidence(PILOT_COHORT, 0, PILOT_DEVICE),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a device in no wave, with a pilot device's proof",
        id: OUTSIDER,
        ev: () => evidence(PILOT_COHORT, 0, PILOT_DEVICE),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a device in no wave, with an empty proof",
        id: OUTSIDER,
        ev: () => encodeRolloutEvidence(0, []),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a pilot device whose proof has an altered sibling",
        id: PILOT_DEVICE,
        ev: () => encodeRolloutEvidence(0, altered(cohortProof(PILOT_COHORT, PILOT_DEVICE))),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a pilot device whose proof lost a sibling",
        id: PILOT_DEVICE,
        ev: () => encodeRolloutEvidence(0, cohortProof(PILOT_COHORT, PILOT_DEVICE).slice(1)),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a pilot device presenting the cohort root as its leaf's only step",
        id: PILOT_DEVICE,
        ev: () => encodeRolloutEvidence(0, [PILOT_COHORT.root]),
        expected: REASON.NOT_IN_COHORT,
      },
      {
        name: "a fleet device in its own, not yet open, wave",
        id: FLEET_DEVICE,
        ev: () => evidence(FLEET_COHORT, 1, FLEET_DEVICE),
        expected: REASON.WAVE_NOT_STARTED,
      },
      {
        name: "a pilot device naming a wave the rollout does not have",
        id: PILOT_DEVICE,
        ev: () => evidence(PILOT_COHORT, 2, PILOT_DEVICE),
        expected: REASON.NO_SUCH_WAVE,
      },
      {
        name: "a pilot device naming wave 2^256-1",
        id: PILOT_DEVICE,
        ev: () => encodeRolloutEvidence(MaxUint256, []),
        expected: REASON.NO_SUCH_WAVE,
      },
      { name: "a device with no evidence", id: PILOT_DEVICE, ev: () => "0x", expected: REASON.NO_EVIDENCE },
    ];
    for (const c of cases) {
      it(`answers ${Object.entries(REASON).find(([, v]) => v === c.expected)![0]} for ${c.name}`, async function () {
        const f = await loadFixture(pilotOpenFixture);
        expect(await reason(f, c.id, c.ev())).to.equal(c.expected);
      });
    }
  });

  describe("check: malformed evidence answers a reason, never a revert", function () {
    const good = () => evidence(PILOT_COHORT, 0, PILOT_DEVICE);
    const word = (n: bigint | number) => zeroPadValue(toBeHex(n), 32);
    const proofWords = cohortProof(PILOT_COHORT, PILOT_DEVICE);
    const cases: { name: string; ev: () => string }[] = [
      { name: "four random bytes", ev: () => "0xdeadbeef" },
      { name: "only a wave index", ev: () => word(0) },
      { name: "the evidence cut short by one byte", ev: () => good().slice(0, -2) },
      { name: "one byte too many", ev: () => good() + "00" },
      { name: "one word too many", ev: () => good() + "00".repeat(32) },
      { name: "a head offset other than 0x40", ev: () => concat([word(0), word(0x60), word(0), word(proofWords.length), ...proofWords]) },
      { name: "a proof length longer than the data", ev: () => concat([word(0), word(0x40), word(proofWords.length + 1), ...proofWords]) },
      { name: "a proof length of 2^255 (no overflow)", ev: () => concat([word(0), word(0x40), word(1n << 255n), ...proofWords]) },
      { name: "a proof length of 2^256-1", ev: () => concat([word(0), word(0x40), word(MaxUint256), ...proofWords]) },
      { name: "a proof of MAX_PROOF_LENGTH + 1 siblings", ev: () => coder.encode(["uint256", "bytes32[]"], [0, Array(33).fill(ZeroHash)]) },
      {
        name: "abi.encode(uint256, bytes) instead of bytes32[] of odd length",
        ev: () => coder.encode(["uint256", "bytes"], [0, "0x0102"]),
      },
    ];
    for (const c of cases) {
      it(`answers MALFORMED_EVIDENCE for ${c.name}`, async function () {
        const f = await loadFixture(pilotOpenFixture);
        expect(await reason(f, PILOT_DEVICE, c.ev())).to.equal(REASON.MALFORMED_EVIDENCE);
      });
    }

    it("accepts a proof of exactly MAX_PROOF_LENGTH siblings as well formed (then checks it)", async function () {
      const f = await loadFixture(pilotOpenFixture);
      expect(await f.rollout.MAX_PROOF_LENGTH()).to.equal(32n);
      const ev = coder.encode(["uint256", "bytes32[]"], [0, Array(32).fill(ZeroHash)]);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.NOT_IN_COHORT);
    });
  });

  describe("reportFailures: the automatic halt", function () {
    it("keeps the rollout open below the threshold and halts it by itself at the threshold", async function () {
      const f = await loadFixture(pilotOpenFixture);
      const ev = evidence(PILOT_COHORT, 0, PILOT_DEVICE);
      const below = f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD - 1);
      await expect(below)
        .to.emit(f.rollout, "FailuresReported")
        .withArgs(RELEASE, MODULE, THRESHOLD - 1, THRESHOLD - 1, f.tracker.address);
      await expect(below).to.not.emit(f.rollout, "RolloutHalted");
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ALLOWED);

      const at = f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      await expect(at).to.emit(f.rollout, "RolloutHalted").withArgs(RELEASE, THRESHOLD, THRESHOLD);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.HALTED);
      const status = await f.rollout.rolloutStatus(RELEASE);
      expect([status.state, status.failures]).to.deep.equal([STATE.Halted, BigInt(THRESHOLD)]);

      const above = f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD + 3);
      await expect(above)
        .to.emit(f.rollout, "FailuresReported")
        .withArgs(RELEASE, MODULE, THRESHOLD + 3, THRESHOLD + 3, f.tracker.address);
      await expect(above).to.not.emit(f.rollout, "RolloutHalted");
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.HALTED);
      // A halt answers before the device's own situation: a device of a later wave learns it too.
      expect(await reason(f, FLEET_DEVICE, evidence(FLEET_COHORT, 1, FLEET_DEVICE))).to.equal(REASON.HALTED);
    });

    it("halts on a first post of a whole threshold's worth of failures, the most one post may claim", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await expect(f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD))
        .to.emit(f.rollout, "RolloutHalted")
        .withArgs(RELEASE, THRESHOLD, THRESHOLD);
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.equal(REASON.HALTED);
    });

    it("sums the modules' totals: two modules' failures halt together what neither halts alone", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 2);
      const second = f.rollout.connect(f.tracker).reportFailures(RELEASE, SUBMODULE, 1);
      await expect(second).to.emit(f.rollout, "FailuresReported").withArgs(RELEASE, SUBMODULE, 1, 3, f.tracker.address);
      await expect(second).to.emit(f.rollout, "RolloutHalted").withArgs(RELEASE, 3, THRESHOLD);
      expect(await f.rollout.moduleFailures(RELEASE, MODULE)).to.equal(2n);
      expect(await f.rollout.moduleFailures(RELEASE, SUBMODULE)).to.equal(1n);
      expect((await f.rollout.rolloutStatus(RELEASE)).failures).to.equal(3n);
    });

    it("finding: one post of 2^32-1 no longer halts a rollout for good (a post rises by at most the threshold; an administrator resets the rogue module and the halt lifts) (APP-II-3)", async function () {
      const f = await loadFixture(pilotOpenFixture);
      const ev = evidence(PILOT_COHORT, 0, PILOT_DEVICE);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1);
      // The attack of the security review: one post of the largest total.
      await expect(f.rollout.connect(f.rogue).reportFailures(RELEASE, ROGUE, 0xffffffff))
        .to.be.revertedWithCustomError(f.rollout, "StagedRolloutFailureRiseTooLarge")
        .withArgs(RELEASE, ROGUE, 0xffffffffn, THRESHOLD);
      expect((await f.rollout.rolloutStatus(RELEASE)).failures).to.equal(1n);
      // What it can still do, a threshold's worth, halts: as an honest module's real failures would.
      await expect(f.rollout.connect(f.rogue).reportFailures(RELEASE, ROGUE, THRESHOLD))
        .to.emit(f.rollout, "RolloutHalted")
        .withArgs(RELEASE, THRESHOLD + 1, THRESHOLD);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.HALTED);
      // The administrator takes the rogue module's count off the total: the halt lifts, the honest count stays.
      const reset = f.rollout.connect(f.admin).resetModuleFailures(RELEASE, ROGUE);
      await expect(reset).to.emit(f.rollout, "ModuleFailuresReset").withArgs(RELEASE, ROGUE, THRESHOLD, 1, f.admin.address);
      await expect(reset).to.emit(f.rollout, "RolloutHaltLifted").withArgs(RELEASE, 1, THRESHOLD, f.admin.address);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ALLOWED);
      const status = await f.rollout.rolloutStatus(RELEASE);
      expect([status.state, status.failures]).to.deep.equal([STATE.Open, 1n]);
      expect(await f.rollout.moduleFailures(RELEASE, ROGUE)).to.equal(0n);
      expect(await f.rollout.moduleFailures(RELEASE, MODULE)).to.equal(1n);
      // Retiring the rogue module stops it for good.
      await f.fleet.connect(f.admin).retireTrackerModule(ROGUE);
      await expect(f.rollout.connect(f.rogue).reportFailures(RELEASE, ROGUE, 1))
        .to.be.revertedWithCustomError(f.rollout, "StagedRolloutUnknownTrackerModule")
        .withArgs(ROGUE);
    });

    it("finding: failure totals are attributed per tracker module: a key posts only for the modules it owns in the FleetRegistry", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await expect(f.rollout.connect(f.rogue).reportFailures(RELEASE, MODULE, 1))
        .to.be.revertedWithCustomError(f.rollout, "StagedRolloutNotModuleOwner")
        .withArgs(MODULE, f.tracker.address, f.rogue.address);
      await expect(f.rollout.connect(f.tracker).reportFailures(RELEASE, ROGUE, 1))
        .to.be.revertedWithCustomError(f.rollout, "StagedRolloutNotModuleOwner")
        .withArgs(ROGUE, f.rogue.address, f.tracker.address);
      expect((await f.rollout.rolloutStatus(RELEASE)).failures).to.equal(0n);
    });

    it("posts a large real total in steps of at most the threshold, each attributed to its module", async function () {
      const f = await loadFixture(pilotOpenFixture);
      for (const total of [3, 6, 7]) await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, total);
      expect(await f.rollout.moduleFailures(RELEASE, MODULE)).to.equal(7n);
      expect((await f.rollout.rolloutStatus(RELEASE)).failures).to.equal(7n);
    });

    it("refuses a sum over modules beyond 2^32-1, naming the total it would have been", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.admin).setFailureThreshold(RELEASE, 0xffffffff);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 0xffffffff);
      await expect(f.rollout.connect(f.tracker).reportFailures(RELEASE, SUBMODULE, 1))
        .to.be.revertedWithCustomError(f.rollout, "StagedRolloutFailureTotalOverflow")
        .withArgs(RELEASE, 0x100000000n);
      expect(await f.rollout.moduleFailures(RELEASE, SUBMODULE)).to.equal(0n);
    });

    it("accepts the same total again (reports repeat) without a second halt", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      const again = f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      await expect(again).to.emit(f.rollout, "FailuresReported").withArgs(RELEASE, MODULE, THRESHOLD, THRESHOLD, f.tracker.address);
      await expect(again).to.not.emit(f.rollout, "RolloutHalted");
    });

    it("takes reports after an abort: the count stays a record of the fleet", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.admin).abort(RELEASE);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 3);
      const status = await f.rollout.rolloutStatus(RELEASE);
      expect([status.state, status.failures]).to.deep.equal([STATE.Aborted, 3n]);
    });

    itRejectsWithoutChange<F>(
      [
        {
          name: "a failure total that goes down",
          run: async (f) => {
            await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 2);
            return {
              call: () => f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1),
              error: "StagedRolloutFailuresDecreased",
              args: [RELEASE, MODULE, 2, 1],
            };
          },
        },
        {
          name: "a post that raises a module's total by more than the threshold",
          run: async (f) => {
            await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1);
            return {
              call: () => f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1 + THRESHOLD + 1),
              error: "StagedRolloutFailureRiseTooLarge",
              args: [RELEASE, MODULE, THRESHOLD + 1, THRESHOLD],
            };
          },
        },
        {
          name: "failures posted for another operator's module",
          run: async (f) => ({
            call: () => f.rollout.connect(f.tracker).reportFailures(RELEASE, ROGUE, 1),
            error: "StagedRolloutNotModuleOwner",
            args: [ROGUE, f.rogue.address, f.tracker.address],
          }),
        },
        {
          name: "failures posted for a module that is not registered",
          run: async (f) => ({
            call: () => f.rollout.connect(f.tracker).reportFailures(RELEASE, UNREGISTERED, 1),
            error: "StagedRolloutUnknownTrackerModule",
            args: [UNREGISTERED],
          }),
        },
        {
          name: "failures reported by an account without TRACKER_ROLE (an administrator)",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).reportFailures(RELEASE, MODULE, 1),
            error: "PolicyUnauthorized",
            args: [f.admin.address, ROLES.TRACKER],
          }),
        },
        {
          name: "failures reported by an outsider",
          run: async (f) => ({
            call: () => f.rollout.connect(f.outsider).reportFailures(RELEASE, MODULE, 9),
            error: "PolicyUnauthorized",
            args: [f.outsider.address, ROLES.TRACKER],
          }),
        },
        {
          name: "failures reported for a release without a rollout",
          run: async (f) => ({
            call: () => f.rollout.connect(f.tracker).reportFailures(OTHER_RELEASE, MODULE, 1),
            error: "StagedRolloutUnknown",
            args: [OTHER_RELEASE],
          }),
        },
      ],
      { fixture: rolloutFixture, contract: (f) => f.rollout, snapshot: rolloutSnapshot },
    );
  });

  describe("resetModuleFailures: an administrator takes one module's count off the total", function () {
    it("resets a module below the threshold: the total falls, no halt is lifted, the other module's count stays", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, SUBMODULE, 1);
      const reset = f.rollout.connect(f.admin).resetModuleFailures(RELEASE, SUBMODULE);
      await expect(reset).to.emit(f.rollout, "ModuleFailuresReset").withArgs(RELEASE, SUBMODULE, 1, 1, f.admin.address);
      await expect(reset).to.not.emit(f.rollout, "RolloutHaltLifted");
      expect((await f.rollout.rolloutStatus(RELEASE)).failures).to.equal(1n);
      // The module counts again from zero.
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, SUBMODULE, 1);
      expect((await f.rollout.rolloutStatus(RELEASE)).failures).to.equal(2n);
    });

    it("keeps the halt when the other modules still reach the threshold", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      await f.rollout.connect(f.rogue).reportFailures(RELEASE, ROGUE, 1);
      await expect(f.rollout.connect(f.admin).resetModuleFailures(RELEASE, ROGUE)).to.not.emit(f.rollout, "RolloutHaltLifted");
      expect((await f.rollout.rolloutStatus(RELEASE)).state).to.equal(STATE.Halted);
    });

    itRejectsWithoutChange<F>(
      [
        {
          name: "a reset of a module with no failures counted",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).resetModuleFailures(RELEASE, MODULE),
            error: "StagedRolloutNoModuleFailures",
            args: [RELEASE, MODULE],
          }),
        },
        {
          name: "a reset by a tracker (the module's own operator)",
          run: async (f) => {
            await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1);
            return {
              call: () => f.rollout.connect(f.tracker).resetModuleFailures(RELEASE, MODULE),
              error: "PolicyUnauthorized",
              args: [f.tracker.address, ROLES.ADMINISTRATOR],
            };
          },
        },
        {
          name: "a reset after an abort",
          run: async (f) => {
            await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 1);
            await f.rollout.connect(f.admin).abort(RELEASE);
            return { call: () => f.rollout.connect(f.admin).resetModuleFailures(RELEASE, MODULE), error: "StagedRolloutAborted", args: [RELEASE] };
          },
        },
        {
          name: "a reset for a release without a rollout",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).resetModuleFailures(OTHER_RELEASE, MODULE),
            error: "StagedRolloutUnknown",
            args: [OTHER_RELEASE],
          }),
        },
      ],
      { fixture: rolloutFixture, contract: (f) => f.rollout, snapshot: rolloutSnapshot },
    );
  });

  describe("setFailureThreshold", function () {
    it("lifts a halt when raised above the failure count, and not when raised only to it", async function () {
      const f = await loadFixture(pilotOpenFixture);
      const ev = evidence(PILOT_COHORT, 0, PILOT_DEVICE);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 3);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 4);
      const toCount = f.rollout.connect(f.admin).setFailureThreshold(RELEASE, 4);
      await expect(toCount).to.emit(f.rollout, "FailureThresholdChanged").withArgs(RELEASE, THRESHOLD, 4, f.admin.address);
      await expect(toCount).to.not.emit(f.rollout, "RolloutHalted");
      await expect(toCount).to.not.emit(f.rollout, "RolloutHaltLifted");
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.HALTED);
      await expect(f.rollout.connect(f.admin).setFailureThreshold(RELEASE, 10))
        .to.emit(f.rollout, "RolloutHaltLifted")
        .withArgs(RELEASE, 4, 10, f.admin.address);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ALLOWED);
      expect((await f.rollout.rolloutStatus(RELEASE)).state).to.equal(STATE.Open);
    });

    it("halts at once when lowered to the failure count", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, 2);
      await expect(f.rollout.connect(f.admin).setFailureThreshold(RELEASE, 2)).to.emit(f.rollout, "RolloutHalted").withArgs(RELEASE, 2, 2);
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.equal(REASON.HALTED);
    });

    itRejectsWithoutChange<F>(
      [
        {
          name: "a zero threshold",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).setFailureThreshold(RELEASE, 0),
            error: "StagedRolloutZeroThreshold",
          }),
        },
        {
          name: "a threshold set by a tracker",
          run: async (f) => ({
            call: () => f.rollout.connect(f.tracker).setFailureThreshold(RELEASE, 10),
            error: "PolicyUnauthorized",
            args: [f.tracker.address, ROLES.ADMINISTRATOR],
          }),
        },
        {
          name: "a threshold set after an abort",
          run: async (f) => {
            await f.rollout.connect(f.admin).abort(RELEASE);
            return {
              call: () => f.rollout.connect(f.admin).setFailureThreshold(RELEASE, 10),
              error: "StagedRolloutAborted",
              args: [RELEASE],
            };
          },
        },
        {
          name: "a threshold set for a release without a rollout",
          run: async (f) => ({
            call: () => f.rollout.connect(f.admin).setFailureThreshold(OTHER_RELEASE, 10),
            error: "StagedRolloutUnknown",
            args: [OTHER_RELEASE],
          }),
        },
      ],
      { fixture: rolloutFixture, contract: (f) => f.rollout, snapshot: rolloutSnapshot },
    );
  });

  describe("pause, resume and abort", function () {
    it("pauses and resumes, emitting RolloutPaused and RolloutResumed", async function () {
      const f = await loadFixture(pilotOpenFixture);
      const ev = evidence(PILOT_COHORT, 0, PILOT_DEVICE);
      await expect(f.rollout.connect(f.admin).pause(RELEASE)).to.emit(f.rollout, "RolloutPaused").withArgs(RELEASE, f.admin.address);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.PAUSED);
      expect(await reason(f, PILOT_DEVICE, "0x")).to.equal(REASON.PAUSED);
      expect((await f.rollout.rolloutStatus(RELEASE)).state).to.equal(STATE.Paused);
      await expect(f.rollout.connect(f.admin).resume(RELEASE)).to.emit(f.rollout, "RolloutResumed").withArgs(RELEASE, f.admin.address);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ALLOWED);
    });

    it("keeps waves on schedule while paused: a wave that opened during the pause is open on resume", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.admin).pause(RELEASE);
      await time.increaseTo(f.waves[1].startsAt);
      expect(await reason(f, FLEET_DEVICE, evidence(FLEET_COHORT, 1, FLEET_DEVICE))).to.equal(REASON.PAUSED);
      await f.rollout.connect(f.admin).resume(RELEASE);
      expect(await reason(f, FLEET_DEVICE, evidence(FLEET_COHORT, 1, FLEET_DEVICE))).to.equal(REASON.ALLOWED);
    });

    it("resumes a paused, halted rollout only after the threshold is raised above the count", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.admin).pause(RELEASE);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      await expect(f.rollout.connect(f.admin).resume(RELEASE))
        .to.be.revertedWithCustomError(f.rollout, "StagedRolloutHalted")
        .withArgs(RELEASE, THRESHOLD, THRESHOLD);
      await f.rollout.connect(f.admin).setFailureThreshold(RELEASE, THRESHOLD + 1);
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.equal(REASON.PAUSED);
      await f.rollout.connect(f.admin).resume(RELEASE);
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.equal(REASON.ALLOWED);
    });

    it("aborts for good, from any state, emitting RolloutAborted", async function () {
      const f = await loadFixture(pilotOpenFixture);
      await f.rollout.connect(f.admin).pause(RELEASE);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      await expect(f.rollout.connect(f.admin).abort(RELEASE)).to.emit(f.rollout, "RolloutAborted").withArgs(RELEASE, f.admin.address);
      expect(await reason(f, PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.equal(REASON.ABORTED);
      const status = await f.rollout.rolloutStatus(RELEASE);
      expect([status.state, status.paused, status.aborted]).to.deep.equal([STATE.Aborted, true, true]);
    });

    it("answers rollout-wide states in the order aborted, halted, paused", async function () {
      const f = await loadFixture(pilotOpenFixture);
      const ev = evidence(PILOT_COHORT, 0, PILOT_DEVICE);
      await f.rollout.connect(f.admin).pause(RELEASE);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.PAUSED);
      await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.HALTED);
      await f.rollout.connect(f.admin).abort(RELEASE);
      expect(await reason(f, PILOT_DEVICE, ev)).to.equal(REASON.ABORTED);
    });

    const adminOnly = ["pause", "resume", "abort"] as const;
    itRejectsWithoutChange<F>(
      [
        ...adminOnly.flatMap((fn) => [
          {
            name: `${fn} by an outsider`,
            run: async (f: F) => {
              if (fn === "resume") await f.rollout.connect(f.admin).pause(RELEASE);
              return {
                call: () => f.rollout.connect(f.outsider)[fn](RELEASE),
                error: "PolicyUnauthorized",
                args: [f.outsider.address, ROLES.ADMINISTRATOR],
              };
            },
          },
          {
            name: `${fn} by a tracker`,
            run: async (f: F) => {
              if (fn === "resume") await f.rollout.connect(f.admin).pause(RELEASE);
              return {
                call: () => f.rollout.connect(f.tracker)[fn](RELEASE),
                error: "PolicyUnauthorized",
                args: [f.tracker.address, ROLES.ADMINISTRATOR],
              };
            },
          },
          {
            name: `${fn} after an abort`,
            run: async (f: F) => {
              if (fn === "resume") await f.rollout.connect(f.admin).pause(RELEASE);
              await f.rollout.connect(f.admin).abort(RELEASE);
              return { call: () => f.rollout.connect(f.admin)[fn](RELEASE), error: "StagedRolloutAborted", args: [RELEASE] };
            },
          },
          {
            name: `${fn} of a release without a rollout`,
            run: async (f: F) => ({
              call: () => f.rollout.connect(f.admin)[fn](OTHER_RELEASE),
              error: "StagedRolloutUnknown",
              args: [OTHER_RELEASE],
            }),
          },
        ]),
        {
          name: "a pause of a paused rollout",
          run: async (f) => {
            await f.rollout.connect(f.admin).pause(RELEASE);
            return { call: () => f.rollout.connect(f.admin).pause(RELEASE), error: "StagedRolloutAlreadyPaused", args: [RELEASE] };
          },
        },
        {
          name: "a resume of a rollout that is not paused",
          run: async (f) => ({ call: () => f.rollout.connect(f.admin).resume(RELEASE), error: "StagedRolloutNotPaused", args: [RELEASE] }),
        },
        {
          name: "a resume of a paused rollout that is halted",
          run: async (f) => {
            await f.rollout.connect(f.admin).pause(RELEASE);
            await f.rollout.connect(f.tracker).reportFailures(RELEASE, MODULE, THRESHOLD);
            await f.rollout.connect(f.tracker).reportFailures(RELEASE, SUBMODULE, 1);
            return {
              call: () => f.rollout.connect(f.admin).resume(RELEASE),
              error: "StagedRolloutHalted",
              args: [RELEASE, THRESHOLD + 1, THRESHOLD],
            };
          },
        },
      ],
      { fixture: rolloutFixture, contract: (f) => f.rollout, snapshot: rolloutSnapshot },
    );
  });

  describe("rolloutStatus", function () {
    it("follows the waves as they open", async function () {
      const f = await loadFixture(rolloutFixture);
      const read = async () => {
        const s = await f.rollout.rolloutStatus(RELEASE);
        return [s.state, s.openWaves, s.nextWaveAt];
      };
      expect(await read()).to.deep.equal([STATE.Scheduled, 0n, BigInt(f.waves[0].startsAt)]);
      await time.increaseTo(f.waves[0].startsAt);
      expect(await read()).to.deep.equal([STATE.Open, 1n, BigInt(f.waves[1].startsAt)]);
      await time.increaseTo(f.waves[1].startsAt);
      expect(await read()).to.deep.equal([STATE.Open, 2n, 0n]);
    });
  });

  describe("cohortLeaf", function () {
    it("is the double hash of abi.encode(deviceId), the same leaf the off-chain tree uses", async function () {
      const { rollout } = await loadFixture(deployFixture);
      for (const id of [...PILOT, OUTSIDER, ZeroHash]) {
        expect(await rollout.cohortLeaf(id)).to.equal(cohortLeaf(id));
        expect(cohortLeaf(id)).to.equal(keccak256(keccak256(coder.encode(["bytes32"], [id]))));
      }
    });
  });

  describe("through UpdatePolicies.checkUpdate (attached to a component)", function () {
    /** A published bootloader release, the rollout attached to the bootloader component. */
    async function attachedFixture() {
      const f = await deployFixture();
      const published = await publish(f.registry, f.acmeAuthor, makeRelease({ component: COMPONENTS.bootloader, hardware: [1, 2] }), ACME_SIGNER, f.domain);
      const unplanned = await publish(
        f.registry,
        f.acmeAuthor,
        makeRelease({ component: COMPONENTS.bootloader, version: encodeVersion("1.1.0"), hardware: [1, 2] }),
        ACME_SIGNER,
        f.domain,
      );
      await f.rollout.connect(f.admin).createRollout(published.id, f.waves, THRESHOLD);
      await f.policies.connect(f.admin).attachPolicy(COMPONENTS.bootloader, await f.rollout.getAddress());
      return { ...f, published, unplanned };
    }

    const VERDICT = { Installable: 0n, HardwareNotSupported: 5n };

    it("reaches only the devices of the open wave, and stops everyone on a halt", async function () {
      const f = await loadFixture(attachedFixture);
      const policy = await f.rollout.getAddress();
      const ask = (id: string, ev: string, hardwareClass = 1) => f.policies.checkUpdate(f.published.record, { ...device(id), hardwareClass }, ev);

      expect(await ask(PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.deep.equal([VERDICT.Installable, policy, REASON.WAVE_NOT_STARTED]);
      await time.increaseTo(f.waves[0].startsAt);
      expect(await ask(PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.deep.equal([VERDICT.Installable, policy, REASON.ALLOWED]);
      expect(await ask(FLEET_DEVICE, evidence(FLEET_COHORT, 1, FLEET_DEVICE))).to.deep.equal([VERDICT.Installable, policy, REASON.WAVE_NOT_STARTED]);
      expect(await ask(OUTSIDER, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.deep.equal([VERDICT.Installable, policy, REASON.NOT_IN_COHORT]);
      expect(await ask(PILOT_DEVICE, "0xdeadbeef")).to.deep.equal([VERDICT.Installable, policy, REASON.MALFORMED_EVIDENCE]);
      // The registry's check comes first: hardware the release does not support never reaches the policy.
      expect(await ask(PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE), 3)).to.deep.equal([VERDICT.HardwareNotSupported, ZeroAddress, 0n]);

      await f.rollout.connect(f.tracker).reportFailures(f.published.id, MODULE, THRESHOLD);
      expect(await ask(PILOT_DEVICE, evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.deep.equal([VERDICT.Installable, policy, REASON.HALTED]);
    });

    it("blocks a release of the component that has no rollout (fail closed)", async function () {
      const f = await loadFixture(attachedFixture);
      await time.increaseTo(f.waves[1].startsAt);
      expect(await f.policies.checkUpdate(f.unplanned.record, device(PILOT_DEVICE), evidence(PILOT_COHORT, 0, PILOT_DEVICE))).to.deep.equal([
        VERDICT.Installable,
        await f.rollout.getAddress(),
        REASON.NO_ROLLOUT,
      ]);
    });

    it("stays within the checker's gas cap with a proof of MAX_PROOF_LENGTH siblings", async function () {
      const f = await loadFixture(attachedFixture);
      const ev = coder.encode(["uint256", "bytes32[]"], [1, Array(32).fill(keccak256("0x01"))]);
      const gas = await f.rollout.check.estimateGas(f.published.id, COMPONENTS.bootloader, 1n, device(PILOT_DEVICE), ev);
      expect(gas < (await f.policies.POLICY_GAS())).to.equal(true);
      expect(await f.policies.checkUpdate(f.published.record, device(PILOT_DEVICE), ev)).to.deep.equal([
        VERDICT.Installable,
        await f.rollout.getAddress(),
        REASON.NOT_IN_COHORT,
      ]);
    });
  });
});
