import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { ReportSession, sendStatusReport } from "../../../agent/consumer/statusReport";
import type { StatusReport } from "../../../agent/core/statusReport";
import { FleetStore } from "../../../agent/tracker/store";
import { ReportIntake, reportEnvelope } from "../../../agent/tracker/reportIntake";
import { expectCode } from "../../helpers/expectCode";

/**
 * Issue 17, ADR 0013: the device's side of report sessions, over a real HTTP connection on
 * 127.0.0.1 to the tracker's real intake and fleet database (the route's answer as
 * agent/tracker/trackerHttp.ts gives it: {accepted, counter, notices, session?}, refusals as
 * {error: {code, message}} with the documented status).
 */

const deviceKey = new Wallet(keccak256(toUtf8Bytes("session device key")));
const deviceId = keccak256(toUtf8Bytes("session device")).toLowerCase();
const moduleId = keccak256(toUtf8Bytes("session module")).toLowerCase();
const moduleKey = new Wallet(keccak256(toUtf8Bytes("session module key")));
const STATUS: Record<string, number> = { REPORT_REPLAYED: 409, REPORT_DEVICE_NOT_ACTIVE: 403, MESSAGE_MALFORMED: 400, REPORT_MALFORMED: 400 };

const report = (counter: number): StatusReport => ({ deviceId, counter, installed: [], lastResult: null, needs: [], declined: [], safeMode: false });

describe("agent/consumer/statusReport: report sessions, the device's side (issue 17, ADR 0013)", () => {
  let dir: string;
  let db: FleetStore;
  let intake: ReportIntake;
  let server: http.Server;
  let url: string;
  let seen: string[]; // what each post was: "full", "full+offer" or "session"

  const startIntake = (key: Wallet, sessions = true) =>
    (intake = new ReportIntake(db, { id: moduleId, privateKey: key.privateKey }, Date.now, { workers: 0, sessions }));
  const tracker = (key = moduleKey) => ({ moduleId, publicKey: key.signingKey.compressedPublicKey, url });

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-device-sessions-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
    db.devices.upsert({ id: deviceId, publicKey: deviceKey.signingKey.compressedPublicKey, hardwareClass: 1, network: "n", region: "r", standing: "active" });
    startIntake(moduleKey);
    seen = [];
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const answer = (status: number, body: unknown) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(body));
        };
        try {
          const envelope = reportEnvelope(JSON.parse(Buffer.concat(chunks).toString("utf8")), moduleId);
          seen.push("session" in envelope ? "session" : "full");
          intake.take(envelope).then(
            (r) => answer(200, { accepted: true, counter: r.message.body.counter, notices: [], ...(r.session ? { session: r.session } : {}) }),
            (e: Error & { code?: string }) => answer(STATUS[e.code ?? ""] ?? 401, { error: { code: e.code, message: e.message } }),
          );
        } catch (e) {
          answer(400, { error: { code: (e as { code?: string }).code, message: (e as Error).message } });
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r())));
    await intake.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = (counter: number, session: ReportSession | undefined, key = moduleKey, lines: string[] = []) =>
    sendStatusReport(report(counter), { privateKey: deviceKey.privateKey }, tracker(key), Date.now(), (l) => lines.push(l), session);

  it("CAP-11.2-m-a CAP-11.2-m-b: the first report is sealed in full and opens the session; the next ones go under it", async () => {
    const session = new ReportSession();
    const first = await send(1, session);
    expect(first.envelope).not.to.have.property("session");
    expect(session.id).to.equal(db.sessions.get(deviceId)?.sessionId);
    const second = await send(2, session);
    expect(second.envelope).to.include({ session: session.id });
    await send(3, session);
    expect(seen).to.deep.equal(["full", "session", "session"]);
    expect(db.devices.get(deviceId)?.lastCounter).to.equal(3);
  });

  it("a session the tracker no longer holds (expired, its database restored): the same report goes again in full, once, and opens a new session", async () => {
    const session = new ReportSession();
    await send(1, session);
    const before = session.id;
    db.sessions.drop(deviceId);
    const lines: string[] = [];
    await send(2, session, moduleKey, lines);
    expect(seen).to.deep.equal(["full", "session", "full"]);
    expect(lines.join("\n")).to.include("REPORT_SESSION_UNKNOWN");
    expect(session.id).to.be.a("string").and.not.equal(before);
    expect(db.devices.get(deviceId)?.lastCounter).to.equal(2);
    await send(3, session);
    expect(seen.at(-1)).to.equal("session");
  });

  it("the module's key rotated: the device, told the new key, drops its session itself and opens a new one in full", async () => {
    const session = new ReportSession();
    await send(1, session);
    const old = session.id;
    await intake.close();
    const rotated = new Wallet(keccak256(toUtf8Bytes("session module key, rotated")));
    startIntake(rotated);
    await send(2, session, rotated);
    expect(seen).to.deep.equal(["full", "full"]); // no session report under the old key was sent
    expect(session.id).to.be.a("string").and.not.equal(old);
    await send(3, session, rotated);
    expect(seen.at(-1)).to.equal("session");
    // A device that was not told: its session report is refused, its full report sealed to the old key too.
    const stale = new ReportSession();
    await intake.close();
    startIntake(moduleKey);
    await send(4, stale);
    await intake.close();
    startIntake(rotated);
    await expectCode(send(5, stale), "TRACKER_REFUSED");
    expect(seen.slice(-2)).to.deep.equal(["session", "full"]);
    expect(db.devices.get(deviceId)?.lastCounter).to.equal(4);
  });

  it("a tracker without sessions (a module with a parent, or an older tracker) keeps taking full reports", async () => {
    await intake.close();
    startIntake(moduleKey, false);
    const session = new ReportSession();
    for (const counter of [1, 2, 3]) await send(counter, session);
    expect(seen).to.deep.equal(["full", "full", "full"]);
    expect(session.id).to.equal(undefined);
    // And a device without a session holder (an older agent) offers none.
    await send(4, undefined);
    expect(db.devices.get(deviceId)?.lastCounter).to.equal(4);
  });

  it("a refusal that is not about the session is the device's to see: a suspended device is not resent in full", async () => {
    const session = new ReportSession();
    await send(1, session);
    db.devices.setStanding(deviceId, "suspended");
    const err = await send(2, session).catch((e: { refusal?: string }) => e);
    expect(err).to.have.property("refusal", "REPORT_DEVICE_NOT_ACTIVE");
    expect(seen).to.deep.equal(["full", "session"]);
  });
});
