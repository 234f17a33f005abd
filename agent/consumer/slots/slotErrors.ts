import { InputError, OtaError, VerificationError } from "../../core/errors";

/**
 * The failure classes of the A/B slots. Callers branch on the class or the code:
 *   SlotImageMismatchError  SLOT_HASH_MISMATCH, SLOT_SIZE_MISMATCH  (bytes are not the recorded image)
 *   RollbackRefusedError    VERSION_BELOW_FLOOR, VERSION_NOT_NEWER  (REQ-10d-i)
 *   SlotStateError          SLOT_EMPTY, NO_TRIAL, TRIAL_PENDING, RELEASE_FAILED_BEFORE, SAFE_MODE
 *   BootStateCorruptError   BOOT_STATE_CORRUPT                      (the caller enters safe mode)
 *   SlotInputError          SLOT_COMPONENT_INVALID, SLOT_IMAGE_INVALID
 * None is retryable as is: each needs a different image, a different step or a person.
 */

export class SlotImageMismatchError extends VerificationError {}

export class RollbackRefusedError extends VerificationError {}

/** The operation does not fit the component's current boot state. */
export class SlotStateError extends OtaError {}

export class BootStateCorruptError extends OtaError {
  constructor(reason: string) {
    super("BOOT_STATE_CORRUPT", `the boot state is corrupt (${reason})`, { details: { reason } });
  }
}

export class SlotInputError extends InputError {}

/** Codes recorded in failedReleases and lastResult when a trial ends without confirmation. */
export const TRIAL_FAILURE = {
  healthFailed: "HEALTH_CHECK_FAILED",
  healthError: "HEALTH_CHECK_ERROR",
  attemptsExhausted: "TRIAL_ATTEMPTS_EXHAUSTED",
  imageCorrupt: "SLOT_IMAGE_CORRUPT",
} as const;
