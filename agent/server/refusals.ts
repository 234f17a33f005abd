import { OtaError } from "../core/errors";

/**
 * Every answer the firmware server refuses with (PROC-4: "otherwise answers with an error code"):
 * a stable code, its HTTP status and what the caller can do. docs/server.md lists the same table.
 */
export const REFUSALS = {
  // the request itself
  BAD_REQUEST: [400, "the request is malformed; the message says which part"],
  BODY_TOO_LARGE: [413, "the body is over this route's limit: send fewer keys per request"],
  UNSUPPORTED_MEDIA_TYPE: [415, "send artifacts as application/octet-stream and keys as application/json"],
  SERVER_BUSY: [503, "too many requests in flight; retry later"],
  AUTH_MISSING: [401, "sign the request (x-ota-device or x-ota-account, x-ota-timestamp, x-ota-nonce, x-ota-signature)"],
  AUTH_MALFORMED: [400, "the authentication headers cannot be parsed"],
  AUTH_SIGNATURE: [401, "the signature is not by the enrolled device key or the named account, or was made for another server's origin"],
  AUTH_STALE: [
    401,
    "the timestamp is outside the window around the server's clock (details.serverTime and the Date header give it): sign again with a corrected clock",
  ],
  AUTH_REPLAY: [401, "this nonce was already used: sign every request afresh"],
  AUTH_QUOTA: [429, "this device or account sent more signed requests within a minute than one identity may: slow down and retry"],
  NOT_AUTHORIZED: [403, "the signing account does not hold the role this action needs on the ledger"],
  // the device
  DEVICE_NOT_ENROLLED: [403, "the device record is not enrolled on the ledger (or its proof is wrong)"],
  DEVICE_SUSPENDED: [403, "the device is suspended on the ledger"],
  DEVICE_REVOKED: [403, "the device record was withdrawn on the ledger; enrol the device again"],
  // the release
  RELEASE_UNKNOWN: [404, "the ledger has no release with this id"],
  RELEASE_NOT_VERIFIED: [422, "the ledger record does not check out (storage or author signature)"],
  ARTIFACT_NOT_AVAILABLE: [404, "this server holds no artifact for the release: submit it first"],
  DELTA_UNKNOWN: [404, "the ledger records no delta of this release from that base (ReleaseDeltas)"],
  DELTA_NOT_AVAILABLE: [404, "this server holds no delta of the release from that base: fetch the whole artifact"],
  BLOCK_UNKNOWN: [404, "this server serves no release containing this block"],
  RELEASE_REVOKED: [410, "the release was revoked on the ledger and is no longer served"],
  RELEASE_VULNERABLE: [403, "the release is flagged vulnerable on the ledger; take a fixed release"],
  PROVIDER_BARRED: [403, "the release's provider is barred on the ledger"],
  HARDWARE_NOT_SUPPORTED: [403, "the release does not support the device's hardware class"],
  NOT_NEWER_THAN_INSTALLED: [403, "the device already runs this version or a newer one"],
  DEPENDENCY_NOT_INSTALLED: [403, "a dependency of the release is not installed on the device"],
  DEPENDENCY_VERSION_OUT_OF_RANGE: [403, "an installed dependency is outside the release's required range"],
  POLICY_REFUSED: [403, "the update policy an administrator attached refuses the device now (details: policy, reason)"],
  KEY_NOT_GRANTED: [403, "no content key was granted to this device for this release"],
  RANGE_NOT_SATISFIABLE: [416, "the range is outside the artifact, or names several ranges"],
  FORMAT_NOT_ACCEPTABLE: [406, "ask for application/vnd.ipld.raw or application/vnd.ipld.car (or ?format=raw|car)"],
  // submissions (CAP-11.3-a), signed by an author of the release's provider
  SUBMISSION_SIZE_MISMATCH: [422, "the artifact's size or plaintext size differs from the ledger's"],
  SUBMISSION_FORMAT: [422, "the bytes are not a well-formed artifact"],
  SUBMISSION_MERKLE_MISMATCH: [422, "the artifact's chunk Merkle root differs from the ledger's"],
  SUBMISSION_CID_MISMATCH: [422, "the artifact's CID differs from the ledger's file link"],
  SUBMISSION_TOO_SLOW: [
    408,
    "the artifact did not arrive within its deadline (a grace period plus its size at a minimum rate; details say both): submit it again over a faster link",
  ],
  // submissions of a release not yet published (issue 17): the x-ota-release claim
  RELEASE_CLAIM_MISMATCH: [422, "the release record in x-ota-release does not hash to the release id in the path"],
  RELEASE_SIGNATURE_INVALID: [422, "the release signature in x-ota-release is not the named signer's over the record"],
  SIGNER_NOT_REGISTERED: [403, "the release's signer is not a registered signing key of its provider on the ledger"],
  SIGNER_COMPROMISED: [
    403,
    "the release's signing key was retired as compromised on the ledger since a time at or before the release's publication: the release is not trusted",
  ],
  PREPARED_QUOTA_EXCEEDED: [
    429,
    "the provider holds as many unpublished (prepared) artifacts on this server as it may (details: count, bytes and the limits): publish them, or wait until they expire",
  ],
  KEYS_MALFORMED: [422, "a wrapped key is not a 94-byte OTA Ledger key wrap"],
  STORE_UNAVAILABLE: [503, "the content store did not answer; retry later"],
  LEDGER_UNAVAILABLE: [503, "the ledger did not answer; retry later"],
} as const satisfies Record<string, readonly [number, string]>;

export type RefusalCode = keyof typeof REFUSALS;

/** A refusal the server answers with: `{ error: { code, message, hint } }` and the code's status. */
export class Refusal extends OtaError {
  readonly status: number;
  constructor(code: RefusalCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, { details });
    this.status = REFUSALS[code][0];
  }
  get hint(): string {
    return REFUSALS[this.code as RefusalCode][1];
  }
}
