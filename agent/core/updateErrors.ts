import { OtaError, VerificationError } from "./errors";

/**
 * The device's update failures, one class per check family, each with a closed set of stable
 * codes. The agent reports `reportCodeOf(err)` to the tracker (REQ-10c-i), so a code, once
 * shipped, keeps its meaning.
 */

type Options = { details?: Record<string, unknown>; cause?: unknown };

export const LEDGER_RECORD_CODES = [
  "RELEASE_REVOKED",
  "RELEASE_VULNERABLE",
  "PROVIDER_BARRED",
  "SIGNATURE_INVALID",
  "HARDWARE_NOT_SUPPORTED",
  "DEPENDENCY_NOT_INSTALLED",
  "DEPENDENCY_OUT_OF_RANGE",
  "LEDGER_NOT_INSTALLABLE",
  "POLICY_REFUSED", // the update policy an administrator attached refuses the device now (APP-II-3)
  // what verifyLedgerRelease found wrong with the record or its signer
  "RELEASE_NOT_ON_LEDGER",
  "RELEASE_STATE_MISMATCH",
  "SIGNER_NOT_REGISTERED",
  "SIGNER_NOT_PINNED",
  "SIGNER_COMPROMISED", // the key was retired as compromised since a time at or before the release's publication (docs/adr/0016)
] as const;
export const ROLLBACK_CODES = ["NOT_NEWER_THAN_INSTALLED", "BELOW_ANTI_ROLLBACK_FLOOR"] as const;
// LEDGER_STALE: the newest block seen is older than the device's limit; LEDGER_BEHIND: it is older
// than a block its upstream tracker module signed that it had read (a frozen view, issue 16).
export const STALE_LEDGER_CODES = ["LEDGER_STALE", "LEDGER_BEHIND"] as const;
export const DECLINE_CODES = ["DEFERRED_TO_WINDOW", "VERSION_PINNED", "NOT_A_SECURITY_FIX", "PREVIOUSLY_FAILED", "COMPONENT_NOT_MANAGED"] as const;
// The codes agent/consumer and agent/crypto already throw, so a report names the same failure.
export const DOWNLOAD_CODES = [
  "ARTIFACT_TRUNCATED",
  "ARTIFACT_TOO_LONG",
  "ARTIFACT_SIZE_MISMATCH",
  "ARTIFACT_FORMAT",
  "MANIFEST_INVALID",
  "MANIFEST_ROOT_MISMATCH",
  "CHUNK_MISMATCH",
  "RANGE_IGNORED",
  "ANSWER_TOO_LARGE",
  "ANSWER_MALFORMED",
] as const;
export const CONTENT_CODES = ["FILE_HASH_MISMATCH", "KEY_UNWRAP_FAILED", "KEY_MISMATCH", "CHUNK_AUTHENTICATION"] as const;
export const TRANSITION_CODES = ["INVALID_TRANSITION"] as const;

export type LedgerRecordCode = (typeof LEDGER_RECORD_CODES)[number];
export type RollbackCode = (typeof ROLLBACK_CODES)[number];
export type StaleLedgerCode = (typeof STALE_LEDGER_CODES)[number];
export type DeclineCode = (typeof DECLINE_CODES)[number];
export type DownloadCode = (typeof DOWNLOAD_CODES)[number];
export type ContentCode = (typeof CONTENT_CODES)[number];

/** The ledger's record of the release (or of the device's fit for it) forbids installing it (REQ-10d-ii, APP-II-2). */
export class LedgerRecordRejected extends VerificationError {
  declare readonly code: LedgerRecordCode;
  constructor(code: LedgerRecordCode, message: string, options?: Options) {
    super(code, message, options);
  }
}

/** The release would not move the component forward (REQ-10d-i). */
export class RollbackRefused extends VerificationError {
  declare readonly code: RollbackCode;
  constructor(code: RollbackCode, message: string, options?: Options) {
    super(code, message, options);
  }
}

/**
 * The device's view of the ledger is too old to decide on: a frozen view would hide revocations
 * and newer releases. Not a trust failure of the release; a delivery blocked by the ledger
 * connection, retried after refreshing the view.
 */
export class StaleLedgerView extends OtaError {
  declare readonly code: StaleLedgerCode;
  constructor(code: StaleLedgerCode, message: string, options?: Options) {
    super(code, message, options);
  }
}

/** The release is acceptable but the device's own policy says not now or not this one (CAP-11.1-a-vi). */
export class UpdateDeclined extends OtaError {
  declare readonly code: DeclineCode;
  constructor(code: DeclineCode, message: string, options?: Options) {
    super(code, message, options);
  }
}

/** The stored artifact does not match what the ledger recorded (CAP-11.1-a-v). */
export class DownloadRejected extends VerificationError {
  declare readonly code: DownloadCode;
  constructor(code: DownloadCode, message: string, options?: Options) {
    super(code, message, options);
  }
}

/** The decrypted image or its key fails its check (REQ-10d-ii). */
export class ContentRejected extends VerificationError {
  declare readonly code: ContentCode;
  constructor(code: ContentCode, message: string, options?: Options) {
    super(code, message, options);
  }
}

/** An update event that its phase does not allow: a bug in the caller, never a reason to go on. */
export class UpdateTransitionError extends OtaError {
  declare readonly code: (typeof TRANSITION_CODES)[number];
  constructor(message: string, options?: Options) {
    super("INVALID_TRANSITION", message, options);
  }
}

export const UNKNOWN_ERROR = "UNKNOWN_ERROR";
/**
 * What the device reports for an unexpected error: while fetching the release (blocked) or while
 * installing it (failed); and, at any step, the device out of open files, memory or storage for
 * the moment (DEVICE_RESOURCES: blocked, tried again, never the release's fault).
 */
export const UNEXPECTED_CODES = ["DELIVERY_ERROR", "INSTALL_FAILED", "DEVICE_RESOURCES"] as const;

/** The system errors of a device short of a resource for the moment (agent/consumer: DEVICE_RESOURCES). */
const RESOURCE_ERRNOS: ReadonlySet<string> = new Set(["EMFILE", "ENFILE", "ENOMEM", "ENOSPC", "EAGAIN"]);

/** Whether `err` (or an error it wraps: fetch and ethers keep the system error as `cause`) is the device short of a resource. */
export function isResourceShortage(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (RESOURCE_ERRNOS.has(String((e as { code?: unknown }).code))) return true;
  }
  return false;
}

/** Every code the update path defines, for report schemas and dashboards. */
export const REPORT_CODES = [
  ...LEDGER_RECORD_CODES,
  ...ROLLBACK_CODES,
  ...STALE_LEDGER_CODES,
  ...DECLINE_CODES,
  ...DOWNLOAD_CODES,
  ...CONTENT_CODES,
  ...TRANSITION_CODES,
  ...UNEXPECTED_CODES,
  UNKNOWN_ERROR,
] as const;
export type ReportCode = (typeof REPORT_CODES)[number];

/**
 * The code to report for any failure: an OtaError's own code (also those thrown outside this
 * file, e.g. STORE_UNREACHABLE), UNKNOWN_ERROR for anything else, so a report always has one.
 */
export function reportCodeOf(err: unknown): string {
  return err instanceof OtaError && err.code !== "" ? err.code : UNKNOWN_ERROR;
}
