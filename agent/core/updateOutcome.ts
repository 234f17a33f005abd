/**
 * What an update's outcome means, for the device that retries and the tracker that lists it:
 * one place for both, so that a device waiting for a key is not listed as failed.
 */

/** Failures of the connection to the server or the ledger: the device retries at once, with backoff. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(["DOWNLOAD_STALLED", "DOWNLOAD_INTERRUPTED", "SERVER_UNREACHABLE", "LEDGER_UNAVAILABLE", "STORE_UNAVAILABLE"]);

/** Refusals that time or another party can lift: the release stays needed and is tried again later. */
// A policy refusal is most often "not yet" (a wave not open, outside a window, not approved yet).
export const RETRY_LATER_CODES: ReadonlySet<string> = new Set([...TRANSIENT_CODES, "KEY_NOT_GRANTED", "ARTIFACT_NOT_AVAILABLE", "DEFERRED_TO_WINDOW", "LEDGER_STALE", "POLICY_REFUSED"]);

/**
 * Whether a reported result is a failed update (CAP-11.2-b-ii): the image failed or was rolled
 * back, or the device refused the release for a reason that will not pass by itself.
 */
export function isFailedResult(outcome: string | null | undefined, code: string | null | undefined): boolean {
  if (outcome === "rolled-back" || outcome === "failed") return true;
  return outcome === "rejected" && !RETRY_LATER_CODES.has(code ?? "");
}
