import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { AuthenticationError, InputError } from "../core/errors";
import { generateKeyPair, publicKeyOf, sharedSecret } from "./secp256k1";

/**
 * ECIES on secp256k1 with AES-256-GCM, for anything sealed to one recipient's public key
 * (content keys: keyWrap.ts; messages between tracker modules and devices: sealedMessage.ts).
 *
 *   sealed = 0x01 | ephemeral public key (33, compressed) | nonce (12) | AES-256-GCM(plaintext) | tag (16)
 *   key    = HKDF-SHA256(ECDH(ephemeral, recipient), salt = ephemeral pub | recipient pub, info)
 *   aad    = the caller's context, so a sealed value is good only where it was meant to be
 *
 * `info` separates uses: a value sealed for one purpose never opens for another.
 */

const VERSION = 0x01;
export const ECIES_OVERHEAD = 1 + 33 + 12 + 16;

export function compressedKey(publicKey: Uint8Array): Buffer {
  const key = Buffer.from(publicKey);
  if (key.length !== 33 || (key[0] !== 2 && key[0] !== 3)) {
    throw new InputError("PUBLIC_KEY", "a recipient key must be a 33-byte compressed secp256k1 public key");
  }
  return key;
}

function derive(shared: Buffer, ephemeralPub: Buffer, recipientPub: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeralPub, recipientPub]), Buffer.from(info, "ascii"), 32));
}

export function eciesSeal(plaintext: Uint8Array, recipientPublicKey: Uint8Array, context: Uint8Array, info: string): Buffer {
  const recipient = compressedKey(recipientPublicKey);
  const ephemeral = generateKeyPair();
  const ephemeralPub = ephemeral.publicKey;
  let shared: Buffer;
  try {
    shared = sharedSecret(ephemeral.privateKey, recipient);
  } catch (cause) {
    throw new InputError("PUBLIC_KEY", "the recipient key is not a point on secp256k1", { cause });
  }
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", derive(shared, ephemeralPub, recipient, info), iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), ephemeralPub, iv, body, cipher.getAuthTag()]);
}

/** Opens a sealed value with the recipient's private key; fails unless sealed to this key, context and info. */
export function eciesOpen(sealed: Uint8Array, recipientPrivateKey: Uint8Array, context: Uint8Array, info: string, code = "SEALED"): Buffer {
  const s = Buffer.from(sealed);
  if (s.length < ECIES_OVERHEAD || s[0] !== VERSION)
    throw new AuthenticationError(`${code}_FORMAT`, `a sealed value starts with 0x01 and is at least ${ECIES_OVERHEAD} bytes`);
  const privateKey = Buffer.from(recipientPrivateKey);
  const recipientPub = publicKeyOf(privateKey);
  const ephemeralPub = s.subarray(1, 34);
  let shared: Buffer;
  try {
    shared = sharedSecret(privateKey, ephemeralPub);
  } catch (cause) {
    throw new AuthenticationError(`${code}_FORMAT`, "the sealed value's ephemeral key is not a point on secp256k1", { cause });
  }
  const decipher = createDecipheriv("aes-256-gcm", derive(shared, ephemeralPub, recipientPub, info), s.subarray(34, 46));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(s.subarray(s.length - 16));
  try {
    return Buffer.concat([decipher.update(s.subarray(46, s.length - 16)), decipher.final()]);
  } catch (cause) {
    throw new AuthenticationError(`${code}_AUTHENTICATION`, "this sealed value is not for this key or context, or was altered", { cause });
  }
}
