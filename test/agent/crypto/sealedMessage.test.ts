import { expect } from "chai";
import { Wallet } from "ethers";
import { openMessage, recoverMessageSigner, sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import { expectCode } from "../../helpers/expectCode";

const device = Wallet.createRandom();
const upstream = Wallet.createRandom();
const deviceId = "0x" + "11".repeat(32);
const moduleId = "0x" + "22".repeat(32);

const open = async (e: Envelope, key: string, me: string, kind: "device" | "account" = "account") => openMessage(e, key, me, kind);

describe("agent/crypto/sealedMessage: signed, then sealed to the recipient (CAP-11.2-d, CAP-11.2-m-a, CAP-11.2-m-b)", () => {
  it("a device's report opens for its module and names the device key that signed it", async () => {
    const e = await sealMessage(
      { kind: "status-report", from: deviceId, to: moduleId, issuedAt: 1, body: { counter: 7 } },
      { kind: "device", privateKey: device.privateKey },
      upstream.signingKey.compressedPublicKey,
    );
    const { message, signedBy } = await open(e, upstream.privateKey, moduleId, "device");
    expect(message.body).to.deep.equal({ counter: 7 });
    expect(signedBy).to.equal(device.signingKey.compressedPublicKey);
    expect(JSON.stringify(e)).not.to.include("counter"); // the body travels sealed
  });

  it("a upstream's notice opens for its device and names the account that signed it", async () => {
    const e = await sealMessage(
      { kind: "update-notice", from: moduleId, to: deviceId, issuedAt: 2, body: { x: 1 } },
      { kind: "account", signMessage: (m) => upstream.signMessage(m) },
      device.signingKey.compressedPublicKey,
    );
    const { signedBy } = await open(e, device.privateKey, deviceId);
    expect(signedBy).to.equal(upstream.address);
  });

  it("refuses an envelope for someone else, altered bytes, swapped headers, or another recipient's key", async () => {
    const e = await sealMessage(
      { kind: "update-notice", from: moduleId, to: deviceId, issuedAt: 3, body: {} },
      { kind: "account", signMessage: (m) => upstream.signMessage(m) },
      device.signingKey.compressedPublicKey,
    );
    await expectCode(open(e, device.privateKey, moduleId), "MESSAGE_NOT_FOR_ME");
    const flipped = { ...e, sealed: e.sealed.slice(0, -2) + (e.sealed.endsWith("00") ? "01" : "00") };
    await expectCode(open(flipped, device.privateKey, deviceId), "MESSAGE_AUTHENTICATION");
    await expectCode(open({ ...e, kind: "status-report" }, device.privateKey, deviceId), "MESSAGE_AUTHENTICATION");
    await expectCode(open(e, Wallet.createRandom().privateKey, deviceId), "MESSAGE_AUTHENTICATION");
    await expectCode(open({ v: 2 } as unknown as Envelope, device.privateKey, deviceId), "MESSAGE_MALFORMED");
  });

  it("values beside the signature (a report session's secret, ADR 0013) travel sealed, outside what is signed and forwarded", async () => {
    const secret = "0x" + "5e".repeat(32);
    const e = await sealMessage(
      { kind: "status-report", from: deviceId, to: moduleId, issuedAt: 4, body: { counter: 8 } },
      { kind: "device", privateKey: device.privateKey },
      upstream.signingKey.compressedPublicKey,
      { sessionSecret: secret },
    );
    expect(JSON.stringify(e)).not.to.include("5e5e");
    const opened = await open(e, upstream.privateKey, moduleId, "device");
    expect(opened.beside).to.deep.equal({ sessionSecret: secret });
    expect(opened.message).not.to.have.property("beside"); // what a module forwards upstream holds no secret
    expect(recoverMessageSigner(opened.message, opened.signature, "device")).to.equal(device.signingKey.compressedPublicKey);
    // Without: as before.
    const plain = await sealMessage(
      { ...opened.message, issuedAt: 5 },
      { kind: "device", privateKey: device.privateKey },
      upstream.signingKey.compressedPublicKey,
    );
    expect((await open(plain, upstream.privateKey, moduleId, "device")).beside).to.equal(undefined);
  });
});
