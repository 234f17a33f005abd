import { AssertionError, expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ContractTransactionResponse, keccak256, toUtf8Bytes } from "ethers";
import { Cohort, buildCohort, cohortProof, encodeRolloutEvidence } from "../../../agent/crypto/cohortTree";
import { decodeRevert } from "../../../agent/chain/revertReason";
import { catalogFixture } from "../../helpers/registryFixture";
import type { StagedRollout } from "../../../typechain-types";

/**
 * Model-based test of StagedRollout: random waves (cohorts drawn from a small pool of devices,
 * start times in ascending order), then random sequences of time advances, failure reports,
 * threshold changes, module resets, pauses, resumes and aborts, from authorised and unauthorised
 * senders. Failures are posted per tracker module (two modules of the tracker) and the rollout's
 * total is their sum. After every step the contract must agree with a small TypeScript model: the
 * same success or custom error, a RolloutHalted event exactly when the model halts and a
 * RolloutHaltLifted event exactly when an administrator's step lifts it, the same rollout state,
 * the same module counts, and for every
 * device and every wave it could claim the same reason code.
 */

const REASON = {
  ALLOWED: 0,
  NO_ROLLOUT: 1,
  NOT_IN_COHORT: 2,
  WAVE_NOT_STARTED: 3,
  PAUSED: 4,
  HALTED: 5,
  ABORTED: 6,
  MALFORMED_EVIDENCE: 7,
  NO_SUCH_WAVE: 8,
  NO_EVIDENCE: 9,
};
const STATE = { Scheduled: 1, Open: 2, Paused: 3, Halted: 4, Aborted: 5 };
const DEVICES = Array.from({ length: 5 }, (_, i) => keccak256(toUtf8Bytes(`model device ${i}`)));
const RELEASE = keccak256(toUtf8Bytes("model release"));
/** Two tracker modules, both registered by the tracker account (their owner). */
const MODULES = ["model module 0", "model module 1"].map((name) => keccak256(toUtf8Bytes(name)));

type Sender = "admin" | "tracker" | "outsider";
type Op =
  | { kind: "advance"; seconds: number }
  | { kind: "report"; module: number; delta: number; sender: Sender }
  | { kind: "reset"; module: number; sender: Sender }
  | { kind: "threshold"; value: number; sender: Sender }
  | { kind: "pause" | "resume" | "abort"; sender: Sender };

interface ModelWave {
  members: number[]; // indexes into DEVICES
  startsAt: number;
}

class Model {
  modules = [0, 0];
  paused = false;
  aborted = false;

  constructor(
    readonly waves: ModelWave[],
    public threshold: number,
  ) {}

  get failures(): number {
    return this.modules[0] + this.modules[1];
  }

  get halted(): boolean {
    return this.failures >= this.threshold;
  }

  /** The reason for device `d` claiming wave `w`: with its own proof if a member, else another member's. */
  reason(d: number, w: number, now: number): number {
    if (this.aborted) return REASON.ABORTED;
    if (this.halted) return REASON.HALTED;
    if (this.paused) return REASON.PAUSED;
    if (!this.waves[w].members.includes(d)) return REASON.NOT_IN_COHORT;
    return now < this.waves[w].startsAt ? REASON.WAVE_NOT_STARTED : REASON.ALLOWED;
  }

  /** Reason for evidence that does not depend on the device (no evidence, malformed, no such wave). */
  rolloutWide(otherwise: number): number {
    if (this.aborted) return REASON.ABORTED;
    if (this.halted) return REASON.HALTED;
    if (this.paused) return REASON.PAUSED;
    return otherwise;
  }

  state(now: number): number {
    if (this.aborted) return STATE.Aborted;
    if (this.halted) return STATE.Halted;
    if (this.paused) return STATE.Paused;
    return this.waves.some((w) => w.startsAt <= now) ? STATE.Open : STATE.Scheduled;
  }

