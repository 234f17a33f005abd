/**
 * Test-only: one device agent in its own process, run with node -r ts-node/register/transpile-only,
 * to be killed with SIGKILL mid-download. Reads its settings from the JSON file in OTA_AGENT_JSON:
 * { rpcUrl, registry, fleet, chainId, serverUrl, device, dataDir, component, releaseId }. With
 * OTA_KILL_AFTER_BYTES=n it kills itself once its download file holds more than n bytes.
 * Prints one JSON line with the outcome when it is not killed.
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { JsonRpcProvider, Network } from "ethers";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { FleetRegistry__factory, UpdateRegistry__factory } from "../../../typechain-types";

async function main() {
  const s = JSON.parse(readFileSync(process.env.OTA_AGENT_JSON!, "utf8"));
  const provider = new JsonRpcProvider(s.rpcUrl, Network.from(s.chainId), { staticNetwork: true });
  const registry = UpdateRegistry__factory.connect(s.registry, provider);
  const fleet = FleetRegistry__factory.connect(s.fleet, provider);
  const killAfter = Number(process.env.OTA_KILL_AFTER_BYTES ?? 0);
  if (killAfter > 0) {
    const file = path.join(s.dataDir, "downloads", `${s.releaseId.toLowerCase()}.otae`);
    setInterval(() => {
      try {
        if (statSync(file).size > killAfter) process.kill(process.pid, "SIGKILL");
      } catch {
        /* not there yet */
      }
    }, 5).unref();
  }
  const agent = await DeviceAgent.open({
    dataDir: s.dataDir,
    device: s.device,
    serverUrl: s.serverUrl,
    chain: { provider, registry, fleet, domain: registryDomain(s.chainId, s.registry), fromBlock: 0 },
    components: [s.component],
    policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
    healthCheck: async () => true,
    download: { startJitterMs: 0 },
  });
  const outcome = await agent.considerRelease(s.releaseId, "crash test");
  process.stdout.write(JSON.stringify({ outcome, boot: agent.slots.snapshot() }) + "\n");
  provider.destroy();
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err) + "\n");
    process.exit(1);
  });
}
