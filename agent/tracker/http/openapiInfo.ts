/**
 * What the OpenAPI document says beside the routes' schemas: the API as a whole, its tags and its
 * security scheme. Each operation's own prose is in its route's schema (agent/tracker/http/routes).
 */
export const OPENAPI_INFO = {
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
      "- administrators post signed requests (POST /v1/update-requests, POST /v1/rollouts/{releaseId}/cohorts, POST /v1/releases/{id}/evidence, tags and groups), checked against the ledger's roles;",
      "- readers (dashboards, operators, monitoring) use the read endpoints (/v1/fleet/*, /v1/releases*, /v1/rollouts, /v1/modules, /v1/anchors*, /v1/update-requests*, /v1/groups) with a bearer token, required only when the tracker is configured with `tracker.apiToken`; /v1/health, /openapi.json and the dashboard's page and files are open.",
      "",
      'Every refusal is `{"error": {"code", "message"}}` with the status the one table of error codes gives it (agent/core/errorCodes.ts, shared with the firmware server): 400 (malformed), 401/403 (authentication or authorisation), 404 (unknown), 409 (replay, or a conflict with the ledger), 413/414/415 (body too large, path parameter too long, or not JSON), 422 (not verified), 429 (too many requests), 500 (internal error, code INTERNAL unless said otherwise) or 503 (ledger unavailable, busy); each operation lists its codes per status. A path or method the API does not have is 404 NOT_FOUND. Ids (devices, releases, components, modules) are 32 bytes of hex, given in lower case; times are milliseconds since the epoch; versions are major.minor.patch.',
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
  components: {
    securitySchemes: {
      bearerAuth: {
        type: "http" as const,
        scheme: "bearer",
        description:
          "The read token, the tracker's `tracker.apiToken` setting, as `Authorization: Bearer <token>`. When the tracker has no token configured, read endpoints are open and the header is ignored; when it has one, a missing or wrong token is refused with 401 UNAUTHORIZED.",
      },
    },
  },
};
