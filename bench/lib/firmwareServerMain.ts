/**
 * A firmware server in a process of its own, for the benchmarks (bench/lib/serverProcess.ts starts
 * it): the embedded IPFS store and the server database in `dir`, the ledger over JSON-RPC at
 * `rpcUrl`, listening on 127.0.0.1:`port`. It prints one line, `listening <url>`, once it serves,
 * and stops (closing the server, the store and the database) on SIGTERM or when its parent ends.
 *
 *   OTA_BENCH_SERVER='{"rpcUrl":"http://127.0.0.1:8545","chainId":31337,"registry":"0x..","fleet":"0x..","dir":"/tmp/x","port":12345}'
 */
import path from "node:path";
import { JsonRpcProvider, Network } from "ethers";
import { FleetRegistry__factory, UpdateRegistry__factory } from "../../typechain-types";
import { registryDomain } from "../../agent/crypto/releaseSignature";
import { EmbeddedStore } from "../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../agent/server/serverDatabase";
import { LedgerGate } from "../../agent/server/ledgerGate";
import { startFirmwareServer } from "../../agent/server/firmwareServer";

export interface ServerProcessConfig {
  rpcUrl: string;
  chainId: number;
  registry: string;
  fleet: string;
  dir: string;
  port: number;
}

async function main(): Promise<void> {
  const c = JSON.parse(process.env.OTA_BENCH_SERVER ?? "") as ServerProcessConfig;
  const provider = new JsonRpcProvider(c.rpcUrl, Network.from(c.chainId), { staticNetwork: true });
  const registry = UpdateRegistry__factory.connect(c.registry, provider);
  const fleet = FleetRegistry__factory.connect(c.fleet, provider);
  const store = await EmbeddedStore.open({ directory: path.join(c.dir, "ipfs") });
  const db = new ServerDatabase(path.join(c.dir, "server.db"));
  const gate = new LedgerGate(registry, fleet, registryDomain(BigInt(c.chainId), c.registry));
  const server = await startFirmwareServer({ gate, store, db, port: c.port, log: (l) => process.stderr.write(l + "\n") });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    await store.close();
    db.close();
    provider.destroy();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  process.stdout.write(`listening ${server.url}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
