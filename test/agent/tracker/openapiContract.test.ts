import { expect } from "chai";
import { splitEvidence } from "../../../agent/core/policyEvidence";
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import type { FastifyInstance } from "fastify";
import { REPORT_KIND, type StatusReport } from "../../../agent/core/statusReport";
import { HEADER, signAccountRequest } from "../../../agent/crypto/requestSignature";
import { sealMessage, type Envelope } from "../../../agent/crypto/sealedMessage";
import { newSessionOffer, sealWithSession, sessionKey } from "../../../agent/crypto/reportSession";
import { encodeVersion } from "../../../agent/core/version";
import { ReportSession, sendStatusReport } from "../../../agent/consumer/statusReport";
import { Validator } from "@seriousme/openapi-schema-validator";
import { ERROR_CODES, statusOf } from "../../../agent/core/errorCodes";
import { startTrackerHttp, type RunningTrackerHttp } from "../../../agent/tracker/trackerHttp";
import { DOWNSTREAM_KIND } from "../../../agent/tracker/moduleMessages";
import { BOOTLOADER, FIRMWARE, postReport, sealedReport, startSeededTracker, testDevice, type SeededTracker } from "../../helpers/trackerFixture";

/**
 * The OpenAPI document the tracker emits at /openapi.json (built from its routes' zod schemas)
 * against the real tracker: the document is a valid OpenAPI 3.1 document, the routes the app
 * registers are the documented ones, and every answer of a real, seeded tracker (successes and
 * some fifty provoked refusals) is valid by the schema the document gives for that operation and
 * status (Ajv, 2020-12), with its error code among those documented there and at the status the
 * one error table gives it. Schemas are checked closed: an answer with a field the document does
 * not name fails. Every documented operation is exercised at least once.
 */

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
type OperationObject = Json;
let doc: Json;
const HTTP_METHODS = ["get", "put", "post", "delete", "patch"];
/** Every documented operation as Fastify registers it: "METHOD /path/:param". */
const documentedRoutes = (): { method: string; path: string }[] =>
  Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    HTTP_METHODS.filter((m) => item[m]).map((m) => ({
      method: m.toUpperCase(),
      path: path.replace(/\{([^}]+)\}/g, ":$1"),
    })),
  );

// ---------------------------------------------------------------------------- the document's schemas, closed

/** Component refs rebased under one id, so Ajv resolves them against the document's components. */
const rebase = (s: unknown): Json => JSON.parse(JSON.stringify(s).replace(/"#\/components\/schemas\//g, '"urn:ota-ledger:tracker#/$defs/'));

/** The schema with every object shape closed (unevaluatedProperties: false): no undocumented field passes. */
function closed(schema: Json): Json {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return schema;
  const out: Json = { ...schema };
  if (out.properties) out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, closed(v)]));
  if (out.items) out.items = closed(out.items);
  for (const k of ["allOf", "anyOf", "oneOf"]) if (out[k]) out[k] = out[k].map(closed);
  if (out.$defs) out.$defs = Object.fromEntries(Object.entries(out.$defs).map(([k, v]) => [k, closed(v)]));
  const types = [out.type].flat();
  if (types.includes("object") && out.properties && out.additionalProperties === undefined) out.unevaluatedProperties = false;
  return out;
}

let ajv: Ajv2020;
/** Compiles the document's component schemas, closed, under one id. */
function compileDocument(): void {
  ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
  ajv.addKeyword("x-x1368");
  ajv.addSchema({
    $id: "urn:ota-ledger:tracker",
    $defs: Object.fromEntries(Object.entries(rebase(doc.components.schemas)).map(([name, schema]) => [name, closed(schema)])),
  });
}
const compiled = new Map<string, ValidateFunction>();

function operation(method: string, path: string): OperationObject {
  const op = (doc.paths[path] as Record<string, OperationObject> | undefined)?.[method.toLowerCase()];
  expect(op, `${method} ${path} is not documented`).to.be.an("object");
  return op!;
}

function codesOf(op: OperationObject, status: number): string[] {
  const schema = op.responses[String(status)]?.content?.["application/json"]?.schema;
  return (schema?.properties?.error?.properties?.code?.enum as string[] | undefined) ?? [];
}

/** Every (operation, status) a real answer was checked for. */
const exercised = new Set<string>();

interface Answer {
  status: number;
  type: string;
  body: Json;
}

/** Holds one real JSON answer against the documented response of its operation and status. */
function conforms(method: string, path: string, res: Answer, code?: string): void {
  const at = `${method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
  const op = operation(method, path);
  const response = op.responses[String(res.status)];
  expect(response, `${at}: status not documented`).to.be.an("object");
  expect(res.type, at).to.match(/^application\/json/);
  const media = response.content?.["application/json"];
  expect(media, `${at}: no JSON schema documented`).to.be.an("object");
  const key = `${method} ${path} ${res.status}`;
  let validate = compiled.get(key);
  if (!validate) compiled.set(key, (validate = ajv.compile(closed(rebase(media!.schema)))));
  expect(validate(res.body), `${at}: ${ajv.errorsText(validate.errors)}`).to.equal(true);
  if (res.status >= 400) {
    expect(codesOf(op, res.status), `${at}: code not documented for this status`).to.include(res.body.error.code);
    if (code) expect(res.body.error.code, at).to.equal(code);
    // The status is the one table's (agent/core/errorCodes.ts); Fastify's own refusals keep theirs (BAD_REQUEST 413, 414, 415).
    const framework = res.body.error.code === "BAD_REQUEST" && [413, 414, 415].includes(res.status);
    if (!framework && res.body.error.code in ERROR_CODES) expect(res.status, `${at}: the table's status`).to.equal(statusOf(res.body.error.code));
  }
  exercised.add(`${method} ${path}`);
}

