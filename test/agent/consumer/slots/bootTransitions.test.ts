import { expect } from "chai";
import fc from "fast-check";
import { BootState, emptyBootState } from "../../../../agent/consumer/slots/bootState";
import * as t from "../../../../agent/consumer/slots/bootTransitions";
import { OtaError } from "../../../../agent/core/errors";
import { encodeVersion } from "../../../../agent/core/version";
import { BOOTLOADER, makeImage } from "./slotFixture";

const C = BOOTLOADER;
const NOW = 1_000;

/** Running 1.0.0 in slot a (confirmed), with `next` written into slot b. */
function installedWith(next: string | null, extra: Partial<BootState> = {}): BootState {
  let s = t.withSlot(emptyBootState(), C, "b", makeImage("1.0.0", 8).image);
  s = t.confirmTrial(t.startTrial(s, C, 3, NOW), C, NOW);
  if (next) s = t.withSlot(s, C, "a", makeImage(next, 8).image);
  return { ...s, ...extra };
}

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    return (err as OtaError).code;
  }
  return "no error";
}

describe("agent/consumer/slots boot transitions (pure)", function () {
  const refusals: { name: string; state: () => BootState; code: string; attempts?: number }[] = [
    { name: "with an empty inactive slot", state: () => installedWith(null), code: "SLOT_EMPTY" },
    { name: "of the running version again", state: () => installedWith("1.0.0"), code: "VERSION_BELOW_FLOOR" },
    { name: "of an older version", state: () => installedWith("0.9.0"), code: "VERSION_BELOW_FLOOR" },
    {
      name: "of a version above the floor but not above the running one",
      state: () => {
        const s = installedWith("1.1.0");
        s.components[C].floor = encodeVersion("0.5.0").toString();
        s.components[C].slots.b = makeImage("1.2.0", 8).image;
        return s;
      },
      code: "VERSION_NOT_NEWER",
    },
    { name: "while another is pending", state: () => t.startTrial(installedWith("1.1.0"), C, 3, NOW), code: "TRIAL_PENDING" },
    {
      name: "of a release that failed its trial before",
      state: () => t.rollbackTrial(t.startTrial(installedWith("1.1.0"), C, 3, NOW), C, "HEALTH_CHECK_FAILED", NOW),
      code: "RELEASE_FAILED_BEFORE",
    },
    { name: "in safe mode", state: () => installedWith("1.1.0", { safeMode: { since: 1, reason: "x", keptAs: null } }), code: "SAFE_MODE" },
    { name: "with zero attempts", state: () => installedWith("1.1.0"), code: "SLOT_INPUT_INVALID", attempts: 0 },
  ];
  for (const r of refusals) {
    it(`REQ-10d-i REQ-10c-ii: refuses a trial ${r.name} (${r.code}) and changes nothing`, () => {
      const state = r.state();
      const before = structuredClone(state);
      expect(codeOf(() => t.startTrial(state, C, r.attempts ?? 3, NOW))).to.equal(r.code);
      expect(state).to.deep.equal(before);
    });
  }

  it("CAP-11.1-a-iii: confirming switches the active slot and raises the floor; rolling back changes neither", () => {
    const trial = t.startTrial(installedWith("1.1.0"), C, 3, NOW);
    const confirmed = t.confirmTrial(trial, C, NOW);
    expect(confirmed.components[C]).to.deep.include({ active: "a", trial: null, floor: encodeVersion("1.1.0").toString() });
    expect(confirmed.lastResult).to.include({ outcome: "confirmed", code: "OK" });

    const rolledBack = t.rollbackTrial(trial, C, "HEALTH_CHECK_FAILED", NOW);
    expect(rolledBack.components[C]).to.deep.include({ active: "b", trial: null, floor: encodeVersion("1.0.0").toString() });
    expect(rolledBack.failedReleases).to.have.property(makeImage("1.1.0", 8).image.releaseId.toLowerCase());
    expect(rolledBack.lastResult).to.include({ outcome: "rolled-back", code: "HEALTH_CHECK_FAILED" });
  });

  it("CAP-11.1-a-iii: confirming, rolling back or spending an attempt without a trial is refused (NO_TRIAL)", () => {
    const s = installedWith("1.1.0");
    expect(codeOf(() => t.confirmTrial(s, C, NOW))).to.equal("NO_TRIAL");
    expect(codeOf(() => t.rollbackTrial(s, C, "X", NOW))).to.equal("NO_TRIAL");
    expect(codeOf(() => t.spendAttempt(s, C))).to.equal("NO_TRIAL");
  });

  it("REQ-10d-i: over random command sequences the floor never decreases, the running version never exceeds it, and a trial never targets the running slot", () => {
    const versions = ["0.9.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1", "2.0.0"];
    const command = fc.oneof(
      fc.record({ op: fc.constant("write" as const), version: fc.constantFrom(...versions) }),
      fc.record({ op: fc.constantFrom("begin" as const, "spend" as const, "confirm" as const, "rollback" as const, "leave" as const) }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 40 }), (commands) => {
        let s = emptyBootState();
        for (const cmd of commands) {
          const before = structuredClone(s);
          try {
            const c = t.componentBoot(s, C);
            if (cmd.op === "write") {
              const image = makeImage(cmd.version, 1).image;
              t.checkInstallable(s, C, image);
              s = t.withSlot(s, C, t.inactiveOf(c), image);
            } else if (cmd.op === "begin") s = t.startTrial(s, C, 2, NOW);
            else if (cmd.op === "spend") s = t.spendAttempt(s, C);
            else if (cmd.op === "confirm") s = t.confirmTrial(s, C, NOW);
            else if (cmd.op === "rollback") s = t.rollbackTrial(s, C, "X", NOW);
            else s = t.leaveSafeMode(s, {});
          } catch (err) {
            expect(err).to.be.instanceOf(OtaError);
            expect(s).to.deep.equal(before);
          }
          const after = t.componentBoot(s, C);
          const beforeC = t.componentBoot(before, C);
          expect(BigInt(after.floor) >= BigInt(beforeC.floor)).to.equal(true);
          const running = after.slots[after.active];
          if (running) expect(BigInt(running.version) <= BigInt(after.floor)).to.equal(true);
          if (after.trial) expect(after.trial.slot).to.not.equal(after.active);
        }
      }),
      { numRuns: 200 },
    );
  });
});
