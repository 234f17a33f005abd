import { OtaError, InputError } from "../core/errors";
import { signAccountRequest } from "../crypto/requestSignature";
import type { OtaConfig } from "./config";
import { SETTINGS } from "./settings";

/** The tracker does not answer, or answers with an error: the operation failed (exit 1). */
export class TrackerRequestError extends OtaError {}

const TIMEOUT_MS = 30_000;

/** The tracker a command talks to: its URL (--tracker, else tracker.url), bearer token and signing audience. */
export interface TrackerTarget {
  url: string;
  token?: string;
  /** The origin signed requests are signed for: tracker.publicUrl's when set, else the URL's. */
  audience: string;
}

/** The tracker of `--tracker <url>` (checked), else of the configuration. */
export function trackerTargetOf(config: OtaConfig, option: string | undefined): TrackerTarget {
  if (option !== undefined && !SETTINGS.tracker.url.schema.safeParse(option).success) {
    throw new InputError("INVALID_INPUT", `--tracker "${option}" must be an http(s) URL such as "http://127.0.0.1:8700"`);
  }
  const url = option ?? config.tracker.url;
  const audience = new URL(config.tracker.publicUrl ?? url).origin;
  return { url, token: config.tracker.apiToken, audience };
}

/**
 * GET one document of a status tracker's read API (ADR 0004), with the bearer token when one is
 * configured. Every failure names the tracker's URL and what to do: start the tracker or fix
 * tracker.url when it does not answer, set tracker.apiToken when it asks for a token.
 */
export async function trackerGet<T>(base: string, pathAndQuery: string, token?: string, o: { alsoOk?: number[] } = {}): Promise<T> {
  return trackerRequest<T>(base, pathAndQuery, { token, alsoOk: o.alsoOk });
}

/**
 * POST a JSON body to a tracker route that takes requests signed by an account (an
 * administrator's: `POST /v1/update-requests`, `POST /v1/rollouts/:id/cohorts`), signed for the
 * tracker's origin (`target.audience`) with the account's key.
 */
export async function trackerPostSigned<T>(
  signer: { address: string; signMessage(m: string): Promise<string> },
  target: TrackerTarget,
  path: string,
  body: unknown,
): Promise<T> {
  const text = JSON.stringify(body);
  const headers = await signAccountRequest(signer, { audience: target.audience, method: "POST", path, body: text });
  return trackerRequest<T>(target.url, path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: text, signed: true });
}

/** A signed request with another method (DELETE /v1/groups/:name): no body, signed over the empty body. */
export async function trackerSendSigned<T>(
  signer: { address: string; signMessage(m: string): Promise<string> },
  target: TrackerTarget,
  method: "DELETE",
  path: string,
): Promise<T> {
  const headers = await signAccountRequest(signer, { audience: target.audience, method, path, body: "" });
  return trackerRequest<T>(target.url, path, { method, headers, signed: true });
}

/** One request to a tracker, its answer checked to be a JSON document; the errors of both routes in one place. */
async function trackerRequest<T>(
  base: string,
  pathAndQuery: string,
  o: { method?: string; headers?: Record<string, string>; body?: string; token?: string; signed?: boolean; alsoOk?: number[] },
): Promise<T> {
  const url = base.replace(/\/+$/, "") + pathAndQuery;
  let response: Response;
  try {
    response = await fetch(url, {
      method: o.method ?? "GET",
      headers: { accept: "application/json", ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers },
      body: o.body,
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
  // A signed request's 401 is about its signature (AUTH_*), reported with the tracker's code below.
  if (response.status === 401 && !o.signed) {
    throw new TrackerRequestError(
      "TRACKER_UNAUTHORIZED",
      o.token
        ? `the tracker at ${base} refused the API token: set tracker.apiToken (OTA_TRACKER_TOKEN) to the token the tracker runs with`
        : `the tracker at ${base} needs an API token: set tracker.apiToken (OTA_TRACKER_TOKEN) to the token the tracker runs with`,
      { details: { url: base, status: 401 } },
    );
  }
  if (!response.ok && !o.alsoOk?.includes(response.status)) {
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
