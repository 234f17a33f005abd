import { expect } from "chai";
import Ajv2020 from "ajv/dist/2020";
import { Validator } from "@seriousme/openapi-schema-validator";
import { HEADER } from "../../../agent/crypto/requestSignature";
import { DEVICE_STATUSES } from "../../../agent/tracker/fleetViews";
import { ERROR_CODES, statusOf } from "../../../agent/core/errorCodes";
import { trackerOpenApi } from "../../../agent/tracker/trackerHttp";

/**
 * The OpenAPI document the tracker emits from its routes' zod schemas (agent/tracker/http/), as a
 * document: valid, every reference resolving, its schemas saying what the answers are, every error
 * code documented at the status of the one error table (agent/core/errorCodes.ts). Its contract
 * with the real answers: openapiContract.test.ts.
 */

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any
type OperationObject = Json;
type ParameterObject = Json;
type SchemaObject = Json;
let doc: Json;
const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
const documentedRoutes = (): { method: string; path: string }[] =>
  Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    HTTP_METHODS.filter((m) => item[m]).map((m) => ({
      method: m.toUpperCase(),
      path: path.replace(/\{([^}]+)\}/g, ":$1"),
    })),
  );

/** Every operation with its path and method. */
function operations(): { path: string; method: string; op: OperationObject }[] {
  const out: { path: string; method: string; op: OperationObject }[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, OperationObject>>)) {
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (op) out.push({ path, method, op });
    }
  }
  return out;
}

/** Every value under `node` with the JSON pointer that reaches it. */
function* walk(node: unknown, pointer = "#"): Generator<{ pointer: string; value: unknown }> {
  yield { pointer, value: node };
  if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) yield* walk(v, `${pointer}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`);
  }
}

