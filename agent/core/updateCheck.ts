import type { InstallCheckCode } from "./ledgerCodes";
import type { LedgerRecordCode } from "./updateErrors";
import type { InstalledVersion, ReleaseRecord } from "./release";
import { formatRange, formatVersion, inRange } from "./version";
import { DEFAULT_MAX_BLOCKS_BEHIND_UPSTREAM, DevicePolicy, isInWindow, nextWindowStart } from "./devicePolicy";
import { ContentRejected, LedgerRecordRejected, RollbackRefused, StaleLedgerView, UpdateDeclined, UpdateTransitionError } from "./updateErrors";

export type ReleaseStatus = "active" | "vulnerable" | "revoked";

/** Everything the device decides on, read beforehand: this file does no I/O. */
export interface CandidateInput {
  release: {
    id: string;
    record: ReleaseRecord;
    status: ReleaseStatus;
    providerBarred: boolean;
    signatureValid: boolean;
    /** Why the record or its signer failed verification (SIGNER_NOT_REGISTERED ...), if known. */
    verificationCode?: LedgerRecordCode;
    /** The registry's own checkInstallable verdict for this device. */
    ledgerVerdict?: InstallCheckCode;
    /** The attached update policy's answer for this device (0: allowed), and which policy. */
    policy?: { address: string; reason: bigint };
  };
  ledger: LedgerView;
  device: {
    hardwareClass: number;
    installed: InstalledVersion[];
    floors: Record<string, bigint>; // component id -> anti-rollback floor persisted on the device
    failedReleases: string[];
    installedStatus?: Record<string, ReleaseStatus>; // component id -> ledger status of the installed release
    /**
     * The components this device runs (device.json `components`): a release of any other is
     * declined, whoever names it, a notice, a request or a person (COMPONENT_NOT_MANAGED).
     * Absent: every component (a caller that checks one release it chose itself).
     */
    components?: string[];
  };
  policy: DevicePolicy;
  now: number; // unix s
  /**
   * An administrator's deadline for this release (unix s), from its upstream's notice (issue 19,
   * item 11): once it passed, a closed update window no longer defers it; a pin gives way only
   * with `overridePin`; security-only is the owner's and never gives way.
   */
  deadline?: { at: number; overridePin?: boolean };
}

/** What the device knows of its own view of the ledger, and the floor its upstream set. */
export interface LedgerView {
  headTimestamp: number; // unix s of the newest block the device saw (with several endpoints: one they agreed on)
  headBlock?: number; // that block's number
  /** The newest block the upstream tracker module signed it had read (its notices): the view must reach it. */
  floorBlock?: number;
  /** When that notice was issued (unix s): the floor holds for `maxLedgerAgeSeconds` after it, no longer. */
  floorIssuedAt?: number;
}

export type CandidateRejection = StaleLedgerView | LedgerRecordRejected | RollbackRefused | UpdateDeclined;
export type CandidateResult = { ok: true } | { ok: false; error: CandidateRejection };

/**
 * Decides whether the device may install a release. Checks run in this order and the first
 * failure is returned:
 *   1. ledger view fresh               LEDGER_STALE, LEDGER_BEHIND (first: a frozen view must never read as "up to date")
 *   2. release not revoked             RELEASE_REVOKED
 *   3. not vulnerable (unless allowed) RELEASE_VULNERABLE
 *   4. provider not barred             PROVIDER_BARRED
 *   5. author signature valid          SIGNATURE_INVALID                (REQ-10d-ii, CAP-11.1-a-v)
 *   6. newer than installed            NOT_NEWER_THAN_INSTALLED         (REQ-10d-i)
 *   7. above the anti-rollback floor   BELOW_ANTI_ROLLBACK_FLOOR        (REQ-10d-i)
 *   8. hardware supported              HARDWARE_NOT_SUPPORTED           (APP-II-2)
 *   8b. a component this device runs   COMPONENT_NOT_MANAGED            (CAP-11.1-a-vi: its own choice)
 *   9. each dependency installed       DEPENDENCY_NOT_INSTALLED         (APP-II-2)
 *      and in [min, max)               DEPENDENCY_OUT_OF_RANGE
 *  10. not failed here before          PREVIOUSLY_FAILED
 *  10b. the registry's checkInstallable  LEDGER_NOT_INSTALLABLE (what the device does not model itself
 *      is decided on the ledger, not re-implemented here)
 *  10c. the administrators' update policy  POLICY_REFUSED (APP-II-3, CAP-11.3-h: asked on the ledger)
 *  11. policy: pin, security-only, window   VERSION_PINNED, NOT_A_SECURITY_FIX, DEFERRED_TO_WINDOW (CAP-11.1-a-vi)
 * Trust failures come before fit, and fit before the device's preferences, so a report names the
 * most serious reason. Releases.sol `checkInstallable` applies rules 2, 4, 6, 8, 9 and 3 (last, there).
 */
