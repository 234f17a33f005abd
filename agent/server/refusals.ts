import { OtaError } from "../core/errors";
import { ERROR_CODES, REQUEST_AUTH_CODES, errorTable } from "../core/errorCodes";

/**
 * Every answer the firmware server refuses with (PROC-4: "otherwise answers with an error code"):
 * its part of the one table of error codes both servers share (agent/core/errorCodes.ts), in the
 * form `{code: [status, hint]}`. docs/server.md lists the same table.
 */
export const REFUSALS = errorTable([
  // the request itself
  "BAD_REQUEST",
  "BODY_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "SERVER_BUSY",
  ...REQUEST_AUTH_CODES,
  "NOT_AUTHORIZED",
  // the device
  "DEVICE_NOT_ENROLLED",
  "DEVICE_SUSPENDED",
  "DEVICE_REVOKED",
  // the release
  "RELEASE_UNKNOWN",
  "RELEASE_NOT_VERIFIED",
  "ARTIFACT_NOT_AVAILABLE",
  "DELTA_UNKNOWN",
  "DELTA_NOT_AVAILABLE",
  "BLOCK_UNKNOWN",
  "RELEASE_REVOKED",
  "RELEASE_VULNERABLE",
  "PROVIDER_BARRED",
  "HARDWARE_NOT_SUPPORTED",
  "NOT_NEWER_THAN_INSTALLED",
  "DEPENDENCY_NOT_INSTALLED",
  "DEPENDENCY_VERSION_OUT_OF_RANGE",
  "POLICY_REFUSED",
  "KEY_NOT_GRANTED",
  "RANGE_NOT_SATISFIABLE",
  "FORMAT_NOT_ACCEPTABLE",
  // submissions (CAP-11.3-a), signed by an author of the release's provider
  "SUBMISSION_SIZE_MISMATCH",
  "SUBMISSION_FORMAT",
  "SUBMISSION_MERKLE_MISMATCH",
  "SUBMISSION_CID_MISMATCH",
  "SUBMISSION_TOO_SLOW",
  // submissions of a release not yet published (issue 17): the x-ota-release claim
  "RELEASE_CLAIM_MISMATCH",
  "RELEASE_SIGNATURE_INVALID",
  "SIGNER_NOT_REGISTERED",
  "SIGNER_COMPROMISED",
  "PREPARED_QUOTA_EXCEEDED",
  "KEYS_MALFORMED",
  "STORE_UNAVAILABLE",
  "LEDGER_UNAVAILABLE",
]);

export type RefusalCode = keyof typeof REFUSALS;

/** A refusal the server answers with: `{ error: { code, message, hint } }` and the code's status. */
export class Refusal extends OtaError {
  readonly status: number;
  constructor(code: RefusalCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, { details });
    this.status = ERROR_CODES[code][0];
  }
  get hint(): string {
    return ERROR_CODES[this.code as RefusalCode][1];
  }
}