  /**
   * Applies `op` (a report carrying the total it posts); returns the custom error expected (null on
   * success) and whether it halts the rollout.
   */
  apply(op: Exclude<Op, { kind: "advance" | "report" }> | { kind: "report"; module: number; total: number; sender: Sender }): {
    error: string | null;
    halts: boolean;
    lifts: boolean;
  } {
    const needed: Sender = op.kind === "report" ? "tracker" : "admin";
    const refuse = (error: string) => ({ error, halts: false, lifts: false });
    if (op.sender !== needed) return refuse("PolicyUnauthorized");
    const wasHalted = this.halted;
    switch (op.kind) {
      case "report":
        if (op.total < this.modules[op.module]) return refuse("StagedRolloutFailuresDecreased");
        if (op.total - this.modules[op.module] > this.threshold) return refuse("StagedRolloutFailureRiseTooLarge");
        this.modules[op.module] = op.total;
        break;
      case "reset":
        if (this.aborted) return refuse("StagedRolloutAborted");
        if (this.modules[op.module] === 0) return refuse("StagedRolloutNoModuleFailures");
        this.modules[op.module] = 0;
        break;
      case "threshold":
        if (this.aborted) return refuse("StagedRolloutAborted");
        if (op.value === 0) return refuse("StagedRolloutZeroThreshold");
        this.threshold = op.value;
        break;
      case "pause":
        if (this.aborted) return refuse("StagedRolloutAborted");
        if (this.paused) return refuse("StagedRolloutAlreadyPaused");
        this.paused = true;
        break;
      case "resume":
        if (this.aborted) return refuse("StagedRolloutAborted");
        if (!this.paused) return refuse("StagedRolloutNotPaused");
        if (this.halted) return refuse("StagedRolloutHalted");
        this.paused = false;
        break;
      case "abort":
        if (this.aborted) return refuse("StagedRolloutAborted");
        this.aborted = true;
        break;
    }
    return { error: null, halts: !wasHalted && this.halted, lifts: wasHalted && !this.halted };
  }
}

async function deployFixture() {
  const f = await catalogFixture();
  const rollout = (await ethers.deployContract("StagedRollout", [await f.registry.getAddress(), await f.fleet.getAddress()])) as unknown as StagedRollout;
  for (const [i, id] of MODULES.entries()) {
    const key = ethers.Wallet.createRandom();
    await f.fleet.connect(f.tracker).registerTrackerModule(id, key.address, key.signingKey.compressedPublicKey, i === 0 ? ethers.ZeroHash : MODULES[0]);
  }
  return { ...f, rollout };
}

