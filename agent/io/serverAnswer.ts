import { OtaError } from "../core/errors";
import { ERROR_ANSWER_MAX_BYTES } from "../core/wireLimits";
import { readBoundedJson } from "./boundedBody";

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
 * Turns a non-2xx answer of the firmware server ({"error": {code, message, hint}}, see
 * docs/server.md) into an error carrying its refusal code, for every client of the server. The
 * body is read up to ERROR_ANSWER_MAX_BYTES (a longer one is not the server's refusal: it counts
 * as not JSON). `details.serverTime` is the server's clock from its `Date` header (ms), which a
 * client refused AUTH_STALE corrects its request time from.
 */
export async function refusalOf(res: Response, what: string): Promise<ServerRefusedError> {
  const body = ((await readBoundedJson(res, ERROR_ANSWER_MAX_BYTES, what).catch(() => undefined)) ?? {}) as {
    error?: { code?: string; message?: string; hint?: string };
  };
  const code = body.error?.code ?? `HTTP_${res.status}`;
  const hint = body.error?.hint ? ` (${body.error.hint})` : "";
  const date = Date.parse(res.headers.get("date") ?? "");
  return new ServerRefusedError(
    code,
    `${what}: the firmware server answered ${res.status} ${code}: ${String(body.error?.message ?? res.statusText).slice(0, 500)}${hint.slice(0, 500)}`,
    res.status,
    Number.isFinite(date) ? { serverTime: date } : {},
  );
}
