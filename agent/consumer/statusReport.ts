import { sealMessage, type Envelope } from "../crypto/sealedMessage";
import { InputError, OtaError } from "../core/errors";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import { ERROR_ANSWER_MAX_BYTES, NOTICES_PER_ANSWER_MAX, REPORT_ANSWER_MAX_BYTES, REPORT_LIST_MAX } from "../core/wireLimits";
import { readBoundedBody, readBoundedJson } from "../io/boundedBody";

/** The tracker did not take a report. */
export class ReportDeliveryError extends OtaError {}

/**
 * Seals a report to the tracker module's public key, signed with the device key, and posts it to
 * the tracker's `/v1/reports`. The transport is plain HTTP: the seal carries the security. The
 * answer carries the module's sealed update notices for this device (ADR 0004), which the caller
 * verifies before acting on any.
 *
 * The answer is read up to a bound (agent/core/wireLimits.ts): a tracker, or whatever sits on the
 * path, cannot grow the device's memory, nor make it open more than NOTICES_PER_ANSWER_MAX
 * notices (a key exchange and a ledger check each) for one report; the excess is dropped and
 * logged, and the tracker notices again at the next report.
 */
export async function sendStatusReport(
  report: StatusReport,
  device: { privateKey: string },
  tracker: { moduleId: string; publicKey: string; url: string; timeoutMs?: number },
  now = Date.now(),
  log?: (line: string) => void,
): Promise<{ envelope: Envelope; notices: Envelope[] }> {
  const envelope = await sealMessage(
    { kind: REPORT_KIND, from: report.deviceId, to: tracker.moduleId, issuedAt: now, body: withinLimits(report) },
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
    const why = (
      (await readBoundedJson(res, ERROR_ANSWER_MAX_BYTES, `the tracker's refusal of a report`).catch(() => undefined)) as
        { error?: { code?: string; message?: string } } | undefined
    )?.error;
    throw new ReportDeliveryError(
      "TRACKER_REFUSED",
      `the tracker at ${tracker.url} answered ${res.status} to the report${why ? `: ${why.code} ${why.message}` : ""}`,
    );
  }
  let answer: { notices?: unknown } = {};
  try {
    answer = JSON.parse((await readBoundedBody(res, REPORT_ANSWER_MAX_BYTES, `the tracker's answer to a report`)).toString("utf8")) ?? {};
  } catch (err) {
    // The report was taken (2xx); an answer too large or not JSON only loses this round's notices.
    log?.(`the tracker's answer to the report is unusable, its notices are dropped: ${(err as Error).message}`);
  }
  const notices = Array.isArray(answer.notices) ? (answer.notices as Envelope[]) : [];
  if (notices.length > NOTICES_PER_ANSWER_MAX) {
    log?.(
      `the tracker's answer holds ${notices.length} notices; taking the first ${NOTICES_PER_ANSWER_MAX} and dropping ${notices.length - NOTICES_PER_ANSWER_MAX} (the tracker notices again at the next report)`,
    );
  }
  return { envelope, notices: notices.slice(0, NOTICES_PER_ANSWER_MAX) };
}

/**
 * The report as the tracker takes it (REPORT_LIST_MAX entries a list): the newest needed and
 * declined releases, and every installed component, which a device cannot leave out.
 */
function withinLimits(report: StatusReport): StatusReport {
  if (report.installed.length > REPORT_LIST_MAX) {
    throw new InputError(
      "REPORT_TOO_MANY_COMPONENTS",
      `the device runs ${report.installed.length} components; a status report holds at most ${REPORT_LIST_MAX}: configure fewer components`,
    );
  }
  return {
    ...report,
    needs: report.needs.slice(-REPORT_LIST_MAX),
    declined: report.declined.slice(-REPORT_LIST_MAX),
  };
}
