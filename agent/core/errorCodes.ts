/**
 * Every error code the firmware server and the status tracker answer with over HTTP: its status
 * and what the caller can do (the hint). One table for both servers, so that the same failure has
 * the same status everywhere: agent/server/refusals.ts takes the firmware server's codes from it,
 * the tracker's error handler and its OpenAPI document (agent/tracker/http/) the tracker's.
 * docs/server.md lists the firmware server's part.
 *
 * Two rules of thumb decide a status: 401 is for credentials that are missing or do not check out
 * (a signature, a seal, a token); 409 Conflict is for a message that was already taken (a replayed
 * nonce, report counter or module status) or a state that contradicts the request.
 *
 * Fastify's own refusals of a request keep their HTTP status with the code BAD_REQUEST (the
 * tracker) or their own code (the firmware server): a body over the route's limit (413), a path
 * parameter over 100 characters (414), a content type without a parser (415).
 */
export const ERROR_CODES = {
  // ------------------------------------------------------------------ the request itself
  BAD_REQUEST: [
    400,
    "the request is malformed (body not JSON, a field or parameter out of range or not of its form, a path that is not valid percent-encoding); the message says which part and how to fix it",
  ],
  BODY_TOO_LARGE: [413, "the body is over this route's limit: send fewer keys per request"],
  UNSUPPORTED_MEDIA_TYPE: [415, "send artifacts as application/octet-stream and keys as application/json"],
  NOT_FOUND: [404, "no such route or dashboard file: see /openapi.json for the routes"],
  INTERNAL: [500, "an unexpected failure in the server (e.g. the ledger node failed a call that is not retried as LEDGER_UNAVAILABLE); the server logs it"],
  SERVER_BUSY: [503, "too many requests in flight, or too many signed requests' nonces in the replay window; retry later"],
  // ------------------------------------------------------------------ signed requests (agent/crypto/requestAuth.ts)
  AUTH_MISSING: [
    401,
    "sign the request: x-ota-device (a device) or x-ota-account (an account), x-ota-timestamp, x-ota-nonce and x-ota-signature (agent/crypto/requestSignature.ts)",
  ],
  AUTH_MALFORMED: [
    400,
    "a signed-request header is not of its form: x-ota-account an address, x-ota-timestamp milliseconds, x-ota-nonce 32 lower-case hex digits, x-ota-signature a 65-byte hex signature, x-ota-device a device credential",
  ],
  AUTH_SIGNATURE: [401, "the signature is not by the enrolled device key or the named account, over this request, for this server's origin"],
  AUTH_STALE: [
    401,
    "the timestamp is outside the window around the server's clock (details.serverTime and the Date header give it): sign again with a corrected clock",
  ],
  AUTH_REPLAY: [409, "this signed request (identity and nonce) was already received: sign every request afresh, with a fresh nonce"],
  AUTH_QUOTA: [
    429,
    "this device or account sent more signed requests within a minute than one identity may (agent/crypto/requestAuth.ts REQUEST_AUTH_LIMITS): slow down and retry",
  ],
  NOT_AUTHORIZED: [403, "the signing account does not hold the role this action needs on the ledger"],
  UNAUTHORIZED: [
    401,
    "the bearer token is missing or wrong: send `Authorization: Bearer <tracker.apiToken>` (required only when the tracker is configured with tracker.apiToken)",
  ],
  NOT_ADMINISTRATOR: [403, "the signing account does not hold the registry's ADMINISTRATOR_ROLE for this tracker"],
  // ------------------------------------------------------------------ the device
  DEVICE_NOT_ENROLLED: [403, "the device record is not enrolled on the ledger (or its proof is wrong)"],
  DEVICE_SUSPENDED: [403, "the device is suspended on the ledger"],
  DEVICE_REVOKED: [403, "the device record was withdrawn on the ledger; enrol the device again"],
  DEVICE_UNKNOWN: [404, "this tracker module's fleet database has no device with this id"],
  // ------------------------------------------------------------------ the release
  RELEASE_UNKNOWN: [
    404,
    "the ledger has no release with this id (as the server or the tracker module mirrors it, or as the registry answers for an update request)",
  ],
  RELEASE_NOT_VERIFIED: [
    422,
    "the ledger record does not check out (storage or author signature; agent/chain/verifyLedgerRelease.ts): the release is not trusted",
  ],
  RELEASE_NOT_ACTIVE: [400, "the release is revoked or flagged vulnerable on the ledger; only active releases can be requested"],
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
  // ------------------------------------------------------------------ submissions (CAP-11.3-a), signed by an author of the release's provider
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
  // ------------------------------------------------------------------ sealed messages (agent/crypto/sealedMessage.ts, ecies.ts)
  MESSAGE_MALFORMED: [
    400,
    "the body is not a sealed message envelope {v: 1, kind, from, to, sealed}, or what it seals is not JSON or disagrees with the envelope; the message names the field",
  ],
  MESSAGE_NOT_FOR_ME: [400, "the envelope is addressed (`to`) to another tracker module: seal the message to this module's id and public key"],
  MESSAGE_FORMAT: [401, "the sealed bytes are not an ECIES value (0x01, an ephemeral secp256k1 point, nonce, ciphertext, tag) or are too short"],
  MESSAGE_AUTHENTICATION: [401, "the sealed value does not open with this module's key for this envelope (kind, from, to): sealed to another key, or altered"],
  MESSAGE_SIGNATURE: [401, "the signature inside the sealed message is malformed and names no signer"],
  MESSAGE_KIND: [401, 'the sealed message from a module is not a "downstream-status"'],
  MESSAGE_STALE: [401, "the message's issuedAt is outside this module's freshness window: seal a fresh message with a correct clock"],
  MESSAGE_REPLAYED: [409, "the module's status counter is not above the last one taken from that module: a replay or an old message"],
  // ------------------------------------------------------------------ status reports (PROC-5)
  REPORT_KIND: [401, 'the sealed message is not a status report (kind "status-report")'],
  REPORT_UNKNOWN_DEVICE: [
    401,
    "the sending device is not enrolled in this module's fleet (as mirrored from the ledger), or, for a device of a Merkle batch, its proof does not lead to the root of a batch on the ledger",
  ],
  REPORT_DEVICE_NOT_ACTIVE: [403, "the device is suspended or withdrawn on the ledger; its reports are not taken"],
  REPORT_SIGNATURE: [401, "the report is not signed by the device's enrolled key"],
  REPORT_SESSION_UNKNOWN: [
    401,
    "the report names a report session this module does not hold for the device (never opened, replaced by a newer one, expired, made under the module's or the device's previous key, or this module keeps none): send the report sealed in full, which offers a new session (ADR 0013)",
  ],
  REPORT_SESSION_AUTHENTICATION: [
    401,
    "the session report does not open under its session's key for this envelope (kind, from, to, session): sealed under another key, or altered",
  ],
  REPORT_CREDENTIAL: [
    401,
    "the batch credential in the report is another device's record: a device of a Merkle batch sends its own record, batch id and proof",
  ],
  REPORT_MALFORMED: [
    400,
    "the report does not name its device (the envelope's `from`), a counter above 0, the installed components and lastResult (null or {outcome, code}); the message names the field",
  ],
  REPORT_REPLAYED: [
    409,
    "the report's counter is not above the last one taken from this device: a replay, or a report overtaken by a newer one; send a new report with a higher counter",
  ],
  // ------------------------------------------------------------------ modules below (DEP-8.2.3)
  MODULE_NOT_REGISTERED: [401, "the sending module is not a registered, unretired tracker module on the ledger"],
  MODULE_NOT_CHILD: [403, "the sending module is registered, but its parent on the ledger is not this module"],
  MODULE_SIGNATURE: [401, "the message is not signed by the sending module's registered signer"],
  // ------------------------------------------------------------------ update requests (PROC-2)
  BUNDLES_NOT_DEPLOYED: [400, "this tracker follows no ReleaseBundles contract (docs/adr/0019): request a release (releaseId)"],
  BUNDLE_UNKNOWN: [
    400,
    "no release bundle with this id on ReleaseBundles as this module mirrors it (a bundle created moments ago: retry once the module has read its block)",
  ],
  IMAGE_LOCATION_MISMATCH: [400, "imageLocation is not the file link the ledger records for the release; omit it or give the recorded link"],
  NO_DEVICES: [400, "the request selects no device: name devices or give a filter that matches some"],
  REQUEST_UNKNOWN: [404, "this tracker took no update request with this id (GET /v1/update-requests lists them)"],
  // ------------------------------------------------------------------ device tags and groups (issue 19, item 11)
  TAG_INVALID: [
    400,
    "a tag key is not 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), or a value is not 1 to 128 letters, digits or . _ : / @ + -; nothing was changed",
  ],
  TAG_KEY_RESERVED: [400, "network, region and hardware are read from the device's enrolment on the ledger: they cannot be tags"],
  TAG_LIMIT: [400, "a device holds at most 32 tags: remove some in the same or an earlier request; nothing was changed"],
  QUERY_INVALID: [
    400,
    "a tag query is terms joined by commas, each k=v, k!=v, k (has the tag) or !k (has it not), with network=, region= and hardware= read from the enrolment; at most 32 terms and 1,024 characters; the message names the term",
  ],
  GROUP_UNKNOWN: [404, "this tracker has no group of this name (GET /v1/groups lists them)"],
  GROUP_LIMIT: [400, "this tracker keeps at most 1,000 groups: remove one first"],
  // ------------------------------------------------------------------ status anchors, rollout cohorts, policy evidence (issues 6, 18)
  ANCHOR_UNKNOWN: [404, "this tracker made no status anchor with this index (GET /v1/anchors lists the ones it made)"],
  ANCHOR_RECORDS_PRUNED: [
    404,
    "the tracker no longer keeps the records of this anchor (it keeps the newest ones, tracker option anchorRecordsKept): ask about a newer anchor",
  ],
  DEVICE_NOT_IN_ANCHOR: [404, "the device has no record in this anchor: it had not reported when the anchor was made, or is not of this tracker's fleet"],
  ROLLOUT_ROOT_MISMATCH: [
    409,
    "a wave's cohort root is not the root the release's StagedRollout holds on the ledger for that wave (the message names the wave): send the waves exactly as the rollout was created, in its order",
  ],
  POLICY_NOT_ATTACHED: [
    409,
    "the policy the evidence is for is neither the release's policy nor one of its members: check the address (ota-ledger policy show --release <id>)",
  ],
  EVIDENCE_INVALID: [400, "a device's evidence parts together exceed 4,096 bytes, or are not hex: send smaller evidence"],
  POLICY_READS_WHOLE_EVIDENCE: [
    409,
    "the policy reads its evidence whole (it does not declare the evidence envelope: built before it, or not on the policy kit): send its evidence without a policy",
  ],
  EVIDENCE_CONFLICT: [
    409,
    "devices hold evidence for every policy of the release, which a part for one policy would replace: send each policy's evidence with its policy named, or this one without",
  ],
  // ------------------------------------------------------------------ the ledger and the content store
  STORE_UNAVAILABLE: [503, "the content store did not answer; retry later"],
  LEDGER_UNAVAILABLE: [503, "the ledger did not answer; retry later"],
  NOT_FROM_REGISTRY: [500, "the ledger node answered with a release event that the registry did not emit: the node is not to be trusted"],
  NOT_RELEASE_EVENT: [500, "the ledger node answered with a log that is not a ReleasePublished event: the node is not to be trusted"],
  RELEASE_EVENT_MISMATCH: [500, "the ledger node's release event does not hash to the release id it claims: the node is not to be trusted"],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** What checking a signed request refuses (agent/crypto/requestAuth.ts), on both servers alike. */
export const REQUEST_AUTH_CODES = [
  "AUTH_MISSING",
  "AUTH_MALFORMED",
  "AUTH_SIGNATURE",
  "AUTH_STALE",
  "AUTH_REPLAY",
  "AUTH_QUOTA",
] as const satisfies readonly ErrorCode[];

/** Whether `code` is in the table. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** The HTTP status of a code in the table; undefined for a code outside it. */
export function statusOf(code: string): number | undefined {
  return isErrorCode(code) ? ERROR_CODES[code][0] : undefined;
}

/** What the caller can do about a code in the table. */
export function hintOf(code: string): string | undefined {
  return isErrorCode(code) ? ERROR_CODES[code][1] : undefined;
}

/** The part of the table a server answers with, in the table's form: `{code: [status, hint]}`. */
export function errorTable<const C extends ErrorCode>(codes: readonly C[]): { readonly [K in C]: (typeof ERROR_CODES)[K] } {
  return Object.fromEntries(codes.map((c) => [c, ERROR_CODES[c]])) as { readonly [K in C]: (typeof ERROR_CODES)[K] };
}
