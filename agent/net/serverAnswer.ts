import { OtaError } from "../core/errors";
import { ERROR_ANSWER_MAX_BYTES } from "../core/wireLimits";
import { AnswerTooLargeError, readBoundedBody } from "./boundedBody";

/** The firmware server refused or could not take a request; `code` is the server's refusal code. */
export class ServerRefusedError extends OtaError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, { details });
  }
}

/**
 * Turns a non-2xx answer into an error, for every client of a firmware server (the device, the
 * author's tool), reading at most ERROR_ANSWER_MAX_BYTES of it. The server's own refusals
 * (`{"error": {code, message, hint}}`, docs/server.md) keep their code. Anything else (a proxy's
 * 502 page, a load balancer's 503, a CDN's 404) is not the server speaking: HTTP_ERROR, a
 * delivery fault of that source, never a verdict on the release (agent/core/updateOutcome). A
 * body over the bound is ANSWER_TOO_LARGE. `details` has the status and `serverTime`, the
 * answerer's clock from its `Date` header (ms), which a client refused AUTH_STALE corrects from.
 */
export async function refusalOf(res: Response, what: string, source = "the firmware server"): Promise<ServerRefusedError> {
  const date = Date.parse(res.headers.get("date") ?? "");
  const details: Record<string, unknown> = { status: res.status, ...(Number.isFinite(date) ? { serverTime: date } : {}) };
  let text: string;
  try {
    text = (await readBoundedBody(res, ERROR_ANSWER_MAX_BYTES, what)).toString("utf8");
  } catch (err) {
    if (err instanceof AnswerTooLargeError)
      return new ServerRefusedError(
        "ANSWER_TOO_LARGE",
        `${what}: ${source} answered ${res.status} with an error body over ${ERROR_ANSWER_MAX_BYTES} bytes`,
        res.status,
        {
          ...details,
          maxBytes: ERROR_ANSWER_MAX_BYTES,
        },
      );
    return new ServerRefusedError("DOWNLOAD_INTERRUPTED", `${what}: the connection to ${source} broke while it answered ${res.status}`, res.status, {
      ...details,
      cause: String(err),
    });
  }
  let body: { error?: { code?: unknown; message?: unknown; hint?: unknown } } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const code = body?.error?.code;
  if (typeof code !== "string" || !/^[A-Z][A-Z0-9_]{1,63}$/.test(code))
    return new ServerRefusedError(
      "HTTP_ERROR",
      `${what}: ${source} answered ${res.status} ${res.statusText} without a firmware server's error`,
      res.status,
      details,
    );
  const message = typeof body?.error?.message === "string" ? body.error.message.slice(0, 512) : res.statusText;
  const hint = typeof body?.error?.hint === "string" ? ` (${body.error.hint.slice(0, 256)})` : "";
  return new ServerRefusedError(code, `${what}: ${source} answered ${res.status} ${code}: ${message}${hint}`, res.status, details);
}
