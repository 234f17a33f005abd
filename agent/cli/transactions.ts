import type { BaseContract, ContractTransactionResponse, LogDescription, TransactionReceipt } from "ethers";
import { OtaError } from "../core/errors";
import { minedWithin, TX_TIMEOUT_MS } from "../chain/minedWithin";

/** What a command reports about the transaction it sent. */
export interface TxSummary {
  hash: string;
  block: number;
  gasUsed: number;
}

/** Waits for the transaction's receipt (one confirmation, at most `timeout` ms: TX_NOT_MINED) and summarises it. */
export async function confirm(sent: Promise<ContractTransactionResponse>, timeout = TX_TIMEOUT_MS): Promise<{ receipt: TransactionReceipt; tx: TxSummary }> {
  const response = await sent;
  const receipt = await minedWithin(response, timeout);
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
