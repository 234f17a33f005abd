import { randomBytes } from "node:crypto";
import { Signature } from "ethers";
import native from "secp256k1";

/**
 * The secp256k1 operations on the hot paths (opening sealed reports, recovering device
 * signatures), through libsecp256k1's Node binding: about 65 µs each here, against about 1.3 ms
 * for OpenSSL's generic curve code and 2 ms for the JavaScript recovery (bench:tracker). Where the
 * binding has no prebuilt binary, the package falls back to its JavaScript implementation.
 */

/** The compressed public key of a private key. */
export function publicKeyOf(privateKey: Uint8Array): Buffer {
  return Buffer.from(native.publicKeyCreate(privateKey, true));
}

/** A fresh key pair (for an ephemeral ECDH key). */
export function generateKeyPair(): { privateKey: Buffer; publicKey: Buffer } {
  for (;;) {
    const privateKey = randomBytes(32);
    if (native.privateKeyVerify(privateKey)) return { privateKey, publicKey: publicKeyOf(privateKey) };
  }
}

/** The x coordinate of privateKey * publicKey (what OpenSSL's ECDH computeSecret returns); throws if the key is not on the curve. */
export function sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Buffer {
  const out = Buffer.alloc(32);
  native.ecdh(publicKey, privateKey, { hashfn: (x: Uint8Array) => x }, out);
  return out;
}

/** The compressed public key (0x hex) that made `signature` (65 bytes, r | s | v) over a 32-byte digest. */
export function recoverCompressedKey(digest: Uint8Array, signature: string): string {
  const sig = Signature.from(signature);
  const compact = Buffer.concat([Buffer.from(sig.r.slice(2), "hex"), Buffer.from(sig.s.slice(2), "hex")]);
  return "0x" + Buffer.from(native.ecdsaRecover(compact, sig.yParity, digest, true)).toString("hex");
}

/** An ECDSA signature (RFC 6979 nonce, low s) over a 32-byte digest, serialized as ethers does: r | s | v (27 or 28). */
export function signDigest(privateKey: Uint8Array, digest: Uint8Array): string {
  const { signature, recid } = native.ecdsaSign(digest, privateKey);
  return "0x" + Buffer.from(signature).toString("hex") + (27 + recid).toString(16);
}
