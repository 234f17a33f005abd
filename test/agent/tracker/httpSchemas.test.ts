import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyRequest } from "fastify";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { FleetStore } from "../../../agent/tracker/store";
import { FleetPlanner } from "../../../agent/tracker/fleetPlanner";
import { FleetViews } from "../../../agent/tracker/fleetViews";
import { takeSealedReport } from "../../../agent/tracker/reportIntake";
import { createTrackerApp, type TrackerApp } from "../../../agent/tracker/http/server";
import { fleetRoutes } from "../../../agent/tracker/http/routes/fleet";
import { adminRoutes } from "../../../agent/tracker/http/routes/admin";
import type { RouteContext } from "../../../agent/tracker/http/routes/context";
import type { TrackerModule } from "../../../agent/tracker/trackerModule";
import type { RefusalNames } from "../../../agent/chain/policyExplanation";
import { RequestRefused } from "../../../agent/crypto/requestAuth";
import { sealMessage } from "../../../agent/crypto/sealedMessage";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { withSqlite } from "../../helpers/sqliteFile";

const moduleKey = new Wallet(keccak256(toUtf8Bytes("http schemas tracker")));
const me = { id: keccak256(toUtf8Bytes("http schemas module")), privateKey: moduleKey.privateKey };
const component = keccak256(toUtf8Bytes("acme.bootloader")).toLowerCase();
const release = "0x" + "34".repeat(32);
const POLICY = "0x" + "7a".repeat(20);

/**
 * The tracker's route schemas as an attacker or a lying peer meets them, on the HTTP app with a
 * fleet store behind it and no chain: what a device's own report can make the answers hold, and
 * what a request that cannot sign costs before it is refused.
 */
