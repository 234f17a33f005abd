import { OtaError } from "../core/errors";

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
 * docs/server.md) into an error carrying its refusal code, for every client of the server.
 */
export async function refusalOf(res: Response, what: string): Promise<ServerRefusedError> {
  let body: { error?: { code?: string; message?: string; hint?: string } } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    /* not JSON */
  }
  const code = body.error?.code ?? `HTTP_${res.status}`;
  const hint = body.error?.hint ? ` (${body.error.hint})` : "";
  return new ServerRefusedError(
    code,
    `${what}: the firmware server answered ${res.status} ${code}: ${body.error?.message ?? res.statusText}${hint}`,
    res.status,
  );
}