export function checkCandidate(input: CandidateInput): CandidateResult {
  const { release, ledger, device, policy, now } = input;
  const { component, version, provider, hardware } = release.record;
  // Every rejection names the release and component; details stay JSON (versions as text).
  const at = { releaseId: release.id, component };
  const no = <C extends string>(
    Cls: new (code: C, message: string, o: { details: Record<string, unknown> }) => CandidateRejection,
    code: C,
    message: string,
    extra: Record<string, unknown> = {},
  ): CandidateResult => ({ ok: false, error: new Cls(code, message, { details: { ...at, ...extra } }) });

  const stale = checkLedgerView(ledger, policy, now);
  if (stale) return { ok: false, error: new StaleLedgerView(stale.code, stale.message, { details: { ...at, ...stale.details } }) };
  if (release.status === "revoked") return no(LedgerRecordRejected, "RELEASE_REVOKED", "the release is revoked on the ledger");
  if (release.status === "vulnerable" && !policy.allowVulnerable) {
    return no(LedgerRecordRejected, "RELEASE_VULNERABLE", "the release is flagged vulnerable on the ledger");
  }
  if (release.providerBarred) return no(LedgerRecordRejected, "PROVIDER_BARRED", `provider ${provider} is barred on the ledger`, { provider });
  if (!release.signatureValid) {
    const code = release.verificationCode ?? "SIGNATURE_INVALID";
    return no(LedgerRecordRejected, code, `the release record or its author's signature does not verify (${code})`);
  }

  const current = installedVersion(device.installed, component);
  if (current !== undefined && version <= current) {
    return no(RollbackRefused, "NOT_NEWER_THAN_INSTALLED", `${show(version)} is not newer than the installed ${show(current)}`, {
      version: show(version),
      installed: show(current),
    });
  }
  // The floor is the highest version this device ever confirmed; it survives a reflash of the slots.
  const floor = lookup(device.floors, component);
  if (floor !== undefined && version <= floor) {
    return no(RollbackRefused, "BELOW_ANTI_ROLLBACK_FLOOR", `${show(version)} is not above the anti-rollback floor ${show(floor)}`, {
      version: show(version),
      floor: show(floor),
    });
  }
  if (!hardware.includes(device.hardwareClass)) {
    const hw = device.hardwareClass;
    return no(LedgerRecordRejected, "HARDWARE_NOT_SUPPORTED", `hardware class ${hw} is not among the release's ${hardware.join(", ")}`, {
      hardwareClass: hw,
    });
  }
  // A registered upstream decides what to install (DEP-8.2.3), but only among what the device runs:
  // a compromised module or a mistaken request cannot add a component to a device.
  if (device.components && !device.components.some((c) => sameId(c, component))) {
    return no(UpdateDeclined, "COMPONENT_NOT_MANAGED", `component ${component} is not one this device runs (device.json components)`);
  }
  for (const dep of release.record.dependencies) {
    const have = installedVersion(device.installed, dep.component);
    const range = showRange(dep.minVersion, dep.maxVersion);
    if (have === undefined) {
      return no(LedgerRecordRejected, "DEPENDENCY_NOT_INSTALLED", `dependency ${dep.component} (${range}) is not installed`, {
        dependency: dep.component,
        range,
      });
    }
    if (!inRange(have, { min: dep.minVersion, max: dep.maxVersion })) {
      return no(LedgerRecordRejected, "DEPENDENCY_OUT_OF_RANGE", `dependency ${dep.component} is at ${show(have)}, outside ${range}`, {
        dependency: dep.component,
        installed: show(have),
        range,
      });
    }
  }
  if (device.failedReleases.some((id) => sameId(id, release.id))) {
    return no(UpdateDeclined, "PREVIOUSLY_FAILED", "this release already failed on this device; it is not retried");
  }
  const verdict = release.ledgerVerdict;
  if (verdict !== undefined && verdict !== "INSTALLABLE" && !(verdict === "RELEASE_VULNERABLE" && policy.allowVulnerable)) {
    return no(LedgerRecordRejected, "LEDGER_NOT_INSTALLABLE", `the registry's installable check answers ${verdict} for this device`, { verdict });
  }
  if (release.policy && release.policy.reason !== 0n) {
    return no(LedgerRecordRejected, "POLICY_REFUSED", `the update policy ${release.policy.address} refuses this device now (reason ${release.policy.reason})`, {
      policy: release.policy.address,
      reason: release.policy.reason.toString(),
    });
  }

  // An administrator's deadline (issue 19, item 11) moves the window aside once it passed; a pin
  // only when the administrator said so explicitly (overridePin); security-only never.
  const pastDeadline = input.deadline !== undefined && now >= input.deadline.at;
  const pin = lookup(policy.pins, component);
  if (pin !== undefined && BigInt(pin) !== version && !(pastDeadline && input.deadline?.overridePin)) {
    const pinned = show(BigInt(pin));
    return no(UpdateDeclined, "VERSION_PINNED", `the component is pinned to ${pinned}`, { version: show(version), pinned });
  }
  if (policy.securityOnly) {
    const status = lookup(device.installedStatus, component);
    if (status !== "vulnerable" && status !== "revoked") {
      return no(UpdateDeclined, "NOT_A_SECURITY_FIX", `security fixes only, and the installed release is ${status ?? "not known to be flagged"}`, {
        installedStatus: status ?? null,
      });
    }
  }
  if (policy.window && !isInWindow(policy.window, now) && !pastDeadline) {
    const next = nextWindowStart(policy.window, now);
    return no(UpdateDeclined, "DEFERRED_TO_WINDOW", `outside the update window; it next opens at ${new Date(next * 1000).toISOString()}`, {
      nextWindowStart: next,
    });
  }
  return { ok: true };
}

