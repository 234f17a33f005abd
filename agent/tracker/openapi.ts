import { HEADER } from "../crypto/requestSignature";
import { REPORT_KIND } from "../core/statusReport";

/**
 * The status tracker's HTTP API (v1, ADR 0004) as an OpenAPI 3.1 document, served at
 * `/openapi.json`. It is written as code so that the compiler checks its shape and a test can hold
 * it against the routes the tracker really registers (documentedRoutes()).
 */

// ---------------------------------------------------------------------------- OpenAPI 3.1 types
// The subset of OpenAPI 3.1 (and of its JSON Schema 2020-12 dialect) this document uses.

export type JsonType = "object" | "array" | "string" | "integer" | "number" | "boolean" | "null";

export interface SchemaObject {
  $ref?: string;
  title?: string;
  description?: string;
  type?: JsonType | JsonType[];
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean | SchemaObject;
  items?: SchemaObject;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  enum?: (string | number | boolean | null)[];
  const?: string | number | boolean | null;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  format?: string;
  default?: unknown;
  oneOf?: SchemaObject[];
  anyOf?: SchemaObject[];
  allOf?: SchemaObject[];
  examples?: unknown[];
}

export interface ParameterObject {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  description: string;
  required?: boolean;
  schema: SchemaObject;
}

export interface MediaTypeObject {
  schema: SchemaObject;
}

export interface ResponseObject {
  description: string;
  content?: Record<string, MediaTypeObject>;
}

export interface RequestBodyObject {
  description: string;
  required: boolean;
  content: Record<string, MediaTypeObject>;
}

export interface OperationObject {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  /** The X.1368 clauses the operation serves (also named in the description). */
  "x-x1368"?: string[];
  security: Record<string, string[]>[];
  parameters?: ParameterObject[];
  requestBody?: RequestBodyObject;
  responses: Record<string, ResponseObject>;
}

export const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];
export type PathItemObject = { summary?: string; description?: string } & Partial<Record<HttpMethod, OperationObject>>;

export interface SecuritySchemeObject {
  type: "http" | "apiKey" | "oauth2" | "openIdConnect" | "mutualTLS";
  scheme?: string;
  description: string;
}

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; summary?: string; description: string; license?: { name: string; identifier: string } };
  tags: { name: string; description: string }[];
  paths: Record<string, PathItemObject>;
  components: { schemas: Record<string, SchemaObject>; securitySchemes: Record<string, SecuritySchemeObject> };
}

// ---------------------------------------------------------------------------- error codes

/**
 * Every code the tracker answers with, and what an integrator should make of it. The HTTP status
 * of a code is given per operation below (RELEASE_UNKNOWN is 404 on a read, 400 in an update
 * request).
 */
export const TRACKER_ERRORS = {
  BAD_REQUEST: "the request is malformed (body not JSON, a parameter out of range or not of its form); the message says which part",
  UNAUTHORIZED: "the bearer token is missing or wrong: send `Authorization: Bearer <tracker.apiToken>` (required only when the tracker is configured with tracker.apiToken)",
  MESSAGE_MALFORMED: "the body is not a sealed message envelope {v: 1, kind, from, to, sealed}, or what it seals is not JSON or disagrees with the envelope",
  MESSAGE_NOT_FOR_ME: "the envelope is addressed (`to`) to another tracker module: seal the message to this module's id and public key",
  MESSAGE_SIGNATURE: "the signature inside the sealed message is malformed and names no signer",
  REPORT_KIND: `the sealed message is not a status report (kind "${REPORT_KIND}")`,
  REPORT_UNKNOWN_DEVICE: "the sending device is not enrolled in this module's fleet (as mirrored from the ledger)",
  REPORT_DEVICE_NOT_ACTIVE: "the device is suspended or withdrawn on the ledger; its reports are not taken",
  REPORT_SIGNATURE: "the report is not signed by the device's enrolled key",
  REPORT_MALFORMED: "the report does not name its device (the envelope's `from`), a counter and the installed components",
  REPORT_REPLAYED: "the report's counter is not above the last one taken from this device: a replay, or a report overtaken by a newer one; send a new report with a higher counter",
  MODULE_NOT_REGISTERED: "the sending module is not a registered, unretired tracker module on the ledger",
  MODULE_NOT_CHILD: "the sending module is registered, but its parent on the ledger is not this module",
  MODULE_SIGNATURE: "the message is not signed by the sending module's registered signer",
  MESSAGE_STALE: "the message's issuedAt is outside this module's freshness window: seal a fresh message with a correct clock",
  REQUEST_AUTH: `the signed-request headers are missing, malformed, stale, replayed or not valid for this tracker's origin: sign the request afresh (${HEADER.account}, ${HEADER.timestamp}, ${HEADER.nonce}, ${HEADER.signature})`,
  NOT_ADMINISTRATOR: "the signing account does not hold the registry's ADMINISTRATOR_ROLE for this tracker",
  RELEASE_UNKNOWN: "the ledger (as mirrored by this module) has no release with this id",
  RELEASE_NOT_ACTIVE: "the release is revoked or flagged vulnerable on the ledger; only active releases can be requested",
  PROVIDER_BARRED: "the release's provider is barred on the ledger",
  IMAGE_LOCATION_MISMATCH: "imageLocation is not the file link the ledger records for the release; omit it or give the recorded link",
  NO_DEVICES: "the request selects no device: name devices or give a filter that matches some",
  DEVICE_UNKNOWN: "this module's fleet database has no device with this id",
  LEDGER_UNAVAILABLE: "the ledger did not answer; retry later",
} as const;

