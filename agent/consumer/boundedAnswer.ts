import { OtaError } from "../core/errors";
import { ServerRefusedError } from "../io/serverAnswer";

/** The most of an error answer a device reads: a firmware server's refusal is a few hundred bytes. */
export const MAX_ERROR_BODY = 4096;

/** An answer over its bound: the device stopped reading it there (ISSUE-15 "the device reads error bodies with no bound"). */
export class AnswerTooLargeError extends OtaError {
  constructor(
    what: string,
    maxBytes: number,
    readonly status: number,
  ) {
    super("ANSWER_TOO_LARGE", `${what}: the answer is over ${maxBytes} bytes; stopped reading there`, { details: { status, maxBytes } });
  }
}

/**
 * At most `maxBytes` of an answer's body: a declared Content-Length over the bound is refused
 * before a byte is read, and a body that runs past it is cancelled there, so a lying or broken
 * peer cannot make the device buffer more than the bound (plus one network piece).
 */
export async function readBounded(res: Response, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new AnswerTooLargeError(what, maxBytes, res.status);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) throw new AnswerTooLargeError(what, maxBytes, res.status);
      parts.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(parts);
}

/**
 * A non-2xx answer as an error, reading at most MAX_ERROR_BODY of it. The firmware server's own
 * refusals ({"error": {code, message, hint}}, docs/server.md) keep their code; anything else (a
 * proxy's 502 page, a load balancer's 503, a CDN's 404) is not the server speaking, so it is
 * HTTP_ERROR with the status in its details: a delivery fault of that source, never a verdict
 * on the release.
 */
export async function refusalFromAnswer(res: Response, what: string, source: string): Promise<OtaError> {
  let text: string;
  try {
    text = (await readBounded(res, MAX_ERROR_BODY, what)).toString("utf8");
  } catch (err) {
    if (err instanceof AnswerTooLargeError)
      return new ServerRefusedError(
        "ANSWER_TOO_LARGE",
        `${what}: ${source} answered ${res.status} with an error body over ${MAX_ERROR_BODY} bytes`,
        res.status,
        {
          maxBytes: MAX_ERROR_BODY,
        },
      );
    return new ServerRefusedError("DOWNLOAD_INTERRUPTED", `${what}: the connection to ${source} broke while it answered ${res.status}`, res.status, {
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
  if (typeof code !== "string" || !/^[A-Z][A-Z0-9_]{1,63}$/.test(code)) {
    return new ServerRefusedError("HTTP_ERROR", `${what}: ${source} answered ${res.status} ${res.statusText} without a firmware server's error`, res.status, {
      status: res.status,
    });
  }
  const message = typeof body?.error?.message === "string" ? body.error.message.slice(0, 512) : res.statusText;
  const hint = typeof body?.error?.hint === "string" ? ` (${body.error.hint.slice(0, 256)})` : "";
  return new ServerRefusedError(code, `${what}: the firmware server answered ${res.status} ${code}: ${message}${hint}`, res.status, { status: res.status });
}
