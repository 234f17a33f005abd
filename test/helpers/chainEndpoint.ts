import hre from "hardhat";
import { JsonRpcServer } from "hardhat/internal/hardhat-network/jsonrpc/server";

/**
 * The in-process Hardhat network served as a JSON-RPC endpoint on 127.0.0.1 (Hardhat's own server,
 * as `hardhat node` runs it), so that HTTP clients (LyingRpc, a QuorumProvider) reach the same
 * chain the test's contracts live on. Stop it with close().
 */
export async function serveChain(): Promise<{ url: string; close(): Promise<void> }> {
  const server = new JsonRpcServer({ hostname: "127.0.0.1", port: 0, provider: hre.network.provider });
  const { port } = await server.listen();
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}
