/**
 * What an update's outcome means, for the device that retries and the tracker that lists it:
 * one place for both, so that a device waiting for a key is not listed as failed.
 */

/** Failures of the connection to the server or the ledger: the device retries at once, with backoff. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "DOWNLOAD_STALLED",
  "DOWNLOAD_INTERRUPTED",
  "SERVER_UNREACHABLE",
  "LEDGER_UNAVAILABLE",
  "STORE_UNAVAILABLE",
]);

/** Refusals that time or another party can lift: the release stays needed and is tried again later. */
// A policy refusal is most often "not yet" (a wave not open, outside a window, not approved yet).
// A missing or out-of-range dependency is lifted by installing the dependency first.
export const RETRY_LATER_CODES: ReadonlySet<string> = new Set([
  ...TRANSIENT_CODES,
  "KEY_NOT_GRANTED",
  "ARTIFACT_NOT_AVAILABLE",
  "DEFERRED_TO_WINDOW",
  "LEDGER_STALE",
  "POLICY_REFUSED",
  "DEPENDENCY_NOT_INSTALLED",
  "DEPENDENCY_OUT_OF_RANGE",
  // A device in safe mode waits for a person (CAP-11.1-b); once out of it, the release is taken as any other.
  "SAFE_MODE",
]);

/**
 * Refusals of a release that was never meant for this device: another hardware class, or not
 * newer than what it runs (a device following the ledger sees every release of its components).
 * Refusing them is right, and they are not failed updates: they never count against a rollout.
 */
export const NOT_APPLICABLE_CODES: ReadonlySet<string> = new Set(["HARDWARE_NOT_SUPPORTED", "NOT_NEWER_THAN_INSTALLED", "BELOW_ANTI_ROLLBACK_FLOOR"]);

/**
 * Whether a reported result is a failed update (CAP-11.2-b-ii): the image failed or was rolled
 * back, or the device refused the release for a reason that will not pass by itself.
 */
export function isFailedResult(outcome: string | null | undefined, code: string | null | undefined): boolean {
  if (outcome === "rolled-back" || outcome === "failed") return true;
  return outcome === "rejected" && !RETRY_LATER_CODES.has(code ?? "") && !NOT_APPLICABLE_CODES.has(code ?? "");
}
