import { expect } from "chai";
import { createECDH, randomBytes } from "node:crypto";
import { SigningKey, Wallet, getBytes, hashMessage } from "ethers";
import { publicKeyOf, recoverCompressedKey, sharedSecret, signDigest } from "../../../agent/crypto/secp256k1";

/** OpenSSL drops a private key's leading zero bytes; the curve code takes exactly 32. */
const key32 = (ecdh: ReturnType<typeof createECDH>) => Buffer.concat([Buffer.alloc(32 - ecdh.getPrivateKey().length), ecdh.getPrivateKey()]);

describe("agent/crypto/secp256k1: the native curve code agrees with OpenSSL and ethers", () => {
  it("ECDH gives OpenSSL's shared secret, and public keys match", () => {
    for (let i = 0; i < 200; i++) {
      const a = createECDH("secp256k1");
      a.generateKeys();
      const b = createECDH("secp256k1");
      b.generateKeys();
      expect(publicKeyOf(key32(a)).equals(a.getPublicKey(null, "compressed"))).to.equal(true);
      expect(sharedSecret(key32(a), b.getPublicKey(null, "compressed")).equals(a.computeSecret(b.getPublicKey()))).to.equal(true);
    }
  });

  it("refuses a public key that is not on the curve", () => {
    const bad = Buffer.concat([Buffer.from([2]), Buffer.alloc(32, 0xff)]);
    expect(() => sharedSecret(randomBytes(32), bad)).to.throw();
  });

  it("recovers the signer of an ethers signature, and signs EIP-191 messages exactly as Wallet.signMessage", async () => {
    for (let i = 0; i < 20; i++) {
      const key = new SigningKey(randomBytes(32));
      const digest = randomBytes(32);
      expect(recoverCompressedKey(digest, key.sign(digest).serialized)).to.equal(key.compressedPublicKey);
      const w = new Wallet(key.privateKey);
      const m = "0x" + randomBytes(32).toString("hex");
      expect(signDigest(getBytes(w.privateKey), getBytes(hashMessage(m)))).to.equal(await w.signMessage(m));
    }
  });

  it("a changed digest or signature recovers another key (or none)", () => {
    const key = new SigningKey(randomBytes(32));
    const digest = randomBytes(32);
    const sig = key.sign(digest).serialized;
    const other = Buffer.from(digest);
    other[0] ^= 1;
    expect(recoverCompressedKey(other, sig)).to.not.equal(key.compressedPublicKey);
  });
});
