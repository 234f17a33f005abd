import { DOWNLOAD_CODES } from "./updateErrors";

/**
 * What an update's result means (issue 15), defined once for the device that retries, the tracker
 * that lists and plans, the failure reporter that feeds the staged rollouts, the API and the
 * dashboard. Besides an install, a result is one of three kinds:
 *
 * - failed:  the release was delivered intact (every chunk verified against the ledger record)
 *            and then failed on this device: the content did not decrypt with the release's key
 *            or hash to the ledger's file hash, the install itself failed, or the trial boot or
 *            health check failed. Only these count toward a rollout's failure total and keep the
 *            release from being offered to the device again.
 * - blocked: delivery was blocked by something outside the release: the firmware server, a
 *            mirror or gateway, a proxy, the network, the ledger connection, the device's clock,
 *            a missing key grant. Retried with backoff, from the next source when there is one;
 *            never a failure, never a reason to stop offering the release.
 * - refused: the device correctly refused the release (revoked, vulnerable, barred, another
 *            hardware class, an unmet dependency, a policy, not newer, declined by its own
 *            policy). Not a failure; shown with its reason. Some refusals pass with time
 *            (RETRY_LATER_REFUSALS) and the device tries again.
 *
 * Why a server cannot forge a failure: the ciphertext is checked chunk by chunk against the
 * ledger's Merkle root before anything is decrypted, and the content key is checked on the first
 * chunk (a wrong key from the server is KEY_MISMATCH, a delivery fault), so what fails after that
 * is the author's release itself.
 */

export const RESULT_KINDS = ["installed", "failed", "blocked", "refused"] as const;
export type ResultKind = (typeof RESULT_KINDS)[number];