/** Fastify's routes, from its route tree (printRoutes): "METHOD /path/:param". */
function registeredRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes().split("\n")) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    stack.length = m[1].length / 4;
    stack.push(m[2]);
    if (m[3]) for (const method of m[3].split(", ")) out.push(`${method} ${stack.join("")}`);
  }
  return out;
}

// ---------------------------------------------------------------------------- the test

describe("agent/tracker: the OpenAPI document holds against the real tracker (contract)", function () {
  this.timeout(240_000);
  let s: SeededTracker;
  let guarded: RunningTrackerHttp; // the same tracker, its read API behind a token
  let me: { id: string; publicKey: string };
  const TOKEN = "contract-test-token";
  const ZERO = "0x" + "00".repeat(32);

  const call = async (
    method: string,
    pathAndQuery: string,
    init: {
      body?: string;
      headers?: Record<string, string>;
      base?: string;
    } = {},
  ): Promise<Answer> => {
    const res = await fetch(new URL(pathAndQuery, init.base ?? s.url), { method, headers: init.headers, body: init.body });
    const type = res.headers.get("content-type") ?? "";
    const text = await res.text();
    return { status: res.status, type, body: type.startsWith("application/json") ? JSON.parse(text) : text };
  };
  const get = (p: string, base?: string, headers?: Record<string, string>) => call("GET", p, { base, headers });
  const postJson = (p: string, body: unknown) =>
    call("POST", p, { body: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": "application/json" } });

  /** The first seeded device whose statuses are exactly, or include, this one. */
  const seeded = (status: string) =>
    s.devices.find((d) => d.statuses.length === 1 && d.statuses[0] === status) ?? s.devices.find((d) => d.statuses.includes(status))!;
  // Devices of the seeded fleet (their keys follow from their labels, as the fixture makes them).
  const device = (label: string, hw: number, network: string) => {
    const d = testDevice(`seeded ${label}`, hw, network);
    expect(
      s.devices.map((x) => x.id),
      `fixture device ${label}`,
    ).to.include(d.record.id.toLowerCase());
    return d;
  };
  const report = (d: ReturnType<typeof testDevice>, body: Partial<StatusReport> & { counter: number }, signer = d, kind = REPORT_KIND): Promise<Envelope> =>
    sealMessage(
      {
        kind,
        from: d.record.id,
        to: me.id,
        issuedAt: Date.now(),
        body: { deviceId: d.record.id, installed: [], lastResult: null, needs: [], declined: [], safeMode: false, ...body },
      },
      { kind: "device", privateKey: signer.key.privateKey },
      me.publicKey,
    );

  const updateRequest = async (body: unknown, signer: Wallet, o: { now?: number; mutate?: (h: Record<string, string>) => void } = {}) => {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const headers = await signAccountRequest(signer, { audience: s.url, method: "POST", path: "/v1/update-requests", body: text, now: o.now });
    o.mutate?.(headers);
    return { headers, answer: await call("POST", "/v1/update-requests", { body: text, headers: { ...headers, "content-type": "application/json" } }) };
  };

  before(async () => {
    s = await startSeededTracker();
    guarded = await startTrackerHttp(s.tracker, { apiToken: TOKEN });
    doc = (await get("/openapi.json")).body;
    compileDocument();
    const health = await get("/v1/health");
    me = { id: health.body.module.id, publicKey: health.body.module.publicKey };
    // Beside the fixture's fleet, a device in safe mode (CAP-11.1-b): enrolled, then its report says so.
    const safe = testDevice("seeded safe-1", 1, "plant-2");
    await (await s.tracker.options.chain.fleet.connect(s.admin).enrolDevice(safe.record)).wait();
    await s.tracker.stream.pollOnce();
    const taken = await postReport(s.url, await report(safe, { counter: 1, safeMode: true }));
    expect(taken.status, JSON.stringify(taken.body)).to.equal(200);
    s.devices.push({ id: safe.record.id.toLowerCase(), statuses: ["safe-mode"], network: "plant-2" });
  });
  after(async () => {
    await guarded?.close();
    await s?.close();
  });

  it("the emitted document is a valid OpenAPI 3.1 document by the official schema (@seriousme/openapi-schema-validator, offline)", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors, JSON.stringify(result.errors, null, 2)).to.equal(undefined);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal("3.1");
    expect(doc.openapi).to.equal("3.1.0");
    // What users read stays: the API's description, tags, the bearer scheme, each operation's prose.
    expect(doc.info.title).to.equal("OTA Ledger status tracker");
    expect(doc.tags.map((t: { name: string }) => t.name)).to.deep.equal(["health", "devices and modules", "fleet", "administrators", "dashboard"]);
    expect(doc.components.securitySchemes.bearerAuth).to.include({ type: "http", scheme: "bearer" });
    for (const r of documentedRoutes()) {
      const op = operation(r.method, r.path.replace(/:([^/]+)/g, "{$1}"));
      expect(op.summary, `${r.method} ${r.path}`).to.be.a("string").that.is.not.empty;
      expect(op.description.length, `${r.method} ${r.path}`).to.be.greaterThan(40);
      expect(op.responses["500"].description, `${r.method} ${r.path}: every operation can fail unexpectedly`).to.include("`INTERNAL`");
    }
  });

  it("the app registers exactly the documented routes", () => {
    const registered = registeredRoutes(s.app);
    const documented = documentedRoutes().map((r) => `${r.method} ${r.path}`);
    expect(registered.slice().sort()).to.deep.equal(documented.slice().sort());
    for (const r of documentedRoutes()) expect(s.app.hasRoute({ method: r.method as "GET", url: r.path }), `${r.method} ${r.path}`).to.equal(true);
  });

  it("POST /v1/reports: a device's report is answered 200 with sealed notices, as documented", async () => {
    const old2 = device("old-2", 2, "plant-2");
    const boot1 = s.releases[0];
    const res = await postReport(s.url, await sealedReport(old2, me, [{ component: BOOTLOADER, release: boot1 }]));
    const answer = { status: res.status, type: "application/json", body: res.body };
    conforms("POST", "/v1/reports", answer);
    expect(answer.body.notices, "an outdated, vulnerable device is told to move").to.have.length.greaterThan(0);
  });

  it("POST /v1/update-requests: an administrator's request is answered 200, as documented", async () => {
    const { answer } = await updateRequest(
      { releaseId: s.releases[1].id, devices: [seeded("outdated").id, seeded("unreachable").id, seeded("suspended").id, "0x" + "99".repeat(32)] },
      s.admin,
    );
    conforms("POST", "/v1/update-requests", answer);
    expect(answer.status).to.equal(200);
    expect(answer.body.refused.map((r: { code: string }) => r.code)).to.include.members(["DEVICE_NOT_ACTIVE", "DEVICE_UNKNOWN"]);
  });

  it("GET /v1/health, /v1/fleet/summary, /v1/releases, /v1/rollouts, /v1/modules, /openapi.json answer as documented", async () => {
    conforms("GET", "/v1/health", await get("/v1/health"));
    conforms("GET", "/v1/fleet/summary", await get("/v1/fleet/summary"));
    const releases = await get("/v1/releases");
    conforms("GET", "/v1/releases", releases);
    expect(releases.body.releases).to.have.length(s.releases.length);
    const rollouts = await get("/v1/rollouts");
    conforms("GET", "/v1/rollouts", rollouts);
    expect(rollouts.body.rollouts).to.not.be.empty;
    conforms("GET", "/v1/modules", await get("/v1/modules"));
    const openapi = await get("/openapi.json");
    conforms("GET", "/openapi.json", openapi);
    expect(openapi.body).to.deep.equal(doc);
  });

  it("GET /v1/fleet/devices with each status and each filter answers as documented", async () => {
    const all = await get("/v1/fleet/devices");
    conforms("GET", "/v1/fleet/devices", all);
    expect(all.body.total).to.equal(s.devices.length);
    for (const status of ["up-to-date", "outdated", "vulnerable", "failed", "safe-mode", "unreachable", "suspended"]) {
      const res = await get(`/v1/fleet/devices?status=${status}`);
      conforms("GET", "/v1/fleet/devices", res);
      expect(res.body.total, status).to.be.greaterThan(0);
    }
    for (const q of [
      "network=plant-1",
      "region=eu-west",
      "hardware=2",
      `q=${s.devices[0].id.slice(0, 8)}`,
      "limit=2&offset=3",
      "status=outdated&network=plant-2&hardware=2",
    ]) {
      const res = await get(`/v1/fleet/devices?${q}`);
      conforms("GET", "/v1/fleet/devices", res);
      expect(res.body.devices, q).to.not.be.empty;
    }
  });

  it("GET /v1/fleet/devices/{id} of every seeded device (reported or not, suspended, failed, decided for) answers as documented", async () => {
    for (const d of s.devices) {
      const res = await get(`/v1/fleet/devices/${d.id}`);
      conforms("GET", "/v1/fleet/devices/{id}", res);
      expect(res.body.device.statuses, d.id).to.have.members(d.statuses);
    }
    const decidedFor = await get(`/v1/fleet/devices/${seeded("outdated").id.toUpperCase().replace("0X", "0x")}`);
    conforms("GET", "/v1/fleet/devices/{id}", decidedFor);
    expect(decidedFor.body.decisions, "the administrator's request above").to.not.be.empty;
    expect(decidedFor.body.deliveries).to.not.be.empty;
  });

  it("GET /v1/releases/{id}/adoption of every release answers as documented", async () => {
    for (const r of s.releases) conforms("GET", "/v1/releases/{id}/adoption", await get(`/v1/releases/${r.id}/adoption`));
  });

  it("GET / and /dashboard/{file} answer with a documented media type", async () => {
    for (const [path, file] of [
      ["/", "/"],
      ["/dashboard/{file}", "/dashboard/index.html"],
      ["/dashboard/{file}", "/dashboard/dashboard.js"],
      ["/dashboard/{file}", "/dashboard/dashboard.css"],
    ]) {
      const res = await get(file);
      expect(res.status, file).to.equal(200);
      const types = Object.keys(operation("GET", path).responses["200"].content!);
      expect(types, `${file} ${res.type}`).to.include(res.type.split(";")[0]);
      exercised.add(`GET ${path}`);
    }
    conforms("GET", "/dashboard/{file}", await get("/dashboard/nothing.js"), "NOT_FOUND");
    conforms("GET", "/dashboard/{file}", await get("/dashboard/..%2Fpackage.json"), "NOT_FOUND");
    conforms("GET", "/dashboard/{file}", await get("/dashboard/%zz.js"), "BAD_REQUEST");
  });

  it("read endpoints refuse a reader without the configured token: 401 UNAUTHORIZED, as documented; the page stays open", async () => {
    const reads: [string, string][] = [
      ["/v1/fleet/summary", "/v1/fleet/summary"],
      ["/v1/fleet/devices", "/v1/fleet/devices?status=failed"],
      ["/v1/fleet/devices/{id}", `/v1/fleet/devices/${ZERO}`],
      ["/v1/releases", "/v1/releases"],
      ["/v1/releases/{id}/adoption", `/v1/releases/${ZERO}/adoption`],
      ["/v1/rollouts", "/v1/rollouts"],
      ["/v1/modules", "/v1/modules"],
    ];
    for (const [path, url] of reads) {
      conforms("GET", path, await get(url, guarded.url), "UNAUTHORIZED");
      conforms("GET", path, await get(url, guarded.url, { authorization: "Bearer wrong" }), "UNAUTHORIZED");
    }
    conforms("GET", "/v1/fleet/summary", await get("/v1/fleet/summary", guarded.url, { authorization: `Bearer ${TOKEN}` }));
    expect((await get("/", guarded.url)).status).to.equal(200);
    conforms("GET", "/v1/health", await get("/v1/health", guarded.url));
    conforms("GET", "/openapi.json", await get("/openapi.json", guarded.url));
  });

  it("read endpoints refuse what they do not know or cannot read, as documented", async () => {
    conforms("GET", "/v1/fleet/devices/{id}", await get(`/v1/fleet/devices/${ZERO}`), "DEVICE_UNKNOWN");
    conforms("GET", "/v1/fleet/devices/{id}", await get("/v1/fleet/devices/not-a-device"), "DEVICE_UNKNOWN");
    conforms("GET", "/v1/fleet/devices/{id}", await get("/v1/fleet/devices/%zz"), "BAD_REQUEST");
    const long = await get(`/v1/fleet/devices/0x${"ab".repeat(60)}`);
    expect(long.status).to.equal(414);
    conforms("GET", "/v1/fleet/devices/{id}", long, "BAD_REQUEST");
    conforms("GET", "/v1/releases/{id}/adoption", await get(`/v1/releases/${ZERO}/adoption`), "RELEASE_UNKNOWN");
    conforms("GET", "/v1/releases/{id}/adoption", await get("/v1/releases/%E0%A4%A/adoption"), "BAD_REQUEST");
    for (const q of ["status=nonsense", "limit=-1", "offset=x", "hardware=1.5", "q=zz'--", `network=${"n".repeat(40)}`, `region=${"r".repeat(40)}`]) {
      const res = await get(`/v1/fleet/devices?${q}`);
      expect(res.status, q).to.equal(400);
      conforms("GET", "/v1/fleet/devices", res, "BAD_REQUEST");
    }
    // Not an operation: any other path or method is 404 NOT_FOUND in the Error shape.
    for (const [method, p] of [
      ["GET", "/v1/nothing"],
      ["POST", "/v1/fleet/summary"],
      ["DELETE", "/v1/releases"],
    ]) {
      const res = await call(method, p);
      expect([res.status, res.body.error?.code], `${method} ${p}`).to.deep.equal([404, "NOT_FOUND"]);
      expect(ajv.validate({ $ref: "urn:ota-ledger:tracker#/$defs/Error" }, res.body), ajv.errorsText()).to.equal(true);
    }
  });

  it("POST /v1/reports refuses bodies, envelopes and reports as documented, with the documented status", async () => {
    const ok1 = device("ok-1", 1, "plant-1");
    const stolen = device("stolen-1", 1, "plant-1");
    const stranger = testDevice("contract stranger", 1, "plant-1");
    const path = "/v1/reports";
    conforms("POST", path, await postJson(path, "{not json"), "BAD_REQUEST");
    conforms("POST", path, await call("POST", path, { body: "{}", headers: { "content-type": "text/plain" } }), "BAD_REQUEST");
    const xml = await call("POST", path, { body: "<report/>", headers: { "content-type": "application/xml" } });
    expect(xml.status).to.equal(415);
    conforms("POST", path, xml, "BAD_REQUEST");
    conforms("POST", path, await postJson(path, {}), "MESSAGE_MALFORMED");
    conforms("POST", path, await postJson(path, null), "MESSAGE_MALFORMED");
    conforms("POST", path, await postJson(path, await sealedReport(ok1, { id: "0x" + "42".repeat(32), publicKey: me.publicKey }, [])), "MESSAGE_NOT_FOR_ME");
    conforms("POST", path, await postJson(path, { v: 1, kind: REPORT_KIND, from: ok1.record.id, to: me.id, sealed: "0x00" }), "MESSAGE_FORMAT");
    const real = await report(ok1, { counter: 1_000_000 });
    conforms("POST", path, await postJson(path, { ...real, from: stranger.record.id }), "MESSAGE_AUTHENTICATION");
    conforms("POST", path, await postJson(path, await report(ok1, { counter: 1_000_001 }, ok1, "status-update")), "REPORT_KIND");
    conforms("POST", path, await postJson(path, await report(stranger, { counter: 1 })), "REPORT_UNKNOWN_DEVICE");
    conforms("POST", path, await postJson(path, await report(ok1, { counter: 1_000_002 }, stranger)), "REPORT_SIGNATURE");
    conforms("POST", path, await postJson(path, await report(stolen, { counter: 1_000_003 })), "REPORT_DEVICE_NOT_ACTIVE");
    conforms("POST", path, await postJson(path, await report(ok1, { counter: 0 })), "REPORT_MALFORMED");
    conforms("POST", path, await postJson(path, await report(ok1, { counter: 1_000_004, lastResult: undefined as never })), "REPORT_MALFORMED");
    // A replayed report: taken once, refused the second time.
    const once = await sealedReport(ok1, me, [
      { component: BOOTLOADER, release: s.releases[1] },
      { component: FIRMWARE, release: s.releases[2] },
    ]);
    conforms("POST", path, await postJson(path, once));
    const replay = await postJson(path, once);
    expect(replay.status).to.equal(409);
    conforms("POST", path, replay, "REPORT_REPLAYED");
  });

  it("POST /v1/downstream refuses what is not a registered child's fresh status, as documented", async () => {
    const path = "/v1/downstream";
    const someone = Wallet.createRandom();
    const seal = (kind: string, from: string, body: unknown) =>
      sealMessage({ kind, from, to: me.id, issuedAt: Date.now(), body }, { kind: "account", signMessage: (m: string) => someone.signMessage(m) }, me.publicKey);
    const status = { counter: Date.now(), networks: [], reports: [], devices: 0, unreachableDevices: 0, children: [] };
    const unknownModule = keccak256(toUtf8Bytes("contract test: no such module"));
    conforms("POST", path, await postJson(path, "[1,"), "BAD_REQUEST");
    conforms("POST", path, await postJson(path, { v: 2 }), "MESSAGE_MALFORMED");
    conforms(
      "POST",
      path,
      await postJson(path, { v: 1, kind: DOWNSTREAM_KIND, from: unknownModule, to: me.id, sealed: "0x02" + "ab".repeat(100) }),
      "MESSAGE_FORMAT",
    );
    conforms("POST", path, await postJson(path, await seal(REPORT_KIND, unknownModule, status)), "MESSAGE_KIND");
    conforms("POST", path, await postJson(path, await seal(DOWNSTREAM_KIND, unknownModule, status)), "MODULE_NOT_REGISTERED");
  });

  it("POST /v1/update-requests refuses unsigned, badly signed, replayed, stale and non-administrators' requests, and bad requests, as documented", async () => {
    const path = "/v1/update-requests";
    const release = s.releases[1].id;
    const body = { releaseId: release, devices: [seeded("outdated").id] };
    const outsider = new Wallet(Wallet.createRandom().privateKey);
    const unsigned = await postJson(path, body);
    expect(unsigned.status).to.equal(401);
    conforms("POST", path, unsigned, "AUTH_MISSING");
    conforms("POST", path, (await updateRequest(body, s.admin, { mutate: (h) => (h[HEADER.nonce] = "NOT-HEX") })).answer, "AUTH_MALFORMED");
    conforms("POST", path, (await updateRequest(body, s.admin, { mutate: (h) => (h[HEADER.nonce] = "00".repeat(16)) })).answer, "AUTH_SIGNATURE");
    conforms("POST", path, (await updateRequest(body, s.admin, { now: Date.now() - 10 * 60_000 })).answer, "AUTH_STALE");
    const notAdmin = (await updateRequest(body, outsider)).answer;
    expect(notAdmin.status).to.equal(403);
    conforms("POST", path, notAdmin, "NOT_ADMINISTRATOR");
    const first = await updateRequest({ ...body, imageLocation: "bafy-somewhere-else" }, s.admin);
    conforms("POST", path, first.answer, "IMAGE_LOCATION_MISMATCH");
    const replay = await call("POST", path, {
      body: JSON.stringify({ ...body, imageLocation: "bafy-somewhere-else" }),
      headers: { ...first.headers, "content-type": "application/json" },
    });
    expect(replay.status).to.equal(409);
    conforms("POST", path, replay, "AUTH_REPLAY");
    conforms("POST", path, (await updateRequest("{not json", s.admin)).answer, "BAD_REQUEST");
    conforms("POST", path, (await updateRequest({ releaseId: release }, s.admin)).answer, "BAD_REQUEST");
    conforms("POST", path, (await updateRequest({ releaseId: "0x" + "77".repeat(32), devices: body.devices }, s.admin)).answer, "RELEASE_UNKNOWN");
    conforms("POST", path, (await updateRequest({ releaseId: release, filter: { network: "nowhere" } }, s.admin)).answer, "NO_DEVICES");
    const vulnerable = (await updateRequest({ releaseId: s.releases[0].id, devices: [seeded("unreachable").id] }, s.admin)).answer;
    expect(vulnerable.status).to.equal(400);
    conforms("POST", path, vulnerable, "RELEASE_NOT_ACTIVE");
  });

  it("GET /v1/anchors and /v1/anchors/{index}/devices/{deviceId} answer as documented, and refuse as documented", async () => {
    conforms("GET", "/v1/anchors", await get("/v1/anchors"));
    conforms("GET", "/v1/anchors", await get("/v1/anchors?limit=0"), "BAD_REQUEST");
    conforms("GET", "/v1/anchors", await get("/v1/anchors", guarded.url), "UNAUTHORIZED");
    conforms("GET", "/v1/anchors/{index}/devices/{deviceId}", await get(`/v1/anchors/0/devices/${s.devices[0].id}`), "ANCHOR_UNKNOWN");
    conforms("GET", "/v1/anchors/{index}/devices/{deviceId}", await get(`/v1/anchors/x/devices/${s.devices[0].id}`), "BAD_REQUEST");
    conforms("GET", "/v1/anchors/{index}/devices/{deviceId}", await get(`/v1/anchors/0/devices/${ZERO}`, guarded.url), "UNAUTHORIZED");
  });

  it("POST /v1/rollouts/{releaseId}/cohorts answers an administrator as documented, and refuses as documented", async () => {
    const release = s.releases[2].id;
    const path = `/v1/rollouts/${release}/cohorts`;
    const cohorts = async (body: unknown, signer: Wallet, at = path) => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      const headers = await signAccountRequest(signer, { audience: s.url, method: "POST", path: at, body: text });
      return { headers, text, answer: await call("POST", at, { body: text, headers: { ...headers, "content-type": "application/json" } }) };
    };
    const waves = [[s.devices[0].id], [s.devices[1].id, s.devices[2].id]];
    const first = await cohorts({ waves }, s.admin);
    conforms("POST", "/v1/rollouts/{releaseId}/cohorts", first.answer);
    expect(first.answer.body).to.deep.include({ releaseId: release, devices: 3 });
    const replay = await call("POST", path, { body: first.text, headers: { ...first.headers, "content-type": "application/json" } });
    conforms("POST", "/v1/rollouts/{releaseId}/cohorts", replay, "AUTH_REPLAY");
    conforms("POST", "/v1/rollouts/{releaseId}/cohorts", await postJson(path, { waves }), "AUTH_MISSING");
    conforms("POST", "/v1/rollouts/{releaseId}/cohorts", (await cohorts({ waves }, new Wallet(Wallet.createRandom().privateKey))).answer, "NOT_ADMINISTRATOR");
    conforms("POST", "/v1/rollouts/{releaseId}/cohorts", (await cohorts({ waves: [] }, s.admin)).answer, "BAD_REQUEST");
    conforms("POST", "/v1/rollouts/{releaseId}/cohorts", (await cohorts("{not json", s.admin)).answer, "BAD_REQUEST");
    conforms(
      "POST",
      "/v1/rollouts/{releaseId}/cohorts",
      (await cohorts({ waves }, s.admin, `/v1/rollouts/0x${"77".repeat(32)}/cohorts`)).answer,
      "RELEASE_UNKNOWN",
    );
  });

  it("APP-II-3: POST /v1/releases/{id}/evidence answers an administrator as documented, and refuses as documented (issue 18)", async () => {
    const release = s.releases[1].id; // not the cohorts test's release, whose devices hold cohort proofs
    const path = `/v1/releases/${release}/evidence`;
    const op = "/v1/releases/{id}/evidence";
    const evidence = async (body: unknown, signer: Wallet, at = path) => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      const headers = await signAccountRequest(signer, { audience: s.url, method: "POST", path: at, body: text });
      return { headers, text, answer: await call("POST", at, { body: text, headers: { ...headers, "content-type": "application/json" } }) };
    };
    const [p1, p2] = [Wallet.createRandom().address, Wallet.createRandom().address];
    const part = "0x" + "ab".repeat(2030);
    const first = await evidence({ policy: p1, devices: { [s.devices[0].id]: part } }, s.admin);
    conforms("POST", op, first.answer);
    expect(first.answer.body).to.deep.equal({ releaseId: release.toLowerCase(), policy: p1, devices: 1 });
    conforms("POST", op, (await evidence({ devices: { [s.devices[1].id]: "0x01" } }, s.admin)).answer);
    const replay = await call("POST", path, { body: first.text, headers: { ...first.headers, "content-type": "application/json" } });
    conforms("POST", op, replay, "AUTH_REPLAY");
    conforms("POST", op, await postJson(path, { devices: { [s.devices[0].id]: "0x01" } }), "AUTH_MISSING");
    conforms(
      "POST",
      op,
      (await evidence({ devices: { [s.devices[0].id]: "0x01" } }, new Wallet(Wallet.createRandom().privateKey))).answer,
      "NOT_ADMINISTRATOR",
    );
    for (const bad of [
      { devices: {} },
      { devices: { [s.devices[0].id]: "0x1" } },
      { policy: "0x12", devices: { [s.devices[0].id]: "0x01" } },
      { waves: [] },
      "{not json",
    ])
      conforms("POST", op, (await evidence(bad, s.admin)).answer, "BAD_REQUEST");
    // A second policy's part would take the device's evidence past 4,096 bytes: refused, and the first part is kept as it was.
    conforms("POST", op, (await evidence({ policy: p2, devices: { [s.devices[0].id]: part } }, s.admin)).answer, "EVIDENCE_INVALID");
    expect(splitEvidence(s.tracker.store.evidence.of(release, s.devices[0].id)!)).to.deep.equal(new Map([[p1, part]]));
    // devices[1] holds evidence for every policy: a part for one policy would replace it (no staged rollout to keep it for).
    conforms("POST", op, (await evidence({ policy: p2, devices: { [s.devices[1].id]: "0x02" } }, s.admin)).answer, "EVIDENCE_CONFLICT");
    expect(s.tracker.store.evidence.of(release, s.devices[1].id)).to.equal("0x01");
    conforms(
      "POST",
      op,
      (await evidence({ devices: { [s.devices[0].id]: "0x01" } }, s.admin, `/v1/releases/0x${"77".repeat(32)}/evidence`)).answer,
      "RELEASE_UNKNOWN",
    );
  });

  it("CAP-11.2-m-a CAP-11.2-m-b: POST /v1/reports under a report session (ADR 0013): the offer is confirmed, session reports and their refusals answer as documented", async () => {
    const ok1 = device("ok-1", 1, "plant-1");
    const path = "/v1/reports";
    // What ok-1 runs since the refusal test's last report: its heartbeats keep it.
    const body = (counter: number): StatusReport => ({
      deviceId: ok1.record.id,
      counter,
      installed: [
        { component: BOOTLOADER, version: encodeVersion(s.releases[1].version).toString(), releaseId: s.releases[1].id, slot: "a" },
        { component: FIRMWARE, version: encodeVersion(s.releases[2].version).toString(), releaseId: s.releases[2].id, slot: "a" },
      ],
      lastResult: null,
      needs: [],
      declined: [],
      safeMode: false,
    });
    const offer = newSessionOffer();
    const opening = await sealMessage(
      {
        kind: REPORT_KIND,
        from: ok1.record.id,
        to: me.id,
        issuedAt: Date.now(),
        body: { ...body(3_000_000), session: { id: offer.id, commitment: offer.commitment } },
      },
      { kind: "device", privateKey: ok1.key.privateKey },
      me.publicKey,
      { sessionSecret: offer.secret },
    );
    const opened = await postJson(path, opening);
    conforms("POST", path, opened);
    expect(opened.body.session.id).to.equal(offer.id);
    const session = { id: offer.id, key: sessionKey(offer.secret, offer.id, ok1.record.id, me.id) };
    const under = (counter: number) =>
      sealWithSession({ kind: REPORT_KIND, from: ok1.record.id, to: me.id, issuedAt: Date.now(), body: body(counter) }, session);
    const taken = await postJson(path, under(3_000_001));
    conforms("POST", path, taken);
    expect(taken.body).to.include({ accepted: true, counter: 3_000_001 });
    expect(taken.body).not.to.have.property("session");
    const again = under(3_000_002);
    conforms("POST", path, await postJson(path, again));
    conforms("POST", path, await postJson(path, again), "REPORT_REPLAYED");
    conforms("POST", path, await postJson(path, { ...under(3_000_003), session: "0x" + "00".repeat(16) }), "REPORT_SESSION_UNKNOWN");
    const tampered = under(3_000_003);
    conforms(
      "POST",
      path,
      await postJson(path, { ...tampered, sealed: tampered.sealed.slice(0, -1) + (tampered.sealed.endsWith("0") ? "1" : "0") }),
      "REPORT_SESSION_AUTHENTICATION",
    );
    conforms("POST", path, await postJson(path, { ...tampered, session: "0x1234" }), "MESSAGE_MALFORMED");
    // The device agent's own code against the real route: a full report that opens a session, then one under it.
    const agent = new ReportSession();
    const first = await sendStatusReport(
      body(3_000_010),
      { privateKey: ok1.key.privateKey },
      { ...me, moduleId: me.id, url: s.url },
      Date.now(),
      undefined,
      agent,
    );
    expect(first.envelope).not.to.have.property("session");
    expect(agent.id).to.be.a("string");
    const next = await sendStatusReport(
      body(3_000_011),
      { privateKey: ok1.key.privateKey },
      { ...me, moduleId: me.id, url: s.url },
      Date.now(),
      undefined,
      agent,
    );
    expect(next.envelope).to.include({ session: agent.id });
  });

  it("PROC-2 CAP-11.2-a: device tags, groups and update requests' progress (issue 19, item 11) answer as documented, and refuse as documented", async () => {
    const signedCall = async (method: string, at: string, body: unknown, signer: Wallet) => {
      const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
      const headers = await signAccountRequest(signer, { audience: s.url, method, path: at, body: text });
      return call(method, at, {
        body: body === undefined ? undefined : text,
        headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      });
    };
    const stranger = new Wallet(Wallet.createRandom().privateKey);
    const target = seeded("outdated").id;
    const tagsAt = `/v1/fleet/devices/${target}/tags`;
    const tagged = await signedCall("POST", tagsAt, { set: { site: "contract", ring: "canary" } }, s.admin);
    conforms("POST", "/v1/fleet/devices/{id}/tags", tagged);
    expect(tagged.body).to.deep.include({ deviceId: target, tags: { ring: "canary", site: "contract" } });
    conforms("POST", "/v1/fleet/devices/{id}/tags", await signedCall("POST", tagsAt, { set: { site: "x".repeat(200) } }, s.admin), "TAG_INVALID");
    conforms("POST", "/v1/fleet/devices/{id}/tags", await signedCall("POST", tagsAt, { set: { region: "x" } }, s.admin), "TAG_KEY_RESERVED");
    const many = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, "v"]));
    conforms("POST", "/v1/fleet/devices/{id}/tags", await signedCall("POST", tagsAt, { set: many }, s.admin), "TAG_LIMIT");
    conforms("POST", "/v1/fleet/devices/{id}/tags", await signedCall("POST", tagsAt, { set: { site: "evil" } }, stranger), "NOT_ADMINISTRATOR");
    conforms("POST", "/v1/fleet/devices/{id}/tags", await postJson(tagsAt, { set: { site: "evil" } }), "AUTH_MISSING");
    conforms("POST", "/v1/fleet/devices/{id}/tags", await signedCall("POST", tagsAt, { nope: 1 }, s.admin), "BAD_REQUEST");
    const nobody = `/v1/fleet/devices/0x${"98".repeat(32)}/tags`;
    conforms("POST", "/v1/fleet/devices/{id}/tags", await signedCall("POST", nobody, { set: { site: "x" } }, s.admin), "DEVICE_UNKNOWN");

    conforms("GET", "/v1/fleet/devices", await get(`/v1/fleet/devices?tag=site=contract&tag=ring`));
    expect((await get(`/v1/fleet/devices?tag=site=contract`)).body.devices.map((d: { id: string }) => d.id)).to.deep.equal([target]);
    conforms("GET", "/v1/fleet/devices", await get(`/v1/fleet/devices?tag=${encodeURIComponent("site=1' OR '1'='1")}`), "QUERY_INVALID");
    conforms("GET", "/v1/fleet/devices", await get(`/v1/fleet/devices?group=nosuch`), "GROUP_UNKNOWN");

    const group = await signedCall("POST", "/v1/groups", { name: "contract", query: "site=contract, ring=canary" }, s.admin);
    conforms("POST", "/v1/groups", group);
    expect(group.body).to.deep.equal({ name: "contract", query: "site=contract,ring=canary", devices: 1 });
    conforms("POST", "/v1/groups", await signedCall("POST", "/v1/groups", { name: "bad", query: "site=;DROP" }, s.admin), "QUERY_INVALID");
    conforms("POST", "/v1/groups", await signedCall("POST", "/v1/groups", { name: "x", query: "site=a" }, stranger), "NOT_ADMINISTRATOR");
    conforms("GET", "/v1/groups", await get("/v1/groups"));
    conforms("GET", "/v1/fleet/devices", await get(`/v1/fleet/devices?group=contract`));

    const { answer } = await updateRequest({ releaseId: s.releases[1].id, group: "contract", deadline: Date.now() + 3_600_000 }, s.admin);
    conforms("POST", "/v1/update-requests", answer);
    conforms("POST", "/v1/update-requests", (await updateRequest({ releaseId: s.releases[1].id, group: "nosuch" }, s.admin)).answer, "GROUP_UNKNOWN");
    conforms("POST", "/v1/update-requests", (await updateRequest({ releaseId: s.releases[1].id, query: "a=b' --" }, s.admin)).answer, "QUERY_INVALID");
    const list = await get("/v1/update-requests");
    conforms("GET", "/v1/update-requests", list);
    expect(list.body.requests.map((r: { requestId: string }) => r.requestId)).to.include(answer.body.requestId);
    conforms("GET", "/v1/update-requests", await get("/v1/update-requests?limit=x"), "BAD_REQUEST");
    const progress = await get(`/v1/update-requests/${answer.body.requestId}`);
    conforms("GET", "/v1/update-requests/{id}", progress);
    expect(progress.body.counts.decided).to.equal(answer.body.decided);
    conforms("GET", "/v1/update-requests/{id}", await get(`/v1/update-requests/0x${"11".repeat(16)}`), "REQUEST_UNKNOWN");
    conforms("GET", "/v1/update-requests/{id}", await get(`/v1/update-requests/nope`), "BAD_REQUEST");

    const removed = await signedCall("DELETE", "/v1/groups/contract", undefined, s.admin);
    conforms("DELETE", "/v1/groups/{name}", removed);
    conforms("DELETE", "/v1/groups/{name}", await signedCall("DELETE", "/v1/groups/contract", undefined, s.admin), "GROUP_UNKNOWN");
    conforms("DELETE", "/v1/groups/{name}", await signedCall("DELETE", "/v1/groups/contract", undefined, stranger), "NOT_ADMINISTRATOR");
  });

  it("every documented operation was held against a real answer", () => {
    const operations = documentedRoutes().map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, "{$1}")}`);
    expect(operations.filter((o) => !exercised.has(o))).to.deep.equal([]);
  });
});
