import { HEADER } from "../crypto/requestSignature";
import { REPORT_KIND } from "../core/statusReport";
import { BODY_MAX_BYTES, REPORT_BODY_MAX_BYTES } from "../core/wireLimits";
import { RESULT_KINDS } from "../core/updateOutcome";
import { DEVICE_STATUSES } from "./fleetViews";

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
  minProperties?: number;
  maxProperties?: number;
  propertyNames?: SchemaObject;
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
 * of a code is given per operation below, as agent/tracker/trackerHttp.ts's error handler gives it
 * (RELEASE_UNKNOWN is 404 on a read, 400 in an update request; BAD_REQUEST is 400, or 413/415 when
 * the body is too large or not of a type the tracker reads).
 */
export const TRACKER_ERRORS = {
  BAD_REQUEST: `the request is malformed (body not JSON, a parameter out of range or not of its form, a path that is not valid percent-encoding); the message says which part. With 413 the body is over the operation's limit (${REPORT_BODY_MAX_BYTES / 1024} KiB for a status report, the largest legitimate one with a margin; ${BODY_MAX_BYTES / 1024 / 1024} MiB elsewhere); with 414 a path parameter is over 100 characters; with 415 the body is of a content type the tracker has no parser for (send application/json)`,
  UNAUTHORIZED:
    "the bearer token is missing or wrong: send `Authorization: Bearer <tracker.apiToken>` (required only when the tracker is configured with tracker.apiToken)",
  NOT_FOUND: "no such dashboard file (the answer to any path or method the API does not have is also 404 NOT_FOUND)",
  INTERNAL: "an unexpected failure in the tracker (e.g. the ledger node failed a call that is not retried as LEDGER_UNAVAILABLE); the tracker logs it",
  MESSAGE_MALFORMED: "the body is not a sealed message envelope {v: 1, kind, from, to, sealed}, or what it seals is not JSON or disagrees with the envelope",
  MESSAGE_NOT_FOR_ME: "the envelope is addressed (`to`) to another tracker module: seal the message to this module's id and public key",
  MESSAGE_FORMAT: "the sealed bytes are not an ECIES value (0x01, an ephemeral secp256k1 point, nonce, ciphertext, tag) or are too short",
  MESSAGE_AUTHENTICATION: "the sealed value does not open with this module's key for this envelope (kind, from, to): sealed to another key, or altered",
  MESSAGE_SIGNATURE: "the signature inside the sealed message is malformed and names no signer",
  MESSAGE_KIND: 'the sealed message from a module is not a "downstream-status"',
  MESSAGE_STALE: "the message's issuedAt is outside this module's freshness window: seal a fresh message with a correct clock",
  MESSAGE_REPLAYED: "the module's status counter is not above the last one taken from that module: a replay or an old message",
  REPORT_KIND: `the sealed message is not a status report (kind "${REPORT_KIND}")`,
  REPORT_UNKNOWN_DEVICE:
    "the sending device is not enrolled in this module's fleet (as mirrored from the ledger), or, for a device of a Merkle batch, its proof does not lead to the root of a batch on the ledger",
  REPORT_DEVICE_NOT_ACTIVE: "the device is suspended or withdrawn on the ledger; its reports are not taken",
  REPORT_SIGNATURE: "the report is not signed by the device's enrolled key",
  REPORT_SESSION_UNKNOWN:
    "the report names a report session this module does not hold for the device (never opened, replaced by a newer one, expired, made under the module's or the device's previous key, or this module keeps none): send the report sealed in full, which offers a new session (ADR 0013)",
  REPORT_SESSION_AUTHENTICATION:
    "the session report does not open under its session's key for this envelope (kind, from, to, session): sealed under another key, or altered",
  REPORT_CREDENTIAL: "the batch credential in the report is another device's record: a device of a Merkle batch sends its own record, batch id and proof",
  REPORT_MALFORMED:
    "the report does not name its device (the envelope's `from`), a counter above 0, the installed components and lastResult (null or {outcome})",
  REPORT_REPLAYED:
    "the report's counter is not above the last one taken from this device: a replay, or a report overtaken by a newer one; send a new report with a higher counter",
  MODULE_NOT_REGISTERED: "the sending module is not a registered, unretired tracker module on the ledger",
  MODULE_NOT_CHILD: "the sending module is registered, but its parent on the ledger is not this module",
  MODULE_SIGNATURE: "the message is not signed by the sending module's registered signer",
  AUTH_MISSING: `the signed-request headers are missing (${HEADER.account}, ${HEADER.signature})`,
  AUTH_MALFORMED: `a signed-request header is not of its form: ${HEADER.account} an address, ${HEADER.timestamp} milliseconds, ${HEADER.nonce} 32 lower-case hex digits, ${HEADER.signature} a 65-byte hex signature`,
  AUTH_SIGNATURE: "the signature is malformed, or is not by the account named, over this request for this tracker's origin",
  AUTH_STALE:
    "the request was signed more than a minute away from the tracker's clock (the answer's Date header is the tracker's): sign it afresh with a correct clock",
  AUTH_REPLAY: "this signed request (account and nonce) was already received: sign every request with a fresh nonce",
  AUTH_QUOTA: "this account sent more signed requests within a minute than one identity may (agent/io/requestAuth.ts REQUEST_AUTH_LIMITS): slow down and retry",
  SERVER_BUSY: "the tracker holds too many signed requests' nonces in its replay window; retry later",
  NOT_ADMINISTRATOR: "the signing account does not hold the registry's ADMINISTRATOR_ROLE for this tracker",
  RELEASE_UNKNOWN:
    "the ledger (as mirrored by this module for a read or for rollout cohorts, as the registry answers for an update request) has no release with this id",
  RELEASE_NOT_VERIFIED:
    "the release's event does not check out against the registry's stored state and its author's signature (agent/chain/verifyLedgerRelease.ts)",
  RELEASE_NOT_ACTIVE: "the release is revoked or flagged vulnerable on the ledger; only active releases can be requested",
  PROVIDER_BARRED: "the release's provider is barred on the ledger",
  BUNDLES_NOT_DEPLOYED: "this tracker follows no ReleaseBundles contract (docs/adr/0019): request a release (releaseId)",
  BUNDLE_UNKNOWN:
    "no release bundle with this id on ReleaseBundles as this module mirrors it (a bundle created moments ago: retry once the module has read its block)",
  IMAGE_LOCATION_MISMATCH: "imageLocation is not the file link the ledger records for the release; omit it or give the recorded link",
  NO_DEVICES: "the request selects no device: name devices or give a filter that matches some",
  DEVICE_UNKNOWN: "this module's fleet database has no device with this id",
  TAG_INVALID:
    "a tag key is not 1 to 64 letters, digits, '.', '_' or '-' (starting with a letter or digit), or a value is not 1 to 128 letters, digits or . _ : / @ + -; nothing was changed",
  TAG_KEY_RESERVED: "network, region and hardware are read from the device's enrolment on the ledger: they cannot be tags",
  TAG_LIMIT: "a device holds at most 32 tags: remove some in the same or an earlier request; nothing was changed",
  QUERY_INVALID:
    "a tag query is terms joined by commas, each k=v, k!=v, k (has the tag) or !k (has it not), with network=, region= and hardware= read from the enrolment; at most 32 terms and 1,024 characters; the message names the term",
  GROUP_UNKNOWN: "this tracker has no group of this name (GET /v1/groups lists them)",
  GROUP_LIMIT: "this tracker keeps at most 1,000 groups: remove one first",
  REQUEST_UNKNOWN: "this tracker took no update request with this id (GET /v1/update-requests lists them)",
  ANCHOR_UNKNOWN: "this tracker made no status anchor with this index (GET /v1/anchors lists the ones it made)",
  ANCHOR_RECORDS_PRUNED:
    "the tracker no longer keeps the records of this anchor (it keeps the newest ones, tracker option anchorRecordsKept): ask about a newer anchor",
  DEVICE_NOT_IN_ANCHOR: "the device has no record in this anchor: it had not reported when the anchor was made, or is not of this tracker's fleet",
  ROLLOUT_ROOT_MISMATCH:
    "a wave's cohort root is not the root the release's StagedRollout holds on the ledger for that wave (the message names the wave): send the waves exactly as the rollout was created, in its order",
  POLICY_NOT_ATTACHED:
    "the policy the evidence is for is neither the release's policy nor one of its members: check the address (ota-ledger policy show --release <id>)",
  EVIDENCE_INVALID: "a device's evidence parts together exceed 4,096 bytes, or are not hex: send smaller evidence",
  POLICY_READS_WHOLE_EVIDENCE:
    "the policy reads its evidence whole (it does not declare the evidence envelope: built before it, or not on the policy kit): send its evidence without a policy",
  EVIDENCE_CONFLICT:
    "devices hold evidence for every policy of the release, which a part for one policy would replace: send each policy's evidence with its policy named, or this one without",
  LEDGER_UNAVAILABLE: "the ledger did not answer; retry later",
  NOT_FROM_REGISTRY: "the ledger node answered with a release event that the registry did not emit: the node is not to be trusted",
  NOT_RELEASE_EVENT: "the ledger node answered with a log that is not a ReleasePublished event: the node is not to be trusted",
  RELEASE_EVENT_MISMATCH: "the ledger node's release event does not hash to the release id it claims: the node is not to be trusted",
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
  413: "Body too large",
  414: "Path parameter too long",
  415: "Unsupported content type",
  429: "Too many requests",
  500: "Internal error",
  503: "Unavailable: the ledger did not answer, or the tracker is busy",
};

/**
 * Error responses from [code, status] pairs: one response per status, its description listing
 * each code with its meaning, its schema the Error shape with `code` limited to those codes.
 * Every operation can also fail unexpectedly: 500 INTERNAL is added to each.
 */
