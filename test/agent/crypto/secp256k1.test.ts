import { expect } from "chai";
import { createECDH, randomBytes } from "node:crypto";
import { SigningKey, Wallet, getBytes, hashMessage } from "ethers";
import {
  curve,
  javascriptCurve,
  nativeSecp256k1,
  publicKeyOf,
  recoverCompressedKey,
  sharedSecret,
  signDigest,
  type Curve,
} from "../../../agent/crypto/secp256k1";

/** OpenSSL drops a private key's leading zero bytes; the curve code takes exactly 32. */
const key32 = (ecdh: ReturnType<typeof createECDH>) => Buffer.concat([Buffer.alloc(32 - ecdh.getPrivateKey().length), ecdh.getPrivateKey()]);

/** What both curves must do: the native binding (tracker, server) and ethers' JavaScript (the device bundle). */
function shouldBehaveLikeSecp256k1(c: () => Curve) {
  it("ECDH gives OpenSSL's shared secret, and public keys match", () => {
    for (let i = 0; i < 50; i++) {
      const a = createECDH("secp256k1");
      a.generateKeys();
      const b = createECDH("secp256k1");
      b.generateKeys();
      expect(c().publicKeyOf(key32(a)).equals(a.getPublicKey(null, "compressed"))).to.equal(true);
      expect(c().sharedSecret(key32(a), b.getPublicKey(null, "compressed")).equals(a.computeSecret(b.getPublicKey()))).to.equal(true);
    }
  });

  it("refuses a public key that is not on the curve, and a private key out of range", () => {
    const bad = Buffer.concat([Buffer.from([2]), Buffer.alloc(32, 0xff)]);
    expect(() => c().sharedSecret(randomBytes(32), bad)).to.throw();
    expect(() => c().sharedSecret(randomBytes(32), randomBytes(32))).to.throw();
    expect(c().isPrivateKey(Buffer.alloc(32))).to.equal(false);
    expect(c().isPrivateKey(Buffer.alloc(32, 0xff))).to.equal(false);
    expect(c().isPrivateKey(randomBytes(32))).to.equal(true);
    // isPublicKey (a device record's key, checked by the firmware server on each new device).
    expect(c().isPublicKey(bad)).to.equal(false);
    expect(c().isPublicKey(Buffer.concat([Buffer.from([2]), Buffer.alloc(31), Buffer.from([5])]))).to.equal(false); // x = 5 has no y
    expect(c().isPublicKey(randomBytes(32))).to.equal(false);
    expect(c().isPublicKey(Buffer.alloc(33))).to.equal(false);
    for (let i = 0; i < 20; i++) {
      const a = createECDH("secp256k1");
      a.generateKeys();
      expect(c().isPublicKey(a.getPublicKey(null, "compressed"))).to.equal(true);
      expect(c().isPublicKey(a.getPublicKey())).to.equal(true);
    }
  });

  it("signs as ethers does (RFC 6979, low s) and recovers the signer; a changed digest recovers another key", () => {
    for (let i = 0; i < 20; i++) {
      const key = new SigningKey(randomBytes(32));
      const digest = randomBytes(32);
      const mine = c().sign(digest, getBytes(key.privateKey));
      const theirs = key.sign(digest);
      expect("0x" + Buffer.from(mine.rs).toString("hex")).to.equal(theirs.r + theirs.s.slice(2));
      expect(mine.recid).to.equal(theirs.yParity);
      expect("0x" + c().recover(digest, mine.rs, mine.recid).toString("hex")).to.equal(key.compressedPublicKey);
      const other = Buffer.from(digest);
      other[0] ^= 1;
      expect("0x" + c().recover(other, mine.rs, mine.recid).toString("hex")).to.not.equal(key.compressedPublicKey);
    }
  });
}

describe("agent/crypto/secp256k1: the curve code agrees with OpenSSL and ethers", () => {
  describe("libsecp256k1 (the binding, where its prebuilt binary loads)", function () {
    before(function () {
      if (!nativeSecp256k1) this.skip(); // no prebuilt binary for this platform: the JavaScript curve is used, tested below
    });
    shouldBehaveLikeSecp256k1(() => nativeSecp256k1!);
  });

  describe("ethers' JavaScript curve (the device bundle)", () => {
    shouldBehaveLikeSecp256k1(() => javascriptCurve);
  });

  it("uses libsecp256k1 where it loads, and through it signs EIP-191 messages exactly as Wallet.signMessage", async () => {
    expect(curve).to.equal(nativeSecp256k1 ?? javascriptCurve);
    for (let i = 0; i < 10; i++) {
      const w = new Wallet(new SigningKey(randomBytes(32)).privateKey);
      const m = "0x" + randomBytes(32).toString("hex");
      expect(signDigest(getBytes(w.privateKey), getBytes(hashMessage(m)))).to.equal(await w.signMessage(m));
      const digest = randomBytes(32);
      expect(recoverCompressedKey(digest, w.signingKey.sign(digest).serialized)).to.equal(w.signingKey.compressedPublicKey);
      const other = createECDH("secp256k1");
      other.generateKeys();
      expect(
        sharedSecret(getBytes(w.privateKey), other.getPublicKey(null, "compressed")).equals(
          javascriptCurve.sharedSecret(getBytes(w.privateKey), other.getPublicKey()),
        ),
      ).to.equal(true);
      expect(publicKeyOf(getBytes(w.privateKey)).toString("hex")).to.equal(w.signingKey.compressedPublicKey.slice(2));
    }
  });
});