describe("agent/tracker/http: the route schemas against devices' reports and unsigned requests (issue 20)", function () {
  this.timeout(60_000);
  let dir: string;
  let store: FleetStore;
  let app: TrackerApp;
  /** What the app's authenticate saw of the body (undefined: not parsed yet), and whether it lets the request through. */
  let bodyAtAuthentication: unknown;
  let admitted = false;

  const device = (label: string) => ({
    id: keccak256(toUtf8Bytes(`http schemas device ${label}`)).toLowerCase(),
    key: new Wallet(keccak256(toUtf8Bytes(`key ${label}`))),
  });
  const noRelease = device("no release");
  const refusedNoRelease = device("policy refusal without a release");
  /** A report as a device (any holder of a device key) may write it: what the intake's schema takes, not only what the device agent writes. */
  type LastResult = Record<string, unknown>;
  const report = (deviceId: string, lastResult: LastResult): StatusReport => ({
    deviceId,
    counter: 1,
    installed: [{ component, version: "4294967296", releaseId: release, slot: "a" }],
    lastResult: lastResult as unknown as StatusReport["lastResult"],
    needs: [],
    declined: [],
    safeMode: false,
  });

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-http-schemas-"));
    store = new FleetStore(path.join(dir, "fleet.db"));
    for (const d of [noRelease, refusedNoRelease])
      store.devices.upsert({
        id: d.id,
        publicKey: d.key.signingKey.compressedPublicKey,
        hardwareClass: 1,
        network: encodeBytes32String("plant-1"),
        region: encodeBytes32String("eu-west"),
        standing: "active",
      });
    // Reports the intake takes (over HTTP and MQTT alike): a last result about no release ("").
    const take = async (d: ReturnType<typeof device>, lastResult: LastResult) =>
      takeSealedReport(
        store,
        await sealMessage(
          { kind: REPORT_KIND, from: d.id, to: me.id, issuedAt: Date.now(), body: report(d.id, lastResult) },
          { kind: "device", privateKey: d.key.privateKey },
          moduleKey.signingKey.compressedPublicKey,
        ),
        me,
        Date.now(),
      );
    await take(noRelease, { releaseId: "", outcome: "blocked", code: "NETWORK_UNREACHABLE" });
    await take(refusedNoRelease, { outcome: "rejected", code: "POLICY_REFUSED", policy: { address: POLICY, reason: "3" } });

    const views = new FleetViews(store, new FleetPlanner(store), 3_600_000, () => Date.now());
    const tracker = {
      views,
      store,
      now: () => Date.now(),
      tagsChanged: async () => 0,
      options: { chain: { registry: { hasRole: async () => true } } },
    } as unknown as TrackerModule;
    const refusalNames = {
      of: async (policy: string, reason: string) => ({ policy, reason, path: [], decidedBy: { policy, reason, name: "NOT_IN_COHORT" } }),
    } as unknown as RefusalNames;
    app = await createTrackerApp({
      authenticate: async (req: FastifyRequest) => {
        bodyAtAuthentication = req.body;
        if (!admitted) throw new RequestRefused("AUTH_SIGNATURE", "the request is not signed by 0x0000000000000000000000000000000000000001");
        return "0x" + "ad".repeat(20);
      },
    });
    const ctx: RouteContext = { tracker, log: () => {}, reader: () => {}, refusalNames };
    fleetRoutes(app, ctx);
    adminRoutes(app, ctx);
    await app.ready();
  });
  after(async () => {
    await app?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a device whose last result names no release (releaseId "", which the intake takes) leaves the device list and its detail readable: lastRelease null, not a 500', async () => {
    const list = await app.inject({ url: "/v1/fleet/devices?limit=1000" });
    expect(list.statusCode, list.body).to.equal(200);
    const listed = list.json().devices.find((d: { id: string }) => d.id === noRelease.id);
    expect(listed).to.include({ lastRelease: null, lastReleaseName: null, lastCode: "NETWORK_UNREACHABLE" });
    const detail = await app.inject({ url: `/v1/fleet/devices/${noRelease.id}` });
    expect(detail.statusCode, detail.body).to.equal(200);
    expect(detail.json().device).to.include({ lastRelease: null });
    expect(detail.json().reports[0].body.lastResult).to.include({ releaseId: "" }); // the report as the device sent it
  });

  it("a device's POLICY_REFUSED result that names no release leaves its detail readable (no policy refusal named), not a 500", async () => {
    const detail = await app.inject({ url: `/v1/fleet/devices/${refusedNoRelease.id}` });
    expect(detail.statusCode, detail.body).to.equal(200);
    expect(detail.json().policyRefusal).to.equal(null);
  });

  it("an administrator's signed request is not parsed as JSON before its signature checks out; once it does, its body is parsed and held to its schema", async () => {
    const post = (payload: string) =>
      app.inject({ method: "POST", url: "/v1/groups", headers: { "content-type": "application/json", ...signedHeaders }, payload });
    // The headers' form: what the (stubbed) authentication checks.
    const signedHeaders = {
      "x-ota-account": "0x" + "ad".repeat(20),
      "x-ota-timestamp": String(Date.now()),
      "x-ota-nonce": "ab".repeat(16),
      "x-ota-signature": "0x" + "11".repeat(65),
    };
    admitted = false;
    bodyAtAuthentication = "not asked";
    const refused = await post(JSON.stringify({ name: "canary", query: "ring=1" }));
    expect(refused.statusCode).to.equal(401);
    expect(refused.json().error.code).to.equal("AUTH_SIGNATURE");
    expect(bodyAtAuthentication, "the body is parsed only after the signature").to.equal(undefined);
    expect((await post("{ not json")).json().error.code).to.equal("AUTH_SIGNATURE"); // the signature first, whatever the body

    admitted = true;
    const notJson = await post("{ not json");
    expect(notJson.statusCode).to.equal(400);
    expect(notJson.json().error).to.deep.equal({ code: "BAD_REQUEST", message: "the body is not valid JSON" });
    const extra = await post(JSON.stringify({ name: "canary", query: "ring=1", by: "me" }));
    expect(extra.statusCode).to.equal(400);
    expect(extra.json().error.code).to.equal("BAD_REQUEST");
    const badQuery = await post(JSON.stringify({ name: "canary", query: "!ring=1" }));
    expect(badQuery.json().error.code).to.equal("QUERY_INVALID");
    const saved = await post(JSON.stringify({ name: "canary", query: "ring=1" }));
    expect(saved.statusCode, saved.body).to.equal(200);
    expect(saved.json()).to.deep.equal({ name: "canary", query: "ring=1", devices: 0 });
  });
  const signedPost = (url: string, payload: string) =>
    app.inject({
      method: "POST",
      url,
      headers: {
        "content-type": "application/json",
        "x-ota-account": "0x" + "ad".repeat(20),
        "x-ota-timestamp": String(Date.now()),
        "x-ota-nonce": "cd".repeat(16),
        "x-ota-signature": "0x" + "11".repeat(65),
      },
      payload,
    });

  it('review finding: a body with a "__proto__" key is refused (400 BAD_REQUEST), not applied without it: zod\'s records skip that key, so the tracker would do less than was signed', async () => {
    admitted = true;
    const tags = await signedPost(`/v1/fleet/devices/${noRelease.id}/tags`, '{"set": {"__proto__": "x", "site": "a"}}');
    expect(tags.statusCode, tags.body).to.equal(400);
    expect(tags.json().error).to.deep.equal({ code: "BAD_REQUEST", message: 'the body has a key named "__proto__", which is not accepted: remove it' });
    expect(store.tags.of(noRelease.id), "nothing applied").to.deep.equal({});
    const group = await signedPost("/v1/groups", '{"name": "proto", "query": "ring=1", "__proto__": {"admin": true}}');
    expect(group.json().error.code).to.equal("BAD_REQUEST");
    // The words inside a value are no key: such a body is taken.
    const inValue = await signedPost(`/v1/fleet/devices/${noRelease.id}/tags`, '{"set": {"note": "__proto__"}}');
    expect(inValue.statusCode, inValue.body).to.equal(200);
  });

  it('review finding: a tag key named "constructor" may be removed (own keys only are "both set and removed")', async () => {
    admitted = true;
    const answer = await signedPost(`/v1/fleet/devices/${noRelease.id}/tags`, '{"set": {"site": "b"}, "remove": ["constructor"]}');
    expect(answer.statusCode, answer.body).to.equal(200);
    const both = await signedPost(`/v1/fleet/devices/${noRelease.id}/tags`, '{"set": {"site": "b"}, "remove": ["site"]}');
    expect(both.json().error.message).to.match(/tag "site" is both set and removed/);
  });

  it("review finding: a report stored by an earlier tracker, in a shape the schema no longer takes, leaves the device's detail readable, answered as stored", async () => {
    const old = { deviceId: noRelease.id, counter: 1, installed: [], needs: "none", lastResult: { at: "yesterday" } };
    withSqlite(store.file, (db) => db.prepare(`UPDATE reports SET body = ? WHERE device_id = ?`).run(JSON.stringify(old), noRelease.id));
    const detail = await app.inject({ url: `/v1/fleet/devices/${noRelease.id}` });
    expect(detail.statusCode, detail.body).to.equal(200);
    expect(detail.json().reports[0].body).to.deep.equal(old);
  });
});