/**
 * Whether the device's view of the ledger is fresh enough to decide on (TUF's freeze attack): its
 * newest block is at most `maxLedgerAgeSeconds` old (LEDGER_STALE), and it is not more than
 * `maxBlocksBehindUpstream` blocks below the newest block its upstream tracker module signed it had
 * read (LEDGER_BEHIND: the endpoints show an old chain while the module sees a newer one). A view
 * that fails is reported as such, never as "up to date"; the device tries again later.
 */
export function checkLedgerView(ledger: LedgerView, policy: DevicePolicy, now: number): StaleLedgerView | undefined {
  const age = now - ledger.headTimestamp;
  const maxAge = policy.maxLedgerAgeSeconds;
  if (age > maxAge) {
    return new StaleLedgerView("LEDGER_STALE", `the newest ledger block seen is ${age} s old (limit ${maxAge} s): refresh the ledger view before deciding`, {
      details: { ageSeconds: age, maxLedgerAgeSeconds: maxAge },
    });
  }
  const tolerance = policy.maxBlocksBehindUpstream ?? DEFAULT_MAX_BLOCKS_BEHIND_UPSTREAM;
  // A floor is a fact of its notice's time: a view frozen before it is LEDGER_STALE by the time the
  // floor expires anyway, and a wrong floor (a module's bug, or its stolen key) stops updates for
  // at most that long, not for good (issue 16 review).
  const floorLive = ledger.floorIssuedAt === undefined || now - ledger.floorIssuedAt <= maxAge;
  if (floorLive && ledger.floorBlock !== undefined && ledger.headBlock !== undefined && ledger.floorBlock - ledger.headBlock > tolerance) {
    const behind = ledger.floorBlock - ledger.headBlock;
    return new StaleLedgerView(
      "LEDGER_BEHIND",
      `the ledger view ends at block ${ledger.headBlock}, ${behind} blocks below block ${ledger.floorBlock} that the upstream tracker signed it had read ` +
        `(tolerance ${tolerance}): the RPC endpoints show a frozen or lagging chain; check them (or add endpoints) before deciding`,
      { details: { headBlock: ledger.headBlock, floorBlock: ledger.floorBlock, blocksBehind: behind, maxBlocksBehindUpstream: tolerance } },
    );
  }
  return undefined;
}

// ------------------------------------------------------------------ the phases of one update

export type UpdatePhase =
  | "idle"
  | "checked"
  | "downloading"
  | "downloaded"
  | "decrypted"
  | "installing" // written to the inactive slot; the active slot is untouched
  | "trial" // booted into the new slot, not yet confirmed
  | "confirmed"
  | "rolled-back"
  | "rejected";

export type UpdateEvent =
  | { type: "checked" }
  | { type: "download-started" } // also a resume after a restart, keeping the verified chunks
  | { type: "chunk-verified"; index: number }
  | { type: "download-complete" }
  | { type: "decrypted"; fileHash: string }
  | { type: "installed" }
  | { type: "trial-started" }
  | { type: "health-passed" }
  | { type: "health-failed"; code: string }
  | { type: "rejected"; code: string };

/** The persisted state of one update: plain JSON (versions as decimal strings, null for "none"). */
export interface UpdateState {
  phase: UpdatePhase;
  releaseId: string;
  component: string;
  version: string; // encoded, decimal
  expectedFileHash: string; // the ledger's SHA-256 of the plaintext image
  lastVerifiedChunk: number | null; // chunks 0..lastVerifiedChunk are verified: resume after it
  fileHash: string | null;
  code: string | null; // why it was rejected or rolled back
}