const senderArb = fc.constantFrom<Sender>("admin", "admin", "admin", "tracker", "outsider");
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("advance" as const), seconds: fc.integer({ min: 1, max: 700 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("report" as const),
      module: fc.integer({ min: 0, max: 1 }),
      delta: fc.integer({ min: -2, max: 5 }),
      sender: fc.constantFrom<Sender>("tracker", "tracker", "tracker", "admin", "outsider"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("threshold" as const), value: fc.integer({ min: 0, max: 8 }), sender: senderArb }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reset" as const), module: fc.integer({ min: 0, max: 1 }), sender: senderArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("pause" as const), sender: senderArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("resume" as const), sender: senderArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("abort" as const), sender: senderArb }) },
);
const wavesArb = fc.array(
  fc.record({
    members: fc.subarray([0, 1, 2, 3, 4], { minLength: 1 }),
    gap: fc.integer({ min: 0, max: 900 }),
  }),
  { minLength: 1, maxLength: 3 },
);

describe("StagedRollout: model-based property test (APP-II-3)", function () {
  it("agrees with the model after every step of random rollouts", async function () {
    await fc.assert(
      fc.asyncProperty(wavesArb, fc.integer({ min: 1, max: 4 }), fc.array(opArb, { minLength: 1, maxLength: 12 }), async (waveSpecs, threshold, ops) => {
        const f = await loadFixture(deployFixture);
        const { rollout } = f;
        const signers = { admin: f.admin, tracker: f.tracker, outsider: f.outsider };

        const base = (await time.latest()) + 2;
        let startsAt = base;
        const waves: ModelWave[] = waveSpecs.map((w) => ({ members: w.members, startsAt: (startsAt += w.gap) }));
        const cohorts: Cohort[] = waves.map((w) => buildCohort(w.members.map((i) => DEVICES[i])));
        await rollout.connect(f.admin).createRollout(
          RELEASE,
          waves.map((w, i) => ({ cohortRoot: cohorts[i].root, startsAt: w.startsAt })),
          threshold,
        );
        const model = new Model(waves, threshold);

        // For device d claiming wave w: its own proof if a member, else the first member's proof.
        const evidence = waves.map((w, wi) =>
          DEVICES.map((_, d) => encodeRolloutEvidence(wi, cohortProof(cohorts[wi], DEVICES[w.members.includes(d) ? d : w.members[0]]))),
        );
        const ask = (d: number, ev: string) =>
          rollout.check(
            RELEASE,
            ethers.ZeroHash,
            1n,
            { deviceId: DEVICES[d], hardwareClass: 1, network: ethers.ZeroHash, region: ethers.ZeroHash, installed: [] },
            ev,
          );

        const compare = async (step: string) => {
          const now = await time.latest();
          const status = await rollout.rolloutStatus(RELEASE);
          expect(Number(status.state), `${step}: state`).to.equal(model.state(now));
          expect(Number(status.failures), `${step}: total`).to.equal(model.failures);
          for (const [i, id] of MODULES.entries()) expect(Number(await rollout.moduleFailures(RELEASE, id)), `${step}: module ${i}`).to.equal(model.modules[i]);
          for (let w = 0; w < waves.length; w++) {
            for (let d = 0; d < DEVICES.length; d++) {
              expect(Number(await ask(d, evidence[w][d])), `${step}: device ${d} claiming wave ${w} at ${now - base}s`).to.equal(model.reason(d, w, now));
            }
          }
          expect(Number(await ask(0, "0x")), `${step}: no evidence`).to.equal(model.rolloutWide(REASON.NO_EVIDENCE));
          expect(Number(await ask(0, "0x1234")), `${step}: malformed`).to.equal(model.rolloutWide(REASON.MALFORMED_EVIDENCE));
          expect(Number(await ask(0, encodeRolloutEvidence(waves.length, []))), `${step}: no such wave`).to.equal(model.rolloutWide(REASON.NO_SUCH_WAVE));
        };

        await compare("created");
        for (const [i, op] of ops.entries()) {
          const step = `step ${i} ${JSON.stringify(op)}`;
          if (op.kind === "advance") {
            await time.increase(op.seconds);
          } else {
            // A report posts the module's total moved by `delta` (never below zero: uint32).
            const total = op.kind === "report" ? Math.max(0, model.modules[op.module] + op.delta) : 0;
            const expected = model.apply(op.kind === "report" ? { kind: "report", module: op.module, total, sender: op.sender } : op);
            const from = rollout.connect(signers[op.sender]);
            let call: () => Promise<ContractTransactionResponse>;
            if (op.kind === "report") call = () => from.reportFailures(RELEASE, MODULES[op.module], total);
            else if (op.kind === "reset") call = () => from.resetModuleFailures(RELEASE, MODULES[op.module]);
            else if (op.kind === "threshold") call = () => from.setFailureThreshold(RELEASE, op.value);
            else call = () => from[op.kind](RELEASE);
            try {
              const receipt = await (await call()).wait();
              expect(expected.error, `${step}: succeeded`).to.equal(null);
              const halted = receipt!.logs.some((l) => rollout.interface.parseLog(l)?.name === "RolloutHalted");
              expect(halted, `${step}: RolloutHalted`).to.equal(expected.halts);
              const lifted = receipt!.logs.some((l) => rollout.interface.parseLog(l)?.name === "RolloutHaltLifted");
              expect(lifted, `${step}: RolloutHaltLifted`).to.equal(expected.lifts);
            } catch (err) {
              if (err instanceof AssertionError) throw err;
              expect(decodeRevert(err, [rollout.interface])?.name ?? String(err), step).to.equal(expected.error);
            }
          }
          await compare(step);
        }
      }),
      { numRuns: 25 },
    );
  });
});
