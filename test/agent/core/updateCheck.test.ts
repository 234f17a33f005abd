import { expect } from "chai";
import fc from "fast-check";
import { keccak256, toUtf8Bytes } from "ethers";
import { OtaError, VerificationError } from "../../../agent/core/errors";
import { componentId, dependsOn } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { ALLOWED_FROM, CandidateInput, checkCandidate, startUpdate, transition, UpdateEvent, UpdatePhase, UpdateState } from "../../../agent/core/updateCheck";
import {
  ContentRejected,
  DownloadRejected,
  LedgerRecordRejected,
  REPORT_CODES,
  reportCodeOf,
  RollbackRefused,
  StaleLedgerView,
  UpdateDeclined,
  UpdateTransitionError,
} from "../../../agent/core/updateErrors";

const V = encodeVersion;
const FW = componentId("acme.sensor-fw");
const BOOT = componentId("acme.bootloader");
const RELEASE_ID = keccak256(toUtf8Bytes("acme.sensor-fw 2.0.0"));
const FILE_HASH = keccak256(toUtf8Bytes("image 2.0.0"));
const DAY = Date.UTC(2025, 0, 15) / 1000; // a midnight UTC
const at = (hour: number, minute = 0) => DAY + hour * 3600 + minute * 60;
const NOW = at(23);

/** A candidate that passes every check: firmware 1.4.0 -> 2.0.0 on hardware 3, needing bootloader ^1.0.0. */
function candidate(): CandidateInput {
  return {
    release: {
      id: RELEASE_ID,
      record: {
        provider: 1,
        component: FW,
        version: V("2.0.0"),
        fileHash: FILE_HASH,
        fileLink: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        fileName: "fw.bin",
        fileSize: 10n,
        merkleRoot: keccak256(toUtf8Bytes("root")),
        hardware: [1, 3],
        dependencies: [dependsOn(BOOT, "^1.0.0")],
      },
      status: "active",
      providerBarred: false,
      signatureValid: true,
    },
    ledger: { headTimestamp: NOW - 60 },
    device: {
      hardwareClass: 3,
      installed: [
        { component: FW, version: V("1.4.0") },
        { component: BOOT, version: V("1.2.0") },
      ],
      floors: { [FW]: V("1.4.0") },
      failedReleases: [],
      installedStatus: { [FW]: "active", [BOOT]: "active" },
    },
    policy: { maxLedgerAgeSeconds: 3600 },
    now: NOW,
  };
}

type ErrorClass = new (...args: never[]) => OtaError;

/** Runs the check on `c` and asserts the exact class and code, that the error is reportable, and that `c` was not changed. */
function expectRejected(c: CandidateInput, cls: ErrorClass, code: string): OtaError {
  const before = structuredClone(c);
  const result = checkCandidate(c);
  expect(c, "the input must not change").to.deep.equal(before);
  if (result.ok) return expect.fail(`expected ${cls.name} ${code}, but the candidate passed`);
  expect(result.error).to.be.instanceOf(cls);
  expect(result.error.name).to.equal(cls.name);
  expect(result.error.code).to.equal(code);
  expect(reportCodeOf(result.error)).to.equal(code);
  expect(() => JSON.stringify(result.error.details), "details go into a report as JSON").not.to.throw();
  return result.error;
}

function expectAccepted(c: CandidateInput) {
  const result = checkCandidate(c);
  expect(result.ok, result.ok ? "" : `${result.error.code}: ${result.error.message}`).to.equal(true);
}

const setInstalled = (c: CandidateInput, component: string, version: bigint) => {
  c.device.installed = c.device.installed.map((i) => (i.component === component ? { component, version } : i));
};