/** The phases each event may be applied in; anything else is refused. */
export const ALLOWED_FROM: Readonly<Record<UpdateEvent["type"], readonly UpdatePhase[]>> = {
  checked: ["idle"],
  "download-started": ["checked", "downloading"],
  "chunk-verified": ["downloading"],
  "download-complete": ["downloading"],
  decrypted: ["downloaded"],
  installed: ["decrypted"],
  "trial-started": ["installing"],
  "health-passed": ["trial"],
  "health-failed": ["trial"],
  // Once booted into the new image only its health decides; before that, any step may give up.
  rejected: ["idle", "checked", "downloading", "downloaded", "decrypted", "installing"],
};

export const TERMINAL_PHASES: readonly UpdatePhase[] = ["confirmed", "rolled-back", "rejected"];

/** A new update of a release, before any check. */
export function startUpdate(release: { id: string; record: Pick<ReleaseRecord, "component" | "version" | "fileHash"> }): UpdateState {
  const { component, version, fileHash } = release.record;
  return {
    phase: "idle",
    releaseId: release.id,
    component,
    version: version.toString(),
    expectedFileHash: fileHash,
    lastVerifiedChunk: null,
    fileHash: null,
    code: null,
  };
}

/**
 * The next state after `event`; `state` is not changed. Throws UpdateTransitionError for an
 * event its phase does not allow, and ContentRejected when the decrypted image is not the
 * ledger's: nothing touches the active slot until every check has passed.
 */
export function transition(state: UpdateState, event: UpdateEvent): UpdateState {
  if (!ALLOWED_FROM[event.type].includes(state.phase)) {
    const why = event.type === "installed" || event.type === "trial-started" ? ": nothing touches the active slot until every check has passed" : "";
    refuse(state, event, `"${event.type}" is not allowed in phase "${state.phase}" (only in ${ALLOWED_FROM[event.type].join(", ")})${why}`);
  }
  switch (event.type) {
    case "checked":
      return { ...state, phase: "checked" };
    case "download-started":
      return { ...state, phase: "downloading" };
    case "chunk-verified": {
      const expected = state.lastVerifiedChunk === null ? 0 : state.lastVerifiedChunk + 1;
      if (event.index !== expected) refuse(state, event, `chunk ${event.index} verified out of order: chunk ${expected} is next`);
      return { ...state, lastVerifiedChunk: event.index };
    }
    case "download-complete":
      if (state.lastVerifiedChunk === null) refuse(state, event, "the download completed with no chunk verified");
      return { ...state, phase: "downloaded" };
    case "decrypted":
      if (event.fileHash.toLowerCase() !== state.expectedFileHash.toLowerCase()) {
        throw new ContentRejected("FILE_HASH_MISMATCH", `the decrypted image hashes to ${event.fileHash}; the ledger records ${state.expectedFileHash}`, {
          details: { releaseId: state.releaseId },
        });
      }
      return { ...state, phase: "decrypted", fileHash: event.fileHash };
    case "installed":
      return { ...state, phase: "installing" };
    case "trial-started":
      return { ...state, phase: "trial" };
    case "health-passed":
      return { ...state, phase: "confirmed" };
    case "health-failed":
      return { ...state, phase: "rolled-back", code: nonEmpty(state, event, event.code) };
    case "rejected":
      return { ...state, phase: "rejected", code: nonEmpty(state, event, event.code) };
  }
}

function refuse(state: UpdateState, event: UpdateEvent, message: string): never {
  throw new UpdateTransitionError(message, { details: { releaseId: state.releaseId, phase: state.phase, event: event.type } });
}

function nonEmpty(state: UpdateState, event: UpdateEvent, code: string): string {
  if (typeof code !== "string" || code === "") refuse(state, event, `"${event.type}" needs the failure's report code`);
  return code;
}

// ------------------------------------------------------------------ helpers

function installedVersion(installed: InstalledVersion[], component: string): bigint | undefined {
  return installed.find((c) => sameId(c.component, component))?.version;
}

/** Ids are hex; a JSON file or an RPC may differ from the record in case only. */
function lookup<T>(map: Record<string, T> | undefined, key: string): T | undefined {
  if (map === undefined) return undefined;
  const k = Object.keys(map).find((candidate) => sameId(candidate, key));
  return k === undefined ? undefined : map[k];
}

function sameId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A version for a message: never throws, even on an encoding the ledger would refuse. */
function show(v: bigint): string {
  try {
    return formatVersion(v);
  } catch {
    return `0x${v.toString(16)}`;
  }
}

function showRange(min: bigint, max: bigint): string {
  try {
    return formatRange({ min, max });
  } catch {
    return `[${show(min)}, ${show(max)})`;
  }
}