export type TrackerErrorCode = keyof typeof TRACKER_ERRORS;

// ---------------------------------------------------------------------------- building blocks

const ref = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: SchemaObject): Record<string, MediaTypeObject> => ({ "application/json": { schema } });
const ok = (description: string, name: string): Record<string, ResponseObject> => ({ "200": { description, content: json(ref(name)) } });

const STATUS_TEXT: Record<number, string> = {
  400: "Malformed or refused request",
  401: "Not authenticated",
  403: "Not authorised",
  404: "Unknown",
  409: "Replayed",
  503: "Ledger unavailable",
};

/**
 * Error responses from [code, status] pairs: one response per status, its description listing
 * each code with its meaning, its schema the Error shape with `code` limited to those codes.
 */
function errors(...entries: [TrackerErrorCode, number][]): Record<string, ResponseObject> {
  const byStatus = new Map<number, TrackerErrorCode[]>();
  for (const [code, status] of entries) byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  const out: Record<string, ResponseObject> = {};
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `${STATUS_TEXT[status]}. Error codes:\n\n${codes.map((c) => `- \`${c}\`: ${TRACKER_ERRORS[c]}`).join("\n")}`,
      content: json({
        allOf: [ref("Error")],
        properties: { error: { properties: { code: { enum: codes } } } },
      }),
    };
  }
  return out;
}

const READER: Record<string, string[]>[] = [{ bearerAuth: [] }];
const ANYONE: Record<string, string[]>[] = [];

const BYTES32 = "^0x[0-9a-fA-F]{64}$";

// Times are milliseconds since the epoch; counts are whole numbers of devices.
const ms = (description: string): SchemaObject => ({ type: "integer", minimum: 0, description });
const msOrNull = (description: string): SchemaObject => ({ type: ["integer", "null"], minimum: 0, description });
const count = (description: string): SchemaObject => ({ type: "integer", minimum: 0, description });
const id = (description: string): SchemaObject => ({ allOf: [ref("Bytes32")], description });

const readerErrors = (...more: [TrackerErrorCode, number][]) => errors(...more, ["UNAUTHORIZED", 401]);

const idParameter = (description: string): ParameterObject => ({ name: "id", in: "path", required: true, description, schema: ref("Bytes32") });

// The headers of a request signed by an account (agent/crypto/requestSignature.ts).
const SIGNED_REQUEST_HEADERS: ParameterObject[] = [
  {
    name: HEADER.account,
    in: "header",
    required: true,
    description: "The administrator's Ethereum address, the identity that signed the request.",
    schema: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" },
  },
  {
    name: HEADER.timestamp,
    in: "header",
    required: true,
    description: "When the request was signed, in milliseconds since the epoch; refused when outside the tracker's window (REQUEST_AUTH).",
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
  {
    name: HEADER.nonce,
    in: "header",
    required: true,
    description: "16 random bytes as 32 hex digits, fresh for every request; a nonce seen before is refused (REQUEST_AUTH).",
    schema: { type: "string", pattern: "^[0-9a-fA-F]{32}$" },
  },
  {
    name: HEADER.signature,
    in: "header",
    required: true,
    description:
      "EIP-191 signature by the account of the request message: `OTA-Ledger-Request-v1 \\n tracker origin \\n POST \\n /v1/update-requests \\n account (lower case) \\n timestamp \\n nonce \\n sha256(body bytes, hex) \\n context`.",
    schema: { type: "string", pattern: "^0x[0-9a-fA-F]{130}$" },
  },
  {
    name: HEADER.context,
    in: "header",
    required: false,
    description: "Extra signed data; update requests use none. When sent, it is the last line of the signed message.",
    schema: { type: "string" },
  },
];

// ---------------------------------------------------------------------------- schemas

const schemas: Record<string, SchemaObject> = {
  Bytes32: {
    type: "string",
    pattern: BYTES32,
    description: "32 bytes as 0x and 64 hex digits: a release, component, device or tracker-module id. Answers give ids in lower case.",
    examples: ["0x4f1c2b7a9e0d3c5b8a6f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3"],
  },
  Version: {
    type: "string",
    pattern: "^[0-9]+\\.[0-9]+\\.[0-9]+(-(alpha|beta|rc)\\.[0-9]+)?$",
    description: "A version as major.minor.patch (with -alpha.n, -beta.n or -rc.n for a pre-release).",
    examples: ["2.4.1"],
  },
  DeviceStatus: {
    type: "string",
    enum: ["up-to-date", "outdated", "vulnerable", "failed", "unreachable", "suspended"],
    description:
      "outdated: its plan has steps; vulnerable: it runs a release flagged vulnerable or revoked; failed: its last update failed, rolled back or was rejected; unreachable: no contact within the liveness window; up-to-date: none of these (a device that never reported is not up to date: what it runs is unknown); suspended: suspended or withdrawn on the ledger, and then its only status.",
  },
  Error: {
    type: "object",
    required: ["error"],
    description: "Every refusal. Branch on `code`, never on `message` (for people).",
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: {
          code: { type: "string", pattern: "^[A-Z][A-Z0-9_]*$", description: "Stable machine-readable code (see each response)." },
          message: { type: "string", description: "What went wrong, for a person." },
        },
      },
    },
    examples: [{ error: { code: "DEVICE_UNKNOWN", message: "no device 0x4f1c… in this fleet" } }],
  },
  Envelope: {
    type: "object",
    required: ["v", "kind", "from", "to", "sealed"],
    description:
      "A sealed message (agent/crypto/sealedMessage.ts): signed by the sender (a device with its enrolled key, a tracker module with its registered signer), then sealed with ECIES to the recipient's public key. Only `v`, `kind`, `from` and `to` are in the clear, for routing; the recipient checks that the sealed copy agrees with them.",
    properties: {
      v: { const: 1, description: "Envelope format version." },
      kind: { type: "string", minLength: 1, description: `What the sealed message is: "${REPORT_KIND}", "update-notice", "downstream-status", or the decisions a module sends below.` },
      from: id("The sender: a device id or a tracker-module id."),
      to: id("The recipient: a tracker-module id or a device id."),
      sealed: { type: "string", pattern: "^0x([0-9a-fA-F]{2})+$", description: "The ECIES ciphertext, hex." },
    },
    examples: [{ v: 1, kind: REPORT_KIND, from: "0x" + "ab".repeat(32), to: "0x" + "cd".repeat(32), sealed: "0x01" + "00".repeat(120) }],
  },
  InstalledComponent: {
    type: "object",
    required: ["component", "version", "releaseId"],
    properties: {
      component: id("The component id."),
      version: ref("Version"),
      releaseId: id("The release the device installed it from."),
    },
  },
  StatusReport: {
    type: "object",
    required: ["deviceId", "counter", "installed"],
    description: "What a device tells its tracker (PROC-5, CAP-11.1-a), as agent/core/statusReport.ts defines it.",
    properties: {
      deviceId: ref("Bytes32"),
      counter: { type: "integer", minimum: 0, description: "Rises with every report the device sends." },
      installed: {
        type: "array",
        items: {
          type: "object",
          required: ["component", "version", "releaseId"],
          properties: {
            component: ref("Bytes32"),
            version: { type: "string", description: "The encoded version as a decimal integer." },
            releaseId: ref("Bytes32"),
            slot: { type: "string", enum: ["a", "b"] },
          },
        },
      },
      lastResult: {
        type: ["object", "null"],
        description: "The outcome of the previous update (CAP-11.1-a-i).",
        properties: { releaseId: ref("Bytes32"), component: ref("Bytes32"), outcome: { type: "string" }, code: { type: "string" }, at: ms("When.") },
      },
      needs: { type: "array", items: { type: "object", properties: { releaseId: ref("Bytes32"), component: ref("Bytes32"), reason: { type: "string" } } } },
      declined: { type: "array", items: { type: "object", properties: { releaseId: ref("Bytes32"), code: { type: "string" } } } },
      safeMode: { type: "boolean" },
    },
  },
  DeviceView: {
    type: "object",
    required: ["id", "hardwareClass", "network", "region", "standing", "statuses", "installed", "lastSeen", "lastOutcome", "lastCode", "upstream"],
    description: "One device as this module sees it: its ledger enrolment, what it last reported, and its statuses.",
    properties: {
      id: id("The device id."),
      hardwareClass: { type: "integer", minimum: 0, description: "The hardware class it is enrolled with." },
      network: { type: "string", description: "The network label it is enrolled with, decoded." },
      region: { type: "string", description: "The region label it is enrolled with, decoded." },
      standing: { type: "string", enum: ["active", "suspended", "revoked"], description: "Its standing on the ledger (revoked: the enrolment was withdrawn)." },
      statuses: { type: "array", uniqueItems: true, items: ref("DeviceStatus"), description: "Every status that applies (a device can be vulnerable and unreachable at once)." },
      installed: { type: "array", items: ref("InstalledComponent"), description: "What it runs, as of its last report." },
      lastSeen: msOrNull("Its last contact (a report, or a module below vouching for it); null if never."),
      lastOutcome: { type: ["string", "null"], description: "The outcome of its last update, e.g. confirmed, rolled-back, rejected; null if none reported." },
      lastCode: { type: ["string", "null"], description: "The code that came with that outcome." },
      upstream: {
        anyOf: [ref("Bytes32"), { type: "null" }],
        description: "The tracker module its last report came through: this module's id when it reports directly, a child module's id otherwise; null before its first report.",
      },
    },
    examples: [
      {
        id: "0x" + "ab".repeat(32),
        hardwareClass: 3,
        network: "plant-north",
        region: "eu-west",
        standing: "active",
        statuses: ["outdated", "unreachable"],
        installed: [{ component: "0x" + "01".repeat(32), version: "2.4.1", releaseId: "0x" + "02".repeat(32) }],
        lastSeen: 1767225600000,
        lastOutcome: "confirmed",
        lastCode: "OK",
        upstream: "0x" + "cd".repeat(32),
      },
    ],
  },
  DeviceList: {
    type: "object",
    required: ["total", "devices"],
    properties: {
      total: count("How many devices match the filters (before limit and offset)."),
      devices: { type: "array", items: ref("DeviceView"), description: "The page asked for." },
    },
  },
  StatusCounts: {
    type: "object",
    required: ["upToDate", "outdated", "vulnerable", "failed", "unreachable"],
    properties: {
      upToDate: count("Devices up to date."),
      outdated: count("Devices whose plan has steps."),
      vulnerable: count("Devices running a release flagged vulnerable or revoked."),
      failed: count("Devices whose last update failed, rolled back or was rejected."),
      unreachable: count("Devices not heard from within the liveness window."),
    },
  },
  Summary: {
    type: "object",
    required: ["generatedAt", "livenessMs", "total", "counts", "byNetwork"],
    description: "Device counts by status, for the whole fleet and per network. A device may count under several statuses.",
    properties: {
      generatedAt: ms("When the summary was computed."),
      livenessMs: count("The liveness window: a device not heard from for this long is unreachable."),
      total: count("Devices in this module's fleet."),
      counts: {
        allOf: [ref("StatusCounts")],
        required: ["suspended"],
        properties: { suspended: count("Devices suspended or withdrawn on the ledger.") },
      },
      byNetwork: {
        type: "array",
        items: {
          allOf: [ref("StatusCounts")],
          required: ["network", "total"],
          properties: { network: { type: "string", description: "The network label." }, total: count("Devices in that network.") },
        },
      },
    },
    examples: [
      {
        generatedAt: 1767225600000,
        livenessMs: 3600000,
        total: 1200,
        counts: { upToDate: 1100, outdated: 80, vulnerable: 5, failed: 3, unreachable: 40, suspended: 2 },
        byNetwork: [{ network: "plant-north", total: 1200, upToDate: 1100, outdated: 80, vulnerable: 5, failed: 3, unreachable: 40 }],
      },
    ],
  },
  PlanStep: {
    type: "object",
    required: ["component", "releaseId", "version", "reason"],
    properties: {
      component: id("The component to update."),
      releaseId: id("The release to install."),
      version: ref("Version"),
      reason: { type: "string", enum: ["new-release", "outdated", "vulnerable-installed", "revoked-installed", "dependency"], description: "Why this step is planned." },
    },
  },
  DeviceDetail: {
    type: "object",
    required: ["device", "plan", "reports", "decisions"],
    description: "One device: its view, the resolver's plan for its configuration, its latest reports and the decisions taken for it.",
    properties: {
      device: ref("DeviceView"),
      plan: {
        type: "object",
        required: ["steps", "unchanged"],
        description: "The install plan of the device's configuration (CAP-11.2-c): steps in order, dependencies first, and why the other managed components get none.",
        properties: {
          steps: { type: "array", items: ref("PlanStep") },
          unchanged: {
            type: "array",
            items: {
              type: "object",
              required: ["component", "code"],
              properties: {
                component: id("The component."),
                code: {
                  type: "string",
                  enum: ["UP_TO_DATE", "NO_RELEASE", "NO_RELEASE_FOR_HARDWARE", "NO_TRUSTED_RELEASE", "PREVIOUSLY_FAILED", "PINNED", "NOT_A_SECURITY_FIX", "TARGET_NOT_AVAILABLE", "DEPENDENCY_UNSATISFIABLE", "SEARCH_LIMIT"],
                  description: "Why no step (agent/core/installPlan.ts UnchangedCode).",
                },
              },
            },
          },
        },
      },
      reports: {
        type: "array",
        description: "Its latest reports, newest first, as the device sent them.",
        items: {
          type: "object",
          required: ["counter", "receivedAt", "body"],
          properties: { counter: { type: "integer", minimum: 0 }, receivedAt: ms("When this module took it."), body: ref("StatusReport") },
        },
      },
      decisions: {
        type: "array",
        description: "Updates decided for it (CAP-11.2-c, CAP-11.3-g) and how far each went.",
        items: {
          type: "object",
          required: ["releaseId", "component", "reason", "origin", "state", "decidedAt"],
          properties: {
            releaseId: ref("Bytes32"),
            component: ref("Bytes32"),
            reason: { type: "string", description: "Why it was decided (a plan step's reason, or an administrator's request)." },
            origin: { type: "string", description: "Who decided: this module's resolver, an administrator's update request, or the module above." },
            state: { type: "string", description: "How far it went: decided, a notice delivered, installed or failed." },
            decidedAt: ms("When it was decided."),
          },
        },
      },
      deliveries: {
        type: "array",
        description: "The notices handed out for it: which release, why, decided by whom, through which module, and when.",
        items: {
          type: "object",
          required: ["releaseId", "reason", "origin", "via", "deliveredAt"],
          properties: {
            releaseId: ref("Bytes32"),
            reason: { type: "string" },
            origin: { type: "string" },
            via: { type: "string", description: "The module the notice went through (this module's id: to the device directly)." },
            deliveredAt: ms("When the notice was handed out."),
          },
        },
      },
    },
  },
  Release: {
    type: "object",
    required: ["id", "component", "version", "status", "hardware", "installed", "notified", "failed"],
    description: "A release as mirrored from the ledger, with what this module's fleet did with it.",
    properties: {
      id: id("The release id."),
      component: id("The component id."),
      version: ref("Version"),
      status: { type: "string", enum: ["active", "vulnerable", "revoked"], description: "Its status on the ledger." },
      hardware: { type: "array", items: { type: "integer", minimum: 0 }, description: "The hardware classes it supports." },
      installed: count("Devices running it."),
      notified: count("Devices that were handed a notice for it."),
      failed: count("Devices whose last failed install was this release."),
    },
  },
  ReleaseList: { type: "object", required: ["releases"], properties: { releases: { type: "array", items: ref("Release") } } },
  AdoptionPoints: {
    type: "object",
    required: ["releaseId", "points"],
    description: "The adoption curve of a release: how many devices ran it over time, oldest point first.",
    properties: {
      releaseId: ref("Bytes32"),
      points: {
        type: "array",
        items: { type: "object", required: ["t", "installed"], properties: { t: ms("The sample time."), installed: count("Devices running the release then.") } },
      },
    },
    examples: [{ releaseId: "0x" + "02".repeat(32), points: [{ t: 1767225600000, installed: 10 }, { t: 1767229200000, installed: 640 }] }],
  },
  Rollout: {
    type: "object",
    required: ["releaseId", "component", "version", "origin", "startedAt", "decided", "notified", "installed", "failed", "pending"],
    description: "The rollout of one release in this module's fleet (CAP-11.3-g): devices decided, notified, done and still pending.",
    properties: {
      releaseId: ref("Bytes32"),
      component: ref("Bytes32"),
      version: ref("Version"),
      origin: { type: "string", description: "What started it: this module's resolver after a ledger change, an administrator's update request, or the module above." },
      startedAt: ms("When the first decision was taken."),
      decided: count("Devices the release was decided for."),
      notified: count("Of those, devices handed a notice."),
      installed: count("Devices running the release."),
      failed: count("Devices whose install of it failed."),
      pending: count("Decided devices that have neither installed it nor failed."),
    },
  },
  RolloutList: { type: "object", required: ["rollouts"], properties: { rollouts: { type: "array", items: ref("Rollout") } } },
  Module: {
    type: "object",
    required: ["id", "role", "networks", "lastSeen", "reachable", "devices", "unreachableDevices"],
    description: "A tracker module below this one, as its downstream status posts describe it (DEP-8.2.3).",
    properties: {
      id: id("The module id (as registered on the ledger)."),
      role: { type: "string", enum: ["server", "intermediate"], description: "Its place in the hierarchy (a module below this one is an intermediate)." },
      networks: { type: "array", items: { type: "string" }, description: "The networks it serves." },
      lastSeen: msOrNull("Its last downstream status post."),
      reachable: { type: "boolean", description: "Whether it posted within the liveness window." },
      devices: count("Devices it reported for."),
      unreachableDevices: count("Of those, devices it cannot reach."),
    },
  },
  ModuleList: { type: "object", required: ["modules"], properties: { modules: { type: "array", items: ref("Module") } } },
  UpdateRequest: {
    type: "object",
    required: ["releaseId"],
    description: "An administrator's request to roll a release out (PROC-2): which release and which devices.",
    properties: {
      releaseId: id("The release to install; it must be on the ledger and active, from a provider that is not barred."),
      devices: { type: "array", minItems: 1, items: ref("Bytes32"), description: "Device ids to update." },
      filter: {
        type: "object",
        description: "Selects devices from this module's fleet; each field given narrows the selection.",
        properties: {
          network: { type: "string", description: "Only devices of this network label." },
          region: { type: "string", description: "Only devices of this region label." },
          hardware: { type: "array", minItems: 1, items: { type: "integer", minimum: 0 }, description: "Only devices of one of these hardware classes." },
        },
      },
      imageLocation: { type: "string", minLength: 1, description: "Where the image is to be fetched; if given, it must be the file link the ledger records for the release (IMAGE_LOCATION_MISMATCH otherwise)." },
    },
    examples: [{ releaseId: "0x" + "02".repeat(32), filter: { network: "plant-north", hardware: [3] } }],
  },
  UpdateRequestResult: {
    type: "object",
    required: ["requestId", "releaseId", "decided", "refused"],
    description: "What an update request decided. Devices refused individually are listed; the others now have a decision and get their notice at their next contact.",
    properties: {
      requestId: { type: "string", minLength: 1, description: "This request's id, as recorded with its decisions." },
      releaseId: ref("Bytes32"),
      decided: count("Devices the release was decided for."),
      refused: {
        type: "array",
        items: {
          type: "object",
          required: ["deviceId", "code", "message"],
          properties: {
            deviceId: ref("Bytes32"),
            code: {
              type: "string",
              description:
                "Why this device was left out: DEVICE_UNKNOWN for a device this module does not know, or the code of the check it failed (its standing on the ledger, its hardware class, the registry's checkInstallable answer).",
            },
            message: { type: "string" },
          },
        },
      },
    },
    examples: [{ requestId: "7", releaseId: "0x" + "02".repeat(32), decided: 118, refused: [{ deviceId: "0x" + "ab".repeat(32), code: "DEVICE_UNKNOWN", message: "not in this fleet" }] }],
  },
  Health: {
    type: "object",
    required: ["status", "module", "ledger", "devices"],
    properties: {
      status: { type: "string", description: "The module's state, \"ok\" when it serves." },
      module: {
        type: "object",
        required: ["id", "role", "parent"],
        properties: {
          id: id("This module's id."),
          role: { type: "string", enum: ["server", "intermediate"], description: "server: the top of the hierarchy; intermediate: it posts to a parent." },
          parent: { anyOf: [ref("Bytes32"), { type: "null" }], description: "The parent module's id; null for a server module." },
        },
      },
      ledger: { type: "object", required: ["block"], properties: { block: { type: "integer", minimum: 0, description: "The last ledger block this module's mirror has applied." } } },
      devices: count("Devices in this module's fleet."),
    },
  },
  ReportAccepted: {
    type: "object",
    required: ["accepted", "counter", "notices"],
    properties: {
      accepted: { const: true },
      counter: { type: "integer", minimum: 0, description: "The counter of the report taken." },
      notices: { type: "array", items: ref("Envelope"), description: "Update notices for the device (kind \"update-notice\"), signed by this module and sealed to the device; empty when none is due." },
    },
  },
  DownstreamAccepted: {
    type: "object",
    required: ["accepted", "decisions"],
    properties: {
      accepted: { const: true },
      taken: count("How many of the forwarded device reports were taken."),
      refused: {
        type: "array",
        description: "The forwarded reports that were not taken, with the code of the check each failed (e.g. REPORT_SIGNATURE, REPORT_REPLAYED); one bad report does not block the others.",
        items: { type: "object", required: ["deviceId", "code"], properties: { deviceId: { type: "string", description: "The device the report claims to come from." }, code: { type: "string" } } },
      },
      decisions: {
        anyOf: [ref("Envelope"), { type: "null" }],
        description: "The decisions for the child module's devices, signed by this module and sealed to the child; null when there are none.",
      },
    },
  },
};

// ---------------------------------------------------------------------------- paths

const paths: Record<string, PathItemObject> = {
  "/v1/health": {
    get: {
      operationId: "getHealth",
      summary: "Module health",
      description: "Whether this tracker module serves, which module it is (id, role, parent), how far its ledger mirror has read and how many devices it follows. Needs no token: meant for load balancers and supervisors.",
      tags: ["health"],
      security: ANYONE,
      responses: ok("The module's health.", "Health"),
    },
  },
  "/v1/reports": {
    post: {
      operationId: "postReport",
      summary: "A device posts its sealed status report",
      description: [
        "X.1368 PROC-5, CAP-11.1-a-i. A device's heartbeat: it posts its status report (what it runs, the outcome of its last update, what it needs and declined), signed with its enrolled device key and sealed to this module. Devices may sit behind NAT, so they always open the connection and the answer carries what the tracker has for them.",
        "",
        `The envelope must be addressed to this module, be of kind "${REPORT_KIND}", come from a device this module's ledger mirror knows and holds active, be signed by that device's enrolled key, and carry a counter above the last one taken (so a replay is refused). The report and what the device now runs are stored at once.`,
        "",
        "The answer carries the update notices due for the device, sealed to it now (notices are sealed only at delivery).",
      ].join("\n"),
      tags: ["devices and modules"],
      "x-x1368": ["PROC-5", "CAP-11.1-a-i"],
      security: ANYONE,
      requestBody: { description: `A sealed "${REPORT_KIND}" message from the device.`, required: true, content: json(ref("Envelope")) },
      responses: {
        ...ok("The report was taken; here are the device's notices.", "ReportAccepted"),
        ...errors(
          ["BAD_REQUEST", 400],
          ["MESSAGE_MALFORMED", 400],
          ["MESSAGE_NOT_FOR_ME", 400],
          ["REPORT_KIND", 400],
          ["REPORT_MALFORMED", 400],
          ["MESSAGE_SIGNATURE", 401],
          ["REPORT_SIGNATURE", 401],
          ["REPORT_UNKNOWN_DEVICE", 403],
          ["REPORT_DEVICE_NOT_ACTIVE", 403],
          ["REPORT_REPLAYED", 409],
        ),
      },
    },
  },
  "/v1/downstream": {
    post: {
      operationId: "postDownstream",
      summary: "A child module posts its sealed downstream status",
      description: [
        "X.1368 DEP-8.2.2, DEP-8.2.3, CAP-11.2-m. An intermediate module (registered on the ledger with this module as its parent) posts, signed by its registered signer and sealed to this module, the device reports it verified, each still carrying the device's own signature, and the reachability of its downstream. Each forwarded report is checked here against the device's enrolled key and counter, as if the device had posted it, so this module never takes the intermediate's word for a device; a report that fails is listed in `refused` with its code, and does not block the others.",
        "",
        "The answer carries the decisions for the child's devices (the upstream decides), signed by this module and sealed to the child, which turns them into notices signed by itself (the downstream starts).",
      ].join("\n"),
      tags: ["devices and modules"],
      "x-x1368": ["DEP-8.2.2", "DEP-8.2.3", "CAP-11.2-m"],
      security: ANYONE,
      requestBody: { description: 'A sealed "downstream-status" message from a child module.', required: true, content: json(ref("Envelope")) },
      responses: {
        ...ok("The status was taken; here are the decisions for the child's devices.", "DownstreamAccepted"),
        ...errors(
          ["BAD_REQUEST", 400],
          ["MESSAGE_MALFORMED", 400],
          ["MESSAGE_NOT_FOR_ME", 400],
          ["MESSAGE_SIGNATURE", 401],
          ["MODULE_SIGNATURE", 401],
          ["MESSAGE_STALE", 401],
          ["MODULE_NOT_REGISTERED", 403],
          ["MODULE_NOT_CHILD", 403],
          ["LEDGER_UNAVAILABLE", 503],
        ),
      },
    },
  },
  "/v1/fleet/summary": {
    get: {
      operationId: "getFleetSummary",
      summary: "Device counts by status",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. How many devices of this module's fleet are up to date, outdated, vulnerable, failed, unreachable or suspended, for the whole fleet and per network. A device can count under several statuses.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      responses: { ...ok("The summary.", "Summary"), ...readerErrors() },
    },
  },
  "/v1/fleet/devices": {
    get: {
      operationId: "listDevices",
      summary: "Devices, by status, network, region and hardware",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. The lists of devices by status (e.g. all vulnerable devices, all unreachable devices of a network), one page at a time. Filters combine: a device is listed when it matches every one given.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      parameters: [
        { name: "status", in: "query", required: false, description: "Only devices with this status.", schema: ref("DeviceStatus") },
        { name: "network", in: "query", required: false, description: "Only devices of this network: its label (at most 31 bytes) or its bytes32 hex.", schema: { type: "string" } },
        { name: "region", in: "query", required: false, description: "Only devices of this region: its label (at most 31 bytes) or its bytes32 hex.", schema: { type: "string" } },
        { name: "hardware", in: "query", required: false, description: "Only devices of this hardware class.", schema: { type: "integer", minimum: 0 } },
        { name: "q", in: "query", required: false, description: "Only devices whose id starts with this hex (with or without 0x).", schema: { type: "string", pattern: "^(0x)?[0-9a-fA-F]{1,64}$" } },
        { name: "limit", in: "query", required: false, description: "The page size (at most 1000; more is taken as 1000).", schema: { type: "integer", minimum: 1, default: 50 } },
        { name: "offset", in: "query", required: false, description: "How many matching devices to skip.", schema: { type: "integer", minimum: 0, default: 0 } },
      ],
      responses: { ...ok("The matching devices.", "DeviceList"), ...readerErrors(["BAD_REQUEST", 400]) },
    },
  },
  "/v1/fleet/devices/{id}": {
    get: {
      operationId: "getDevice",
      summary: "One device: view, plan, reports and decisions",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.2-c, CAP-11.3-g. Everything this module knows of one device: what it runs and its statuses, the install plan the resolver made for its configuration (which update it needs, dependencies first, and why other components get none), its latest reports, and the updates decided for it with how far each went.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.2-c", "CAP-11.3-g"],
      security: READER,
      parameters: [idParameter("The device id.")],
      responses: { ...ok("The device.", "DeviceDetail"), ...readerErrors(["BAD_REQUEST", 400], ["DEVICE_UNKNOWN", 404]) },
    },
  },
  "/v1/releases": {
    get: {
      operationId: "listReleases",
      summary: "Releases and how far the fleet took them",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. Every release this module's ledger mirror holds, with its ledger status and supported hardware, and how many devices of the fleet run it, were notified of it and failed to install it.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      responses: { ...ok("The releases.", "ReleaseList"), ...readerErrors() },
    },
  },
  "/v1/releases/{id}/adoption": {
    get: {
      operationId: "getReleaseAdoption",
      summary: "Adoption of a release over time",
      description: "X.1368 CAP-11.2-a. How many devices ran the release at each sample time, oldest first: the adoption curve of the dashboard.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a"],
      security: READER,
      parameters: [idParameter("The release id.")],
      responses: { ...ok("The adoption curve.", "AdoptionPoints"), ...readerErrors(["BAD_REQUEST", 400], ["RELEASE_UNKNOWN", 404]) },
    },
  },
  "/v1/rollouts": {
    get: {
      operationId: "listRollouts",
      summary: "Rollouts in progress and done",
      description:
        "X.1368 CAP-11.2-c, CAP-11.3-g. For every release this module decided for some device: what started it, and how many devices were decided, notified, installed it, failed, or are still pending.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-c", "CAP-11.3-g"],
      security: READER,
      responses: { ...ok("The rollouts.", "RolloutList"), ...readerErrors() },
    },
  },
  "/v1/modules": {
    get: {
      operationId: "listModules",
      summary: "The tracker modules below this one",
      description:
        "X.1368 DEP-8.2.3, CAP-11.2-a, CAP-11.2-b. The child modules that post their downstream status here: the networks each serves, when it last posted, whether it is reachable, and how many devices it has and cannot reach.",
      tags: ["fleet"],
      "x-x1368": ["DEP-8.2.3", "CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      responses: { ...ok("The modules.", "ModuleList"), ...readerErrors() },
    },
  },
  "/v1/update-requests": {
    post: {
      operationId: "postUpdateRequest",
      summary: "An administrator requests an update",
      description: [
        "X.1368 PROC-2. An administrator asks for a release to be installed on devices named by id or selected by a filter. The request is signed by the administrator's Ethereum account (headers below, agent/crypto/requestSignature.ts) for this tracker's origin, so it cannot be replayed here or elsewhere, and is checked against the ledger: the account must hold the registry's ADMINISTRATOR_ROLE; the release must exist and be active and its provider not barred; an imageLocation must be the release's recorded file link.",
        "",
        "Nothing is decided if the request fails. Otherwise each selected device must be enrolled, active and of a supported hardware class, and the registry's checkInstallable must pass for it; the devices that fail are listed with their reason, the others get a decision and receive their notice at their next contact (CAP-11.3-g).",
      ].join("\n"),
      tags: ["administrators"],
      "x-x1368": ["PROC-2", "CAP-11.3-g"],
      security: ANYONE,
      parameters: SIGNED_REQUEST_HEADERS,
      requestBody: { description: "The release and the devices. The exact bytes sent are the ones signed.", required: true, content: json(ref("UpdateRequest")) },
      responses: {
        ...ok("The request was taken: decisions made and devices refused.", "UpdateRequestResult"),
        ...errors(
          ["BAD_REQUEST", 400],
          ["RELEASE_UNKNOWN", 400],
          ["RELEASE_NOT_ACTIVE", 400],
          ["PROVIDER_BARRED", 400],
          ["IMAGE_LOCATION_MISMATCH", 400],
          ["NO_DEVICES", 400],
          ["REQUEST_AUTH", 401],
          ["NOT_ADMINISTRATOR", 403],
          ["LEDGER_UNAVAILABLE", 503],
        ),
      },
    },
  },
  "/openapi.json": {
    get: {
      operationId: "getOpenApi",
      summary: "This document",
      description: "The OpenAPI 3.1 document of the tracker's HTTP API (v1).",
      tags: ["health"],
      security: ANYONE,
      responses: { "200": { description: "The OpenAPI document.", content: json({
            type: "object",
            required: ["openapi", "info", "paths"],
            description: "An OpenAPI 3.1 document.",
            properties: { openapi: { const: "3.1.0" }, info: { type: "object" }, paths: { type: "object" } },
          }) } },
    },
  },
  "/": {
    get: {
      operationId: "getDashboard",
      summary: "The fleet dashboard",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. The fleet dashboard page: device counts, the device list with its filters and detail, adoption curves, rollouts and the modules below. It loads its script and style sheet from /dashboard/ and its data from the read endpoints above; everything comes from the tracker, so it works on an offline network.",
      tags: ["dashboard"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      responses: { "200": { description: "The page.", content: { "text/html": { schema: { type: "string" } } } }, ...readerErrors() },
    },
  },
  "/dashboard/{file}": {
    get: {
      operationId: "getDashboardFile",
      summary: "A file of the dashboard",
      description: "The dashboard's script and style sheet (e.g. dashboard.js, dashboard.css), served from the tracker itself.",
      tags: ["dashboard"],
      security: READER,
      parameters: [{ name: "file", in: "path", required: true, description: "The file name, without any directory.", schema: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$" } }],
      responses: {
        "200": { description: "The file.", content: { "text/javascript": { schema: { type: "string" } }, "text/css": { schema: { type: "string" } } } },
        ...readerErrors(),
        "404": { description: "The dashboard has no file of this name.", content: json(ref("Error")) },
      },
    },
  },
};

// ---------------------------------------------------------------------------- the document

export const TRACKER_OPENAPI: OpenApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "OTA Ledger status tracker",
    version: "1.0.0",
    summary: "The X.1368 status tracker: device status, update decisions and delivery, module hierarchy.",
    description: [
      "The status tracker of an OTA Ledger fleet (ITU-T X.1368 clause 11.2, ADR 0004). Each tracker module follows the ledger itself; it knows what every device of its fleet runs, decides which update each needs, and hands the notices out when a device (or a module below) comes to fetch them. Modules form a hierarchy: a server module at the top, intermediate modules below it, devices at the bottom; whatever is below always opens the connection.",
      "",
      "Three kinds of caller, three kinds of authentication:",
      "",
      "- devices and child modules post sealed messages (POST /v1/reports, POST /v1/downstream), authenticated by their seal and signature against the keys the ledger holds;",
      "- administrators post signed requests (POST /v1/update-requests), checked against the ledger's roles;",
      "- readers (dashboards, operators, monitoring) use the read endpoints with a bearer token, required only when the tracker is configured with `tracker.apiToken`.",
      "",
      'Every refusal is `{"error": {"code", "message"}}` with 400 (malformed), 401/403 (authentication or authorisation), 404 (unknown), 409 (replay) or 503 (ledger unavailable). Ids (devices, releases, components, modules) are 32 bytes of hex, given in lower case; times are milliseconds since the epoch; versions are major.minor.patch.',
    ].join("\n"),
    license: { name: "Apache-2.0", identifier: "Apache-2.0" },
  },
  tags: [
    { name: "health", description: "The module itself." },
    { name: "devices and modules", description: "Sealed messages from devices and from modules below." },
    { name: "fleet", description: "What the fleet runs, needs and did: for readers (CAP-11.2-a, -b, -c)." },
    { name: "administrators", description: "Signed requests of administrators (PROC-2)." },
    { name: "dashboard", description: "The fleet dashboard." },
  ],
  paths,
  components: {
    schemas,
    securitySchemes: {
      bearerAuth: {
        type: "http",
        scheme: "bearer",
        description:
          "The read token, the tracker's `tracker.apiToken` setting, as `Authorization: Bearer <token>`. When the tracker has no token configured, read endpoints are open and the header is ignored; when it has one, a missing or wrong token is refused with 401 UNAUTHORIZED.",
      },
    },
  },
};

/**
 * Every documented operation as Fastify would register it: the method in upper case and the path
 * with `:param` for `{param}`. A test compares this with the routes of the tracker's app.
 */
export function documentedRoutes(): { method: string; path: string }[] {
  const routes: { method: string; path: string }[] = [];
  for (const [path, item] of Object.entries(TRACKER_OPENAPI.paths)) {
    for (const method of HTTP_METHODS) {
      if (item[method]) routes.push({ method: method.toUpperCase(), path: path.replace(/\{([^}]+)\}/g, ":$1") });
    }
  }
  return routes;
}
