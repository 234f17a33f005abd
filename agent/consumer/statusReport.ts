import { createHash } from "node:crypto";
import { sealMessage, type Envelope } from "../crypto/sealedMessage";
import { newSessionOffer, sealWithSession, sessionKey, type SessionEnvelope } from "../crypto/reportSession";
import { InputError, OtaError } from "../core/errors";
import { REPORT_KIND, type StatusReport } from "../core/statusReport";
import { ERROR_ANSWER_MAX_BYTES, NOTICES_PER_ANSWER_MAX, REPORT_ANSWER_MAX_BYTES, REPORT_LIST_MAX } from "../core/wireLimits";
import { readBoundedBody, readBoundedJson } from "../io/boundedBody";

/** The tracker did not take a report. */
export class ReportDeliveryError extends OtaError {
  /** The tracker's own refusal code (its answer's error.code), when it gave one. */
  refusal?: string;
}

/**
 * The device's report session with its tracker module (ADR 0013): made by a full sealed report
 * whose offer the module took, then used for the reports after it. Kept in memory only: a restart
 * of the device opens a new one (its first report is a full one), and nothing of it is at rest.
 * It holds for one module id and key and one device key: a change of any opens a new one.
 */
export class ReportSession {
  private current: { moduleId: string; modulePublicKey: string; deviceKey: string; id: string; key: Buffer } | undefined;

  /** The session id in use, if any. */
  get id(): string | undefined {
    return this.current?.id;
  }

  /** Ends the session: the next report is a full sealed report, which offers a new one. */
  clear(): void {
    this.current = undefined;
  }

  /** @internal the session for this module and device key, if it is the one held. */
  use(tracker: { moduleId: string; publicKey: string }, deviceKey: string): { id: string; key: Buffer } | undefined {
    const c = this.current;
    if (!c) return undefined;
    if (c.moduleId !== tracker.moduleId.toLowerCase() || c.modulePublicKey !== tracker.publicKey.toLowerCase() || c.deviceKey !== deviceKey) {
      this.current = undefined; // the module, its key or the device key changed: a new session is needed
      return undefined;
    }
    return c;
  }

  /** @internal */
  set(tracker: { moduleId: string; publicKey: string }, deviceKey: string, id: string, key: Buffer): void {
    this.current = { moduleId: tracker.moduleId.toLowerCase(), modulePublicKey: tracker.publicKey.toLowerCase(), deviceKey, id: id.toLowerCase(), key };
  }
}

/**
 * Seals a report to the tracker module's public key, signed with the device key, and posts it to
 * the tracker's `/v1/reports`. The transport is plain HTTP: the seal carries the security. The
 * answer carries the module's sealed update notices for this device (ADR 0004), which the caller
 * verifies before acting on any.
 *
 * With a `session` (ADR 0013): while the module holds a session with this device, the report is
 * sealed under the session key (the module opens it with one AES-GCM, no key exchange nor
 * signature); otherwise, or when the module refuses the session (REPORT_SESSION_*: expired, its
 * key rotated, its database restored, ...), the same report goes as a full sealed report that
 * offers a new session, which the module's answer confirms.
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
  session?: ReportSession,
): Promise<{ envelope: Envelope | SessionEnvelope; notices: Envelope[] }> {
  const body = withinLimits(report);
  const message = { kind: REPORT_KIND, from: report.deviceId, to: tracker.moduleId, issuedAt: now, body };
  const deviceKey = session ? createHash("sha256").update(device.privateKey.toLowerCase()).digest("hex") : "";
  const held = session?.use(tracker, deviceKey);
  if (held) {
    const envelope = sealWithSession(message, held);
    try {
      return { envelope, notices: await readAnswer(await post(envelope, tracker), log) };
    } catch (err) {
      if (!(err instanceof ReportDeliveryError) || !err.refusal?.startsWith("REPORT_SESSION_")) throw err;
      // The report was not taken: the same report (same counter) goes in full, and opens a new session.
      session!.clear();
      log?.(`the tracker refused report session ${held.id} (${err.refusal}); sending the report sealed in full`);
    }
  }
  const offer = session ? newSessionOffer() : undefined;
  const envelope = await sealMessage(
    offer ? { ...message, body: { ...body, session: { id: offer.id, commitment: offer.commitment } } } : message,
    { kind: "device", privateKey: device.privateKey },
    tracker.publicKey,
    offer ? { sessionSecret: offer.secret } : undefined,
  );
  const res = await post(envelope, tracker);
  let answered: { id?: unknown } | undefined;
  const notices = await readAnswer(res, log, (s) => (answered = s as { id?: unknown }));
  // The module took the offer: its answer names the session (a tracker without sessions does not, and reports stay full).
  if (offer && typeof answered?.id === "string" && answered.id.toLowerCase() === offer.id) {
    session!.set(tracker, deviceKey, offer.id, sessionKey(offer.secret, offer.id, report.deviceId, tracker.moduleId));
  }
  return { envelope, notices };
}

async function post(envelope: Envelope | SessionEnvelope, tracker: { url: string; timeoutMs?: number }): Promise<Response> {
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
    const error = new ReportDeliveryError(
      "TRACKER_REFUSED",
      `the tracker at ${tracker.url} answered ${res.status} to the report${why ? `: ${why.code} ${why.message}` : ""}`,
    );
    if (typeof why?.code === "string") error.refusal = why.code;
    throw error;
  }
  return res;
}

/** The notices of a 2xx answer (bounded), and its session confirmation to `onSession`. */
async function readAnswer(res: Response, log?: (line: string) => void, onSession?: (session: unknown) => void): Promise<Envelope[]> {
  let answer: { notices?: unknown; session?: unknown } = {};
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
  onSession?.(answer.session);
  return notices.slice(0, NOTICES_PER_ANSWER_MAX);
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
