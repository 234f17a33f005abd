import { createCipheriv, createDecipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";
import { AuthenticationError, InputError } from "../core/errors";

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

const VERSION = 0x01;
export const WRAPPED_KEY_SIZE = 1 + 33 + 12 + 32 + 16;
const INFO = Buffer.from("OTA Ledger key wrap v1", "ascii");

function compressed(publicKey: Uint8Array): Buffer {
  const key = Buffer.from(publicKey);
  if (key.length !== 33 || (key[0] !== 2 && key[0] !== 3)) {
    throw new InputError("PUBLIC_KEY", "a recipient key must be a 33-byte compressed secp256k1 public key");
  }
  return key;
}

function wrapKey(shared: Buffer, ephemeralPub: Buffer, recipientPub: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeralPub, recipientPub]), INFO, 32));
}

/** Wraps `contentKey` for the holder of `recipientPublicKey`, bound to `context`. */
export function wrapContentKey(contentKey: Uint8Array, recipientPublicKey: Uint8Array, context: Uint8Array): Buffer {
  if (contentKey.length !== 32) throw new InputError("CONTENT_KEY", `a content key is 32 bytes, got ${contentKey.length}`);
  const recipient = compressed(recipientPublicKey);
  const ecdh = createECDH("secp256k1");
  ecdh.generateKeys();
  const ephemeralPub = ecdh.getPublicKey(undefined, "compressed");
  let shared: Buffer;
  try {
    shared = ecdh.computeSecret(recipient);
  } catch (cause) {
    throw new InputError("PUBLIC_KEY", "the recipient key is not a point on secp256k1", { cause });
  }
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", wrapKey(shared, ephemeralPub, recipient), iv);
  cipher.setAAD(Buffer.from(context));
  const sealed = Buffer.concat([cipher.update(contentKey), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), ephemeralPub, iv, sealed, cipher.getAuthTag()]);
}

/** Unwraps a content key with the recipient's 32-byte private key; fails unless it was wrapped for this key and context. */
export function unwrapContentKey(wrapped: Uint8Array, recipientPrivateKey: Uint8Array, context: Uint8Array): Buffer {
  const w = Buffer.from(wrapped);
  if (w.length !== WRAPPED_KEY_SIZE || w[0] !== VERSION) {
    throw new AuthenticationError("WRAPPED_KEY_FORMAT", `a wrapped key is ${WRAPPED_KEY_SIZE} bytes starting with 0x01`);
  }
  const ecdh = createECDH("secp256k1");
  ecdh.setPrivateKey(Buffer.from(recipientPrivateKey));
  const recipientPub = ecdh.getPublicKey(undefined, "compressed");
  const ephemeralPub = w.subarray(1, 34);
  let shared: Buffer;
  try {
    shared = ecdh.computeSecret(ephemeralPub);
  } catch (cause) {
    throw new AuthenticationError("WRAPPED_KEY_FORMAT", "the wrapped key's ephemeral key is not a point on secp256k1", { cause });
  }
  const decipher = createDecipheriv("aes-256-gcm", wrapKey(shared, ephemeralPub, recipientPub), w.subarray(34, 46));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(w.subarray(78));
  try {
    return Buffer.concat([decipher.update(w.subarray(46, 78)), decipher.final()]);
  } catch (cause) {
    throw new AuthenticationError("WRAPPED_KEY_AUTHENTICATION", "this wrapped key is not for this device key, release or device id", { cause });
  }
}

/** The context a release's content key is wrapped under for one device: release id || device id. */
export function keyWrapContext(releaseId: string, deviceId: string): Buffer {
  const r = Buffer.from(releaseId.replace(/^0x/, ""), "hex");
  const d = Buffer.from(deviceId.replace(/^0x/, ""), "hex");
  if (r.length !== 32 || d.length !== 32) throw new InputError("KEY_WRAP_CONTEXT", "release and device ids are 32 bytes each");
  return Buffer.concat([r, d]);
}
