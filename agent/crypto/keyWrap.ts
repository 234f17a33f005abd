import { AuthenticationError, InputError } from "../core/errors";
import { ECIES_OVERHEAD, eciesOpen, eciesSeal } from "./ecies";

/**
 * Per-recipient wrapping of a release's content key (ECIES on secp256k1): the author (or its tool)
 * wraps the key for each entitled device's public key, and only that device's private key
 * unwraps it. The firmware server stores and serves wrapped keys but never sees a key in the clear.
 *
 *   wrapped = 0x01 | ephemeral public key (33, compressed) | nonce (12) | AES-256-GCM(content key) (32) | tag (16)
 *   wrap key = HKDF-SHA256(ECDH(ephemeral, recipient), salt = ephemeral pub | recipient pub,
 *                          info = "OTA Ledger key wrap v1")
 *   aad      = `context` (the release id and the device id), so a wrapped key is good for one
 *              release on one device only.
 */

export const WRAPPED_KEY_SIZE = ECIES_OVERHEAD + 32;
const INFO = "OTA Ledger key wrap v1";

/** Wraps `contentKey` for the holder of `recipientPublicKey`, bound to `context`. */
export function wrapContentKey(contentKey: Uint8Array, recipientPublicKey: Uint8Array, context: Uint8Array): Buffer {
  if (contentKey.length !== 32) throw new InputError("CONTENT_KEY", `a content key is 32 bytes, got ${contentKey.length}`);
  return eciesSeal(contentKey, recipientPublicKey, context, INFO);
}

/** Unwraps a content key with the recipient's 32-byte private key; fails unless it was wrapped for this key and context. */
export function unwrapContentKey(wrapped: Uint8Array, recipientPrivateKey: Uint8Array, context: Uint8Array): Buffer {
  if (wrapped.length !== WRAPPED_KEY_SIZE || wrapped[0] !== 0x01) {
    throw new AuthenticationError("WRAPPED_KEY_FORMAT", `a wrapped key is ${WRAPPED_KEY_SIZE} bytes starting with 0x01`);
  }
  try {
    return eciesOpen(wrapped, recipientPrivateKey, context, INFO, "WRAPPED_KEY");
  } catch (err) {
    if (err instanceof AuthenticationError && err.code === "WRAPPED_KEY_AUTHENTICATION") {
      throw new AuthenticationError("WRAPPED_KEY_AUTHENTICATION", "this wrapped key is not for this device key, release or device id", { cause: err });
    }
    throw err;
  }
}

/** The context a release's content key is wrapped under for one device: release id || device id. */
export function keyWrapContext(releaseId: string, deviceId: string): Buffer {
  const r = Buffer.from(releaseId.replace(/^0x/, ""), "hex");
  const d = Buffer.from(deviceId.replace(/^0x/, ""), "hex");
  if (r.length !== 32 || d.length !== 32) throw new InputError("KEY_WRAP_CONTEXT", "release and device ids are 32 bytes each");
  return Buffer.concat([r, d]);
}
