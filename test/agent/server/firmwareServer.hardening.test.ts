import { expect } from "chai";
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signAccountRequest, signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { startFirmwareServer, type FirmwareServerOptions, type RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";

/**
 * Issue 15, the agents' findings on the firmware server, each as the review reproduced it: a
 * submission is the author's, and one that stalls holds nothing for long; a key the ledger never
 * enrolled cannot spend the server's replay window; a stale request is told the server's time.
 */

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
type Release = Awaited<ReturnType<Fixture["release"]>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("agent/server firmware server: issue 15 hardening (CAP-11.3-a, CAP-11.3-b, PROC-4)", function () {
  this.timeout(180_000);
  let f: Fixture;
  let main: Release; // served, key granted to device a
  const extra: RunningFirmwareServer[] = [];
  let image = 0;

  before(async () => {
    f = await serverFixture();
    main = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: writeImage(f.dir, "boot.bin", 64 * 1024, 1), hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
  });
  after(async () => {
    for (const s of extra) await s.close();
    await f?.close();
  });

  /** Another server over the fixture's ledger, store and database, with other limits. */
  async function serverWith(o: Partial<FirmwareServerOptions>): Promise<RunningFirmwareServer> {
    const s = await startFirmwareServer({ gate: f.gate, store: f.store, db: f.db, pollMs: 100, ...o });
    extra.push(s);
    return s;
  }
  /** A release of a component of its own, published and not submitted. */
  async function unsubmitted(size = 300 * 1024): Promise<Release> {
    image += 1;
    return f.release(
      {
        component: "acme.sensor-fw",
        version: `1.${image}.0`,
        file: writeImage(f.dir, `sensor-${image}.bin`, size, 100 + image),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { upload: false },
    );
  }
  /** A submission that sends the artifact's first `bytes` and then nothing: its status once answered, if ever. */
  async function stalledSubmission(serverUrl: string, r: Release, bytes: number) {
    const req = http.request(new URL(`/v1/releases/${r.releaseId.toLowerCase()}/artifact`, serverUrl), {
      method: "POST",
      headers: {
        ...(await f.submissionHeaders(r.releaseId, f.acmeAuthor, serverUrl)),
        "content-type": "application/octet-stream",
        "transfer-encoding": "chunked",
      },
    });
    req.on("error", () => {});
    let answered: { status: number; code: string } | undefined;
    const answer = new Promise<{ status: number; code: string }>((resolve) =>
      req.on("response", (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () => {
          const body = Buffer.concat(parts).toString("utf8");
          resolve((answered = { status: res.statusCode!, code: body ? JSON.parse(body).error?.code : "" }));
        });
      }),
    );
    req.write(readFileSync(r.artifactFile).subarray(0, bytes));
    return { answer, answered: () => answered, close: () => req.destroy() };
  }
  const deviceGet = (device: DeviceIdentity, pathname: string, serverUrl = f.server.url, now?: number) =>
    fetch(new URL(pathname, serverUrl), {
      headers: signDeviceRequest(device.privateKey, device.credential.record.id, encodeDeviceCredential(device.credential), {
        audience: serverUrl,
        method: "GET",
        path: pathname,
        context: encodeInstalled([]),
        now,
      }),
    });
  const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; details: Record<string, unknown> } }).error;
  const manifestPath = () => `/v1/releases/${main.releaseId.toLowerCase()}/manifest`;

  describe("submissions", () => {
    it("finding: a submission is no longer anonymous: unsigned, or signed by an account that is not an author of the release's provider, it is refused and nothing is kept (CAP-11.3-a)", async () => {
      const r = await unsubmitted();
      const post = async (headers: Record<string, string>) => {
        const res = await fetch(new URL(`/v1/releases/${r.releaseId.toLowerCase()}/artifact`, f.server.url), {
          method: "POST",
          headers: { ...headers, "content-type": "application/octet-stream" },
          body: readFileSync(r.artifactFile),
        });
        return [res.status, (await errorOf(res)).code];
      };
      expect(await post({})).to.deep.equal([401, "AUTH_MISSING"]);
      expect(await post(await f.submissionHeaders(r.releaseId, f.globexAuthor))).to.deep.equal([403, "NOT_AUTHORIZED"]); // another provider's author
      expect(await post(await f.submissionHeaders(r.releaseId, f.outsider))).to.deep.equal([403, "NOT_AUTHORIZED"]); // no role, no provider
      expect(f.db.artifact(r.releaseId)).to.equal(undefined);
      expect(await f.store.has(r.record.fileLink)).to.equal(false);
      // The author's tool signs: the same bytes are taken.
      expect((await uploadArtifact({ serverUrl: f.server.url, author: f.acmeAuthor }, r.releaseId, r.artifactFile)).status).to.equal(201);
    });

    it("finding: a stalled submission no longer holds every author's upload: another release's submission is taken while it stalls", async () => {
      const [stuck, other] = [await unsubmitted(), await unsubmitted()];
      const stalled = await stalledSubmission(f.server.url, stuck, 8 * 1024); // a valid header and a little, then nothing
      try {
        await sleep(200);
        // Before issue 15 submissions were taken one at a time: this one waited for the stalled one, for good.
        const upload = uploadArtifact({ serverUrl: f.server.url, author: f.acmeAuthor }, other.releaseId, other.artifactFile);
        const result = await Promise.race([upload, sleep(20_000).then(() => "still waiting behind the stalled submission")]);
        expect(result).to.deep.include({ status: 201 });
        expect(f.db.artifact(other.releaseId)!.state).to.equal("serving");
        expect(stalled.answered(), "the stalled submission is still open").to.equal(undefined);
      } finally {
        stalled.close();
      }
    });

    it("finding: a stalled submission has a deadline: it is refused SUBMISSION_TOO_SLOW, nothing of it is kept, and its release can be submitted again", async () => {
      const s = await serverWith({ submission: { graceMs: 500, minBytesPerSecond: 1e12 } });
      const r = await unsubmitted();
      const stalled = await stalledSubmission(s.url, r, 8 * 1024);
      try {
        const answer = await Promise.race([stalled.answer, sleep(20_000).then(() => "no answer")]);
        expect(answer).to.deep.equal({ status: 408, code: "SUBMISSION_TOO_SLOW" });
      } finally {
        stalled.close();
      }
      expect(f.db.artifact(r.releaseId)).to.equal(undefined);
      // The same release, whole and at full speed, takes the turn the stalled one held.
      expect((await uploadArtifact({ serverUrl: s.url, author: f.acmeAuthor }, r.releaseId, r.artifactFile)).status).to.equal(201);
    });
  });

  describe("signed requests", () => {
    it("finding: requests signed by never-enrolled keys no longer fill the replay window: they are refused DEVICE_NOT_ENROLLED before their nonce is kept, and enrolled devices are still served", async () => {
      // A replay window of 5 nonces: before issue 15 the stranger's 5 requests filled it, and the
      // 6th request, anyone's, was answered SERVER_BUSY.
      // A database of its own, whose nonces only this test spends (it holds no artifact).
      const db = new ServerDatabase(path.join(f.dir, "replay-window.db"));
      const s = await serverWith({ db, authLimits: { maxNonces: 5 } });
      try {
        for (let i = 0; i < 8; i++) {
          const res = await deviceGet(f.devices.stranger, manifestPath(), s.url);
          expect([res.status, (await errorOf(res)).code]).to.deep.equal([403, "DEVICE_NOT_ENROLLED"]);
        }
        expect(db.nonces.total(Date.now())).to.equal(0);
        // An enrolled device passes authentication (and is told the server holds no such artifact).
        expect((await errorOf(await deviceGet(f.devices.a, manifestPath(), s.url))).code).to.equal("ARTIFACT_NOT_AVAILABLE");
        expect(db.nonces.total(Date.now())).to.equal(1);
      } finally {
        await s.close();
        extra.splice(extra.indexOf(s), 1);
        db.close();
      }
    });

    it("finding: one identity cannot spend the replay window alone: past its quota it is answered AUTH_QUOTA (429), and the others are served", async () => {
      const s = await serverWith({ authLimits: { maxNoncesPerIdentity: 3 } });
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) codes.push((await errorOf(await deviceGet(f.devices.b, manifestPath(), s.url))).code);
      // b passes authentication three times (it has no key for the release), then is over its quota.
      expect(codes).to.deep.equal(["KEY_NOT_GRANTED", "KEY_NOT_GRANTED", "KEY_NOT_GRANTED", "AUTH_QUOTA"]);
      expect((await deviceGet(f.devices.a, manifestPath(), s.url)).status).to.equal(200);
    });

    it("finding: a stale request is told the server's time (Date header, details.serverTime), so a device whose clock is off can correct it", async () => {
      const res = await deviceGet(f.devices.a, manifestPath(), f.server.url, Date.now() - 90_000); // a device clock 90 s behind
      const error = await errorOf(res);
      expect([res.status, error.code]).to.deep.equal([401, "AUTH_STALE"]);
      const date = Date.parse(res.headers.get("date") ?? "");
      expect(Math.abs(date - Date.now())).to.be.below(5_000);
      expect(Math.abs((error.details.serverTime as number) - Date.now())).to.be.below(5_000);
      // Signed with the server's time, the same request is taken.
      expect((await deviceGet(f.devices.a, manifestPath(), f.server.url, error.details.serverTime as number)).status).to.equal(200);
      // The Date header is the server's clock, not the machine's (here the server runs an hour ahead).
      const ahead = await serverWith({ now: () => Date.now() + 3_600_000 });
      const refused = await deviceGet(f.devices.a, manifestPath(), ahead.url);
      expect(refused.status).to.equal(401);
      expect(Math.abs(Date.parse(refused.headers.get("date")!) - (Date.now() + 3_600_000))).to.be.below(5_000);
      const corrected = Date.parse(refused.headers.get("date")!) + 500; // a device that knows only the header (1 s resolution)
      expect((await deviceGet(f.devices.a, manifestPath(), ahead.url, corrected)).status).to.equal(200);
    });

    it("an account request of an account with no role is refused NOT_AUTHORIZED before its nonce is kept", async () => {
      const pathname = "/v1/downloads";
      const res = await fetch(new URL(pathname, f.server.url), {
        headers: await signAccountRequest(f.outsider, { audience: f.server.url, method: "GET", path: pathname }),
      });
      expect([res.status, (await errorOf(res)).code]).to.deep.equal([403, "NOT_AUTHORIZED"]);
      expect(f.db.nonces.countOf(f.outsider.address.toLowerCase(), Date.now())).to.equal(0);
    });
  });
});
