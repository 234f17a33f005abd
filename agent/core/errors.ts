/**
 * One error base class for the whole agent: a short message, a stable machine-readable code,
 * optional details and a cause. Each failure class gets a subclass; callers branch on the
 * class or the code, never on the message text.
 */
export class OtaError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Input from a person or a file that cannot be used as given; the message says how to fix it. */
export class InputError extends OtaError {}

/** A version or version range that is not in the accepted form. */
export class VersionFormatError extends InputError {}

/** A release record that breaks a rule the registry would also enforce. */
export class ReleaseRecordError extends InputError {}

/** Something a party must not trust: bytes, a record or a key that failed a check. */
export class VerificationError extends OtaError {}

/** An artifact whose layout is not the one this format defines (bad header, wrong sizes). */
export class ArtifactFormatError extends VerificationError {}

/** A chunk or wrapped key whose authentication tag does not verify: altered, moved or not ours. */
export class AuthenticationError extends VerificationError {}