/** One case per check, in the documented order; `touches` names what it changes, so two cases combine when they differ. */
const CHECKS: { name: string; touches: string; mutate: (c: CandidateInput) => void; cls: ErrorClass; code: string }[] = [
  {
    name: "a ledger view older than maxLedgerAgeSeconds",
    touches: "ledger",
    mutate: (c) => void (c.ledger.headTimestamp = NOW - 3601),
    cls: StaleLedgerView,
    code: "LEDGER_STALE",
  },
  {
    name: "a release revoked on the ledger (REQ-10d-ii)",
    touches: "status",
    mutate: (c) => void (c.release.status = "revoked"),
    cls: LedgerRecordRejected,
    code: "RELEASE_REVOKED",
  },
  {
    name: "a release flagged vulnerable (REQ-10d-ii)",
    touches: "status",
    mutate: (c) => void (c.release.status = "vulnerable"),
    cls: LedgerRecordRejected,
    code: "RELEASE_VULNERABLE",
  },
  {
    name: "a release from a barred provider (REQ-10d-ii)",
    touches: "provider",
    mutate: (c) => void (c.release.providerBarred = true),
    cls: LedgerRecordRejected,
    code: "PROVIDER_BARRED",
  },
  {
    name: "a record whose author signature does not verify (CAP-11.1-a-v)",
    touches: "signature",
    mutate: (c) => void (c.release.signatureValid = false),
    cls: LedgerRecordRejected,
    code: "SIGNATURE_INVALID",
  },
  {
    name: "a version not newer than the installed one (REQ-10d-i)",
    touches: "installed-fw",
    mutate: (c) => setInstalled(c, FW, V("2.0.0")),
    cls: RollbackRefused,
    code: "NOT_NEWER_THAN_INSTALLED",
  },
  {
    name: "a version not above the anti-rollback floor (REQ-10d-i)",
    touches: "floor",
    mutate: (c) => void (c.device.floors[FW] = V("2.0.0")),
    cls: RollbackRefused,
    code: "BELOW_ANTI_ROLLBACK_FLOOR",
  },
  {
    name: "hardware the release does not support (APP-II-2)",
    touches: "hardware",
    mutate: (c) => void (c.device.hardwareClass = 2),
    cls: LedgerRecordRejected,
    code: "HARDWARE_NOT_SUPPORTED",
  },
  {
    name: "a dependency that is not installed (APP-II-2)",
    touches: "installed-boot",
    mutate: (c) => void (c.device.installed = c.device.installed.filter((i) => i.component !== BOOT)),
    cls: LedgerRecordRejected,
    code: "DEPENDENCY_NOT_INSTALLED",
  },
  {
    name: "a dependency outside its range (APP-II-2)",
    touches: "installed-boot",
    mutate: (c) => setInstalled(c, BOOT, V("2.0.0")),
    cls: LedgerRecordRejected,
    code: "DEPENDENCY_OUT_OF_RANGE",
  },
  {
    name: "a release that already failed on this device (REQ-10c)",
    touches: "failed",
    mutate: (c) => void (c.device.failedReleases = [RELEASE_ID]),
    cls: UpdateDeclined,
    code: "PREVIOUSLY_FAILED",
  },
  {
    name: "the registry's own installable check refusing it (a policy contract's rule, decided on the ledger)",
    touches: "ledgerVerdict",
    mutate: (c) => void (c.release.ledgerVerdict = "HARDWARE_NOT_SUPPORTED"),
    cls: LedgerRecordRejected,
    code: "LEDGER_NOT_INSTALLABLE",
  },
  {
    name: "a version other than the pinned one (CAP-11.1-a-vi)",
    touches: "pins",
    mutate: (c) => void (c.policy = { ...c.policy, pins: { [FW]: V("1.9.0").toString() } }),
    cls: UpdateDeclined,
    code: "VERSION_PINNED",
  },
  {
    name: "a non-security update under security-only (CAP-11.1-a-vi)",
    touches: "securityOnly",
    mutate: (c) => void (c.policy = { ...c.policy, securityOnly: true }),
    cls: UpdateDeclined,
    code: "NOT_A_SECURITY_FIX",
  },
  {
    name: "a time outside the update window (CAP-11.1-a-vi)",
    touches: "window",
    mutate: (c) => void (c.policy = { ...c.policy, window: { startHourUtc: 2, endHourUtc: 5 } }),
    cls: UpdateDeclined,
    code: "DEFERRED_TO_WINDOW",
  },
];

