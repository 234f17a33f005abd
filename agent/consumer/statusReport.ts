import { sealMessage, type Envelope } from "../crypto/sealedMessage";
import { OtaError } from "../core/errors";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";

/** The tracker did not take a report. */
export class ReportDeliveryError extends OtaError {}

/**
 * Seals a report to the tracker module's public key, signed with the device key, and posts it to
 * the tracker's `/v1/reports`. The transport is plain HTTP: the seal carries the security. The
 * answer carries the module's sealed update notices for this device (ADR 0004), which the caller
 * verifies before acting on any.
 */
export async function sendStatusReport(
  report: StatusReport,
  device: { privateKey: string },
  tracker: { moduleId: string; publicKey: string; url: string; timeoutMs?: number },
  now = Date.now(),
): Promise<{ envelope: Envelope; notices: Envelope[] }> {
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
  if (!res.ok) {
    const why = await res.json().then(
      (b) => (b as { error?: { code?: string; message?: string } }).error,
      () => undefined,
    );
    throw new ReportDeliveryError(
      "TRACKER_REFUSED",
      `the tracker at ${tracker.url} answered ${res.status} to the report${why ? `: ${why.code} ${why.message}` : ""}`,
    );
  }
  const answer = (await res.json().catch(() => ({}))) as { notices?: unknown };
  return { envelope, notices: Array.isArray(answer.notices) ? (answer.notices as Envelope[]) : [] };
}
