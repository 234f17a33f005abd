import type { ContractTransactionReceipt, ContractTransactionResponse } from "ethers";
import { OtaError } from "../core/errors";

/**
 * How long a command waits for its transaction to be mined (issue 16: a transaction a
 * reorganisation dropped, or one priced below the market, is never mined, and waiting for it
 * kept the command running for ever).
 */
export const TX_TIMEOUT_MS = 180_000;

/**
 * The transaction's receipt (one confirmation), waited for at most `timeout` ms: TX_NOT_MINED
 * after that, naming the transaction and its nonce. A revert rejects as ethers rejects it (the
 * caller may explain it); null when ethers says the transaction was replaced or dropped.
 */
export async function minedWithin(response: ContractTransactionResponse, timeout = TX_TIMEOUT_MS): Promise<ContractTransactionReceipt | null> {
  return response.wait(1, timeout).catch((err: unknown) => {
    if ((err as { code?: string }).code !== "TIMEOUT") throw err;
    throw new OtaError(
      "TX_NOT_MINED",
      `transaction ${response.hash} (nonce ${response.nonce}) was not mined within ${timeout / 1000} s: a reorganisation may have dropped it, or its fee is too low. ` +
        "Check it on the chain (it may still be mined) before you send the command again",
      { details: { hash: response.hash, nonce: response.nonce } },
    );
  });
}