describe("agent/core/updateCheck: the device's verification decisions", function () {
  describe("checkCandidate: one case per check (REQ-10d-i, REQ-10d-ii, APP-II-2, CAP-11.1-a-v, CAP-11.1-a-vi)", function () {
    it("accepts the candidate that passes every check", function () {
      expectAccepted(candidate());
    });

    for (const check of CHECKS) {
      it(`refuses ${check.name} with ${check.cls.name} ${check.code}`, function () {
        const c = candidate();
        check.mutate(c);
        expectRejected(c, check.cls, check.code);
      });
    }

    it("trust failures are VerificationErrors; staleness and the device's own choices are not", function () {
      for (const cls of [LedgerRecordRejected, RollbackRefused, DownloadRejected, ContentRejected]) {
        expect(Object.create(cls.prototype)).to.be.instanceOf(VerificationError);
      }
      for (const cls of [StaleLedgerView, UpdateDeclined]) {
        expect(Object.create(cls.prototype)).not.to.be.instanceOf(VerificationError);
        expect(Object.create(cls.prototype)).to.be.instanceOf(OtaError);
      }
    });
  });

  describe("checkCandidate: the order of the checks", function () {
    CHECKS.forEach((first, i) => {
      it(`reports ${first.code} ahead of every later check`, function () {
        for (const later of CHECKS.slice(i + 1).filter((l) => l.touches !== first.touches)) {
          const c = candidate();
          later.mutate(c);
          first.mutate(c);
          const result = checkCandidate(c);
          expect(result.ok ? "ok" : result.error.code, `with ${later.code} too`).to.equal(first.code);
        }
      });
    });
  });

  describe("checkCandidate: stale ledger view", function () {
    it("accepts a view exactly maxLedgerAgeSeconds old and refuses one a second older", function () {
      const c = candidate();
      c.ledger.headTimestamp = NOW - 3600;
      expectAccepted(c);
      c.ledger.headTimestamp = NOW - 3601;
      const e = expectRejected(c, StaleLedgerView, "LEDGER_STALE");
      expect(e.details).to.include({ ageSeconds: 3601, maxLedgerAgeSeconds: 3600 });
    });

    it("a stale view is never reported as up to date, even for a release that is not newer", function () {
      const c = candidate();
      setInstalled(c, FW, V("2.0.0"));
      c.ledger.headTimestamp = NOW - 86400;
      expectRejected(c, StaleLedgerView, "LEDGER_STALE");
    });

    it("REQ-10b-i: a view more than maxBlocksBehindUpstream below the upstream's signed floor is LEDGER_BEHIND (a frozen view); within it, or with no floor, it passes", function () {
      const c = candidate();
      c.ledger.headBlock = 1000;
      expectAccepted(c); // a notice before issue 16 sets no floor
      c.ledger.floorBlock = 1000 + 16;
      expectAccepted(c);
      c.ledger.floorBlock = 1000 + 17;
      const e = expectRejected(c, StaleLedgerView, "LEDGER_BEHIND");
      expect(e.details).to.include({ headBlock: 1000, floorBlock: 1017, blocksBehind: 17, maxBlocksBehindUpstream: 16 });
      c.policy.maxBlocksBehindUpstream = 100;
      expectAccepted(c);
      c.policy.maxBlocksBehindUpstream = 0;
      c.ledger.floorBlock = 999; // the upstream behind the device: nothing to say
      expectAccepted(c);
    });

    it("REQ-10b-i: a floor holds for maxLedgerAgeSeconds after its notice, no longer: a wrong one (a module's bug or stolen key) cannot stop updates for good", function () {
      const c = candidate();
      c.ledger.headBlock = 1000;
      c.ledger.floorBlock = Number.MAX_SAFE_INTEGER; // absurd
      c.ledger.floorIssuedAt = NOW - c.policy.maxLedgerAgeSeconds;
      expectRejected(c, StaleLedgerView, "LEDGER_BEHIND");
      c.ledger.floorIssuedAt = NOW - c.policy.maxLedgerAgeSeconds - 1;
      expectAccepted(c);
    });

    it("a view both too old and behind the floor is LEDGER_STALE first", function () {
      const c = candidate();
      c.ledger = { headTimestamp: NOW - 86400, headBlock: 1, floorBlock: 10_000 };
      expectRejected(c, StaleLedgerView, "LEDGER_STALE");
    });
  });

  describe("checkCandidate: versions (REQ-10d-i)", function () {
    it("refuses an older version as well as the same one", function () {
      const c = candidate();
      setInstalled(c, FW, V("2.0.1"));
      const e = expectRejected(c, RollbackRefused, "NOT_NEWER_THAN_INSTALLED");
      expect(e.details).to.include({ version: "2.0.0", installed: "2.0.1" });
    });

    it("refuses a version equal to the floor even when the installed one is lower (the slot was reflashed)", function () {
      const c = candidate();
      c.device.floors[FW] = V("2.0.0");
      setInstalled(c, FW, V("1.0.0"));
      const e = expectRejected(c, RollbackRefused, "BELOW_ANTI_ROLLBACK_FLOOR");
      expect(e.details).to.include({ version: "2.0.0", floor: "2.0.0" });
    });

    it("accepts a first install of a component with no floor", function () {
      const c = candidate();
      c.device.installed = c.device.installed.filter((i) => i.component !== FW);
      c.device.floors = {};
      expectAccepted(c);
    });

    it("matches component ids whatever their hex case", function () {
      const c = candidate();
      c.device.installed = [{ component: "0x" + FW.slice(2).toUpperCase(), version: V("2.0.0") }, ...c.device.installed.slice(1)];
      expectRejected(c, RollbackRefused, "NOT_NEWER_THAN_INSTALLED");
    });
  });

  describe("checkCandidate: hardware and dependencies from the ledger (APP-II-2)", function () {
    it("a dependency's range is [min, max): min is in, max is out", function () {
      const c = candidate();
      setInstalled(c, BOOT, V("1.0.0"));
      expectAccepted(c);
      setInstalled(c, BOOT, V("2.0.0-alpha.0"));
      const e = expectRejected(c, LedgerRecordRejected, "DEPENDENCY_OUT_OF_RANGE");
      expect(e.details).to.include({ dependency: BOOT, installed: "2.0.0-alpha.0", range: ">=1.0.0 <2.0.0" });
    });
  });

  describe("checkCandidate: the device's policy (CAP-11.1-a-vi)", function () {
    it("REQ-10d-ii: names what failed when the record or its signer does not verify", function () {
      const c = candidate();
      c.release.signatureValid = false;
      c.release.verificationCode = "SIGNER_NOT_PINNED";
      expectRejected(c, LedgerRecordRejected, "SIGNER_NOT_PINNED");
    });

    it("a vulnerable verdict from the registry does not overrule a policy that allows vulnerable releases", function () {
      const c = candidate();
      c.release.status = "vulnerable";
      c.release.ledgerVerdict = "RELEASE_VULNERABLE";
      c.policy = { ...c.policy, allowVulnerable: true };
      expect(checkCandidate(c).ok).to.equal(true);
    });

    it("takes a vulnerable release only when the policy allows it, and a revoked one never", function () {
      const c = candidate();
      c.release.status = "vulnerable";
      c.policy.allowVulnerable = true;
      expectAccepted(c);
      c.release.status = "revoked";
      expectRejected(c, LedgerRecordRejected, "RELEASE_REVOKED");
    });

    it("a pin allows exactly the pinned version and leaves other components free", function () {
      const c = candidate();
      c.policy.pins = { [FW]: V("2.0.0").toString() };
      expectAccepted(c);
      c.policy.pins = { [BOOT]: V("1.2.0").toString() };
      expectAccepted(c);
      c.policy.pins = { [FW]: V("2.0.1").toString() };
      const e = expectRejected(c, UpdateDeclined, "VERSION_PINNED");
      expect(e.details).to.include({ version: "2.0.0", pinned: "2.0.1" });
    });

    it("CAP-11.1-a-vi DEP-8.2.3: a release of a component the device does not run is declined (COMPONENT_NOT_MANAGED), whoever names it; a component it runs passes, whatever its hex case", function () {
      const c = candidate();
      c.device.components = [BOOT];
      const e = expectRejected(c, UpdateDeclined, "COMPONENT_NOT_MANAGED");
      expect(e.message).to.include("device.json components");
      c.device.components = [BOOT, FW.toUpperCase().replace("0X", "0x")];
      expectAccepted(c);
      delete c.device.components; // a caller that checks a release it chose itself
      expectAccepted(c);
    });

    const securityOnly: [string, "active" | "vulnerable" | "revoked" | undefined, boolean][] = [
      ["flagged vulnerable", "vulnerable", true],
      ["revoked", "revoked", true],
      ["active", "active", false],
      ["of unknown status", undefined, false],
    ];
    for (const [what, status, takes] of securityOnly) {
      it(`security-only ${takes ? "takes" : "declines"} the update when the installed release is ${what}`, function () {
        const c = candidate();
        c.policy.securityOnly = true;
        c.device.installedStatus = status === undefined ? {} : { [FW]: status };
        if (takes) expectAccepted(c);
        else expectRejected(c, UpdateDeclined, "NOT_A_SECURITY_FIX");
      });
    }

    it("security-only declines a first install: nothing installed needs fixing", function () {
      const c = candidate();
      c.policy.securityOnly = true;
      c.device.installed = c.device.installed.filter((i) => i.component !== FW);
      c.device.floors = {};
      expectRejected(c, UpdateDeclined, "NOT_A_SECURITY_FIX");
    });

    it("a window wrapping midnight takes updates late in the evening and early in the morning", function () {
      const c = candidate();
      c.policy.window = { startHourUtc: 22, endHourUtc: 4 };
      for (const now of [at(22), at(23, 30), at(24), at(24 + 3, 59)]) {
        c.now = now;
        c.ledger.headTimestamp = now;
        expectAccepted(c);
      }
    });

    it("outside a window wrapping midnight the update is deferred, with the next window start in the details", function () {
      const c = candidate();
      c.policy.window = { startHourUtc: 22, endHourUtc: 4 };
      for (const [now, next] of [
        [at(4), at(22)],
        [at(12), at(22)],
        [at(21, 59), at(22)],
      ]) {
        c.now = now;
        c.ledger.headTimestamp = now;
        const e = expectRejected(c, UpdateDeclined, "DEFERRED_TO_WINDOW");
        expect(e.details.nextWindowStart).to.equal(next);
      }
    });
  });

  describe("report codes (REQ-10c)", function () {
    it("REPORT_CODES lists each code once, UNKNOWN_ERROR included", function () {
      expect(new Set(REPORT_CODES).size).to.equal(REPORT_CODES.length);
      expect(REPORT_CODES).to.include("UNKNOWN_ERROR");
      for (const check of CHECKS) expect(REPORT_CODES).to.include(check.code);
      for (const code of ["CHUNK_MISMATCH", "FILE_HASH_MISMATCH", "KEY_UNWRAP_FAILED", "INVALID_TRANSITION"]) expect(REPORT_CODES).to.include(code);
    });

    it("reportCodeOf gives an OtaError's code and UNKNOWN_ERROR for anything else", function () {
      expect(reportCodeOf(new DownloadRejected("CHUNK_MISMATCH", "chunk 3"))).to.equal("CHUNK_MISMATCH");
      expect(reportCodeOf(new ContentRejected("KEY_UNWRAP_FAILED", "not ours"))).to.equal("KEY_UNWRAP_FAILED");
      expect(reportCodeOf(new OtaError("STORE_UNREACHABLE", "down"))).to.equal("STORE_UNREACHABLE");
      for (const other of [new Error("x"), "text", undefined, null, { code: "FAKE" }]) expect(reportCodeOf(other)).to.equal("UNKNOWN_ERROR");
    });
  });
});

