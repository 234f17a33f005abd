import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Wallet } from "ethers";
import { pullDownloadLog } from "../../../agent/tracker/downloadLog";
import { signAccountRequest } from "../../../agent/crypto/requestSignature";
import { sealMessage } from "../../../agent/crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { REPORT_BODY_MAX_BYTES, REPORT_LIST_MAX, REPORT_PROOF_MAX } from "../../../agent/core/wireLimits";
import { TrackerModule } from "../../../agent/tracker/trackerModule";
import { DECISIONS_KIND } from "../../../agent/tracker/moduleMessages";
import { startTrackerHttp } from "../../../agent/tracker/trackerHttp";
import { BOOTLOADER, startTracker, testDevice, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";
import { expectCode } from "../../helpers/expectCode";

/**
 * Issue 15, the agents' findings on the status tracker: `/v1/reports` (anyone may post) is bounded
 * by the largest legitimate report, and the replay state that must survive a restart does.
 */
describe("agent/tracker: issue 15 hardening (PROC-5, DEP-8.2.3, PROC-2)", function () {
  this.timeout(240_000);
  let t: TrackerChain;
  let server: Awaited<ReturnType<TrackerChain["registerModule"]>>;
  let running: Awaited<ReturnType<typeof startTracker>>;
  const device = testDevice("hardening largest report", 1, "plant-1");

  before(async () => {
    t = await trackerChain();
    server = await t.registerModule("hardening server");
    await t.enrol([device]);
    running = await startTracker(t, server);
    await running.tracker.stream.pollOnce();
  });
  after(async () => {
    await running?.stop();
    await t?.c.stop();
  });

  const post = async (url: string, body: string) => {
    const res = await fetch(new URL("/v1/reports", url), { method: "POST", headers: { "content-type": "application/json" }, body });
    return { status: res.status, body: (await res.json()) as { accepted?: boolean; error?: { code: string; message: string } } };
  };
  const hex32 = (i: number) => "0x" + i.toString(16).padStart(64, "0");

  /** The largest report a device sends (agent/core/wireLimits.ts): every list full, a batch credential with the longest proof. */
  function largestReport(counter: number): StatusReport {
    return {
      deviceId: device.record.id,
      counter,
      installed: Array.from({ length: REPORT_LIST_MAX }, (_, i) => ({
        component: i === 0 ? BOOTLOADER : hex32(1000 + i),
        version: "18446744073709551615",
        releaseId: hex32(2000 + i),
        slot: "b",
      })),
      lastResult: { releaseId: hex32(3000), component: hex32(3001), outcome: "rolled-back", code: "DEPENDENCY_VERSION_OUT_OF_RANGE", at: Date.now() },
      needs: Array.from({ length: REPORT_LIST_MAX }, (_, i) => ({ releaseId: hex32(4000 + i), component: hex32(5000 + i), reason: "vulnerable-installed" })),
      declined: Array.from({ length: REPORT_LIST_MAX }, (_, i) => ({ releaseId: hex32(6000 + i), code: "DEPENDENCY_VERSION_OUT_OF_RANGE" })),
      safeMode: false,
      credential: { record: device.record, batchId: 4294967295, proof: Array.from({ length: REPORT_PROOF_MAX }, (_, i) => hex32(7000 + i)) },
    };
  }

  it(`finding: /v1/reports no longer takes 16 MiB bodies: over ${REPORT_BODY_MAX_BYTES} bytes a report is refused 413 by its length, before it is parsed`, async () => {
    // Before issue 15 this megabyte was read, parsed and queued, and answered 400 only then.
    const res = await post(
      running.http.url,
      JSON.stringify({ v: 1, kind: REPORT_KIND, from: device.record.id, to: server.id, sealed: "0x" + "ab".repeat(512 * 1024) }),
    );
    expect(res.status).to.equal(413);
    expect(res.body.error).to.deep.equal({
      code: "BAD_REQUEST",
      message: `a status report is at most ${REPORT_BODY_MAX_BYTES} bytes (agent/core/wireLimits.ts); send a smaller one`,
    });
  });

  it("the largest legitimate report is under the limit and taken, which is why the limit is what it is", async () => {
    const envelope = await sealMessage(
      { kind: REPORT_KIND, from: device.record.id, to: server.id, issuedAt: Date.now(), body: largestReport(1) },
      { kind: "device", privateKey: device.key.privateKey },
      server.publicKey,
    );
    const body = JSON.stringify(envelope);
    expect(body.length).to.be.below(REPORT_BODY_MAX_BYTES);
    expect(body.length, "the limit leaves a margin, not a second megabyte").to.be.above(REPORT_BODY_MAX_BYTES * 0.6);
    const res = await post(running.http.url, body);
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.body.accepted).to.equal(true);
  });

  it("an envelope that is not a report for this module is refused before it is opened", async () => {
    const res = await post(running.http.url, JSON.stringify({ v: 1, kind: REPORT_KIND, from: device.record.id, to: hex32(9), sealed: "0x00" }));
    expect([res.status, res.body.error?.code]).to.deep.equal([400, "MESSAGE_NOT_FOR_ME"]);
    const notHex = await post(running.http.url, JSON.stringify({ v: 1, kind: REPORT_KIND, from: device.record.id, to: server.id, sealed: "not hex" }));
    expect([notHex.status, notHex.body.error?.code]).to.deep.equal([400, "MESSAGE_MALFORMED"]);
  });

  it("CAP-11.2-d finding: an intermediate module's last parent decision time survives a restart: decisions replayed after it are refused MESSAGE_REPLAYED", async () => {
    const plant = await t.registerModule("hardening plant", server.id);
    const mid = await startTracker(t, plant, { parent: { id: server.id, url: running.http.url }, upstreamMs: 3_600_000 });
    const decisions = await sealMessage(
      { kind: DECISIONS_KIND, from: server.id, to: plant.id, issuedAt: Date.now(), body: { decisions: [] } },
      { kind: "account", signMessage: (m) => new Wallet(server.privateKey).signMessage(m) },
      plant.publicKey,
    );
    expect(await mid.tracker.takeDecisions(decisions)).to.equal(0);
    await expectCode(mid.tracker.takeDecisions(decisions), "MESSAGE_REPLAYED");
    await mid.http.close();
    await mid.tracker.stop();
    // Before issue 15 the mark was in memory: the restarted module took the same decisions again.
    const again = new TrackerModule({ ...mid.tracker.options });
    try {
      await expectCode(again.takeDecisions(decisions), "MESSAGE_REPLAYED");
    } finally {
      await again.stop();
      await mid.stop().catch(() => {});
    }
  });

  it("finding: the tracker's nonces survive a restart: an administrator's request taken before it is refused AUTH_REPLAY after it, one signed just before it is taken", async () => {
    const pathname = "/v1/update-requests";
    const body = JSON.stringify({ releaseId: hex32(1), devices: [device.record.id] });
    const sign = () => signAccountRequest(t.c.admin, { audience: running.http.url, method: "POST", path: pathname, body });
    const send = async (url: string, headers: Record<string, string>) => {
      const res = await fetch(new URL(pathname, url), { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
      return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
    };
    const taken = await sign();
    const before = await send(running.http.url, taken);
    expect(before.code, "the request passes authentication (its release is unknown)").to.equal("RELEASE_UNKNOWN");
    const signedBefore = await sign();
    const origin = new URL(running.http.url).origin;
    await running.http.close();
    const http = await startTrackerHttp(running.tracker, { publicOrigin: origin }); // on another port, for the same signed origin
    running = { ...running, http };
    // Before issue 15, nonces were in memory and both were refused AUTH_STALE (signed before the start).
    expect(await send(http.url, taken)).to.deep.equal({ status: 409, code: "AUTH_REPLAY" });
    expect((await send(http.url, signedBefore)).code).to.equal("RELEASE_UNKNOWN");
  });

  it("a firmware server's download log is read a page at a time up to a bound: a server answering without end costs the tracker no memory", async () => {
    let sent = 0;
    const rogue = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"downloads": [');
      const entry = Buffer.from(JSON.stringify({ id: 1, at: 1, deviceId: device.record.id, releaseId: hex32(1), kind: "block", complete: false }) + ",");
      const pump = () => {
        while (sent < 256 * 1024 * 1024) {
          sent += entry.length;
          if (!res.write(entry)) return void res.once("drain", pump);
        }
        res.end("]}");
      };
      pump();
    });
    await new Promise<void>((r) => rogue.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(rogue.address() as AddressInfo).port}`;
      await expectCode(pullDownloadLog(running.tracker.store, url, new Wallet(server.privateKey)), "ANSWER_TOO_LARGE");
      expect(sent).to.be.below(64 * 1024 * 1024);
      expect(running.tracker.store.downloads.of(device.record.id)).to.deep.equal([]);
    } finally {
      rogue.closeAllConnections();
      rogue.close();
    }
  });
});
