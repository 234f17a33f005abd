import { OtaError } from "../core/errors";

/** The ledger did not answer (the RPC endpoint is down or failing): the caller may try again later. */
export class LedgerUnavailable extends OtaError {}

/**
 * Runs one read of the ledger, telling an outage (LEDGER_UNAVAILABLE, worth a retry) from an
 * answer: a revert is the ledger's answer and passes through, as do the agent's own errors.
 */
export async function callLedger<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof OtaError) throw err;
    if ((err as { code?: string }).code === "CALL_EXCEPTION") throw err;
    throw new LedgerUnavailable("LEDGER_UNAVAILABLE", `the ledger did not answer: ${(err as Error).message}`, { cause: err });
  }
}