// ------------------------------------------------------------------ the update state machine

const OTHER_HASH = keccak256(toUtf8Bytes("another image"));
const fresh = () => startUpdate({ id: RELEASE_ID, record: { component: FW, version: V("2.0.0"), fileHash: FILE_HASH } });

/** A well-formed event of each type for `state` (the next chunk, the ledger's hash). */
function eventOf(type: UpdateEvent["type"], state: UpdateState): UpdateEvent {
  switch (type) {
    case "chunk-verified":
      return { type, index: state.lastVerifiedChunk === null ? 0 : state.lastVerifiedChunk + 1 };
    case "decrypted":
      return { type, fileHash: FILE_HASH };
    case "health-failed":
      return { type, code: "HEALTH_CHECK_FAILED" };
    case "rejected":
      return { type, code: "CHUNK_MISMATCH" };
    default:
      return { type } as UpdateEvent;
  }
}

const EVENT_TYPES = Object.keys(ALLOWED_FROM) as UpdateEvent["type"][];

/** The specification, written out independently of the code: phase -> event -> next phase. */
const SPEC: Record<UpdatePhase, Partial<Record<UpdateEvent["type"], UpdatePhase>>> = {
  idle: { checked: "checked", rejected: "rejected" },
  checked: { "download-started": "downloading", rejected: "rejected" },
  downloading: {
    "download-started": "downloading",
    "chunk-verified": "downloading",
    "download-complete": "downloaded",
    rejected: "rejected",
  },
  downloaded: { decrypted: "decrypted", rejected: "rejected" },
  decrypted: { installed: "installing", rejected: "rejected" },
  installing: { "trial-started": "trial", rejected: "rejected" },
  trial: { "health-passed": "confirmed", "health-failed": "rolled-back" },
  confirmed: {},
  "rolled-back": {},
  rejected: {},
};

