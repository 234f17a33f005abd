/**
 * Mines `n` blocks, one evm_mine at a time. Not hardhat_mine (nor network-helpers' mine): Hardhat's
 * node (EDR, 2.29) answers the blocks it reserves that way with a parentHash of zero, which any
 * follower of the chain (the event stream checks parent links) takes for a reorganisation; a test
 * file that mined so broke the next file's tracker in the same worker (CHAIN_MOVED at start).
 */
export async function mineBlocks(provider: { send(method: string, params: unknown[]): Promise<unknown> }, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await provider.send("evm_mine", []);
}
