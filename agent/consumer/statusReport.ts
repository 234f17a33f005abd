import { sealMessage, type Envelope } from "../crypto/sealedMessage";
import { OtaError } from "../core/errors";

/** PROC-5 / CAP-11.1-a-i, -iv: what a device tells its tracker. */
export interface StatusReport {
  deviceId: string;
  counter: number; // monotonic per device, persisted: a replayed report is older than the last one
  installed: { component: string; version: string; releaseId: string; slot: "a" | "b" }[];
  lastResult: null | { releaseId: string; component: string; outcome: string; code: string; at: number };
  needs: { releaseId: string; component: string; reason: string }[]; // updates it learned of and needs (CAP-11.1-a-iv)
  declined: { releaseId: string; code: string }[]; // updates it declined by its own policy (CAP-11.1-a-vi): reported, not silent
  safeMode: boolean;
}

export const REPORT_KIND = "status-report";

/** The tracker did not take a report. */
export class ReportDeliveryError extends OtaError {}

/**
 * Seals a report to the tracker module's public key, signed with the device key, and posts it to
 * the tracker's `/v1/reports`. The transport is plain HTTP: the seal carries the security.
 */
export async function sendStatusReport(
  report: StatusReport,
  device: { privateKey: string },
  tracker: { moduleId: string; publicKey: string; url: string; timeoutMs?: number },
  now = Date.now(),
): Promise<Envelope> {
  const envelope = await sealMessage(
    { kind: REPORT_KIND, from: report.deviceId, to: tracker.moduleId, issuedAt: now, body: report },
    { kind: "device", privateKey: device.privateKey },
    tracker.publicKey,
  );
  let res: Response;
  try {
    res = await fetch(new URL("/v1/reports", tracker.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(envelope),
      signal: AbortSignal.timeout(tracker.timeoutMs ?? 10_000),
    });
  } catch (cause) {
    throw new ReportDeliveryError("TRACKER_UNREACHABLE", `no tracker answers at ${tracker.url}; the report is kept and sent again`, { cause });
  }
  if (!res.ok) throw new ReportDeliveryError("TRACKER_REFUSED", `the tracker at ${tracker.url} answered ${res.status} to the report`);
  return envelope;
}