/** The outcomes a device reports in `lastResult.outcome`. */
export const OUTCOMES = ["confirmed", "rolled-back", "failed", "blocked", "rejected", "declined"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Codes of a release that failed after it was delivered intact. A device reports them with
 * outcome `failed`; agents before issue 15 sent them as `rejected`, and they still count.
 */
export const RELEASE_FAILURE_CODES: ReadonlySet<string> = new Set([
  "FILE_HASH_MISMATCH", // the plaintext decrypted with the release's key is not the ledger's file hash
  "CHUNK_AUTHENTICATION", // a chunk past the first does not authenticate under the release's key
  "ARTIFACT_SIZE_MISMATCH", // the verified header declares another size than the ledger's
  "ARTIFACT_FORMAT", // the verified header is not a format this device reads
  "INSTALL_FAILED", // writing the inactive slot failed on the device
]);

/**
 * Codes of a delivery that something outside the release blocked. A device reports them with
 * outcome `blocked`; agents before issue 15 sent them as `rejected`, which the tracker still reads
 * as blocked. A code the tracker does not know on a `blocked` result is blocked all the same.
 */
export const DELIVERY_FAULT_CODES: ReadonlySet<string> = new Set([
  // the connection to the server, a mirror or a gateway
  "DOWNLOAD_STALLED",
  "DOWNLOAD_INTERRUPTED",
  "SERVER_UNREACHABLE",
  "SERVER_BUSY",
  "INTERNAL",
  "HTTP_ERROR", // a proxy's or gateway's error without the server's error body (also HTTP_<status>: isDeliveryFault)
  "STORE_UNAVAILABLE",
  "ARTIFACT_NOT_AVAILABLE",
  "SOURCE_FAILED",
  "DELIVERY_ERROR", // an unexpected error while downloading (a bug or the device's disk): still not the release's fault
  "DEVICE_RESOURCES", // the device out of open files, memory or storage for the moment (EMFILE, ENOSPC...), at any step
  // what a source served that the ledger record refutes (the verified header's own faults are the release's)
  ...DOWNLOAD_CODES.filter((c) => !RELEASE_FAILURE_CODES.has(c)),
  // the content key: not granted yet, not for this device, or not the release's key
  "KEY_NOT_GRANTED",
  "KEY_UNWRAP_FAILED",
  "KEY_MISMATCH",
  // the device's clock and its authentication at the server
  "AUTH_STALE",
  "AUTH_REPLAY",
  // the ledger connection
  "LEDGER_UNAVAILABLE",
  "LEDGER_NO_QUORUM", // the device's RPC endpoints do not agree (agent/chain/endpointQuorum)
  "LEDGER_STALE",
  "LEDGER_BEHIND", // a frozen view: older than a block the upstream tracker signed it had read
  // the endpoint's answers disagree with the ledger's proven state, or proofs are required and missing (docs/adr/0010)
  "LEDGER_PROOF_MISMATCH",
  "LEDGER_PROOF_INVALID",
  "LEDGER_PROOF_UNAVAILABLE",
  // the device's own standing on the ledger: no server gives it a key until an administrator acts
  "DEVICE_NOT_ENROLLED",
  "DEVICE_SUSPENDED",
  "DEVICE_REVOKED",
]);

/** Refusals that time or another party lifts: the release stays needed and is tried again later. */
// A policy refusal is most often "not yet" (a wave not open, outside a window, not approved yet).
// A missing or out-of-range dependency is lifted by installing the dependency first.
export const RETRY_LATER_REFUSALS: ReadonlySet<string> = new Set([
  "DEFERRED_TO_WINDOW",
  "POLICY_REFUSED",
  "DEPENDENCY_NOT_INSTALLED",
  "DEPENDENCY_OUT_OF_RANGE",
  // A device in safe mode waits for a person (CAP-11.1-b); once out of it, the release is taken as any other.
  "SAFE_MODE",
]);

/** The kind of a reported result; null when there is none or the outcome is not one a device sends. */
export function resultKind(outcome: string | null | undefined, code: string | null | undefined): ResultKind | null {
  switch (outcome) {
    case "confirmed":
      return "installed";
    case "failed":
    case "rolled-back":
      return "failed";
    case "blocked":
      return "blocked";
    case "declined":
      return "refused";
    case "rejected":
      if (RELEASE_FAILURE_CODES.has(code ?? "")) return "failed";
      if (isDeliveryFault(code ?? "")) return "blocked";
      return "refused";
    default:
      return null;
  }
}

/** Whether a reported result is a failed update (CAP-11.2-b-ii): only a release that failed after an intact delivery. */
export function isFailedResult(outcome: string | null | undefined, code: string | null | undefined): boolean {
  return resultKind(outcome, code) === "failed";
}

/** Whether the device tries the release again later: a blocked delivery, or a refusal that passes. */
export function isRetriedLater(outcome: string | null | undefined, code: string | null | undefined): boolean {
  const kind = resultKind(outcome, code);
  return kind === "blocked" || (kind === "refused" && RETRY_LATER_REFUSALS.has(code ?? ""));
}

/**
 * Whether an error code met while fetching a release is a delivery fault: retried, from the next
 * source. HTTP_<status> is an answer without the firmware server's error body: a proxy's 502, a
 * gateway's 504, a load balancer's 429, never the server's word on the release.
 */
export function isDeliveryFault(code: string): boolean {
  return DELIVERY_FAULT_CODES.has(code) || HTTP_STATUS_CODE.test(code);
}
const HTTP_STATUS_CODE = /^HTTP_[0-9]{3}$/;

/**
 * The SQL expression of resultKind over two columns, so the tracker's filters and counts say
 * exactly what resultKind says (a test checks them against each other for every code).
 */
export function resultKindSql(outcome: string, code: string): string {
  const list = (codes: ReadonlySet<string>) => [...codes].map((c) => `'${c}'`).join(", ");
  return `(CASE coalesce(${outcome}, '')
    WHEN 'confirmed' THEN 'installed'
    WHEN 'failed' THEN 'failed'
    WHEN 'rolled-back' THEN 'failed'
    WHEN 'blocked' THEN 'blocked'
    WHEN 'declined' THEN 'refused'
    WHEN 'rejected' THEN (CASE WHEN coalesce(${code}, '') IN (${list(RELEASE_FAILURE_CODES)}) THEN 'failed'
                               WHEN coalesce(${code}, '') IN (${list(DELIVERY_FAULT_CODES)}) OR coalesce(${code}, '') GLOB 'HTTP_[0-9][0-9][0-9]' THEN 'blocked'
                               ELSE 'refused' END)
    ELSE NULL END)`;
}
