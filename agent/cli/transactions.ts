import type { BaseContract, ContractTransactionResponse, LogDescription, TransactionReceipt } from "ethers";
import { OtaError } from "../core/errors";

/** What a command reports about the transaction it sent. */
export interface TxSummary {
  hash: string;
  block: number;
  gasUsed: number;
}

/**
 * How long a command waits for its transaction to be mined (issue 16: a transaction a
 * reorganisation dropped, or one priced below the market, is never mined, and waiting for it
 * kept the command running for ever).
 */
export const TX_TIMEOUT_MS = 180_000;

/** Waits for the transaction's receipt (one confirmation, at most `timeout` ms) and summarises it. */
export async function confirm(sent: Promise<ContractTransactionResponse>, timeout = TX_TIMEOUT_MS): Promise<{ receipt: TransactionReceipt; tx: TxSummary }> {
  const response = await sent;
  const receipt = await response.wait(1, timeout).catch((err: unknown) => {
    if ((err as { code?: string }).code !== "TIMEOUT") throw err;
    throw new OtaError(
      "TX_NOT_MINED",
      `transaction ${response.hash} (nonce ${response.nonce}) was not mined within ${timeout / 1000} s: a reorganisation may have dropped it, or its fee is too low. ` +
        "Check it on the chain (it may still be mined) before you send the command again",
      { details: { hash: response.hash, nonce: response.nonce } },
    );
  });
  if (!receipt) throw new OtaError("TX_DROPPED", `transaction ${response.hash} was dropped before it was mined: send it again`);
  return { receipt, tx: { hash: receipt.hash, block: receipt.blockNumber, gasUsed: Number(receipt.gasUsed) } };
}

/** The human line for a transaction. */
export function describeTx(tx: TxSummary): string {
  return `tx ${tx.hash} in block ${tx.block}, gas used ${tx.gasUsed}`;
}

/** The first `name` event `contract` emitted in the receipt; throws if there is none. */
export function findEvent(receipt: TransactionReceipt, contract: BaseContract, name: string): LogDescription {
  const address = String(contract.target).toLowerCase();
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() !== address) continue;
    const parsed = contract.interface.parseLog(log);
    if (parsed?.name === name) return parsed;
  }
  throw new OtaError("EVENT_MISSING", `transaction ${receipt.hash} has no ${name} event: is the address the right contract?`);
}

/** Waits for a contract deployment (one confirmation) and summarises it with the new address. */
export async function confirmDeployment(deploying: Promise<BaseContract>): Promise<{ address: string; receipt: TransactionReceipt; tx: TxSummary }> {
  const contract = await deploying;
  const sent = contract.deploymentTransaction();
  if (!sent) throw new OtaError("TX_DROPPED", "the deployment has no transaction: send it again");
  const { receipt, tx } = await confirm(Promise.resolve(sent));
  if (!receipt.contractAddress) throw new OtaError("TX_DROPPED", `transaction ${receipt.hash} created no contract: send it again`);
  return { address: receipt.contractAddress, receipt, tx };
}