function errors(...entries: [TrackerErrorCode, number][]): Record<string, ResponseObject> {
  const byStatus = new Map<number, TrackerErrorCode[]>();
  for (const [code, status] of [...entries, ["INTERNAL", 500] as [TrackerErrorCode, number]]) {
    const codes = byStatus.get(status) ?? [];
    if (!codes.includes(code)) byStatus.set(status, [...codes, code]);
  }
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
/**
 * Names beside ids (issue 19): `componentName` beside each `component`, `hardwareName` beside a
 * `hardwareClass`, `releaseName` beside a release named only by its id. The names the registry
 * registered (attacker-controlled text: show it as text), as the module's mirror holds them; null
 * until the mirror has them. The ids stay: clients key on them.
 */
const componentName = (): SchemaObject => ({
  type: ["string", "null"],
  description: "The component's registered name (e.g. \"acme.bootloader\"); null while this module's mirror does not hold it.",
});
const releaseName = (what = "The release"): SchemaObject => ({
  type: ["string", "null"],
  description: `${what}'s name: its component's registered name and its version (e.g. "acme.bootloader 1.0.0"), or for a release bundle "bundle <name> <version>" (e.g. "bundle sensor-kit 2.0.0"); null while this module's mirror does not hold them.`,
});
/** A release bundle (docs/adr/0019) named beside its id: its name, version and members in its order. */
const bundleNamed = (): SchemaObject => ({
  type: "object",
  required: ["name", "version", "members"],
  description: "Present when the id is a release bundle's (docs/adr/0019): its members are installed together, as one step.",
  properties: {
    name: { type: "string", description: "The bundle's name (as its BundleCreated event carries it)." },
    version: ref("Version"),
    members: {
      type: "array",
      description: "Its member releases, ascending by component (the bundle's order).",
      items: {
        type: "object",
        required: ["releaseId", "component"],
        properties: { releaseId: ref("Bytes32"), component: ref("Bytes32"), releaseName: releaseName("The member") },
      },
    },
  },
});

const readerErrors = (...more: [TrackerErrorCode, number][]) => errors(...more, ["UNAUTHORIZED", 401]);
/** What Fastify refuses before a POST handler runs: a body over the limit, or of a type it has no parser for. */
const BODY_ERRORS: [TrackerErrorCode, number][] = [
  ["BAD_REQUEST", 400],
  ["BAD_REQUEST", 413],
  ["BAD_REQUEST", 415],
];
/** An administrator's signed request about one release (rollout cohorts, policy evidence): its body, signature, role and release. */
const ADMIN_RELEASE_ERRORS: [TrackerErrorCode, number][] = [
  ...BODY_ERRORS,
  ["BAD_REQUEST", 414],
  ["AUTH_MISSING", 401],
  ["AUTH_MALFORMED", 401],
  ["AUTH_SIGNATURE", 401],
  ["AUTH_STALE", 401],
  ["NOT_ADMINISTRATOR", 403],
  ["RELEASE_UNKNOWN", 404],
  ["AUTH_REPLAY", 409],
  ["AUTH_QUOTA", 429],
  ["LEDGER_UNAVAILABLE", 503],
  ["SERVER_BUSY", 503],
];
/** An administrator's signed request (tags, groups): its body, signature and role. */
const ADMIN_ERRORS: [TrackerErrorCode, number][] = [
  ...BODY_ERRORS,
  ["BAD_REQUEST", 414],
  ["AUTH_MISSING", 401],
  ["AUTH_MALFORMED", 401],
  ["AUTH_SIGNATURE", 401],
  ["AUTH_STALE", 401],
  ["NOT_ADMINISTRATOR", 403],
  ["AUTH_REPLAY", 409],
  ["AUTH_QUOTA", 429],
  ["LEDGER_UNAVAILABLE", 503],
  ["SERVER_BUSY", 503],
];
/** What Fastify refuses before a handler with a path parameter runs: a path that is not valid percent-encoding, a parameter over 100 characters. */
const PATH_ERRORS: [TrackerErrorCode, number][] = [
  ["BAD_REQUEST", 400],
  ["BAD_REQUEST", 414],
];
/** What opening a sealed message (agent/crypto/sealedMessage.ts, agent/crypto/ecies.ts) can refuse. */
const SEALED_MESSAGE_ERRORS: [TrackerErrorCode, number][] = [
  ["MESSAGE_MALFORMED", 400],
  ["MESSAGE_NOT_FOR_ME", 400],
  ["MESSAGE_FORMAT", 401],
  ["MESSAGE_AUTHENTICATION", 401],
  ["MESSAGE_SIGNATURE", 401],
];

const idParameter = (description: string): ParameterObject => ({ name: "id", in: "path", required: true, description, schema: ref("Bytes32") });

// The headers of a request signed by an account (agent/crypto/requestSignature.ts).
const SIGNED_REQUEST_HEADERS: ParameterObject[] = [
  {
    name: HEADER.account,
    in: "header",
    required: true,
    description:
      "The administrator's Ethereum address, the identity that signed the request (AUTH_MISSING without it, AUTH_MALFORMED if it is not an address).",
    schema: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" },
  },
  {
    name: HEADER.timestamp,
    in: "header",
    required: true,
    description: "When the request was signed, in milliseconds since the epoch; refused (AUTH_STALE) when more than a minute away from the tracker's clock.",
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
  {
    name: HEADER.nonce,
    in: "header",
    required: true,
    description:
      "16 random bytes as 32 lower-case hex digits, fresh for every request; a request whose account and nonce were seen before is refused (409 AUTH_REPLAY).",
    schema: { type: "string", pattern: "^[0-9a-f]{32}$" },
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
    enum: [...DEVICE_STATUSES],
    description:
      "outdated: its plan has steps; vulnerable: it runs a release flagged vulnerable or revoked; failed: a release was delivered to it intact (every chunk verified against the ledger) and then failed: it did not decrypt or hash to the ledger's file hash, the install failed, or the trial boot or health check failed (only these count against a rollout); blocked: its delivery of `lastRelease` is blocked since `blockedSince` by something outside the release, named by `lastCode` (a server's or proxy's error, a mirror's wrong bytes, the network, the device's clock, a key not granted yet): retried, never a failure, the release still offered; refused: its last result is a correct refusal, with the reason in `lastCode` (revoked, vulnerable, barred, another hardware class, an unmet dependency, a policy, declined by the device's own policy) (agent/core/updateOutcome.ts defines the three kinds); safe-mode: its latest report says it runs in safe mode (X.1368 CAP-11.1-b: its boot state was corrupt, it lists nothing installed, refuses automatic updates and waits for a person to install a release by hand, `ota-ledger device install`); unreachable: no contact within the liveness window; up-to-date: none of these (a device that never reported is not up to date: what it runs is unknown; nor is a device in safe mode); suspended: suspended or withdrawn on the ledger, and then its only status.",
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
      kind: {
        type: "string",
        minLength: 1,
        description: `What the sealed message is: "${REPORT_KIND}", "update-notice", "downstream-status" or "update-decisions".`,
      },
      from: id("The sender: a device id or a tracker-module id."),
      to: id("The recipient: a tracker-module id or a device id."),
      sealed: { type: "string", pattern: "^0x([0-9a-fA-F]{2})+$", description: "The ECIES ciphertext, hex." },
    },
    examples: [{ v: 1, kind: REPORT_KIND, from: "0x" + "ab".repeat(32), to: "0x" + "cd".repeat(32), sealed: "0x01" + "00".repeat(120) }],
  },
  InstalledComponent: {
    type: "object",
    required: ["component", "componentName", "version", "releaseId"],
    description: 'What a device runs of one component. Its release\'s name is `componentName` and `version` (e.g. "acme.bootloader 1.0.0").',
    properties: {
      component: id("The component id."),
      componentName: componentName(),
      version: ref("Version"),
      releaseId: id("The release the device installed it from."),
    },
  },
  StatusReport: {
    type: "object",
    required: ["deviceId", "counter", "installed", "lastResult"],
    description:
      "What a device tells its tracker (PROC-5, CAP-11.1-a), as agent/core/statusReport.ts defines it, stored as the device sent it. The tracker checks deviceId, counter, installed, lastResult (null or with an outcome), declined and safeMode (a boolean when given); the other fields are kept as sent.",
    properties: {
      deviceId: { allOf: [ref("Bytes32")], description: "The device, as the envelope's `from` (in the device's own case)." },
      counter: { type: "integer", minimum: 1, description: "Rises with every report the device sends." },
      installed: {
        type: "array",
        items: {
          type: "object",
          required: ["component", "version", "releaseId"],
          properties: {
            component: ref("Bytes32"),
            version: { type: "string", pattern: "^[0-9]{1,20}$", description: "The encoded version as a decimal integer." },
            releaseId: ref("Bytes32"),
            slot: { type: "string", description: 'The A/B slot it runs from ("a" or "b"), as the device sent it.' },
          },
        },
      },
      lastResult: {
        type: ["object", "null"],
        required: ["outcome"],
        description: "The outcome of the previous update (CAP-11.1-a-i); null if none.",
        properties: {
          releaseId: ref("Bytes32"),
          component: ref("Bytes32"),
          outcome: {
            type: "string",
            description:
              "confirmed, rolled-back or failed (the release failed on the device after an intact delivery), blocked (delivery blocked: retried), rejected (refused: revoked, another hardware class...), declined (the device's own policy). agent/core/updateOutcome.ts",
          },
          code: { type: "string" },
          at: ms("When."),
          policy: {
            type: "object",
            required: ["address", "reason"],
            description: "For POLICY_REFUSED: the policy the ledger asked and its answer, a decimal reason code (issue 18).",
            properties: { address: { type: "string" }, reason: { type: "string" } },
          },
        },
      },
      needs: {
        type: "array",
        description: "Updates it learned of and needs (CAP-11.1-a-iv), as the device sent them.",
        items: { type: "object", properties: { releaseId: ref("Bytes32"), component: ref("Bytes32"), reason: { type: "string" } } },
      },
      declined: {
        type: "array",
        description: "Updates it declined by its own policy (CAP-11.1-a-vi).",
        items: { type: "object", required: ["releaseId"], properties: { releaseId: ref("Bytes32"), code: { type: "string" } } },
      },
      safeMode: {
        type: "boolean",
        description: "Whether it runs in safe mode (CAP-11.1-b), as the device sent it: the device is then listed with the status safe-mode.",
      },
    },
  },
  DeviceView: {
    type: "object",
    required: [
      "id",
      "hardwareClass",
      "hardwareName",
      "network",
      "region",
      "standing",
      "statuses",
      "installed",
      "lastSeen",
      "lastOutcome",
      "lastCode",
      "lastKind",
      "lastRelease",
      "lastReleaseName",
      "blockedSince",
      "upstream",
      "safeMode",
    ],
    description: "One device as this module sees it: its ledger enrolment, what it last reported, and its statuses.",
    properties: {
      id: id("The device id."),
      hardwareClass: { type: "integer", minimum: 0, description: "The hardware class it is enrolled with." },
      hardwareName: {
        type: ["string", "null"],
        description: "That hardware class's registered name (e.g. \"rev-c\"); null while this module's mirror does not hold it.",
      },
      network: { type: "string", description: "The network label it is enrolled with, decoded (the bytes32 hex when it is not a label)." },
      region: { type: "string", description: "The region label it is enrolled with, decoded (the bytes32 hex when it is not a label)." },
      standing: { type: "string", enum: ["active", "suspended", "revoked"], description: "Its standing on the ledger (revoked: the enrolment was withdrawn)." },
      statuses: {
        type: "array",
        uniqueItems: true,
        items: ref("DeviceStatus"),
        description: "Every status that applies (a device can be vulnerable and unreachable at once).",
      },
      installed: { type: "array", items: ref("InstalledComponent"), description: "What it runs, as of its last report." },
      lastSeen: msOrNull("Its last contact (a report, a download from a firmware server, or a module below vouching for it); null if never."),
      lastOutcome: { type: ["string", "null"], description: "The outcome of its last update, e.g. confirmed, rolled-back, rejected; null if none reported." },
      lastCode: { type: ["string", "null"], description: "The code that came with that outcome: the cause of a blocked delivery, the reason of a refusal." },
      lastKind: {
        type: ["string", "null"],
        enum: [...RESULT_KINDS, null],
        description: "What its last result means (agent/core/updateOutcome.ts): installed, failed, blocked or refused; null if none reported.",
      },
      lastRelease: { anyOf: [ref("Bytes32"), { type: "null" }], description: "The release its last result is about; null if none." },
      lastReleaseName: releaseName("That release"),
      blockedSince: msOrNull("Since when its delivery of lastRelease is blocked (lastKind blocked); null otherwise."),
      upstream: {
        anyOf: [ref("Bytes32"), { type: "null" }],
        description:
          "The tracker module its last report came through: this module's id when it reports directly, a child module's id otherwise; null before its first report.",
      },
      safeMode: {
        type: "boolean",
        description:
          "Whether its latest report says it runs in safe mode (CAP-11.1-b): it then has the status safe-mode, lists nothing installed, and needs a person to install a release by hand; false before its first report.",
      },
      tags: ref("Tags"),
    },
    examples: [
      {
        id: "0x" + "ab".repeat(32),
        hardwareClass: 3,
        hardwareName: "rev-c",
        network: "plant-north",
        region: "eu-west",
        standing: "active",
        statuses: ["outdated", "unreachable"],
        installed: [{ component: "0x" + "01".repeat(32), componentName: "acme.bootloader", version: "2.4.1", releaseId: "0x" + "02".repeat(32) }],
        lastSeen: 1767225600000,
        lastOutcome: "confirmed",
        lastCode: "OK",
        lastKind: "installed",
        lastRelease: "0x" + "02".repeat(32),
        lastReleaseName: "acme.bootloader 2.4.1",
        blockedSince: null,
        upstream: "0x" + "cd".repeat(32),
        safeMode: false,
      },
      {
        id: "0x" + "ef".repeat(32),
        hardwareClass: 3,
        hardwareName: "rev-c",
        network: "plant-north",
        region: "eu-west",
        standing: "active",
        statuses: ["safe-mode"],
        installed: [],
        lastSeen: 1767225600000,
        lastOutcome: null,
        lastCode: null,
        lastKind: null,
        lastRelease: null,
        lastReleaseName: null,
        blockedSince: null,
        upstream: "0x" + "cd".repeat(32),
        safeMode: true,
      },
    ],
  },
  DeviceList: {
    type: "object",
    required: ["total", "devices"],
    properties: {
      total: count("How many devices match the filters (before limit and offset)."),
      devices: { type: "array", items: ref("DeviceView"), description: "The page asked for, in id order." },
    },
  },
  StatusCounts: {
    type: "object",
    required: ["upToDate", "outdated", "vulnerable", "failed", "blocked", "refused", "safeMode", "unreachable", "suspended"],
    description: "Device counts by status for the whole fleet. A device may count under several statuses.",
    properties: {
      upToDate: count("Devices up to date."),
      outdated: count("Devices whose plan has steps."),
      vulnerable: count("Devices running a release flagged vulnerable or revoked."),
      failed: count("Devices whose last update failed after an intact delivery (see DeviceStatus)."),
      blocked: count("Devices whose delivery is blocked by a server, a mirror, the network or their clock (see DeviceStatus)."),
      refused: count("Devices whose last result is a correct refusal (see DeviceStatus)."),
      safeMode: count("Devices whose latest report says they run in safe mode (CAP-11.1-b): each waits for a person to install by hand."),
      unreachable: count("Devices not heard from within the liveness window."),
      suspended: count("Devices suspended or withdrawn on the ledger."),
    },
  },
  NetworkCounts: {
    type: "object",
    required: ["network", "total", "upToDate", "outdated", "vulnerable", "failed", "blocked", "refused", "safeMode", "unreachable"],
    description: "Device counts by status in one network (suspended devices count in `total` only).",
    properties: {
      network: { type: "string", description: "The network label (the bytes32 hex when it is not a label)." },
      total: count("Devices in that network."),
      upToDate: count("Devices up to date."),
      outdated: count("Devices whose plan has steps."),
      vulnerable: count("Devices running a release flagged vulnerable or revoked."),
      failed: count("Devices whose last update failed after an intact delivery (see DeviceStatus)."),
      blocked: count("Devices whose delivery is blocked (see DeviceStatus)."),
      refused: count("Devices whose last result is a correct refusal (see DeviceStatus)."),
      safeMode: count("Devices whose latest report says they run in safe mode (CAP-11.1-b)."),
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
      counts: ref("StatusCounts"),
      byNetwork: { type: "array", items: ref("NetworkCounts") },
    },
    examples: [
      {
        generatedAt: 1767225600000,
        livenessMs: 3600000,
        total: 1200,
        counts: { upToDate: 1099, outdated: 80, vulnerable: 5, failed: 3, blocked: 7, refused: 12, safeMode: 1, unreachable: 40, suspended: 2 },
        byNetwork: [
          {
            network: "plant-north",
            total: 1200,
            upToDate: 1099,
            outdated: 80,
            vulnerable: 5,
            failed: 3,
            blocked: 7,
            refused: 12,
            safeMode: 1,
            unreachable: 40,
          },
        ],
      },
    ],
  },
  PlanStep: {
    type: "object",
    required: ["component", "componentName", "releaseId", "version", "reason"],
    properties: {
      component: id("The component to update."),
      componentName: componentName(),
      releaseId: id("The release to install."),
      version: ref("Version"),
      reason: {
        type: "string",
        enum: ["new-release", "outdated", "vulnerable-installed", "revoked-installed", "dependency"],
        description: "Why this step is planned.",
      },
    },
  },
  DeviceDetail: {
    type: "object",
    required: ["device", "plan", "reports", "decisions", "deliveries", "downloads", "policyRefusal"],
    description:
      "One device: its view, the resolver's plan for its configuration, its latest reports, the decisions recorded for it, the notices handed out, what it fetched from the firmware servers, and the update policy's refusal its latest report names.",
    properties: {
      policyRefusal: {
        type: ["object", "null"],
        required: ["releaseId", "policy", "reason", "path", "decidedBy"],
        description:
          "When the device's latest report is a POLICY_REFUSED naming the policy (issue 18): the policy the ledger asked, its answer, the members of a composer down to the policy that refused, and that policy's reason by name (reasonName; null when the policy names none). Null otherwise, or while the ledger does not answer.",
        properties: {
          releaseId: ref("Bytes32"),
          policy: { type: "string", description: "The policy attached (the one the ledger asked)." },
          reason: { type: "string", description: "Its answer, a decimal reason code (a composer's carries the member's path)." },
          path: {
            type: "array",
            description: "The composers' members the refusal went through, outermost first.",
            items: {
              type: "object",
              required: ["composer", "member", "address"],
              properties: { composer: { type: "string" }, member: { type: "integer", minimum: 0 }, address: { type: "string" } },
            },
          },
          decidedBy: {
            type: "object",
            required: ["policy", "reason", "name"],
            description: "The policy that refused, its own reason code and that code's name.",
            properties: { policy: { type: "string" }, reason: { type: "string" }, name: { type: ["string", "null"] } },
          },
        },
      },
      device: ref("DeviceView"),
      plan: {
        type: "object",
        required: ["steps", "unchanged"],
        description:
          "The install plan of the device's configuration (CAP-11.2-c): steps in order, dependencies first, and why the other managed components get none. Empty until the device's first report.",
        properties: {
          steps: { type: "array", items: ref("PlanStep") },
          unchanged: {
            type: "array",
            items: {
              type: "object",
              required: ["component", "componentName", "code"],
              properties: {
                component: id("The component."),
                componentName: componentName(),
                code: {
                  type: "string",
                  enum: [
                    "UP_TO_DATE",
                    "NO_RELEASE",
                    "NO_RELEASE_FOR_HARDWARE",
                    "NO_TRUSTED_RELEASE",
                    "PREVIOUSLY_FAILED",
                    "PINNED",
                    "NOT_A_SECURITY_FIX",
                    "TARGET_NOT_AVAILABLE",
                    "DEPENDENCY_UNSATISFIABLE",
                    "SEARCH_LIMIT",
                  ],
                  description: "Why no step (agent/core/installPlan.ts UnchangedCode).",
                },
              },
            },
          },
        },
      },
      reports: {
        type: "array",
        description: "Its latest reports (at most 50), newest first, as the device sent them.",
        items: {
          type: "object",
          required: ["counter", "receivedAt", "body"],
          properties: { counter: { type: "integer", minimum: 1 }, receivedAt: ms("When this module took it."), body: ref("StatusReport") },
        },
      },
      decisions: {
        type: "array",
        description:
          "Updates decided for it by name (CAP-11.3-g), oldest first: an administrator's update request, the module above's decisions, or (server module) what the firmware servers' download logs show it fetched and what it must now move to, for the components it does not report. The server module's plan from its reports is in `plan`, not here; how far each went is in `deliveries` and the device's `installed`.",
        items: {
          type: "object",
          required: ["releaseId", "releaseName", "component", "componentName", "reason", "origin", "decidedAt"],
          properties: {
            releaseId: ref("Bytes32"),
            releaseName: releaseName(),
            component: ref("Bytes32"),
            componentName: componentName(),
            reason: {
              type: "string",
              description:
                "Why it was decided: \"requested\" for an administrator's request, or a plan step's reason (the module above's, or this module's from the download logs).",
            },
            origin: {
              type: "string",
              description:
                'Who decided: "request:<requestId>" for an administrator\'s update request, "upstream:<origin>" for the module above, "download-log" for this module from the firmware servers\' download logs.',
            },
            decidedAt: ms("When it was decided."),
          },
        },
      },
      deliveries: {
        type: "array",
        description:
          "The notices handed out for it, one per release (the latest), oldest first: which release, why, decided by whom, through which module, and when.",
        items: {
          type: "object",
          required: ["releaseId", "releaseName", "reason", "origin", "via", "deliveredAt"],
          properties: {
            releaseId: ref("Bytes32"),
            releaseName: releaseName(),
            reason: { type: "string", description: "The plan step's reason, or the decision's." },
            origin: { type: "string", description: "\"ledger\" for this module's plan, or the decision's origin." },
            via: {
              type: "string",
              description: 'The module the notice went through: "direct" when handed to the device in the answer to its report, else the child module\'s id.',
            },
            deliveredAt: ms("When the notice was handed out."),
          },
        },
      },
      downloads: {
        type: "array",
        description: "What it fetched from the firmware servers whose download logs this module reads (CAP-11.2-b-i), newest first, at most 20.",
        items: {
          type: "object",
          required: ["releaseId", "kind", "at", "complete"],
          properties: {
            releaseId: ref("Bytes32"),
            kind: {
              type: "string",
              description:
                "What was fetched, as the firmware server logs it: artifact, block, car, delta (a release's delta from an earlier one, ADR 0018), key or manifest.",
            },
            at: ms("When."),
            complete: { type: "boolean", description: "Whether the answer carried the artifact's last byte." },
          },
        },
      },
    },
  },
  Release: {
    type: "object",
    required: ["id", "component", "componentName", "version", "status", "hardware", "provider", "publishedBlock", "installed", "notified", "failed", "blocked"],
    description: "A release as mirrored from the ledger, with what this module's fleet did with it.",
    properties: {
      id: id("The release id."),
      component: id("The component id."),
      componentName: componentName(),
      version: ref("Version"),
      status: { type: "string", enum: ["active", "vulnerable", "revoked"], description: "Its status on the ledger." },
      hardware: { type: "array", items: { type: "integer", minimum: 0 }, description: "The hardware classes it supports." },
      provider: { type: "integer", minimum: 0, description: "The id of its provider on the ledger." },
      publishedBlock: { type: "integer", minimum: 0, description: "The ledger block it was published in." },
      installed: count("Devices running it."),
      notified: count("Devices that were handed a notice for it."),
      failed: count("Devices whose last failed install was this release."),
      blocked: count("Devices whose delivery of this release is blocked now (a bad server or mirror shows here first); not failures."),
    },
  },
  ReleaseList: { type: "object", required: ["releases"], properties: { releases: { type: "array", items: ref("Release"), description: "In ledger order." } } },
  AdoptionPoints: {
    type: "object",
    required: ["releaseId", "points"],
    description: "The adoption curve of a release: how many devices ran it over time, oldest point first (the latest 500).",
    properties: {
      releaseId: ref("Bytes32"),
      points: {
        type: "array",
        items: {
          type: "object",
          required: ["t", "installed"],
          properties: { t: ms("The sample time."), installed: count("Devices running the release then.") },
        },
      },
    },
    examples: [
      {
        releaseId: "0x" + "02".repeat(32),
        points: [
          { t: 1767225600000, installed: 10 },
          { t: 1767229200000, installed: 640 },
        ],
      },
    ],
  },
  Rollout: {
    type: "object",
    required: ["releaseId", "component", "componentName", "version", "origin", "startedAt", "decided", "notified", "installed", "failed", "blocked", "pending"],
    description:
      "The rollout of one release in this module's fleet (CAP-11.3-g): devices decided, notified, done and still pending. A release bundle's rollout (requested by an administrator) has `bundle`; its releaseId is the bundle's id, its component its first member's, a device counts installed once it runs every member and failed once, for the bundle.",
    properties: {
      releaseId: ref("Bytes32"),
      bundle: bundleNamed(),
      component: ref("Bytes32"),
      componentName: componentName(),
      version: ref("Version"),
      origin: {
        type: "string",
        description:
          'What started it: "ledger" for this module\'s resolver after a ledger change, "request:<requestId>" for an administrator\'s update request.',
      },
      startedAt: ms("When the first decision was taken."),
      decided: count("Devices the release was decided for (installed + failed + pending)."),
      notified: count("Devices handed a notice for it."),
      installed: count("Devices running the release."),
      failed: count("Devices whose install of it failed after an intact delivery (only these count against a staged rollout)."),
      blocked: count("Of the pending devices, those whose delivery of it is blocked now (retried; never counted as failures)."),
      pending: count("Devices whose plan has it, and decided devices that do not run it yet."),
    },
  },
  RolloutList: { type: "object", required: ["rollouts"], properties: { rollouts: { type: "array", items: ref("Rollout"), description: "Oldest first." } } },
  ChildModule: {
    type: "object",
    required: ["id", "lastSeen", "reachable", "devices", "unreachableDevices"],
    description: "A module below a child module, as the child reported it (not checked by this module).",
    properties: {
      id: id("The module id."),
      lastSeen: ms("Its last downstream status post to the child."),
      reachable: { type: "boolean", description: "Whether the child holds it reachable (false when the child itself is not reachable)." },
      devices: count("Devices it reported for."),
      unreachableDevices: count("Of those, devices it cannot reach (all of them when the child itself is not reachable)."),
    },
  },
  Module: {
    type: "object",
    required: ["id", "networks", "lastSeen", "reachable", "devices", "unreachableDevices", "children"],
    description:
      "A tracker module below this one, as its latest downstream status describes it (DEP-8.2.3). Counts, networks and children are as the module reported them, except that a module not reachable vouches for nothing below it: all its devices count as unreachable and its children as not reachable (CAP-11.2-m-c).",
    properties: {
      id: id("The module id (as registered on the ledger)."),
      networks: { type: "array", items: { type: "string" }, description: "The networks it serves, decoded to labels." },
      lastSeen: ms("Its last downstream status post taken."),
      reachable: { type: "boolean", description: "Whether it posted within the liveness window." },
      devices: count("Devices that reach the hierarchy through it."),
      unreachableDevices: count("Of those, devices it has not heard from within its liveness window (all of them when it is not reachable itself)."),
      children: { type: "array", items: ref("ChildModule"), description: "The modules below it, as it reported them." },
    },
  },
  ModuleList: { type: "object", required: ["modules"], properties: { modules: { type: "array", items: ref("Module"), description: "In id order." } } },
  UpdateRequest: {
    type: "object",
    oneOf: [
      { required: ["releaseId"], properties: { releaseId: {} } },
      { required: ["bundleId"], properties: { bundleId: {} } },
    ],
    anyOf: [
      { required: ["devices"], properties: { devices: {} } },
      { required: ["filter"], properties: { filter: {} } },
      { required: ["group"], properties: { group: {} } },
      { required: ["query"], properties: { query: {} } },
    ],
    description:
      "An administrator's request to roll a release out (PROC-2): which release and which devices: exactly one of `devices`, `filter`, `group` or `query`. With `group` or `query`, a device that comes to match later (its tags changed) joins the request.",
    properties: {
      releaseId: id("The release to install; it must be on the ledger and active, from a provider that is not barred."),
      bundleId: id(
        "Instead of releaseId: a release bundle (docs/adr/0019) on ReleaseBundles, as this module mirrors it; every member must be on the ledger and active, their provider not barred. Each device is checked with the ledger's checkBundle (and each member it does not run with the update policies, the other members at their bundle versions), and is decided the bundle as one step: its notice carries `bundle: true`. imageLocation is not taken with it.",
      ),
      devices: { type: "array", maxItems: 100000, items: ref("Bytes32"), description: "Device ids to update." },
      filter: {
        type: "object",
        description: "Selects devices from this module's fleet; each field given narrows the selection ({} is the whole fleet, at most 100000 devices).",
        properties: {
          network: { type: "string", description: "Only devices of this network: its label (at most 31 bytes) or its bytes32 hex." },
          region: { type: "string", description: "Only devices of this region: its label (at most 31 bytes) or its bytes32 hex." },
          hardware: {
            type: "array",
            items: { type: "integer", minimum: 0, maximum: 65535 },
            description: "Only devices of one of these hardware classes (an empty list does not narrow).",
          },
        },
      },
      group: {
        type: "string",
        pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description: "A group saved on this tracker (POST /v1/groups): the devices its query selects.",
      },
      query: {
        type: "string",
        maxLength: 1024,
        description: "A tag query (as a group holds one): terms joined by commas, k=v, k!=v, k, !k, network=, region=, hardware=.",
      },
      deadline: ms(
        "After this time a device that defers the release to its closed update window installs it anyway (the notice carries it); the device's pins hold unless overridePins.",
      ),
      overridePins: {
        type: "boolean",
        description: "With a deadline: after it, a device whose policy pins the component to another version installs the release too. Default false.",
      },
      imageLocation: {
        type: "string",
        description:
          "Where the image is to be fetched; if given, it must be the file link the ledger records for the release (IMAGE_LOCATION_MISMATCH otherwise).",
      },
    },
    examples: [
      { releaseId: "0x" + "02".repeat(32), filter: { network: "plant-north", hardware: [3] } },
      { releaseId: "0x" + "02".repeat(32), group: "plant-1-canary", deadline: 1_900_000_000_000 },
      { bundleId: "0x" + "0b".repeat(32), devices: ["0x" + "0d".repeat(32)] },
    ],
  },
  ReleaseCounts: {
    type: "object",
    required: ["releaseId", "installed", "failed", "pending"],
    description: "How many devices of an anchor report each outcome for one release (as StatusAnchors.anchor takes them).",
    properties: {
      releaseId: id("The release."),
      installed: count("Devices whose last result installed it."),
      failed: count("Devices whose last result failed it, rolled it back, or refused it for good."),
      pending: count("Devices whose last result is a blocked delivery or a refusal that passes by itself (not yet)."),
    },
  },
  Anchor: {
    type: "object",
    required: ["index", "root", "txHash", "block", "anchoredAt", "deviceCount", "counts", "account", "contract"],
    description: "A status anchor this tracker made on the ledger (StatusAnchors): the Merkle root of its reported devices' status records.",
    properties: {
      index: count("The anchor's index on StatusAnchors (anchorAt, verifyStatus)."),
      root: id("The Merkle root of the status records."),
      txHash: id("The transaction that made it."),
      block: count("The block it is in."),
      anchoredAt: ms("When the tracker recorded it."),
      deviceCount: count("How many devices' records it covers (every device that had reported)."),
      counts: { type: "array", items: ref("ReleaseCounts"), description: "Counts per release, ascending by release id (also in the StatusAnchored event)." },
      account: { type: "string", pattern: "^0x[0-9a-f]{40}$", description: "The tracker's ledger account that sent it (lower case)." },
      contract: { type: "string", pattern: "^0x[0-9a-f]{40}$", description: "The StatusAnchors contract (lower case)." },
    },
  },
  AnchorList: {
    type: "object",
    required: ["total", "anchors"],
    properties: {
      total: count("How many anchors this tracker made."),
      anchors: { type: "array", items: ref("Anchor"), description: "The page asked for, newest first." },
    },
  },
  StatusRecord: {
    type: "object",
    required: ["deviceId", "releaseId", "version", "outcome", "reportCounter", "reportedAt"],
    description:
      "A device's status record (IStatusAnchors.StatusRecord), in the form StatusAnchors.verifyStatus takes: the leaf is keccak256(keccak256(abi.encode(deviceId, releaseId, version, outcome, reportCounter, reportedAt))). Large integers are decimal strings.",
    properties: {
      deviceId: id("The device."),
      releaseId: id("The release its last result is about; zero when it reported none."),
      version: { type: "string", pattern: "^[0-9]{1,20}$", description: "The release's encoded version (uint64), decimal; 0 with no release." },
      outcome: {
        type: "integer",
        minimum: 0,
        maximum: 5,
        description: "0 none, 1 installed, 2 pending, 3 failed, 4 rolled back, 5 rejected (agent/crypto/statusTree.ts STATUS_OUTCOME).",
      },
      reportCounter: { type: "string", pattern: "^[0-9]{1,20}$", description: "The counter of the report the record comes from (uint64), decimal." },
      reportedAt: { type: "integer", minimum: 0, description: "When the tracker took that report, unix seconds (uint40)." },
    },
  },
  AnchorProof: {
    type: "object",
    required: ["anchorIndex", "root", "contract", "record", "proof"],
    description: "A device's record in an anchor and its Merkle proof: StatusAnchors.verifyStatus(anchorIndex, record, proof) answers true.",
    properties: {
      anchorIndex: count("The anchor's index on StatusAnchors."),
      root: id("The anchor's root (as anchorAt answers)."),
      contract: { type: "string", pattern: "^0x[0-9a-f]{40}$", description: "The StatusAnchors contract (lower case)." },
      record: ref("StatusRecord"),
      proof: { type: "array", items: ref("Bytes32"), description: "The sibling hashes from the leaf up (sorted pairs, OpenZeppelin MerkleProof)." },
      format: {
        type: "integer",
        enum: [1, 2],
        description:
          "1: the device's node is its status leaf (anchors made before tags). 2: the device's node pairs its status leaf with its tags leaf, and proof[0] is the tags leaf (verifyStatus takes the proof unchanged; agent/tracker/deviceTags.ts verifyTagsProof checks the tags against the anchor's root).",
      },
      tags: { ...ref("Tags"), description: "Format 2: the device's tags at the anchor, whose leaf is proof[0]." },
    },
  },
  CohortsRequest: {
    type: "object",
    required: ["waves"],
    description:
      "The device ids of each wave of a staged rollout, in the rollout's order, as the administrator built the cohorts (agent/crypto/cohortTree.ts buildCohort).",
    properties: {
      waves: {
        type: "array",
        minItems: 1,
        maxItems: 64,
        description: "1 to 64 waves, each of 1 to 100,000 distinct device ids; at most 200,000 ids in all.",
        items: { type: "array", minItems: 1, maxItems: 100000, items: ref("Bytes32") },
      },
    },
  },
  CohortsResult: {
    type: "object",
    required: ["releaseId", "devices", "roots"],
    description: "The cohorts were kept: each device's evidence (wave and proof) goes with its notices.",
    properties: {
      releaseId: id("The release."),
      devices: count("Distinct devices over all waves."),
      roots: { type: "array", items: ref("Bytes32"), description: "Each wave's cohort root, in order (as the StagedRollout holds them)." },
    },
  },
  EvidenceRequest: {
    type: "object",
    required: ["devices"],
    additionalProperties: false,
    description:
      "Evidence for a release's update policy, per device (agent/core/policyEvidence.ts): for one policy of the release's composition (`policy`), each policy then reading its own part, or, without `policy`, given whole to every policy.",
    properties: {
      policy: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$", description: "The policy the evidence is for: the release's policy or one of its members." },
      devices: {
        type: "object",
        minProperties: 1,
        maxProperties: 200000,
        description:
          "1 to 200,000 device ids (keys, 0x and 64 hex digits), each with its evidence (1 to 4,096 bytes as 0x hex; all of a device's parts together at most 4,096 bytes).",
        propertyNames: { pattern: "^0x[0-9a-fA-F]{64}$" },
        additionalProperties: { type: "string", pattern: "^0x([0-9a-fA-F]{2}){1,4096}$" },
      },
    },
  },
  EvidenceResult: {
    type: "object",
    required: ["releaseId", "policy", "devices"],
    description: "The evidence was kept: each device gets it with its notices.",
    properties: {
      releaseId: id("The release."),
      policy: { type: ["string", "null"], description: "The policy it is for (checksummed), null for every policy." },
      devices: count("Devices whose evidence was set."),
    },
  },
  Tags: {
    type: "object",
    description: "A device's tags (issue 19, item 11): key -> value, at most 32, set by administrators on this tracker.",
    maxProperties: 32,
    propertyNames: { pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" },
    additionalProperties: { type: "string", pattern: "^[A-Za-z0-9._:/@+-]{1,128}$" },
  },
  TagChange: {
    type: "object",
    additionalProperties: false,
    description: "Tags to set (key -> value) and keys to remove, in one change; at least one of them.",
    properties: {
      set: ref("Tags"),
      remove: { type: "array", maxItems: 32, items: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" } },
    },
  },
  TagChangeResult: {
    type: "object",
    required: ["deviceId", "tags", "joinedRequests"],
    properties: {
      deviceId: id("The device."),
      tags: ref("Tags"),
      joinedRequests: count("Update requests (by group or query) the device now matches and was decided for."),
    },
  },
  GroupRequest: {
    type: "object",
    required: ["name", "query"],
    additionalProperties: false,
    description: "A group: a name and a tag query, evaluated whenever it is used (a later one of the same name replaces it).",
    properties: {
      name: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" },
      query: {
        type: "string",
        maxLength: 1024,
        description: "Terms joined by commas: k=v, k!=v (no such tag, or another value), k, !k, network=, region=, hardware=<id>.",
      },
    },
  },
  GroupResult: {
    type: "object",
    required: ["name", "query", "devices"],
    properties: { name: { type: "string" }, query: { type: "string" }, devices: count("Devices the query selects now.") },
  },
  GroupList: {
    type: "object",
    required: ["groups"],
    properties: {
      groups: {
        type: "array",
        items: {
          type: "object",
          required: ["name", "query", "createdBy", "createdAt", "devices"],
          properties: {
            name: { type: "string" },
            query: { type: "string" },
            createdBy: { type: "string", pattern: "^0x[0-9a-f]{40}$", description: "The administrator who saved it." },
            createdAt: ms("When."),
            devices: count("Devices it selects now."),
          },
        },
      },
    },
  },
  GroupRemoved: { type: "object", required: ["name", "removed"], properties: { name: { type: "string" }, removed: { type: "boolean", const: true } } },
  RequestProgress: {
    type: "object",
    required: [
      "requestId",
      "releaseId",
      "releaseName",
      "component",
      "target",
      "deadline",
      "overridePins",
      "requestedBy",
      "requestedAt",
      "counts",
      "notDecided",
    ],
    description: "An update request and where its devices stand (issue 19, item 11).",
    properties: {
      requestId: { type: "string", pattern: "^0x[0-9a-f]{32}$" },
      releaseId: id("The release."),
      releaseName: releaseName(),
      bundle: bundleNamed(),
      component: id("Its component (a bundle's first member's)."),
      target: {
        type: "object",
        description: "What it targeted: how many devices it named, the filter, the group or the query.",
        properties: { devices: count("Devices named."), filter: { type: "object" }, group: { type: "string" }, query: { type: "string" } },
      },
      deadline: msOrNull("Its deadline; null: none."),
      overridePins: { type: "boolean" },
      requestedBy: { type: "string", pattern: "^0x[0-9a-f]{40}$" },
      requestedAt: ms("When it was taken."),
      counts: {
        type: "object",
        required: ["decided", "notified", "installed", "failed", "blocked", "refused", "pending", "pastDeadline"],
        properties: {
          decided: count("Devices decided (also those that joined later by their tags)."),
          notified: count("Of them, devices told of the release."),
          installed: count("Devices that run the release (or a newer one)."),
          failed: count("Devices whose last result failed it after an intact delivery."),
          blocked: count("Devices whose delivery of it is blocked (retried)."),
          refused: count("Devices that refused it: declined by their own policy (VERSION_PINNED, DEFERRED_TO_WINDOW...) or their checks."),
          pending: count("Devices with no result about it yet (told or not)."),
          pastDeadline: count("Devices without it installed once the deadline passed."),
        },
      },
      notDecided: {
        type: "array",
        description: "Devices the request selected and left out, with the reason (as POST answered).",
        items: {
          type: "object",
          required: ["deviceId", "code", "message"],
          properties: { deviceId: ref("Bytes32"), code: { type: "string" }, message: { type: "string" } },
        },
      },
      devices: {
        type: "array",
        description: "GET /v1/update-requests/{id} only: each decided device and its state.",
        items: {
          type: "object",
          required: ["deviceId", "state", "code", "pastDeadline"],
          properties: {
            deviceId: ref("Bytes32"),
            state: { type: "string", enum: ["installed", "failed", "blocked", "refused", "notified", "pending"] },
            code: { type: ["string", "null"], description: "The code of its last result about the release (failed, blocked, refused)." },
            pastDeadline: { type: "boolean" },
          },
        },
      },
    },
  },
  RequestList: {
    type: "object",
    required: ["total", "requests"],
    properties: { total: count("Requests this tracker took."), requests: { type: "array", items: ref("RequestProgress"), description: "Newest first." } },
  },
  UpdateRequestResult: {
    type: "object",
    required: ["requestId", "releaseId", "decided", "refused", "deadline"],
    description:
      "What an update request decided. Devices refused individually are listed; the others now have a decision and get their notice at their next contact.",
    properties: {
      requestId: {
        type: "string",
        pattern: "^0x[0-9a-f]{32}$",
        description: "This request's id (16 random bytes), recorded as the origin `request:<requestId>` of its decisions.",
      },
      releaseId: { allOf: [ref("Bytes32")], description: "The release, or the release bundle's id for a request of a bundle." },
      bundle: {
        type: "object",
        required: ["id", "name", "version"],
        description: "Present for a request of a release bundle (docs/adr/0019).",
        properties: { id: ref("Bytes32"), name: { type: "string" }, version: ref("Version") },
      },
      decided: count("Devices the release was decided for."),
      deadline: msOrNull("The request's deadline; null: none."),
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
                "Why this device was left out: DEVICE_UNKNOWN for a device this module does not know, DEVICE_NOT_ACTIVE for a suspended or withdrawn one, else the registry's checkInstallable answer for its configuration (e.g. HARDWARE_NOT_SUPPORTED, DEPENDENCY_VERSION_OUT_OF_RANGE), for a bundle the ledger's checkBundle answer (NOT_NEWER_THAN_INSTALLED: it runs every member), or POLICY_REFUSED.",
            },
            message: { type: "string" },
          },
        },
      },
    },
    examples: [
      {
        requestId: "0x" + "5a".repeat(16),
        releaseId: "0x" + "02".repeat(32),
        decided: 118,
        refused: [{ deviceId: "0x" + "ab".repeat(32), code: "DEVICE_UNKNOWN", message: "not in this fleet" }],
        deadline: null,
      },
    ],
  },
  Health: {
    type: "object",
    required: ["status", "module", "ledger", "devices", "upstream"],
    properties: {
      status: {
        type: "string",
        enum: ["ok", "ledger-halted"],
        description:
          "ok: the module serves. ledger-halted (answered with 503): the chain reorganised below the blocks the module remembers (REORG_TOO_DEEP); its mirror stopped following the ledger, reports are still taken, and an operator stops it and runs `ota-ledger tracker resync` (docs/guides/operations.md).",
      },
      module: {
        type: "object",
        required: ["id", "role", "parent", "publicKey"],
        properties: {
          id: id("This module's id."),
          role: { type: "string", enum: ["server", "intermediate"], description: "server: the top of the hierarchy; intermediate: it posts to a parent." },
          parent: { anyOf: [ref("Bytes32"), { type: "null" }], description: "The parent module's id, as configured; null for a server module." },
          publicKey: {
            type: "string",
            pattern: "^0x0[23][0-9a-f]{64}$",
            description:
              "This module's compressed secp256k1 public key: devices and child modules seal their messages to it (it is also on the ledger, in the module's registration).",
          },
        },
      },
      ledger: {
        type: "object",
        required: ["block"],
        properties: {
          block: { type: ["integer", "null"], minimum: 0, description: "The last ledger block this module's mirror has applied; null before the first." },
          newestBlockTime: {
            type: ["integer", "null"],
            description: "The time (unix s) of the newest block the module has read from its RPC endpoint(s); null before the first.",
          },
          ageSeconds: {
            type: ["integer", "null"],
            minimum: 0,
            description:
              "How old that block is now: a frozen or lagging endpoint keeps answering with old blocks (on a development chain that mines only on demand, an idle chain ages too). Monitor it against the chain's block time.",
          },
          halted: {
            type: "object",
            required: ["code", "message", "fix"],
            description: "Present only when status is ledger-halted: why the mirror stopped, and what to do.",
            properties: { code: { const: "REORG_TOO_DEEP" }, message: { type: "string" }, fix: { type: "string" } },
          },
        },
      },
      devices: count("Devices in this module's fleet."),
      upstream: {
        type: ["object", "null"],
        required: ["lastOk", "lastError"],
        description: "An intermediate module's exchanges with its parent; null for a server module.",
        properties: {
          lastOk: msOrNull("The last exchange with the parent that succeeded; null if none yet."),
          lastError: { type: ["string", "null"], description: "Why the last exchange failed; null once one succeeds." },
        },
      },
    },
    examples: [
      {
        status: "ok",
        module: { id: "0x" + "cd".repeat(32), role: "server", parent: null, publicKey: "0x02" + "ef".repeat(32) },
        ledger: { block: 1204 },
        devices: 1200,
        upstream: null,
      },
    ],
  },
  SessionEnvelope: {
    type: "object",
    required: ["v", "kind", "from", "to", "session", "sealed"],
    description:
      "A status report sealed under a report session (ADR 0013, agent/crypto/reportSession.ts): AES-256-GCM under the session's key, which the device offered in a full sealed report (its id and commitment signed with its enrolled key, the secret sealed to this module) and this module took. `v`, `kind`, `from`, `to` and `session` are in the clear, for routing, and authenticated with the ciphertext.",
    properties: {
      v: { const: 1, description: "Envelope format version." },
      kind: { const: REPORT_KIND, description: "A status report." },
      from: id("The device."),
      to: id("This tracker module."),
      session: { type: "string", pattern: "^0x[0-9a-fA-F]{32}$", description: "The report session's id (16 bytes), as the module confirmed it." },
      sealed: { type: "string", pattern: "^0x([0-9a-fA-F]{2})+$", description: "nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes), hex." },
    },
    examples: [
      { v: 1, kind: REPORT_KIND, from: "0x" + "ab".repeat(32), to: "0x" + "cd".repeat(32), session: "0x" + "5e".repeat(16), sealed: "0x" + "00".repeat(60) },
    ],
  },
  ReportAccepted: {
    type: "object",
    required: ["accepted", "counter", "notices"],
    properties: {
      accepted: { const: true },
      counter: { type: "integer", minimum: 1, description: "The counter of the report taken." },
      session: {
        type: "object",
        required: ["id", "expiresAt"],
        description:
          "Present when this report (sealed in full) offered a report session and the module took it: the device seals its next reports under it (ADR 0013). A module that forwards reports upstream takes no session.",
        properties: {
          id: { type: "string", pattern: "^0x[0-9a-f]{32}$", description: "The session's id, as the device offered it." },
          expiresAt: {
            type: "integer",
            description: "When the module stops taking reports under it (ms); the device then sends a full report, which offers another.",
          },
        },
      },
      notices: {
        type: "array",
        items: ref("Envelope"),
        description: 'Update notices for the device (kind "update-notice"), signed by this module and sealed to the device; empty when none is due.',
      },
    },
  },
  DownstreamAccepted: {
    type: "object",
    required: ["accepted", "taken", "refused", "decisions"],
    properties: {
      accepted: { const: true },
      taken: count("How many of the forwarded device reports were taken."),
      refused: {
        type: "array",
        description:
          "The forwarded reports that were not taken, with the code of the check each failed (e.g. REPORT_SIGNATURE, REPORT_REPLAYED, REPORT_NOT_FOR_MODULE); one bad report does not block the others.",
        items: {
          type: "object",
          required: ["deviceId", "code"],
          properties: { deviceId: { type: "string", description: "The device the report claims to come from." }, code: { type: "string" } },
        },
      },
      decisions: {
        allOf: [ref("Envelope")],
        description:
          'The decisions for the child module\'s devices (kind "update-decisions", body `{decisions, acknowledges}`), signed by this module and sealed to the child, sent even when there are none: `acknowledges` is the counter of the status it answers, and the child drops the reports it forwarded only on that signed word, never on a bare 200.',
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
      description:
        "Whether this tracker module serves, which module it is (id, role, parent, and the public key devices and child modules seal their messages to), how far its ledger mirror has read, how many devices it follows and, for an intermediate module, how its exchanges with its parent go. Needs no token: meant for load balancers and supervisors.",
      tags: ["health"],
      security: ANYONE,
      responses: {
        ...ok("The module's health.", "Health"),
        503: {
          description: "The module's ledger mirror is halted (status ledger-halted): the body is the same Health object.",
          content: { "application/json": { schema: ref("Health") } },
        },
        ...errors(),
      },
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
        "",
        "Report sessions (ADR 0013, CAP-11.2-m-a, CAP-11.2-m-b): a full report may offer one (its signed body names the session id and the sha256 of its secret, the secret is sealed beside the signature); the answer's `session` confirms it, and the device's next reports come as a `SessionEnvelope`, sealed with AES-256-GCM under the session key, authenticated by it instead of a signature, with the same checks of standing, counter and content. A session ends when it expires, when the module's or the device's key changes, when the device is suspended or withdrawn, and when a newer full report offers another; a report under a session that is over is refused with REPORT_SESSION_UNKNOWN and the device sends it again in full. A module with a parent takes no sessions (its parent checks each device's own signature).",
      ].join("\n"),
      tags: ["devices and modules"],
      "x-x1368": ["PROC-5", "CAP-11.1-a-i", "CAP-11.2-m-a", "CAP-11.2-m-b"],
      security: ANYONE,
      requestBody: {
        description: `A "${REPORT_KIND}" message from the device: sealed in full (Envelope), or under its report session (SessionEnvelope).`,
        required: true,
        content: json({ anyOf: [ref("Envelope"), ref("SessionEnvelope")] }),
      },
      responses: {
        ...ok("The report was taken; here are the device's notices.", "ReportAccepted"),
        ...errors(
          ...BODY_ERRORS,
          ...SEALED_MESSAGE_ERRORS,
          ["REPORT_MALFORMED", 400],
          ["REPORT_KIND", 401],
          ["REPORT_UNKNOWN_DEVICE", 401],
          ["REPORT_SIGNATURE", 401],
          ["REPORT_CREDENTIAL", 401],
          ["REPORT_SESSION_UNKNOWN", 401],
          ["REPORT_SESSION_AUTHENTICATION", 401],
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
          ...BODY_ERRORS,
          ...SEALED_MESSAGE_ERRORS,
          ["MESSAGE_KIND", 401],
          ["MODULE_NOT_REGISTERED", 401],
          ["MODULE_SIGNATURE", 401],
          ["MESSAGE_STALE", 401],
          ["MODULE_NOT_CHILD", 403],
          ["MESSAGE_REPLAYED", 409],
        ),
      },
    },
  },
  "/v1/fleet/summary": {
    get: {
      operationId: "getFleetSummary",
      summary: "Device counts by status",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.1-b. How many devices of this module's fleet are up to date, outdated, vulnerable, failed, in safe mode (waiting for a person to install by hand), unreachable or suspended, for the whole fleet and per network. A device can count under several statuses.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.1-b"],
      security: READER,
      responses: { ...ok("The summary.", "Summary"), ...readerErrors() },
    },
  },
  "/v1/fleet/devices": {
    get: {
      operationId: "listDevices",
      summary: "Devices, by status, network, region and hardware",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.1-b. The lists of devices by status (e.g. all vulnerable devices, all unreachable devices of a network, all devices in safe mode that need a person), one page at a time. Filters combine: a device is listed when it matches every one given. Each device carries its hardware class's name (`hardwareName`) and each component it runs its name (`componentName`, which with `version` names the release it runs, CAP-11.2-b-iii), beside the ids, from this module's ledger mirror: no ledger call per device.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.1-b"],
      security: READER,
      parameters: [
        { name: "status", in: "query", required: false, description: "Only devices with this status.", schema: ref("DeviceStatus") },
        {
          name: "network",
          in: "query",
          required: false,
          description: "Only devices of this network: its label (at most 31 bytes) or its bytes32 hex.",
          schema: { type: "string" },
        },
        {
          name: "region",
          in: "query",
          required: false,
          description: "Only devices of this region: its label (at most 31 bytes) or its bytes32 hex.",
          schema: { type: "string" },
        },
        { name: "hardware", in: "query", required: false, description: "Only devices of this hardware class.", schema: { type: "integer", minimum: 0 } },
        {
          name: "q",
          in: "query",
          required: false,
          description: "Only devices whose id starts with this hex (with or without 0x).",
          schema: { type: "string", pattern: "^(0x)?[0-9a-fA-F]{1,64}$" },
        },
        {
          name: "tag",
          in: "query",
          required: false,
          description:
            "Only devices matching this tag query (repeatable; every one must hold): terms joined by commas, k=v, k!=v, k, !k, network=, region=, hardware= (issue 19, item 11). QUERY_INVALID otherwise.",
          schema: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] },
        },
        { name: "group", in: "query", required: false, description: "Only devices the group of this name selects now.", schema: { type: "string" } },
        {
          name: "limit",
          in: "query",
          required: false,
          description: "The page size (at most 1000; more is taken as 1000).",
          schema: { type: "integer", minimum: 1, default: 50 },
        },
        {
          name: "offset",
          in: "query",
          required: false,
          description: "How many matching devices to skip.",
          schema: { type: "integer", minimum: 0, default: 0 },
        },
      ],
      responses: { ...ok("The matching devices.", "DeviceList"), ...readerErrors(["BAD_REQUEST", 400], ["QUERY_INVALID", 400], ["GROUP_UNKNOWN", 404]) },
    },
  },
  "/v1/fleet/devices/{id}": {
    get: {
      operationId: "getDevice",
      summary: "One device: view, plan, reports and decisions",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b, CAP-11.2-c, CAP-11.3-g. Everything this module knows of one device: what it runs and its statuses, the install plan the resolver made for its configuration (which update it needs, dependencies first, and why other components get none), its latest reports, the updates decided for it by name, the notices handed out for it, and what it fetched from the firmware servers. Components, releases and the hardware class are named beside their ids (`componentName`, `releaseName`, `hardwareName`; null while the mirror does not hold a name). Any id that is not a device of this fleet is 404 DEVICE_UNKNOWN.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b", "CAP-11.2-c", "CAP-11.3-g"],
      security: READER,
      parameters: [idParameter("The device id (any case).")],
      responses: { ...ok("The device.", "DeviceDetail"), ...readerErrors(...PATH_ERRORS, ["DEVICE_UNKNOWN", 404]) },
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
      parameters: [idParameter("The release id (any case); any id that is not in this module's mirror of the ledger is 404 RELEASE_UNKNOWN.")],
      responses: { ...ok("The adoption curve.", "AdoptionPoints"), ...readerErrors(...PATH_ERRORS, ["RELEASE_UNKNOWN", 404]) },
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
        "X.1368 DEP-8.2.3, CAP-11.2-a, CAP-11.2-b. The child modules that post their downstream status here: the networks each serves, when it last posted, whether it is reachable, how many devices reach the hierarchy through it and how many of those it cannot reach, and the modules below it.",
      tags: ["fleet"],
      "x-x1368": ["DEP-8.2.3", "CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      responses: { ...ok("The modules.", "ModuleList"), ...readerErrors() },
    },
  },
  "/v1/update-requests": {
    get: {
      operationId: "listUpdateRequests",
      summary: "The update requests taken, and their progress",
      description:
        "X.1368 PROC-2, CAP-11.2-c. The administrators' update requests this tracker took, newest first, each with its counts (GET /v1/update-requests/{id} for its devices).",
      tags: ["fleet"],
      "x-x1368": ["PROC-2", "CAP-11.2-c"],
      security: READER,
      parameters: [
        { name: "limit", in: "query", required: false, description: "The page size (at most 1000).", schema: { type: "integer", minimum: 1, default: 50 } },
        { name: "offset", in: "query", required: false, description: "How many to skip.", schema: { type: "integer", minimum: 0, default: 0 } },
      ],
      responses: { ...ok("The requests.", "RequestList"), ...readerErrors(["BAD_REQUEST", 400]) },
    },
    post: {
      operationId: "postUpdateRequest",
      summary: "An administrator requests an update",
      description: [
        "X.1368 PROC-2. An administrator asks for a release to be installed on devices named by id or selected by a filter. The request is signed by the administrator's Ethereum account (headers below, agent/crypto/requestSignature.ts) for this tracker's origin, so it cannot be replayed here or elsewhere, and is checked against the ledger: the account must hold the registry's ADMINISTRATOR_ROLE; the release must exist and be active and its provider not barred; an imageLocation must be the release's recorded file link. A request may name a release bundle (bundleId, docs/adr/0019) instead: every member is validated as a release, each device is checked with the ledger's checkBundle and decided the bundle as one step.",
        "",
        "Nothing is decided if the request fails. Otherwise each selected device must be enrolled, active and of a supported hardware class, and the registry's checkInstallable must pass for it; the devices that fail are listed with their reason, the others get a decision and receive their notice at their next contact (CAP-11.3-g).",
      ].join("\n"),
      tags: ["administrators"],
      "x-x1368": ["PROC-2", "CAP-11.3-g"],
      security: ANYONE,
      parameters: SIGNED_REQUEST_HEADERS,
      requestBody: {
        description: "The release and the devices. The exact bytes sent are the ones signed.",
        required: true,
        content: json(ref("UpdateRequest")),
      },
      responses: {
        ...ok("The request was taken: decisions made and devices refused.", "UpdateRequestResult"),
        ...errors(
          ...BODY_ERRORS,
          ["RELEASE_UNKNOWN", 400],
          ["RELEASE_NOT_VERIFIED", 400],
          ["RELEASE_NOT_ACTIVE", 400],
          ["PROVIDER_BARRED", 400],
          ["IMAGE_LOCATION_MISMATCH", 400],
          ["BUNDLES_NOT_DEPLOYED", 400],
          ["BUNDLE_UNKNOWN", 400],
          ["NO_DEVICES", 400],
          ["QUERY_INVALID", 400],
          ["GROUP_UNKNOWN", 404],
          ["AUTH_MISSING", 401],
          ["AUTH_MALFORMED", 401],
          ["AUTH_SIGNATURE", 401],
          ["AUTH_STALE", 401],
          ["NOT_ADMINISTRATOR", 403],
          ["AUTH_REPLAY", 409],
          ["AUTH_QUOTA", 429],
          ["NOT_FROM_REGISTRY", 500],
          ["NOT_RELEASE_EVENT", 500],
          ["RELEASE_EVENT_MISMATCH", 500],
          ["LEDGER_UNAVAILABLE", 503],
          ["SERVER_BUSY", 503],
        ),
      },
    },
  },
  "/v1/update-requests/{id}": {
    get: {
      operationId: "getUpdateRequest",
      summary: "An update request's progress",
      description:
        "X.1368 PROC-2, CAP-11.2-c. An update request and where each device it decided stands: installed, failed, blocked, refused (with the device's code, e.g. DEFERRED_TO_WINDOW, VERSION_PINNED), notified or pending; and how many are past the deadline without it installed.",
      tags: ["fleet"],
      "x-x1368": ["PROC-2", "CAP-11.2-c"],
      security: READER,
      parameters: [
        { name: "id", in: "path", required: true, description: "The request id (POST /v1/update-requests answered it).", schema: { type: "string" } },
      ],
      responses: { ...ok("The request and its devices.", "RequestProgress"), ...readerErrors(...PATH_ERRORS, ["REQUEST_UNKNOWN", 404]) },
    },
  },
  "/v1/fleet/devices/{id}/tags": {
    post: {
      operationId: "postDeviceTags",
      summary: "An administrator sets or removes a device's tags",
      description:
        "X.1368 CAP-11.2-a. Tags are the tracker's labels on a device (issue 19, item 11): at most 32, keys of 1 to 64 characters, values of 1 to 128. Signed by an administrator exactly as POST /v1/update-requests (for this path). Nothing is changed when any part is refused. A device that now matches the group or query of an earlier update request joins it (after the same ledger checks). The tags are anchored with the device's status (anchor format 2).",
      tags: ["administrators"],
      "x-x1368": ["CAP-11.2-a"],
      security: ANYONE,
      parameters: [idParameter("The device (any case)."), ...SIGNED_REQUEST_HEADERS],
      requestBody: { description: "The change. The exact bytes sent are the ones signed.", required: true, content: json(ref("TagChange")) },
      responses: {
        ...ok("The device's tags after the change.", "TagChangeResult"),
        ...errors(...ADMIN_ERRORS, ["TAG_INVALID", 400], ["TAG_KEY_RESERVED", 400], ["TAG_LIMIT", 400], ["DEVICE_UNKNOWN", 404]),
      },
    },
  },
  "/v1/groups": {
    get: {
      operationId: "listGroups",
      summary: "The groups saved on this tracker",
      description: "X.1368 CAP-11.2-a. Each group's name, query, who saved it and when, and how many devices it selects now (evaluated at the request).",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a"],
      security: READER,
      responses: { ...ok("The groups.", "GroupList"), ...readerErrors() },
    },
    post: {
      operationId: "postGroup",
      summary: "An administrator saves a group (a named tag query)",
      description:
        "X.1368 CAP-11.2-a. A dynamic group: its query is evaluated whenever the group is used (update requests, the device list's group=), so devices join and leave it as their tags change. Signed by an administrator exactly as POST /v1/update-requests (for this path). A later group of the same name replaces the query; devices it now selects join the requests that target it.",
      tags: ["administrators"],
      "x-x1368": ["CAP-11.2-a"],
      security: ANYONE,
      parameters: SIGNED_REQUEST_HEADERS,
      requestBody: { description: "The group. The exact bytes sent are the ones signed.", required: true, content: json(ref("GroupRequest")) },
      responses: { ...ok("The group was saved.", "GroupResult"), ...errors(...ADMIN_ERRORS, ["QUERY_INVALID", 400], ["GROUP_LIMIT", 400]) },
    },
  },
  "/v1/groups/{name}": {
    delete: {
      operationId: "deleteGroup",
      summary: "An administrator removes a group",
      description:
        "Signed by an administrator exactly as POST /v1/update-requests (method DELETE, this path, an empty body). Requests that targeted it keep the devices they decided; no device joins them any more.",
      tags: ["administrators"],
      security: ANYONE,
      parameters: [{ name: "name", in: "path", required: true, description: "The group's name.", schema: { type: "string" } }, ...SIGNED_REQUEST_HEADERS],
      responses: { ...ok("The group was removed.", "GroupRemoved"), ...errors(...ADMIN_ERRORS, ["GROUP_UNKNOWN", 404]) },
    },
  },
  "/v1/anchors": {
    get: {
      operationId: "listAnchors",
      summary: "The status anchors this tracker made",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. The anchors of the fleet's status this tracker made on the ledger (StatusAnchors), newest first: root, device count, counts per release, the transaction. An empty list when the tracker anchors nothing (no ledger account or no StatusAnchors).",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      parameters: [
        {
          name: "limit",
          in: "query",
          required: false,
          description: "The page size (at most 1000; more is taken as 1000).",
          schema: { type: "integer", minimum: 1, default: 50 },
        },
        { name: "offset", in: "query", required: false, description: "How many anchors to skip.", schema: { type: "integer", minimum: 0, default: 0 } },
      ],
      responses: { ...ok("The anchors.", "AnchorList"), ...readerErrors(["BAD_REQUEST", 400]) },
    },
  },
  "/v1/anchors/{index}/devices/{deviceId}": {
    get: {
      operationId: "getAnchorProof",
      summary: "A device's record in an anchor, and its proof",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. The status record of one device in one anchor and its Merkle proof, as StatusAnchors.verifyStatus(anchorIndex, record, proof) takes them: a device or an auditor checks it on the ledger, trusting the tracker for nothing.",
      tags: ["fleet"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: READER,
      parameters: [
        { name: "index", in: "path", required: true, description: "The anchor's index on StatusAnchors.", schema: { type: "integer", minimum: 0 } },
        { name: "deviceId", in: "path", required: true, description: "The device id (any case).", schema: ref("Bytes32") },
      ],
      responses: {
        ...ok("The record and its proof.", "AnchorProof"),
        ...readerErrors(...PATH_ERRORS, ["ANCHOR_UNKNOWN", 404], ["ANCHOR_RECORDS_PRUNED", 404], ["DEVICE_NOT_IN_ANCHOR", 404]),
      },
    },
  },
  "/v1/rollouts/{releaseId}/cohorts": {
    post: {
      operationId: "postRolloutCohorts",
      summary: "An administrator gives a staged rollout's cohorts",
      description: [
        "X.1368 APP-II-3. The device ids of each wave of a release's staged rollout. Signed by an administrator exactly as POST /v1/update-requests (headers below, for this tracker's origin and this path; ADMINISTRATOR_ROLE on the registry). When the release's policy is a StagedRollout or a composer holding one, each wave's cohort root must be the root each such rollout holds on the ledger (409 ROLLOUT_ROOT_MISMATCH names the wave).",
        "",
        "The tracker keeps each device's evidence (its wave and Merkle proof), asks the ledger with it before every notice and hands it out with the notice. A later request for the same release replaces the evidence of the devices it names.",
      ].join("\n"),
      tags: ["administrators"],
      "x-x1368": ["APP-II-3"],
      security: ANYONE,
      parameters: [
        { name: "releaseId", in: "path", required: true, description: "The release (any case).", schema: ref("Bytes32") },
        ...SIGNED_REQUEST_HEADERS,
      ],
      requestBody: { description: "The waves. The exact bytes sent are the ones signed.", required: true, content: json(ref("CohortsRequest")) },
      responses: {
        ...ok("The cohorts were kept.", "CohortsResult"),
        ...errors(...ADMIN_RELEASE_ERRORS, ["ROLLOUT_ROOT_MISMATCH", 409]),
      },
    },
  },
  "/v1/releases/{id}/evidence": {
    post: {
      operationId: "postPolicyEvidence",
      summary: "An administrator gives devices the evidence a release's policy needs",
      description: [
        "X.1368 APP-II-3. Per device, the evidence an update policy reads (an allowlist proof, a cohort proof: whatever the policy's `check` takes), for one policy of the release's composition or for every policy. Signed by an administrator exactly as POST /v1/update-requests (headers below, for this tracker's origin and this path; ADMINISTRATOR_ROLE on the registry).",
        "",
        "The tracker keeps it, asks the ledger with it before every notice and hands it out with the notice. Each policy of a composition gets its own part: the tracker joins a device's parts in one envelope. A later request for the same release and policy replaces the evidence of the devices it names. 409 POLICY_NOT_ATTACHED when `policy` is not a leaf policy of the release's (composers pass evidence on); 409 POLICY_READS_WHOLE_EVIDENCE when it reads its evidence whole (deployed before the envelope: send without `policy`); 409 EVIDENCE_CONFLICT when a device holds evidence for every policy that the part would replace (the cohort proofs of the release's staged rollouts are kept as their parts instead).",
      ].join("\n"),
      tags: ["administrators"],
      "x-x1368": ["APP-II-3"],
      security: ANYONE,
      parameters: [{ name: "id", in: "path", required: true, description: "The release (any case).", schema: ref("Bytes32") }, ...SIGNED_REQUEST_HEADERS],
      requestBody: { description: "The evidence. The exact bytes sent are the ones signed.", required: true, content: json(ref("EvidenceRequest")) },
      responses: {
        ...ok("The evidence was kept.", "EvidenceResult"),
        ...errors(
          ...ADMIN_RELEASE_ERRORS,
          ["EVIDENCE_INVALID", 400],
          ["POLICY_NOT_ATTACHED", 409],
          ["POLICY_READS_WHOLE_EVIDENCE", 409],
          ["EVIDENCE_CONFLICT", 409],
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
      responses: {
        "200": {
          description: "The OpenAPI document.",
          content: json({
            type: "object",
            required: ["openapi", "info", "tags", "paths", "components"],
            description: "An OpenAPI 3.1 document.",
            properties: {
              openapi: { const: "3.1.0" },
              info: { type: "object" },
              tags: { type: "array" },
              paths: { type: "object" },
              components: { type: "object" },
            },
          }),
        },
        ...errors(),
      },
    },
  },
  "/": {
    get: {
      operationId: "getDashboard",
      summary: "The fleet dashboard",
      description:
        "X.1368 CAP-11.2-a, CAP-11.2-b. The fleet dashboard page: device counts, the device list with its filters and detail, adoption curves, rollouts and the modules below. It loads its script and style sheet from /dashboard/ and its data from the read endpoints above; everything comes from the tracker, so it works on an offline network. The page and its files need no token; the page sends the read token given in its address (`/#token=<tracker.apiToken>`) with its data requests.",
      tags: ["dashboard"],
      "x-x1368": ["CAP-11.2-a", "CAP-11.2-b"],
      security: ANYONE,
      responses: { "200": { description: "The page.", content: { "text/html": { schema: { type: "string" } } } }, ...errors(["NOT_FOUND", 404]) },
    },
  },
  "/dashboard/{file}": {
    get: {
      operationId: "getDashboardFile",
      summary: "A file of the dashboard",
      description:
        "The dashboard's page, script and style sheet (index.html, dashboard.js, dashboard.css), served from the tracker itself; only .html, .js and .css files of the dashboard's folder are served.",
      tags: ["dashboard"],
      security: ANYONE,
      parameters: [
        {
          name: "file",
          in: "path",
          required: true,
          description: "The file name, without any directory.",
          schema: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$" },
        },
      ],
      responses: {
        "200": {
          description: "The file.",
          content: {
            "text/html": { schema: { type: "string" } },
            "text/javascript": { schema: { type: "string" } },
            "text/css": { schema: { type: "string" } },
          },
        },
        ...errors(...PATH_ERRORS, ["NOT_FOUND", 404]),
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
      "- devices and child modules post sealed messages (POST /v1/reports, POST /v1/downstream), authenticated by their seal and signature against the keys the ledger holds (after a first such report, a device may report under the session key it offered in it: ADR 0013);",
      "- administrators post signed requests (POST /v1/update-requests, POST /v1/rollouts/{releaseId}/cohorts, POST /v1/releases/{id}/evidence), checked against the ledger's roles;",
      "- readers (dashboards, operators, monitoring) use the read endpoints (/v1/fleet/*, /v1/releases*, /v1/rollouts, /v1/modules, /v1/anchors*) with a bearer token, required only when the tracker is configured with `tracker.apiToken`; /v1/health, /openapi.json and the dashboard's page and files are open.",
      "",
      'Every refusal is `{"error": {"code", "message"}}` with 400 (malformed), 401/403 (authentication or authorisation), 404 (unknown), 409 (replay), 413/415 (body too large, or not JSON), 500 (internal error, code INTERNAL unless said otherwise) or 503 (ledger unavailable, busy); each operation lists its codes per status. A path or method the API does not have is 404 NOT_FOUND. Ids (devices, releases, components, modules) are 32 bytes of hex, given in lower case; times are milliseconds since the epoch; versions are major.minor.patch.',
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
