import { OtaError } from "../core/errors";

/** The ledger did not answer (the RPC endpoint is down or failing): the caller may try again later. */
export class LedgerUnavailable extends OtaError {}

/** Whether an error is the RPC endpoint failing (no answer, a transport or server error), not an answer of the ledger. */
export function isLedgerOutage(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  // ECONNRESET: the endpoint dropped the connection mid-answer ("socket hang up"), as a crashing proxy does.
  return (
    code === "NETWORK_ERROR" || code === "SERVER_ERROR" || code === "TIMEOUT" || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "UNKNOWN_ERROR"
  );
}

/**
 * Runs one read of the ledger, telling an outage (LEDGER_UNAVAILABLE, worth a retry) from an
 * answer: a revert is the ledger's answer and passes through, as does anything else. The
 * message does not repeat the RPC error, which names the endpoint (often with an API key in it).
 */
export async function callLedger<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof OtaError) && isLedgerOutage(err)) throw new LedgerUnavailable("LEDGER_UNAVAILABLE", "the ledger did not answer", { cause: err });
    throw err;
  }
}
