import { expect } from "chai";
import { Wallet, keccak256, toUtf8Bytes, getBytes, concat } from "ethers";
import { wrapContentKey, unwrapContentKey, WRAPPED_KEY_SIZE } from "../../../agent/crypto/keyWrap";
import { newContentKey } from "../../../agent/crypto/artifactCipher";
import { AuthenticationError, InputError } from "../../../agent/core/errors";

const device = (n: string) => new Wallet(keccak256(toUtf8Bytes(`device key ${n}`)));
const pub = (w: Wallet) => getBytes(w.signingKey.compressedPublicKey);
const priv = (w: Wallet) => getBytes(w.privateKey);
const context = (release: string, deviceId: string) => getBytes(concat([keccak256(toUtf8Bytes(release)), keccak256(toUtf8Bytes(deviceId))]));

describe("agent/crypto/keyWrap: a content key wrapped for one device (ECIES secp256k1; REQ-10f-ii, REQ-10f-iii, CAP-11.4-b, CAP-11.4-c)", function () {
  const key = newContentKey();
  const a = device("a");
  const b = device("b");
  const ctx = context("release 1", "device a");

  it("unwraps only with the recipient device's private key and the same context", function () {
    const wrapped = wrapContentKey(key, pub(a), ctx);
    expect(wrapped).to.have.length(WRAPPED_KEY_SIZE);
    expect(unwrapContentKey(wrapped, priv(a), ctx).equals(key)).to.equal(true);
  });

  it("wraps the same key differently each time (fresh ephemeral key), never containing it in the clear", function () {
    const w1 = wrapContentKey(key, pub(a), ctx);
    const w2 = wrapContentKey(key, pub(a), ctx);
    expect(w1.equals(w2)).to.equal(false);
    expect(w1.includes(key)).to.equal(false);
  });

  it("refuses a wrapped key used by another device", function () {
    const wrapped = wrapContentKey(key, pub(a), ctx);
    expect(() => unwrapContentKey(wrapped, priv(b), ctx)).to.throw(AuthenticationError, /not for this device/);
  });

  it("refuses a wrapped key moved to another release or another device id", function () {
    const wrapped = wrapContentKey(key, pub(a), ctx);
    expect(() => unwrapContentKey(wrapped, priv(a), context("release 2", "device a"))).to.throw(AuthenticationError);
    expect(() => unwrapContentKey(wrapped, priv(a), context("release 1", "device b"))).to.throw(AuthenticationError);
  });

  it("refuses a tampered or malformed wrapped key", function () {
    const wrapped = wrapContentKey(key, pub(a), ctx);
    for (const at of [40, 60, WRAPPED_KEY_SIZE - 1]) {
      const t = Buffer.from(wrapped);
      t[at] ^= 1;
      expect(() => unwrapContentKey(t, priv(a), ctx), `byte ${at}`).to.throw(AuthenticationError);
    }
    expect(() => unwrapContentKey(wrapped.subarray(1), priv(a), ctx)).to.throw(AuthenticationError, /94 bytes/);
    const badPoint = Buffer.from(wrapped);
    badPoint.fill(0xff, 2, 34);
    expect(() => unwrapContentKey(badPoint, priv(a), ctx)).to.throw(AuthenticationError);
  });

  it("refuses to wrap for a key that is not a compressed secp256k1 point, or a key of the wrong size", function () {
    expect(() => wrapContentKey(key, getBytes(a.signingKey.publicKey), ctx)).to.throw(InputError, /33-byte compressed/);
    expect(() => wrapContentKey(key, Buffer.concat([Buffer.from([2]), Buffer.alloc(32, 0xff)]), ctx)).to.throw(InputError, /not a point/);
    expect(() => wrapContentKey(key.subarray(0, 31), pub(a), ctx)).to.throw(InputError, /32 bytes/);
  });
});