/** A state in each phase, reached through the machine itself (a chunk verified before download-complete). */
function statesByPhase(): Record<UpdatePhase, UpdateState> {
  const out = {} as Record<UpdatePhase, UpdateState>;
  let s = fresh();
  out.idle = s;
  const path: UpdateEvent["type"][] = [
    "checked",
    "download-started",
    "chunk-verified",
    "download-complete",
    "decrypted",
    "installed",
    "trial-started",
    "health-passed",
  ];
  for (const type of path) {
    s = transition(s, eventOf(type, s));
    out[s.phase] = s;
  }
  out["rolled-back"] = transition(out.trial, eventOf("health-failed", out.trial));
  out.rejected = transition(out.idle, eventOf("rejected", out.idle));
  return out;
}

describe("agent/core/updateCheck: the phases of one update (REQ-10c, REQ-10d-ii)", function () {
  it("walks idle -> checked -> downloading -> downloaded -> decrypted -> installing -> trial -> confirmed", function () {
    const states = statesByPhase();
    expect(Object.keys(states)).to.have.members(Object.keys(SPEC));
    expect(states.confirmed).to.deep.equal({
      phase: "confirmed",
      releaseId: RELEASE_ID,
      component: FW,
      version: V("2.0.0").toString(),
      expectedFileHash: FILE_HASH,
      lastVerifiedChunk: 0,
      fileHash: FILE_HASH,
      code: null,
    });
  });

  it("every state survives JSON, so the agent can persist it", function () {
    for (const s of Object.values(statesByPhase())) expect(JSON.parse(JSON.stringify(s))).to.deep.equal(s);
  });

  it("resumes a download after a restart from the last verified chunk", function () {
    let s = transition(transition(fresh(), { type: "checked" }), { type: "download-started" });
    for (let i = 0; i < 3; i++) s = transition(s, { type: "chunk-verified", index: i });
    const restored = JSON.parse(JSON.stringify(s)) as UpdateState;
    const resumed = transition(restored, { type: "download-started" });
    expect(resumed.lastVerifiedChunk).to.equal(2);
    expect(transition(resumed, { type: "chunk-verified", index: 3 }).lastVerifiedChunk).to.equal(3);
  });

  it("records the failure code on a rollback and on a rejection", function () {
    const states = statesByPhase();
    expect(states["rolled-back"]).to.include({ phase: "rolled-back", code: "HEALTH_CHECK_FAILED" });
    expect(transition(states.downloading, { type: "rejected", code: "CHUNK_MISMATCH" })).to.include({
      phase: "rejected",
      code: "CHUNK_MISMATCH",
    });
  });

  describe("each (phase, event) pair against the specification", function () {
    for (const phase of Object.keys(SPEC) as UpdatePhase[]) {
      it(`in "${phase}": allows ${Object.keys(SPEC[phase]).join(", ") || "nothing"} and refuses every other event unchanged`, function () {
        const state = statesByPhase()[phase];
        for (const type of EVENT_TYPES) {
          const before = structuredClone(state);
          const next = SPEC[phase][type];
          if (next !== undefined) {
            expect(transition(state, eventOf(type, state)).phase, type).to.equal(next);
          } else {
            let thrown: unknown;
            try {
              transition(state, eventOf(type, state));
            } catch (error) {
              thrown = error;
            }
            expect(thrown, `${type} in ${phase}`).to.be.instanceOf(UpdateTransitionError);
            expect((thrown as UpdateTransitionError).code).to.equal("INVALID_TRANSITION");
            expect((thrown as UpdateTransitionError).details).to.deep.equal({ releaseId: RELEASE_ID, phase, event: type });
          }
          expect(state, "the input state must not change").to.deep.equal(before);
        }
      });
    }
  });

  describe("refusals that guard the active slot", function () {
    const refuses = (state: UpdateState, event: UpdateEvent, pattern: RegExp) => {
      expect(() => transition(state, event)).to.throw(UpdateTransitionError, pattern);
    };

    it("refuses decryption before download-complete", function () {
      refuses(
        statesByPhase().downloading,
        { type: "decrypted", fileHash: FILE_HASH },
        /"decrypted" is not allowed in phase "downloading" \(only in downloaded\)/,
      );
    });

    it("refuses a trial before the image is installed: nothing touches the active slot until every check has passed", function () {
      refuses(statesByPhase().decrypted, { type: "trial-started" }, /nothing touches the active slot until every check has passed/);
    });

    it("refuses to install an image that was not decrypted", function () {
      refuses(statesByPhase().downloaded, { type: "installed" }, /nothing touches the active slot/);
    });

    it("refuses chunks out of order and a download completed with no chunk verified", function () {
      const { downloading } = statesByPhase();
      refuses(downloading, { type: "chunk-verified", index: 2 }, /chunk 2 verified out of order: chunk 1 is next/);
      const started = transition(statesByPhase().checked, { type: "download-started" });
      refuses(started, { type: "download-complete" }, /no chunk verified/);
    });

    it("refuses a rejection or rollback without a report code", function () {
      refuses(statesByPhase().checked, { type: "rejected", code: "" }, /needs the failure's report code/);
      refuses(statesByPhase().trial, { type: "health-failed", code: "" }, /needs the failure's report code/);
    });

    it("refuses a decrypted image whose hash is not the ledger's, and the state does not move (REQ-10d-ii)", function () {
      const { downloaded } = statesByPhase();
      const before = structuredClone(downloaded);
      expect(() => transition(downloaded, { type: "decrypted", fileHash: OTHER_HASH }))
        .to.throw(ContentRejected)
        .with.property("code", "FILE_HASH_MISMATCH");
      expect(downloaded).to.deep.equal(before);
    });
  });

  it("property: no path reaches trial or confirmed without checked, download-complete and decrypted, in that order", function () {
    // Random events, interleaved with "advance" steps that take the happy path, so many runs get far.
    const randomEvent = fc.oneof(
      fc
        .constantFrom(...EVENT_TYPES.filter((t) => !["chunk-verified", "decrypted", "health-failed", "rejected"].includes(t)))
        .map((type) => ({ type }) as UpdateEvent),
      fc.nat(4).map((index): UpdateEvent => ({ type: "chunk-verified", index })),
      fc.constantFrom(FILE_HASH, OTHER_HASH).map((fileHash): UpdateEvent => ({ type: "decrypted", fileHash })),
      fc.constantFrom("", "HEALTH_CHECK_FAILED").map((code): UpdateEvent => ({ type: "health-failed", code })),
      fc.constantFrom("", "CHUNK_MISMATCH").map((code): UpdateEvent => ({ type: "rejected", code })),
    );
    const step = fc.oneof({ arbitrary: fc.constant("advance" as const), weight: 2 }, { arbitrary: randomEvent, weight: 1 });
    const HAPPY: Partial<Record<UpdatePhase, (s: UpdateState) => UpdateEvent["type"]>> = {
      idle: () => "checked",
      checked: () => "download-started",
      downloading: (s) => ((s.lastVerifiedChunk ?? -1) < 2 ? "chunk-verified" : "download-complete"),
      downloaded: () => "decrypted",
      decrypted: () => "installed",
      installing: () => "trial-started",
      trial: () => "health-passed",
    };
    const must = (ok: boolean, why: string) => {
      if (!ok) throw new Error(why);
    };
    let reachedTrial = 0;
    let runs = 0;

    fc.assert(
      fc.property(fc.array(step, { minLength: 10, maxLength: 60, size: "max" }), (steps) => {
        let state = fresh();
        const applied: UpdateEvent["type"][] = [];
        let sawTrial = false;
        for (const s of steps) {
          const happy = HAPPY[state.phase];
          if (s === "advance" && happy === undefined) continue;
          const event = s === "advance" ? eventOf(happy!(state), state) : s;
          const before = JSON.stringify(state);
          try {
            state = transition(state, event);
            applied.push(event.type);
          } catch (error) {
            // Plain checks in the loop: chai per step would make the run slow, not stricter.
            must(error instanceof UpdateTransitionError || error instanceof ContentRejected, `unexpected ${String(error)}`);
            must(JSON.stringify(state) === before, `a refused ${event.type} changed the state`);
          }
          if (state.phase === "trial" || state.phase === "confirmed") {
            sawTrial = true;
            const [checked, complete, decrypted] = (["checked", "download-complete", "decrypted"] as const).map((t) => applied.indexOf(t));
            must(checked >= 0 && checked < complete && complete < decrypted, `${state.phase} after ${applied.join(", ")}`);
            must(state.fileHash === FILE_HASH, `${state.phase} with file hash ${state.fileHash}`);
          }
        }
        runs++;
        if (sawTrial) reachedTrial++;
      }),
      { numRuns: 300 },
    );
    expect(reachedTrial, `runs reaching trial: ${reachedTrial} of ${runs}`).to.be.greaterThan(runs / 10);
  });
});
