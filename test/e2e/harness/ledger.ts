import { HDNodeWallet, JsonRpcProvider, Network, NonceManager, Wallet, keccak256, toUtf8Bytes, type TypedDataDomain } from "ethers";
import { startLocalChain, type LocalChain } from "../../../scripts/lib/localChain";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import type { Deployment } from "../../../agent/chain/deployment";
import {
  FleetRegistry__factory,
  UpdatePolicies__factory,
  UpdateRegistry__factory,
  type FleetRegistry,
  type UpdatePolicies,
  type UpdateRegistry,
} from "../../../typechain-types";
import { freePort } from "../../../scripts/lib/ports";

/** Hardhat node's default accounts (the well-known development mnemonic). */
const MNEMONIC = "test test test test test test test test test test test junk";
const account = (i: number) => HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);

export const ROLE = {
  AUDITOR: keccak256(toUtf8Bytes("AUDITOR_ROLE")),
  TRACKER: keccak256(toUtf8Bytes("TRACKER_ROLE")),
};

/**
 * A Hardhat node as a child process on a free 127.0.0.1 port (chain id 31337), with the
 * registries deployed from the compiled artifacts (the Ignition module needs a Hardhat runtime
 * inside the test process, bound to one network; the factories deploy the same contracts in a
 * second) and a catalogue: provider 1 "Acme" whose author, release signer, administrator, auditor
 * and tracker operator is account 0; hardware classes rev-a (1) and rev-b (2); components
 * acme.bootloader and acme.sensor-fw. The test talks to the node directly; the agents under test
 * go through whatever the harness puts in between.
 */
export async function startLedger() {
  const port = await freePort();
  const chain: LocalChain = await startLocalChain({ port });
  const provider = new JsonRpcProvider(chain.url, Network.from(31337), { staticNetwork: true, pollingInterval: 200 });
  const admin = new Wallet(account(0).privateKey, provider);
  // ethers answers an identical request from a cache for 250 ms: one NonceManager counts the nonces.
  const sender = new NonceManager(admin);
  try {
    const registry = (await (await new UpdateRegistry__factory(sender).deploy(3 * 24 * 3600, admin.address)).waitForDeployment()) as UpdateRegistry;
    const fleet = (await (await new FleetRegistry__factory(sender).deploy(await registry.getAddress())).waitForDeployment()) as FleetRegistry;
    const policies = (await (await new UpdatePolicies__factory(sender).deploy(await registry.getAddress())).waitForDeployment()) as UpdatePolicies;
    const deployment: Deployment = {
      network: "localhost",
      chainId: 31337,
      updateRegistry: await registry.getAddress(),
      fleetRegistry: await fleet.getAddress(),
      updatePolicies: await policies.getAddress(),
      deployedAtBlock: 1,
    };
    const r = registry.connect(sender);
    const send = async (tx: Promise<{ wait(): Promise<unknown> }>) => (await tx).wait();
    await send(r.registerProvider("Acme"));
    await send(r.addProviderSigner(1, admin.address));
    await send(r.registerAuthor(admin.address, 1));
    await send(r.registerHardwareClass("rev-a"));
    await send(r.registerHardwareClass("rev-b"));
    await send(r.registerComponent("acme.bootloader", 1));
    await send(r.registerComponent("acme.sensor-fw", 1));
    await send(r.grantRole(ROLE.AUDITOR, admin.address));
    await send(r.grantRole(ROLE.TRACKER, admin.address));
    const domain: TypedDataDomain = registryDomain(31337, deployment.updateRegistry);
    return {
      url: chain.url,
      port,
      provider,
      admin,
      sender,
      registry: registry.connect(sender),
      fleet: fleet.connect(sender),
      deployment,
      domain,
      send,
      /** A JSON-RPC call to the node itself (not through any proxy), never from ethers' cache. */
      rpc: (method: string, params: unknown[] = []) => provider.send(method, params),
      async stop() {
        provider.destroy();
        await chain.stop();
      },
    };
  } catch (err) {
    provider.destroy();
    await chain.stop();
    throw err;
  }
}

export type Ledger = Awaited<ReturnType<typeof startLedger>>;
