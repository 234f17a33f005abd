/**
 * The size limits of what the agents send each other, in one place: the tracker refuses a report
 * over them before opening it, and a device reads no more than them from a peer (a firmware
 * server, a proxy, a tracker module), which could otherwise grow the device's memory without
 * bound. Each limit is sized from the largest legitimate message, with the reason beside it.
 */

/**
 * An error answer: `{"error": {"code", "message", "hint", "details"}}`. The servers' longest is
 * under 1 KiB (a message naming two 32-byte ids and a hint); 4 KiB leaves room for a proxy's page.
 */
export const ERROR_ANSWER_MAX_BYTES = 4 * 1024;

/** Most update notices a device takes from one tracker answer; each costs it a key exchange and a ledger check. The rest wait for its next report. */
export const NOTICES_PER_ANSWER_MAX = 16;

/**
 * One sealed update notice, as the envelope's JSON. The largest legitimate one carries rollout
 * evidence with a 32-sibling cohort proof (abi.encode(uint256, bytes32[32]): 1,120 bytes, 2,242
 * hex digits), signed and doubled by the hex of the seal: 5,928 bytes (measured).
 */
export const SEALED_NOTICE_MAX_BYTES = 8 * 1024;

/** A tracker's answer to a report: `{accepted, counter, notices}` with at most {@link NOTICES_PER_ANSWER_MAX} notices (16 of the largest: 94,917 bytes). */
export const REPORT_ANSWER_MAX_BYTES = NOTICES_PER_ANSWER_MAX * SEALED_NOTICE_MAX_BYTES + 4 * 1024;

/** Most entries of each list in a status report (installed components, needed and declined releases). A device sends its newest needs and declines up to this. */
export const REPORT_LIST_MAX = 64;

/** Most siblings in a batch-enrolled device's Merkle proof (2^32 devices a batch). */
export const REPORT_PROOF_MAX = 32;

/**
 * A sealed status report as the tracker takes it (`POST /v1/reports`), which anyone may post. The
 * largest legitimate report holds {@link REPORT_LIST_MAX} installed components (~190 bytes each),
 * as many needed releases (~190) and declined ones (~110), a batch credential with a
 * {@link REPORT_PROOF_MAX}-sibling proof (~2.6 KB) and its last result: 36,813 bytes of JSON,
 * 74,652 once signed, sealed and hex-encoded (measured). 96 KiB is that with a margin, and 1/170
 * of the 16 MiB the API takes elsewhere; test/agent/tracker/trackerHardening.test.ts checks that
 * the largest report fits and is taken.
 */
export const REPORT_BODY_MAX_BYTES = 96 * 1024;

/** Every other body the tracker takes (update requests, rollout cohorts, a module's downstream status with up to 1,000 forwarded reports). */
export const BODY_MAX_BYTES = 16 * 1024 * 1024;
