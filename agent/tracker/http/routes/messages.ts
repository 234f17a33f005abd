import { REPORT_BODY_MAX_BYTES } from "../../../core/wireLimits";
import { checkReportEnvelope } from "../../reportIntake";
import { ANYONE, BODY_ERRORS, DownstreamAccepted, Envelope, ReportAccepted, ReportEnvelope, SEALED_MESSAGE_ERRORS, errorResponses, ok } from "../schemas";
import type { TrackerApp } from "../server";
import type { RouteContext } from "./context";

/** Sealed messages from devices and from modules below: POST /v1/reports, POST /v1/downstream. */
export function messageRoutes(app: TrackerApp, { tracker }: RouteContext): void {
  // Anyone may post here: the body is bounded by the largest legitimate report (wireLimits.ts),
  // refused by its content-length before it is read, parsed once, and its envelope checked before
  // it is queued for opening (a key exchange and a signature recovery on a worker thread).
  app.post(
    "/v1/reports",
    {
      bodyLimit: REPORT_BODY_MAX_BYTES,
      config: { malformed: "MESSAGE_MALFORMED" },
      schema: {
        operationId: "postReport",
        summary: "A device posts its sealed status report",
        description: [
          "X.1368 PROC-5, CAP-11.1-a-i. A device's heartbeat: it posts its status report (what it runs, the outcome of its last update, what it needs and declined), signed with its enrolled device key and sealed to this module. Devices may sit behind NAT, so they always open the connection and the answer carries what the tracker has for them.",
          "",
          "The envelope must be addressed to this module, be of kind \"status-report\", come from a device this module's ledger mirror knows and holds active, be signed by that device's enrolled key, and carry a counter above the last one taken (so a replay is refused). The report and what the device now runs are stored at once. The same envelope is taken on the module's MQTT reports topic (ADR 0015).",
          "",
          "The answer carries the update notices due for the device, sealed to it now (notices are sealed only at delivery).",
          "",
          "Report sessions (ADR 0013, CAP-11.2-m-a, CAP-11.2-m-b): a full report may offer one (its signed body names the session id and the sha256 of its secret, the secret is sealed beside the signature); the answer's `session` confirms it, and the device's next reports name the session in the envelope, sealed with AES-256-GCM under the session key, authenticated by it instead of a signature, with the same checks of standing, counter and content. A session ends when it expires, when the module's or the device's key changes, when the device is suspended or withdrawn, and when a newer full report offers another; a report under a session that is over is refused with REPORT_SESSION_UNKNOWN and the device sends it again in full. A module with a parent takes no sessions (its parent checks each device's own signature).",
        ].join("\n"),
        tags: ["devices and modules"],
        "x-x1368": ["PROC-5", "CAP-11.1-a-i", "CAP-11.2-m-a", "CAP-11.2-m-b"],
        security: ANYONE,
        body: ReportEnvelope,
        response: {
          ...ok("The report was taken; here are the device's notices.", ReportAccepted),
          ...errorResponses(
            ...BODY_ERRORS,
            ...SEALED_MESSAGE_ERRORS,
            "REPORT_MALFORMED",
            "REPORT_KIND",
            "REPORT_UNKNOWN_DEVICE",
            "REPORT_SIGNATURE",
            "REPORT_CREDENTIAL",
            "REPORT_SESSION_UNKNOWN",
            "REPORT_SESSION_AUTHENTICATION",
            "REPORT_DEVICE_NOT_ACTIVE",
            "REPORT_REPLAYED",
          ),
        },
      },
    },
    async (req) => ({ accepted: true as const, ...(await tracker.takeReport(checkReportEnvelope(req.body, tracker.id))) }),
  );

  app.post(
    "/v1/downstream",
    {
      config: { malformed: "MESSAGE_MALFORMED" },
      schema: {
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
        body: Envelope.describe('A sealed "downstream-status" message from a child module.'),
        response: {
          ...ok("The status was taken; here are the decisions for the child's devices.", DownstreamAccepted),
          ...errorResponses(
            ...BODY_ERRORS,
            ...SEALED_MESSAGE_ERRORS,
            "MESSAGE_KIND",
            "MODULE_NOT_REGISTERED",
            "MODULE_SIGNATURE",
            "MESSAGE_STALE",
            "MODULE_NOT_CHILD",
            "MESSAGE_REPLAYED",
          ),
        },
      },
    },
    async (req) => {
      const r = await tracker.takeDownstream(req.body);
      return { ...r, accepted: true as const, decisions: r.decisions! }; // always true and signed when it answers
    },
  );
}
