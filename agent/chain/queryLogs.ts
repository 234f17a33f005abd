import type { BaseContract, ContractEventName, EventLog, Log } from "ethers";
import { isRangeTooLarge } from "./eventStream";

/**
 * A contract's logs from `fromBlock` to the head (or `toBlock`), asked in one range first and split
 * in halves wherever the node refuses a range as too large (public endpoints cap eth_getLogs), so
 * no block is skipped. In chain order. For one-off scans; followers use the ledger event stream.
 */
export async function queryLogs(contract: BaseContract, filter: ContractEventName, fromBlock: number, toBlock?: number): Promise<(EventLog | Log)[]> {
  const query = (from: number, upto: number | "latest") => contract.queryFilter(filter, from, upto);
  if (toBlock !== undefined) return splitWhenRefused(query, fromBlock, toBlock);
  // Up to "latest" as the node sees it now: a block number from ethers may be a cached, older one.
  try {
    return await query(fromBlock, "latest");
  } catch (err) {
    if (!isRangeTooLarge(err)) throw err;
    return splitWhenRefused(query, fromBlock, await headNumber(contract));
  }
}

async function headNumber(contract: BaseContract): Promise<number> {
  const provider = contract.runner!.provider! as unknown as { send?: (m: string, p: unknown[]) => Promise<string>; getBlockNumber(): Promise<number> };
  return provider.send ? Number(await provider.send("eth_blockNumber", [])) : provider.getBlockNumber();
}

/** Runs `query` over [from, to], halving a range the node refuses, until single blocks. */
export async function splitWhenRefused<T>(query: (from: number, to: number) => Promise<T[]>, from: number, to: number): Promise<T[]> {
  if (from > to) return [];
  try {
    return await query(from, to);
  } catch (err) {
    if (!isRangeTooLarge(err) || from === to) throw err;
    const mid = Math.floor((from + to) / 2);
    return [...(await splitWhenRefused(query, from, mid)), ...(await splitWhenRefused(query, mid + 1, to))];
  }
}
