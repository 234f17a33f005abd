import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { FleetStore } from "../../../agent/tracker/store";
import { ReportIntake, type TakenReport } from "../../../agent/tracker/reportIntake";
import { sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import { newSessionOffer, sealWithSession, sessionKey, type SessionEnvelope, type SessionOffer } from "../../../agent/crypto/reportSession";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { expectCode } from "../../helpers/expectCode";

/**
 * Issue 17, ADR 0013: report sessions, from an attacker's side. A device opens a session with a
 * full sealed report (signed with its enrolled key, sealed to the module); its later reports are
 * sealed under the session key. Each test plays what an attacker, a stale device or a rotation
 * would send, against the real intake and fleet database.
 */

const moduleKey = new Wallet(keccak256(toUtf8Bytes("session tracker")));
const moduleId = keccak256(toUtf8Bytes("session module"));
const me = { id: moduleId, privateKey: moduleKey.privateKey };
const component = keccak256(toUtf8Bytes("acme.bootloader"));
const releaseId = "0x" + "34".repeat(32);
const devices = ["a", "b"].map((n) => ({
  id: keccak256(toUtf8Bytes(`session device ${n}`)).toLowerCase(),
  key: new Wallet(keccak256(toUtf8Bytes(`session key ${n}`))),
}));
const [a, b] = devices;
type Device = (typeof devices)[number];

const report = (deviceId: string, counter: number, over: Partial<StatusReport> = {}): StatusReport => ({
  deviceId,
  counter,
  installed: [{ component, version: "4294967296", releaseId, slot: "a" }],
  lastResult: null,
  needs: [],
  declined: [],
  safeMode: false,
  ...over,
});

/** A full sealed report, offering a session (as the device agent sends its first report). */
async function full(d: Device, counter: number, offer: SessionOffer | null = newSessionOffer(), o: { signer?: Wallet; to?: Wallet } = {}) {
  const body = report(d.id, counter, offer ? { session: { id: offer.id, commitment: offer.commitment } } : {});
  const envelope = await sealMessage(
    { kind: REPORT_KIND, from: d.id, to: moduleId, issuedAt: Date.now(), body },
    { kind: "device", privateKey: (o.signer ?? d.key).privateKey },
    (o.to ?? moduleKey).signingKey.compressedPublicKey,
    offer ? { sessionSecret: offer.secret } : undefined,
  );
  return { envelope, offer: offer ?? undefined };
}

/** The device's side of a session the module took. */
const held = (d: Device, offer: SessionOffer) => ({ id: offer.id, key: sessionKey(offer.secret, offer.id, d.id, moduleId) });

const underSession = (d: Device, session: { id: string; key: Buffer }, counter: number, over: Partial<StatusReport> = {}): SessionEnvelope =>
  sealWithSession({ kind: REPORT_KIND, from: d.id, to: moduleId, issuedAt: Date.now(), body: report(d.id, counter, over) }, session);

describe("agent/tracker/reportIntake: report sessions, an attacker's view (issue 17, ADR 0013)", () => {
  let dir: string;
  let db: FleetStore;
  let now: number;
  let intake: ReportIntake;
  const open = (key = moduleKey, o: { sessions?: boolean; sessionMaxAgeMs?: number } = {}) =>
    new ReportIntake(db, { id: moduleId, privateKey: key.privateKey }, () => now, { workers: 0, ...o });

  /** Opens a session for `d` with a full report and returns what the device holds. */
  async function establish(d: Device, counter: number) {
    const { envelope, offer } = await full(d, counter);
    const taken = await intake.take(envelope);
    expect(taken.session?.id).to.equal(offer!.id);
    return held(d, offer!);
  }

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-sessions-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
    for (const d of devices)
      db.devices.upsert({ id: d.id, publicKey: d.key.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
    now = 1_000_000;
    intake = open();
  });
  afterEach(async () => {
    await intake.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("CAP-11.2-m-a CAP-11.2-m-b: a full report opens a session; the reports under it are taken with the same checks, and their content is not on the wire", async () => {
    const s = await establish(a, 1);
    // The key is at rest only wrapped under the module's key.
    const row = db.sessions.get(a.id)!;
    expect(row).to.include({ sessionId: s.id, deviceKey: a.key.signingKey.compressedPublicKey.toLowerCase(), establishedAt: now });
    expect(row.wrappedKey.includes(s.key)).to.equal(false);
    now += 1000;
    const e = underSession(a, s, 2, { safeMode: true });
    expect(JSON.stringify(e)).not.to.include(component.slice(2)); // confidential: the installed component is sealed
    const taken: TakenReport = await intake.take(e);
    expect(taken.message.body.counter).to.equal(2);
    expect(taken.signature).to.equal(undefined); // no signature to forward: only a module without a parent keeps sessions
    expect(taken.session).to.equal(undefined);
    expect(db.devices.get(a.id)).to.include({ lastCounter: 2, lastSeen: now, safeMode: true });
    expect((await intake.take(underSession(a, s, 3))).message.body.counter).to.equal(3);
  });

  it("CAP-11.2-m-b: a report under another device's session, or sealed by another device for this one, is refused", async () => {
    const sa = await establish(a, 1);
    const sb = await establish(b, 1);
    // Device a (its key and session stolen, or a itself) posts as b under a's session: the session is not b's.
    await expectCode(intake.take({ ...underSession(a, sa, 2), from: b.id }), "REPORT_SESSION_UNKNOWN");
    // ... naming b's session (its id is on the wire) but sealed with a's key: it does not open.
    await expectCode(intake.take({ ...underSession(a, sa, 2), from: b.id, session: sb.id }), "REPORT_SESSION_AUTHENTICATION");
    // ... under its own session, a report that says it is b's: the sealed copy disagrees with the envelope, or names another device.
    const asB = sealWithSession({ kind: REPORT_KIND, from: b.id, to: moduleId, issuedAt: now, body: report(b.id, 2) }, sa);
    await expectCode(intake.take({ ...asB, from: a.id }), "REPORT_SESSION_AUTHENTICATION"); // the aad names b
    const bodyOfB = sealWithSession({ kind: REPORT_KIND, from: a.id, to: moduleId, issuedAt: now, body: report(b.id, 2) }, sa);
    await expectCode(intake.take(bodyOfB), "REPORT_MALFORMED");
    // Nothing of b moved; b's own session still works.
    expect(db.devices.get(b.id)?.lastCounter).to.equal(1);
    expect((await intake.take(underSession(b, sb, 2))).message.body.counter).to.equal(2);
  });

  it("CAP-11.2-m-a: a tampered ciphertext, tag or header does not open; a replayed or older counter is refused as today", async () => {
    const s = await establish(a, 5);
    const e = underSession(a, s, 6);
    const flip = (hex: string, at: number) => hex.slice(0, at) + (hex[at] === "0" ? "1" : "0") + hex.slice(at + 1);
    await expectCode(intake.take({ ...e, sealed: flip(e.sealed, 2 + 24 + 10) }), "REPORT_SESSION_AUTHENTICATION"); // ciphertext
    await expectCode(intake.take({ ...e, sealed: flip(e.sealed, e.sealed.length - 3) }), "REPORT_SESSION_AUTHENTICATION"); // tag
    await expectCode(intake.take({ ...e, sealed: flip(e.sealed, 3) }), "REPORT_SESSION_AUTHENTICATION"); // nonce
    await expectCode(intake.take({ ...e, sealed: "0x" + "00".repeat(20) }), "REPORT_SESSION_AUTHENTICATION"); // too short
    await expectCode(intake.take({ ...e, to: keccak256(toUtf8Bytes("another module")) }), "REPORT_SESSION_AUTHENTICATION");
    expect((await intake.take(e)).message.body.counter).to.equal(6);
    await expectCode(intake.take(e), "REPORT_REPLAYED"); // the same report again
    await expectCode(intake.take(underSession(a, s, 4)), "REPORT_REPLAYED"); // a counter below the last one
    expect(db.devices.get(a.id)?.lastCounter).to.equal(6);
  });

  it("CAP-11.2-m-a: a session offer the device did not sign opens nothing, and a replayed offer neither", async () => {
    // The secret does not match the signed commitment (someone re-sealed the device's signed report with a key of their own).
    const offer = newSessionOffer();
    const forged = await full(a, 1, { ...offer, secret: newSessionOffer().secret });
    const taken = await intake.take(forged.envelope);
    expect(taken.session).to.equal(undefined); // the report itself is the device's: taken, without a session
    expect(db.sessions.get(a.id)).to.equal(undefined);
    await expectCode(intake.take(underSession(a, held(a, offer), 2)), "REPORT_SESSION_UNKNOWN");
    // A genuine offer replayed after a newer session: refused as a replay, and the newer session stays.
    const first = await full(a, 2);
    await intake.take(first.envelope);
    const newer = await establish(a, 3);
    await expectCode(intake.take(first.envelope), "REPORT_REPLAYED");
    expect(db.sessions.get(a.id)?.sessionId).to.equal(newer.id);
    await expectCode(intake.take(underSession(a, held(a, first.offer!), 4)), "REPORT_SESSION_UNKNOWN"); // the replaced session is over
    expect((await intake.take(underSession(a, newer, 4))).message.body.counter).to.equal(4);
  });

  it("a session from before the module key rotated is refused; the device's full report (the old devices' way) opens a new one", async () => {
    const s = await establish(a, 1);
    await intake.close();
    const rotated = new Wallet(keccak256(toUtf8Bytes("session tracker, rotated")));
    intake = open(rotated);
    await expectCode(intake.take(underSession(a, s, 2)), "REPORT_SESSION_UNKNOWN");
    // The same report, in full, sealed to the new key: taken, and a new session.
    const again = await full(a, 2, newSessionOffer(), { to: rotated });
    const taken = await intake.take(again.envelope);
    expect(taken.signature).to.match(/^0x[0-9a-f]{130}$/);
    expect(taken.session?.id).to.equal(again.offer!.id);
    expect((await intake.take(underSession(a, held(a, again.offer!), 3))).message.body.counter).to.equal(3);
    // A full report without an offer (an old device) is taken as it always was.
    expect((await intake.take((await full(b, 1, null, { to: rotated })).envelope)).session).to.equal(undefined);
  });

  it("a session made under the device's previous enrolled key is refused after the device key rotated", async () => {
    const s = await establish(a, 1);
    const newKey = new Wallet(keccak256(toUtf8Bytes("session key a, rotated")));
    db.devices.upsert({ id: a.id, publicKey: newKey.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
    await expectCode(intake.take(underSession(a, s, 2)), "REPORT_SESSION_UNKNOWN");
    await expectCode(intake.take((await full(a, 2)).envelope), "REPORT_SIGNATURE"); // the old key no longer signs for a
    const taken = await intake.take((await full(a, 2, newSessionOffer(), { signer: newKey })).envelope);
    expect(taken.session).not.to.equal(undefined);
  });

  it("a suspended or revoked (withdrawn) device is refused as today, and taken back it proves its key again with a full report", async () => {
    const s = await establish(a, 1);
    db.devices.setStanding(a.id, "suspended");
    await expectCode(intake.take(underSession(a, s, 2)), "REPORT_DEVICE_NOT_ACTIVE");
    await expectCode(intake.take((await full(a, 2)).envelope), "REPORT_DEVICE_NOT_ACTIVE");
    db.devices.setStanding(a.id, "active");
    await expectCode(intake.take(underSession(a, s, 2)), "REPORT_SESSION_UNKNOWN"); // the suspension ended the session
    const again = await establish(a, 2);
    db.devices.upsert({ id: a.id, publicKey: a.key.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "revoked" });
    await expectCode(intake.take(underSession(a, again, 3)), "REPORT_DEVICE_NOT_ACTIVE");
    expect(db.sessions.get(a.id)).to.equal(undefined);
  });

  it("a session expires; a module that forwards upstream keeps none (its parent checks each device's signature)", async () => {
    await intake.close();
    intake = open(moduleKey, { sessionMaxAgeMs: 60_000 });
    const s = await establish(a, 1);
    now += 60_000;
    expect((await intake.take(underSession(a, s, 2))).message.body.counter).to.equal(2);
    now += 1;
    await expectCode(intake.take(underSession(a, s, 3)), "REPORT_SESSION_UNKNOWN");
    await intake.close();
    intake = open(moduleKey, { sessions: false });
    const taken = await intake.take((await full(a, 3)).envelope);
    expect(taken.session).to.equal(undefined);
    expect(taken.signature).to.match(/^0x[0-9a-f]{130}$/);
    expect(db.sessions.get(a.id)?.sessionId).to.equal(s.id); // the offer was not taken
    await expectCode(intake.take(underSession(a, s, 4)), "REPORT_SESSION_UNKNOWN"); // nor is any session report
  });

  it("ReportIntake (1 worker thread): full and session reports arriving together settle as they would one by one", async function () {
    this.timeout(20_000);
    await intake.close();
    intake = new ReportIntake(db, me, () => now, { workers: 1, maxBatch: 4 });
    await intake.start();
    const s = await establish(a, 1);
    const mixed: (Envelope | SessionEnvelope)[] = [];
    for (let i = 0; i < 9; i++) mixed.push(underSession(a, s, 2 + i));
    const bFull = await full(b, 1);
    mixed.splice(4, 0, bFull.envelope, (await full(b, 1)).envelope); // the second is a replay of b's counter 1
    mixed.push({ ...underSession(a, s, 50), sealed: "0x" + "ff".repeat(40) });
    const results = await Promise.all(
      mixed.map((e) =>
        intake.take(e).then(
          (r) => r.message.body.counter,
          (err: { code?: string }) => err.code,
        ),
      ),
    );
    expect(results).to.deep.equal([2, 3, 4, 5, 1, "REPORT_REPLAYED", 6, 7, 8, 9, 10, "REPORT_SESSION_AUTHENTICATION"]);
    expect(db.sessions.get(b.id)?.sessionId).to.equal(bFull.offer!.id);
  });
});
