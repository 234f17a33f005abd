import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { sendStatusReport } from "../../../agent/consumer/statusReport";
import type { StatusReport } from "../../../agent/core/statusReport";
import { ERROR_ANSWER_MAX_BYTES, NOTICES_PER_ANSWER_MAX, REPORT_ANSWER_MAX_BYTES, REPORT_LIST_MAX } from "../../../agent/core/wireLimits";
import { expectCode } from "../../helpers/expectCode";

/**
 * Issue 15: what a device reads from its tracker is bounded. A tracker module is not trusted for
 * availability (nor is what sits on the path to it): these play one that answers too much, over a
 * real HTTP connection on 127.0.0.1, and count what the device read of it.
 */

const moduleKey = new Wallet(keccak256(toUtf8Bytes("rogue tracker module")));
const device = new Wallet(keccak256(toUtf8Bytes("bounded report device")));
const deviceId = keccak256(toUtf8Bytes("bounded report device id"));
const MiB = 1024 * 1024;

/** A tracker that answers every report with `status` and `size` bytes of `fill` (chunked, no length), counting what the device took. */
async function rogueTracker(status: number, body: { size: number; head?: string }) {
  const sent = { bytes: 0, closedEarly: false };
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { "content-type": "application/json" });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let left = body.size;
    if (body.head) {
      res.write(body.head);
      sent.bytes += body.head.length;
      left -= body.head.length;
    }
    res.on("close", () => (sent.closedEarly = left > 0));
    const pump = () => {
      while (left > 0) {
        const n = Math.min(chunk.length, left);
        left -= n;
        sent.bytes += n;
        if (!res.write(chunk.subarray(0, n))) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, sent, close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))) };
}

const report = (over: Partial<StatusReport> = {}): StatusReport => ({
  deviceId,
  counter: 1,
  installed: [],
  lastResult: null,
  needs: [],
  declined: [],
  safeMode: false,
  ...over,
});
const tracker = (url: string) => ({ moduleId: keccak256(toUtf8Bytes("module")), publicKey: moduleKey.signingKey.compressedPublicKey, url });

describe("agent/consumer/statusReport: the tracker's answers are bounded (issue 15, CAP-11.2-d, PROC-5)", function () {
  this.timeout(60_000);

  it(`finding: a tracker's 200 MiB refusal no longer grows the device's memory: it reads at most ${ERROR_ANSWER_MAX_BYTES} bytes of it`, async () => {
    const rogue = await rogueTracker(403, { size: 200 * MiB, head: '{"error": {"code": "NO", "message": "' });
    try {
      const rss = process.memoryUsage().rss;
      await expectCode(sendStatusReport(report(), device, tracker(rogue.url)), "TRACKER_REFUSED");
      // What the device took before hanging up: its read, and what the sockets' buffers held.
      await new Promise((r) => setTimeout(r, 200));
      expect(rogue.sent.bytes, "bytes the tracker got to send").to.be.below(32 * MiB);
      expect(rogue.sent.closedEarly).to.equal(true);
      expect(process.memoryUsage().rss - rss).to.be.below(64 * MiB);
    } finally {
      await rogue.close();
    }
  });

  it(`finding: an answer to a report over ${REPORT_ANSWER_MAX_BYTES} bytes is not read whole: the report counts as taken, its notices are dropped and logged`, async () => {
    const rogue = await rogueTracker(200, { size: 64 * MiB, head: '{"accepted": true, "counter": 1, "notices": [' });
    const lines: string[] = [];
    try {
      const { notices } = await sendStatusReport(report(), device, tracker(rogue.url), Date.now(), (l) => lines.push(l));
      expect(notices).to.deep.equal([]);
      expect(lines.join("\n")).to.match(/ANSWER_TOO_LARGE|at most \d+ bytes/);
      await new Promise((r) => setTimeout(r, 200));
      expect(rogue.sent.bytes).to.be.below(32 * MiB);
    } finally {
      await rogue.close();
    }
  });

  it(`finding: a device takes at most ${NOTICES_PER_ANSWER_MAX} notices from one answer (one key exchange each); the excess is dropped and logged`, async () => {
    const notice = { v: 1, kind: "update-notice", from: "0x" + "11".repeat(32), to: deviceId, sealed: "0x" + "ab".repeat(200) };
    const body = JSON.stringify({ accepted: true, counter: 1, notices: Array.from({ length: 200 }, () => notice) });
    expect(body.length).to.be.below(REPORT_ANSWER_MAX_BYTES); // within the size bound: only the count is over
    const server = http.createServer((req, res) => (req.resume(), res.writeHead(200, { "content-type": "application/json" }), res.end(body)));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const lines: string[] = [];
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { notices } = await sendStatusReport(report(), device, tracker(url), Date.now(), (l) => lines.push(l));
      expect(notices).to.have.length(NOTICES_PER_ANSWER_MAX);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include(`holds 200 notices; taking the first ${NOTICES_PER_ANSWER_MAX} and dropping ${200 - NOTICES_PER_ANSWER_MAX}`);
    } finally {
      server.close();
    }
  });

  it(`sends the newest ${REPORT_LIST_MAX} needed and declined releases, so the report stays under the tracker's body limit`, async () => {
    let received: Buffer | undefined;
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (d: Buffer) => parts.push(d));
      req.on(
        "end",
        () => (
          (received = Buffer.concat(parts)),
          res.writeHead(200, { "content-type": "application/json" }),
          res.end('{"accepted":true,"counter":1,"notices":[]}')
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const id = (i: number) => "0x" + i.toString(16).padStart(64, "0");
      const many = report({
        needs: Array.from({ length: 100 }, (_, i) => ({ releaseId: id(i), component: id(1000 + i), reason: "outdated" })),
        declined: Array.from({ length: 100 }, (_, i) => ({ releaseId: id(i), code: "POLICY_DECLINED" })),
      });
      const { envelope } = await sendStatusReport(many, device, tracker(url));
      expect(received!.length).to.equal(Buffer.byteLength(JSON.stringify(envelope)));
      const { openMessage } = await import("../../../agent/crypto/sealedMessage");
      const opened = openMessage<StatusReport>(envelope, moduleKey.privateKey, tracker(url).moduleId, "device");
      expect(opened.message.body.needs.map((n) => n.releaseId)).to.deep.equal(many.needs.slice(-REPORT_LIST_MAX).map((n) => n.releaseId));
      expect(opened.message.body.declined).to.have.length(REPORT_LIST_MAX);
      await expectCode(
        sendStatusReport(
          report({
            installed: Array.from({ length: REPORT_LIST_MAX + 1 }, (_, i) => ({ component: id(i), version: "1", releaseId: id(i), slot: "a" as const })),
          }),
          device,
          tracker(url),
        ),
        "REPORT_TOO_MANY_COMPONENTS",
      );
    } finally {
      server.close();
    }
  });
});
