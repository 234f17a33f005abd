import { randomBytes } from "node:crypto";
import { Signature, SigningKey, getAddress, getBytes, keccak256 } from "ethers";

/**
 * The secp256k1 operations on the hot paths (opening sealed reports, recovering device
 * signatures), through libsecp256k1's Node binding where it is installed: about 65 µs each here,
 * against about 1.3 ms for OpenSSL's generic curve code and 0.3-2.5 ms for ethers' JavaScript
 * (@noble/curves; bench:tracker, ADR 0007). Without the binding (the device agent's bundle, a
 * platform the package has no prebuilt binary for) the same operations run on ethers' code,
 * with the same results: a device does a handful per update (ADR 0007).
 */
export interface Curve {
  readonly name: "libsecp256k1" | "javascript";
  /** The compressed public key of a private key. */
  publicKeyOf(privateKey: Uint8Array): Buffer;
  isPrivateKey(privateKey: Uint8Array): boolean;
  /** Whether the 33- or 65-byte key is a point on the curve (a compressed key's x has a y). */
  isPublicKey(publicKey: Uint8Array): boolean;
  /** The x coordinate of privateKey * publicKey; throws if the key is not on the curve. */
  sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Buffer;
  /** The public key (compressed unless told otherwise) that made the 64-byte signature r | s with recovery id `recid`. */
  recover(digest: Uint8Array, rs: Uint8Array, recid: number, compressed?: boolean): Buffer;
  /** RFC 6979 nonce, low s: r | s and the recovery id. */
  sign(digest: Uint8Array, privateKey: Uint8Array): { rs: Uint8Array; recid: number };
}

/** The secp256k1 package's binding, without its elliptic fallback (ethers' code is the fallback here). */
interface Binding {
  publicKeyCreate(privateKey: Uint8Array, compressed: boolean): Uint8Array;
  privateKeyVerify(privateKey: Uint8Array): boolean;
  publicKeyVerify(publicKey: Uint8Array): boolean;
  ecdh(publicKey: Uint8Array, privateKey: Uint8Array, o: { hashfn: (x: Uint8Array) => Uint8Array }, out: Uint8Array): Uint8Array;
  ecdsaRecover(signature: Uint8Array, recid: number, digest: Uint8Array, compressed: boolean): Uint8Array;
  ecdsaSign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
}

function nativeCurve(binding: Binding): Curve {
  return {
    name: "libsecp256k1",
    publicKeyOf: (privateKey) => Buffer.from(binding.publicKeyCreate(privateKey, true)),
    isPrivateKey: (privateKey) => binding.privateKeyVerify(privateKey),
    isPublicKey: (publicKey) => (publicKey.length === 33 || publicKey.length === 65) && binding.publicKeyVerify(publicKey),
    sharedSecret: (privateKey, publicKey) => {
      const out = Buffer.alloc(32);
      binding.ecdh(publicKey, privateKey, { hashfn: (x) => x }, out);
      return out;
    },
    recover: (digest, rs, recid, compressed = true) => Buffer.from(binding.ecdsaRecover(rs, recid, digest, compressed)),
    sign: (digest, privateKey) => {
      const { signature, recid } = binding.ecdsaSign(digest, privateKey);
      return { rs: signature, recid };
    },
  };
}

const ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** ethers' SigningKey (@noble/curves): what every install already carries. */
export const javascriptCurve: Curve = {
  name: "javascript",
  publicKeyOf: (privateKey) => Buffer.from(getBytes(SigningKey.computePublicKey(privateKey, true))),
  isPrivateKey: (privateKey) => {
    if (privateKey.length !== 32) return false;
    const k = BigInt("0x" + Buffer.from(privateKey).toString("hex"));
    return k > 0n && k < ORDER;
  },
  isPublicKey: (publicKey) => {
    if (publicKey.length !== 33 && publicKey.length !== 65) return false;
    try {
      SigningKey.computePublicKey(publicKey, true); // decompresses or checks the point: throws if it is not on the curve
      return true;
    } catch {
      return false;
    }
  },
  sharedSecret: (privateKey, publicKey) => {
    // computeSharedSecret reads 32 bytes as a private key: only a public key's lengths may pass.
    if (publicKey.length !== 33 && publicKey.length !== 65) throw new Error("a public key is 33 or 65 bytes");
    return Buffer.from(getBytes(new SigningKey(privateKey).computeSharedSecret(publicKey)).subarray(1, 33));
  },
  recover: (digest, rs, recid, compressed = true) => {
    const hex = Buffer.from(rs).toString("hex");
    const sig = Signature.from({ r: "0x" + hex.slice(0, 64), s: "0x" + hex.slice(64, 128), yParity: recid as 0 | 1 });
    return Buffer.from(getBytes(SigningKey.computePublicKey(SigningKey.recoverPublicKey(digest, sig), compressed)));
  },
  sign: (digest, privateKey) => {
    const sig = new SigningKey(privateKey).sign(digest);
    return { rs: getBytes(sig.r + sig.s.slice(2)), recid: sig.yParity };
  },
};

/**
 * libsecp256k1 when its binding loads: node-gyp-build finds the package's prebuilt binary (it
 * ships x64 Linux, arm64 macOS and x64 Windows), or, in the device bundle, a `prebuilds/` folder
 * beside the bundle if an integrator put one there. Anything else: the JavaScript curve.
 */
function loadNative(): Curve | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return nativeCurve(require("secp256k1/bindings") as Binding);
  } catch {
    return undefined;
  }
}

export const nativeSecp256k1: Curve | undefined = loadNative();
/** The curve code in use: libsecp256k1 where its binding loads, else ethers' JavaScript. */
export const curve: Curve = nativeSecp256k1 ?? javascriptCurve;

/** The compressed public key of a private key. */
export function publicKeyOf(privateKey: Uint8Array): Buffer {
  return curve.publicKeyOf(privateKey);
}

/** A fresh key pair (for an ephemeral ECDH key). */
export function generateKeyPair(): { privateKey: Buffer; publicKey: Buffer } {
  for (;;) {
    const privateKey = randomBytes(32);
    if (curve.isPrivateKey(privateKey)) return { privateKey, publicKey: publicKeyOf(privateKey) };
  }
}

/** The x coordinate of privateKey * publicKey (what OpenSSL's ECDH computeSecret returns); throws if the key is not on the curve. */
export function sharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Buffer {
  return curve.sharedSecret(privateKey, publicKey);
}

/** The compressed public key (0x hex) that made `signature` (65 bytes, r | s | v) over a 32-byte digest. */
export function recoverCompressedKey(digest: Uint8Array, signature: string): string {
  const sig = Signature.from(signature);
  const rs = Buffer.concat([Buffer.from(sig.r.slice(2), "hex"), Buffer.from(sig.s.slice(2), "hex")]);
  return "0x" + curve.recover(digest, rs, sig.yParity).toString("hex");
}

/**
 * The Ethereum address that made `signature` (65 bytes, r | s | v) over a 32-byte digest: a
 * release signature checked by a fleet of devices in one process is one native recovery each.
 */
export function recoverAddress(digest: Uint8Array, signature: string): string {
  const sig = Signature.from(signature);
  const rs = Buffer.concat([Buffer.from(sig.r.slice(2), "hex"), Buffer.from(sig.s.slice(2), "hex")]);
  return getAddress("0x" + keccak256(curve.recover(digest, rs, sig.yParity, false).subarray(1)).slice(-40));
}

/** An ECDSA signature (RFC 6979 nonce, low s) over a 32-byte digest, serialized as ethers does: r | s | v (27 or 28). */
export function signDigest(privateKey: Uint8Array, digest: Uint8Array): string {
  const { rs, recid } = curve.sign(digest, privateKey);
  return "0x" + Buffer.from(rs).toString("hex") + (27 + recid).toString(16);
}