function resolvePointer(pointer: string): unknown {
  if (!pointer.startsWith("#/")) return undefined;
  let node: unknown = doc;
  for (const raw of pointer.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (!node || typeof node !== "object" || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** The JSON Schemas of the document, compiled with Ajv's 2020-12 dialect (OpenAPI 3.1's default), strictly. */
function schemaCompiler() {
  const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
  // The component schemas under one id, their refs pointing there.
  const rebase = (s: unknown): unknown => JSON.parse(JSON.stringify(s).replace(/"#\/components\/schemas\//g, '"urn:ota-ledger:tracker#/$defs/'));
  ajv.addSchema({ $id: "urn:ota-ledger:tracker", $defs: rebase(doc.components.schemas) as Record<string, unknown> });
  return {
    component: (name: string) => ajv.compile({ $ref: `urn:ota-ledger:tracker#/$defs/${name}` }),
    inline: (schema: SchemaObject) => ajv.compile(rebase(schema) as object),
  };
}

const errorCodesOf = (op: OperationObject, status: string): string[] => {
  const schema = op.responses[status]?.content?.["application/json"]?.schema;
  return (schema?.properties?.error?.properties?.code?.enum as string[] | undefined) ?? [];
};

// Every error code the tracker's code can answer with (trackerHttp.ts, trackerModule.ts, reportIntake.ts,
// updateRequests.ts, requestAuth.ts, sealedMessage.ts, ecies.ts, releaseEvents.ts).
const BRIEF_CODES = [
  // issue 19, item 11: tags, groups, update requests' progress
  "TAG_INVALID",
  "TAG_KEY_RESERVED",
  "TAG_LIMIT",
  "QUERY_INVALID",
  "GROUP_UNKNOWN",
  "GROUP_LIMIT",
  "REQUEST_UNKNOWN",
  // issue 6: status anchors and rollout cohorts
  "ANCHOR_UNKNOWN",
  "ANCHOR_RECORDS_PRUNED",
  "DEVICE_NOT_IN_ANCHOR",
  "ROLLOUT_ROOT_MISMATCH",
  // issue 18: evidence for any policy
  "POLICY_NOT_ATTACHED",
  "EVIDENCE_INVALID",
  "POLICY_READS_WHOLE_EVIDENCE",
  "EVIDENCE_CONFLICT",
  "BAD_REQUEST",
  "UNAUTHORIZED",
  "NOT_FOUND",
  "INTERNAL",
  "MESSAGE_MALFORMED",
  "MESSAGE_NOT_FOR_ME",
  "MESSAGE_FORMAT",
  "MESSAGE_AUTHENTICATION",
  "MESSAGE_SIGNATURE",
  "MESSAGE_KIND",
  "MESSAGE_STALE",
  "MESSAGE_REPLAYED",
  "REPORT_KIND",
  "REPORT_UNKNOWN_DEVICE",
  "REPORT_DEVICE_NOT_ACTIVE",
  "REPORT_SIGNATURE",
  "REPORT_CREDENTIAL",
  // issue 17: report sessions (ADR 0013)
  "REPORT_SESSION_UNKNOWN",
  "REPORT_SESSION_AUTHENTICATION",
  "REPORT_MALFORMED",
  "REPORT_REPLAYED",
  "MODULE_NOT_REGISTERED",
  "MODULE_NOT_CHILD",
  "MODULE_SIGNATURE",
  "AUTH_MISSING",
  "AUTH_MALFORMED",
  "AUTH_SIGNATURE",
  "AUTH_STALE",
  "AUTH_REPLAY",
  "AUTH_QUOTA",
  "SERVER_BUSY",
  "NOT_ADMINISTRATOR",
  "RELEASE_UNKNOWN",
  "RELEASE_NOT_VERIFIED",
  "RELEASE_NOT_ACTIVE",
  "PROVIDER_BARRED",
  "IMAGE_LOCATION_MISMATCH",
  // release bundles (docs/adr/0019): an update request may name one
  "BUNDLES_NOT_DEPLOYED",
  "BUNDLE_UNKNOWN",
  "NO_DEVICES",
  "DEVICE_UNKNOWN",
  "LEDGER_UNAVAILABLE",
  "NOT_FROM_REGISTRY",
  "NOT_RELEASE_EVENT",
  "RELEASE_EVENT_MISMATCH",
];

const BYTES32_A = "0x" + "ab".repeat(32);

describe("agent/tracker: the OpenAPI 3.1 document of the tracker's HTTP API (ADR 0004)", () => {
  before(async () => {
    doc = await trackerOpenApi();
  });

  it("is a valid OpenAPI 3.1 document by the official schema (@seriousme/openapi-schema-validator, offline)", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors, JSON.stringify(result.errors, null, 2)).to.equal(undefined);
    expect(result.valid).to.equal(true);
    expect(validator.version).to.equal("3.1");
    expect(doc.openapi).to.equal("3.1.0");
  });

  it("is plain JSON: what /openapi.json serves is the document itself", () => {
    expect(JSON.parse(JSON.stringify(doc))).to.deep.equal(doc);
  });

  it("every $ref is a local pointer that resolves, and every component schema is used", () => {
    const refs = [...walk(doc)].filter((n) => n.pointer.endsWith("/$ref")).map((n) => ({ at: n.pointer, ref: n.value as string }));
    expect(refs.length).to.be.greaterThan(20);
    for (const { at, ref } of refs) {
      expect(ref, at)
        .to.be.a("string")
        .and.match(/^#\/components\/schemas\/[A-Za-z0-9]+$/);
      expect(resolvePointer(ref), `${at}: ${ref}`).to.be.an("object");
    }
    // A schema is used when it is reachable from the paths, following refs.
    const used = new Set<string>();
    const queue = [...walk(doc.paths)].filter((n) => n.pointer.endsWith("/$ref")).map((n) => n.value as string);
    while (queue.length > 0) {
      const ref = queue.pop()!;
      if (used.has(ref)) continue;
      used.add(ref);
      for (const n of walk(resolvePointer(ref))) if (n.pointer.endsWith("/$ref")) queue.push(n.value as string);
    }
    // Error is the shape of every refusal, also of a path the API does not have (404 NOT_FOUND); each operation's refusals inline it with their codes.
    const unused = Object.keys(doc.components.schemas).filter((name) => name !== "Error" && !used.has(`#/components/schemas/${name}`));
    expect(unused, "component schemas no operation reaches").to.deep.equal([]);
  });

  it("has the component schemas the ADR names, each a valid JSON Schema 2020-12 whose examples it accepts", () => {
    for (const name of [
      "Envelope",
      "Error",
      "DeviceView",
      "Summary",
      "DeviceDetail",
      "Release",
      "AdoptionPoints",
      "Rollout",
      "Module",
      "UpdateRequestInput",
      "UpdateRequestResult",
      "Health",
      "ReportAccepted",
      "ReportEnvelopeInput",
      "DownstreamAccepted",
    ]) {
      expect(doc.components.schemas, name).to.have.property(name);
    }
    const compiler = schemaCompiler();
    let examples = 0;
    for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, SchemaObject>)) {
      const validate = compiler.component(name);
      for (const example of schema.examples ?? []) {
        expect(validate(example), `${name} example: ${JSON.stringify(validate.errors)}`).to.equal(true);
        examples++;
      }
    }
    expect(examples).to.be.greaterThan(5);
    // Every schema in the paths (parameters, bodies, responses) compiles too.
    for (const { path, method, op } of operations()) {
      for (const p of op.parameters ?? []) compiler.inline(p.schema);
      for (const m of Object.values<Json>(op.requestBody?.content ?? {})) compiler.inline(m.schema);
      for (const [status, r] of Object.entries<Json>(op.responses)) {
        for (const [type, m] of Object.entries<Json>(r.content ?? {}))
          expect(() => compiler.inline(m.schema), `${method} ${path} ${status} ${type}`).not.to.throw();
      }
    }
  });

  it("the schemas say what the ADR's answers are: a few answers accepted, wrong ones refused", () => {
    const c = schemaCompiler();
    const deviceView = {
      id: BYTES32_A,
      hardwareClass: 1,
      hardwareName: "rev-a",
      network: "n",
      region: "r",
      standing: "active",
      statuses: ["up-to-date"],
      installed: [],
      lastSeen: null,
      lastOutcome: null,
      lastCode: null,
      lastKind: null,
      lastRelease: null,
      lastReleaseName: null,
      blockedSince: null,
      upstream: null,
      safeMode: false,
    };
    expect(c.component("DeviceView")(deviceView)).to.equal(true);
    expect(c.component("DeviceView")({ ...deviceView, statuses: ["sleeping"] })).to.equal(false);
    expect(c.component("DeviceView")({ ...deviceView, id: "device-1" })).to.equal(false);
    const { lastSeen: _, ...withoutLastSeen } = deviceView;
    expect(c.component("DeviceView")(withoutLastSeen)).to.equal(false);
    // Names beside ids (issue 19): a name or null, never in place of the id.
    expect(c.component("DeviceView")({ ...deviceView, hardwareName: null })).to.equal(true);
    expect(c.component("DeviceView")({ ...deviceView, hardwareName: 1 })).to.equal(false);
    const { hardwareName: _h, ...withoutHardwareName } = deviceView;
    expect(c.component("DeviceView")(withoutHardwareName)).to.equal(false);
    const installed = { component: BYTES32_A, componentName: "acme.bootloader", version: "1.0.0", releaseId: BYTES32_A };
    expect(c.component("DeviceView")({ ...deviceView, installed: [installed] })).to.equal(true);
    expect(c.component("DeviceView")({ ...deviceView, installed: [{ ...installed, componentName: null }] })).to.equal(true);
    expect(c.component("DeviceView")({ ...deviceView, installed: [{ ...installed, component: "acme.bootloader" }] })).to.equal(false);

    expect(
      c.component("ReportAccepted")({
        accepted: true,
        counter: 7,
        notices: [{ v: 1, kind: "update-notice", from: BYTES32_A, to: BYTES32_A, sealed: "0x01ff" }],
      }),
    ).to.equal(true);
    expect(
      c.component("ReportAccepted")({
        accepted: true,
        counter: 7,
        notices: [{ v: 2, kind: "update-notice", from: BYTES32_A, to: BYTES32_A, sealed: "0x01ff" }],
      }),
    ).to.equal(false);
    // The answer that confirms a report session (ADR 0013).
    expect(c.component("ReportAccepted")({ accepted: true, counter: 7, notices: [], session: { id: "0x" + "5e".repeat(16), expiresAt: 1 } })).to.equal(true);
    expect(c.component("ReportAccepted")({ accepted: true, counter: 7, notices: [], session: { id: "0x5e" } })).to.equal(false);
    // The decisions are always the parent's signed answer, none or some (the child's reports are dropped on it alone).
    expect(c.component("DownstreamAccepted")({ accepted: true, taken: 0, refused: [], decisions: null })).to.equal(false);
    expect(
      c.component("DownstreamAccepted")({
        accepted: true,
        taken: 1,
        refused: [{ deviceId: BYTES32_A, code: "REPORT_REPLAYED" }],
        decisions: { v: 1, kind: "k", from: BYTES32_A, to: BYTES32_A, sealed: "0x00" },
      }),
    ).to.equal(true);
    expect(c.component("DownstreamAccepted")({ accepted: true, decisions: null })).to.equal(false);
    expect(c.component("DownstreamAccepted")({ accepted: true })).to.equal(false);

    expect(c.component("UpdateRequestInput")({ releaseId: BYTES32_A })).to.equal(false); // devices or a filter
    expect(c.component("UpdateRequestInput")({ releaseId: BYTES32_A, filter: {} })).to.equal(true);
    expect(
      c.component("UpdateRequestInput")({
        releaseId: BYTES32_A,
        devices: [BYTES32_A],
        filter: { network: "n", region: "r", hardware: [1, 2] },
        imageLocation: "ipfs://bafy",
      }),
    ).to.equal(true);
    expect(c.component("UpdateRequestInput")({ devices: [BYTES32_A] })).to.equal(false);
    expect(c.component("UpdateRequestInput")({ releaseId: "0x12" })).to.equal(false);
    expect(c.component("UpdateRequestInput")({ releaseId: BYTES32_A, filter: { hardware: ["x"] } })).to.equal(false);

    const health = {
      status: "ok",
      module: { id: BYTES32_A, role: "server", parent: null, publicKey: "0x02" + "ab".repeat(32) },
      ledger: { block: 12 },
      devices: 3,
      upstream: null,
    };
    expect(c.component("Health")(health)).to.equal(true);
    expect(c.component("Health")({ ...health, ledger: { block: null }, upstream: { lastOk: null, lastError: "unreachable" } })).to.equal(true);
    expect(c.component("Health")({ ...health, module: { id: BYTES32_A, role: "server", parent: null } })).to.equal(false);
    expect(
      c.component("Summary")({
        generatedAt: 1,
        livenessMs: 1,
        total: 0,
        counts: { upToDate: 0, outdated: 0, vulnerable: 0, failed: 0, unreachable: 0 },
        byNetwork: [],
      }),
    ).to.equal(
      false, // suspended is part of the fleet counts
    );
  });

  it("CAP-11.1-b CAP-11.2-a: the statuses are the tracker's, safe-mode among them; counts and device views carry it", () => {
    const c = schemaCompiler();
    expect(doc.components.schemas.DeviceStatus.enum).to.deep.equal([...DEVICE_STATUSES]);
    expect(doc.components.schemas.DeviceStatus.enum).to.include("safe-mode");
    expect(doc.components.schemas.DeviceStatus.description).to.include("safe-mode:").and.include("CAP-11.1-b");
    const status = (path: string) => doc.paths[path].get!.parameters!.find((p: ParameterObject) => p.name === "status")!.schema;
    expect(status("/v1/fleet/devices").enum).to.deep.equal([...DEVICE_STATUSES]);
    // The device view: safeMode is required, a boolean.
    const inSafeMode = {
      id: BYTES32_A,
      hardwareClass: 1,
      hardwareName: "rev-a",
      network: "n",
      region: "r",
      standing: "active",
      statuses: ["safe-mode"],
      installed: [],
      lastSeen: 1,
      lastOutcome: null,
      lastCode: null,
      lastKind: null,
      lastRelease: null,
      lastReleaseName: null,
      blockedSince: null,
      upstream: BYTES32_A,
      safeMode: true,
    };
    expect(c.component("DeviceView")(inSafeMode)).to.equal(true);
    expect(c.component("DeviceView")({ ...inSafeMode, statuses: ["safe-mode", "unreachable"] })).to.equal(true);
    const { safeMode: _, ...withoutSafeMode } = inSafeMode;
    expect(c.component("DeviceView")(withoutSafeMode)).to.equal(false);
    expect(c.component("DeviceView")({ ...inSafeMode, safeMode: "yes" })).to.equal(false);
    expect(doc.components.schemas.DeviceView.examples!.some((e: { statuses: string[] }) => e.statuses.includes("safe-mode"))).to.equal(true);
    // The counts: safeMode overall and per network, required.
    const counts = { upToDate: 0, outdated: 0, vulnerable: 0, failed: 0, blocked: 0, refused: 0, safeMode: 1, unreachable: 0, suspended: 0 };
    const network = { network: "n", total: 1, upToDate: 0, outdated: 0, vulnerable: 0, failed: 0, blocked: 0, refused: 0, safeMode: 1, unreachable: 0 };
    expect(c.component("Summary")({ generatedAt: 1, livenessMs: 1, total: 1, counts, byNetwork: [network] })).to.equal(true);
    const { safeMode: _c, ...countsWithout } = counts;
    const { safeMode: _n, ...networkWithout } = network;
    expect(c.component("Summary")({ generatedAt: 1, livenessMs: 1, total: 1, counts: countsWithout, byNetwork: [network] })).to.equal(false);
    expect(c.component("Summary")({ generatedAt: 1, livenessMs: 1, total: 1, counts, byNetwork: [networkWithout] })).to.equal(false);
    expect(
      (
        doc.components.schemas.Summary.examples![0] as {
          counts: Record<string, number>;
        }
      ).counts.safeMode,
    ).to.be.a("number");
    for (const op of ["/v1/fleet/summary", "/v1/fleet/devices"]) expect(doc.paths[op].get!["x-x1368"], op).to.include("CAP-11.1-b");
  });

  it("every operation has a unique operationId, a summary, a description and a 2xx answer with a schema", () => {
    const ids = new Set<string>();
    for (const { path, method, op } of operations()) {
      const at = `${method.toUpperCase()} ${path}`;
      expect(op.operationId, at).to.match(/^[a-z][A-Za-z0-9]+$/);
      expect(ids.has(op.operationId), `${at}: operationId ${op.operationId} used twice`).to.equal(false);
      ids.add(op.operationId);
      expect(op.summary, at).to.be.a("string").that.is.not.empty;
      expect(op.description.length, at).to.be.greaterThan(40);
      const success = Object.entries<Json>(op.responses).filter(([status]) => /^2\d\d$/.test(status));
      expect(success, at).to.not.be.empty;
      for (const [status, r] of success) {
        const media = Object.entries<Json>(r.content ?? {});
        expect(media, `${at} ${status}`).to.not.be.empty;
        for (const [type, m] of media) expect(m.schema, `${at} ${status} ${type}`).to.be.an("object").that.is.not.empty;
      }
      // Every refusal is {"error": {code, message}}; but the health answer's 503 (its ledger mirror
      // halted, issue 16) is its Health body, for supervisors that read it.
      for (const [status, r] of Object.entries<Json>(op.responses)) {
        if (/^2/.test(status)) continue;
        expect(status, at).to.match(/^[45]\d\d$/);
        const schema = r.content?.["application/json"]?.schema;
        if (at === "GET /v1/health" && status === "503") {
          expect(JSON.stringify(schema)).to.include('"$ref":"#/components/schemas/Health"');
          continue;
        }
        // The Error shape, its code limited to the codes listed for this status.
        expect(schema?.properties?.error?.required, `${at} ${status}`).to.deep.equal(["code", "message"]);
        expect(schema.properties.error.properties.code.enum, `${at} ${status}`).to.be.an("array").that.is.not.empty;
      }
    }
    expect(ids.size).to.equal(documentedRoutes().length);
  });

  it("every parameter in a path template is a declared, required path parameter, and no other path parameter is declared", () => {
    for (const { path, method, op } of operations()) {
      const at = `${method.toUpperCase()} ${path}`;
      const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared: ParameterObject[] = (op.parameters ?? []).filter((p: ParameterObject) => p.in === "path");
      expect(declared.map((p) => p.name).sort(), at).to.deep.equal(inTemplate);
      for (const p of declared) expect(p.required, `${at} {${p.name}}`).to.equal(true);
      const keys = (op.parameters ?? []).map((p: ParameterObject) => `${p.in}:${p.name.toLowerCase()}`);
      expect(new Set(keys).size, `${at}: a parameter declared twice`).to.equal(keys.length);
      for (const p of op.parameters ?? []) expect(p.description, `${at} ${p.name}`).to.be.a("string").that.is.not.empty;
    }
  });

  it("documentedRoutes() lists every operation of the paths object in Fastify form, and covers the ADR's table", () => {
    const routes = documentedRoutes();
    const fromPaths = operations().map(({ path, method }) => `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1")}`);
    const listed = routes.map((r) => `${r.method} ${r.path}`);
    expect(listed.slice().sort()).to.deep.equal(fromPaths.slice().sort());
    expect(new Set(listed).size).to.equal(listed.length);
    for (const r of routes) {
      expect(r.method).to.equal(r.method.toUpperCase());
      expect(r.path).to.match(/^\//);
      expect(r.path).not.to.match(/[{}]/);
    }
    expect(listed.slice().sort()).to.deep.equal(
      [
        "GET /v1/health",
        "POST /v1/reports",
        "POST /v1/downstream",
        "GET /v1/fleet/summary",
        "GET /v1/fleet/devices",
        "GET /v1/fleet/devices/:id",
        "GET /v1/releases",
        "GET /v1/releases/:id/adoption",
        "GET /v1/rollouts",
        "GET /v1/modules",
        "POST /v1/update-requests",
        "GET /v1/update-requests",
        "GET /v1/update-requests/:id",
        "POST /v1/fleet/devices/:id/tags",
        "GET /v1/groups",
        "POST /v1/groups",
        "DELETE /v1/groups/:name",
        "GET /v1/anchors",
        "GET /v1/anchors/:index/devices/:deviceId",
        "POST /v1/rollouts/:releaseId/cohorts",
        "POST /v1/releases/:id/evidence",
        "GET /openapi.json",
        "GET /",
        "GET /dashboard/:file",
      ].sort(),
    );
    // A fresh list each call: a caller may sort or change it.
    routes.pop();
    expect(documentedRoutes()).to.have.length(listed.length);
  });

  it("documents every error code of the brief, with the status the one error table gives it", () => {
    const documented = new Map<string, Set<string>>(); // code -> "METHOD path status"
    for (const { path, method, op } of operations()) {
      for (const status of Object.keys(op.responses)) {
        for (const code of errorCodesOf(op, status)) {
          expect(ERROR_CODES, code).to.have.property(code);
          documented.set(code, (documented.get(code) ?? new Set()).add(`${method.toUpperCase()} ${path} ${status}`));
          expect(op.responses[status].description, `${method} ${path} ${status}`).to.include(
            `\`${code}\`: ${ERROR_CODES[code as keyof typeof ERROR_CODES][1]}`,
          );
          // One status per code everywhere; Fastify's own refusals keep theirs (BAD_REQUEST 413, 414, 415).
          if (!(code === "BAD_REQUEST" && ["413", "414", "415"].includes(status))) expect(status, `${method} ${path} ${code}`).to.equal(String(statusOf(code)));
        }
      }
    }
    expect([...documented.keys()].sort()).to.deep.equal(BRIEF_CODES.slice().sort());
    const statuses = (code: string) => new Set([...documented.get(code)!].map((s) => s.split(" ").at(-1)));
    expect([...statuses("REPORT_REPLAYED")]).to.deep.equal(["409"]);
    expect([...statuses("UNAUTHORIZED")]).to.deep.equal(["401"]);
    // Administrators' signed requests: update requests, rollout cohorts and policy evidence.
    const signed = (status: number) =>
      new Set([
        `POST /v1/update-requests ${status}`,
        `POST /v1/rollouts/{releaseId}/cohorts ${status}`,
        `POST /v1/releases/{id}/evidence ${status}`,
        // Tags and groups (issue 19, item 11).
        `POST /v1/fleet/devices/{id}/tags ${status}`,
        `POST /v1/groups ${status}`,
        `DELETE /v1/groups/{name} ${status}`,
      ]);
    for (const code of ["AUTH_MISSING", "AUTH_SIGNATURE", "AUTH_STALE"]) expect(documented.get(code), code).to.deep.equal(signed(401));
    // A malformed header is a malformed request (400), as on the firmware server; a replayed nonce is a conflict (409) on both.
    expect(documented.get("AUTH_MALFORMED")).to.deep.equal(signed(400));
    expect(documented.get("AUTH_REPLAY")).to.deep.equal(signed(409));
    expect(documented.get("AUTH_QUOTA")).to.deep.equal(signed(429));
    expect(documented.get("SERVER_BUSY")).to.deep.equal(signed(503));
    expect(documented.get("ROLLOUT_ROOT_MISMATCH")).to.deep.equal(new Set(["POST /v1/rollouts/{releaseId}/cohorts 409"]));
    expect(documented.get("POLICY_NOT_ATTACHED")).to.deep.equal(new Set(["POST /v1/releases/{id}/evidence 409"]));
    expect(documented.get("EVIDENCE_INVALID")).to.deep.equal(new Set(["POST /v1/releases/{id}/evidence 400"]));
    for (const code of ["POLICY_READS_WHOLE_EVIDENCE", "EVIDENCE_CONFLICT"])
      expect(documented.get(code), code).to.deep.equal(new Set(["POST /v1/releases/{id}/evidence 409"]));
    for (const code of ["ANCHOR_UNKNOWN", "ANCHOR_RECORDS_PRUNED", "DEVICE_NOT_IN_ANCHOR"])
      expect(documented.get(code), code).to.deep.equal(new Set(["GET /v1/anchors/{index}/devices/{deviceId} 404"]));
    expect(documented.get("MESSAGE_REPLAYED")).to.deep.equal(new Set(["POST /v1/downstream 409"]));
    expect([...statuses("INTERNAL")]).to.deep.equal(["500"]);
    expect(documented.get("INTERNAL")!.size, "every operation can fail unexpectedly").to.equal(documentedRoutes().length);
    expect([...statuses("NOT_ADMINISTRATOR")]).to.deep.equal(["403"]);
    expect([...statuses("DEVICE_UNKNOWN")]).to.deep.equal(["404"]);
    expect([...statuses("LEDGER_UNAVAILABLE")]).to.deep.equal(["503"]);
    expect([...statuses("BAD_REQUEST")].sort()).to.deep.equal(["400", "413", "414", "415"]);
    // One status per code: an unknown release is 404 in an update request too, as on a read and on the firmware server.
    expect(documented.get("RELEASE_UNKNOWN")).to.deep.equal(
      new Set([
        "GET /v1/releases/{id}/adoption 404",
        "POST /v1/update-requests 404",
        "POST /v1/rollouts/{releaseId}/cohorts 404",
        "POST /v1/releases/{id}/evidence 404",
      ]),
    );
    expect(documented.get("RELEASE_NOT_VERIFIED")).to.deep.equal(new Set(["POST /v1/update-requests 422"]));
    expect(documented.get("PROVIDER_BARRED")).to.deep.equal(new Set(["POST /v1/update-requests 403"]));
    for (const code of ["RELEASE_NOT_ACTIVE", "IMAGE_LOCATION_MISMATCH", "NO_DEVICES"])
      expect(documented.get(code)).to.deep.equal(new Set([`POST /v1/update-requests 400`]));
    for (const code of BRIEF_CODES.filter((c) => c.startsWith("REPORT_")))
      expect(
        [...documented.get(code)!].every((s) => s.startsWith("POST /v1/reports ")),
        code,
      ).to.equal(true);
    for (const code of BRIEF_CODES.filter((c) => c.startsWith("MODULE_")))
      expect(
        [...documented.get(code)!].every((s) => s.startsWith("POST /v1/downstream ")),
        code,
      ).to.equal(true);

    // The per-status schema takes the codes listed there and no other.
    const c = schemaCompiler();
    const adoption404 = c.inline(doc.paths["/v1/releases/{id}/adoption"].get!.responses["404"].content!["application/json"].schema);
    expect(adoption404({ error: { code: "RELEASE_UNKNOWN", message: "m" } })).to.equal(true);
    expect(adoption404({ error: { code: "DEVICE_UNKNOWN", message: "m" } })).to.equal(false);
    expect(adoption404({ error: { code: "RELEASE_UNKNOWN" } })).to.equal(false);
  });

  it("read endpoints take the optional bearer token; devices, modules and administrators authenticate by seal or signature instead", () => {
    const scheme = doc.components.securitySchemes.bearerAuth;
    expect(scheme).to.include({ type: "http", scheme: "bearer" });
    expect(scheme.description).to.include("tracker.apiToken");
    const open = new Set([
      "GET /v1/health",
      "GET /openapi.json",
      "POST /v1/reports",
      "POST /v1/downstream",
      "POST /v1/update-requests",
      "POST /v1/rollouts/{releaseId}/cohorts",
      "POST /v1/releases/{id}/evidence",
      "POST /v1/fleet/devices/{id}/tags",
      "POST /v1/groups",
      "DELETE /v1/groups/{name}",
      "GET /",
      "GET /dashboard/{file}",
    ]);
    for (const { path, method, op } of operations()) {
      const at = `${method.toUpperCase()} ${path}`;
      for (const requirement of op.security)
        for (const name of Object.keys(requirement as object)) expect(doc.components.securitySchemes, at).to.have.property(name);
      if (open.has(at)) {
        expect(op.security, at).to.deep.equal([]);
        expect(errorCodesOf(op, "401"), at).not.to.include("UNAUTHORIZED");
      } else {
        expect(op.security, at).to.deep.equal([{ bearerAuth: [] }]);
        expect(errorCodesOf(op, "401"), at).to.include("UNAUTHORIZED");
      }
    }
  });

  it("an update request carries the signed-request headers of agent/crypto/requestSignature.ts, and a JSON body", () => {
    const op = doc.paths["/v1/update-requests"].post!;
    const headers = (op.parameters ?? []).filter((p: ParameterObject) => p.in === "header");
    const required = headers.filter((p: ParameterObject) => p.required).map((p: ParameterObject) => p.name);
    expect(required.sort()).to.deep.equal([HEADER.account, HEADER.timestamp, HEADER.nonce, HEADER.signature].sort());
    expect(headers.find((p: ParameterObject) => p.name === HEADER.context)?.required).to.equal(false);
    expect(headers.map((p: ParameterObject) => p.name)).not.to.include(HEADER.device); // administrators sign with their account
    expect(op.requestBody?.required).to.equal(true);
    expect(op.requestBody?.content["application/json"].schema).to.deep.include({ $ref: "#/components/schemas/UpdateRequestInput" });
    // Sealed messages are posted as envelopes; a status report may also come sealed under its report session (ADR 0013).
    expect(doc.paths["/v1/downstream"].post!.requestBody?.content["application/json"].schema).to.deep.include({ $ref: "#/components/schemas/EnvelopeInput" });
    expect(doc.paths["/v1/reports"].post!.requestBody?.content["application/json"].schema).to.deep.equal({ $ref: "#/components/schemas/ReportEnvelopeInput" });
    expect(doc.components.schemas.ReportEnvelopeInput.properties.session.pattern).to.equal("^0x[0-9a-fA-F]{32}$");
  });

  it("each operation names its X.1368 clauses, in its description too", () => {
    const clauses = (key: string) => {
      const [method, path] = key.split(" ");
      return (doc.paths[path] as Record<string, OperationObject>)[method.toLowerCase()]["x-x1368"] ?? [];
    };
    expect(clauses("POST /v1/reports")).to.include.members(["PROC-5", "CAP-11.1-a-i"]);
    expect(clauses("POST /v1/downstream")).to.include.members(["DEP-8.2.2", "DEP-8.2.3", "CAP-11.2-m"]);
    expect(clauses("POST /v1/update-requests")).to.include.members(["PROC-2"]);
    for (const list of ["GET /v1/fleet/summary", "GET /v1/fleet/devices", "GET /v1/fleet/devices/{id}", "GET /v1/releases"])
      expect(clauses(list), list).to.include.members(["CAP-11.2-a", "CAP-11.2-b"]);
    for (const decisions of ["GET /v1/fleet/devices/{id}", "GET /v1/rollouts"])
      expect(clauses(decisions), decisions).to.include.members(["CAP-11.2-c", "CAP-11.3-g"]);
    for (const { path, method, op } of operations()) {
      for (const clause of op["x-x1368"] ?? []) expect(op.description, `${method} ${path}`).to.include(clause);
    }
  });

  it("the dashboard is an HTML page and its files are the page, scripts and style sheets", () => {
    expect(Object.keys(doc.paths["/"].get!.responses["200"].content!)).to.deep.equal(["text/html"]);
    const files = doc.paths["/dashboard/{file}"].get!;
    expect(Object.keys(files.responses["200"].content!).sort()).to.deep.equal(["text/css", "text/html", "text/javascript"]);
    const name = new RegExp(files.parameters![0].schema.pattern!);
    expect(name.test("dashboard.js")).to.equal(true);
    expect(name.test("..")).to.equal(false);
    expect(name.test("../fleet.db")).to.equal(false);
  });
});
