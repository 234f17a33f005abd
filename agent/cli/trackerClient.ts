import { OtaError } from "../core/errors";

/** The tracker does not answer, or answers with an error: the operation failed (exit 1). */
export class TrackerRequestError extends OtaError {}

const TIMEOUT_MS = 30_000;

/**
 * GET one document of a status tracker's read API (ADR 0004), with the bearer token when one is
 * configured. Every failure names the tracker's URL and what to do: start the tracker or fix
 * tracker.url when it does not answer, set tracker.apiToken when it asks for a token.
 */
export async function trackerGet<T>(base: string, pathAndQuery: string, token?: string): Promise<T> {
  const url = base.replace(/\/+$/, "") + pathAndQuery;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (cause) {
    // fetch wraps the socket error: its code (ECONNREFUSED, ENOTFOUND) says most.
    const inner = (cause as { cause?: { code?: string; message?: string } }).cause;
    const why = (cause as Error).name === "TimeoutError" ? `no answer in ${TIMEOUT_MS / 1000} s` : (inner?.code ?? inner?.message ?? (cause as Error).message);
    throw new TrackerRequestError(
      "TRACKER_UNREACHABLE",
      `the tracker at ${base} does not answer (${why}): start it (\`ota-ledger tracker start\`) or fix tracker.url (OTA_TRACKER_URL or --tracker)`,
      { cause, details: { url: base } },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (response.status === 401) {
    throw new TrackerRequestError(
      "TRACKER_UNAUTHORIZED",
      token
        ? `the tracker at ${base} refused the API token: set tracker.apiToken (OTA_TRACKER_TOKEN) to the token the tracker runs with`
        : `the tracker at ${base} needs an API token: set tracker.apiToken (OTA_TRACKER_TOKEN) to the token the tracker runs with`,
      { details: { url: base, status: 401 } },
    );
  }
  if (!response.ok) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (error && typeof error.code === "string") {
      throw new TrackerRequestError("TRACKER_REFUSED", `the tracker at ${base} answered ${response.status} ${error.code}: ${String(error.message)}`, {
        details: { url: base, status: response.status, trackerCode: error.code },
      });
    }
    throw new TrackerRequestError(
      "TRACKER_REFUSED",
      `${url} answered HTTP ${response.status}, not a tracker's answer: check tracker.url (OTA_TRACKER_URL or --tracker)`,
      { details: { url: base, status: response.status } },
    );
  }
  if (body === undefined || typeof body !== "object") {
    throw new TrackerRequestError("TRACKER_REFUSED", `${url} did not answer JSON: check tracker.url (OTA_TRACKER_URL or --tracker)`, {
      details: { url: base, status: response.status },
    });
  }
  return body as T;
}
