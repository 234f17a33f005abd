import { expect } from "chai";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HDNodeWallet, JsonRpcProvider, Network, NonceManager, Wallet, keccak256, toUtf8Bytes } from "ethers";
import { startLocalChain, type LocalChain } from "../../../scripts/lib/localChain";
import { startAnvil } from "../../../scripts/lib/anvilChain";
import { deploymentPath, writeDeployment, type Deployment } from "../../../agent/chain/deployment";
import { main } from "../../../agent/cli/main";
import {
  UpdateRegistry__factory,
  FleetRegistry__factory,
  UpdatePolicies__factory,
  ReleaseDeltas__factory,
  ReleaseBundles__factory,
  type ReleaseDeltas,
  type ReleaseBundles,
  type UpdateRegistry,
  type FleetRegistry,
  type UpdatePolicies,
} from "../../../typechain-types";
import { componentId, normalizeRelease } from "../../../agent/core/release";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { LedgerGate } from "../../../agent/server/ledgerGate";
import { startFirmwareServer } from "../../../agent/server/firmwareServer";
import { encodeVersion } from "../../../agent/core/version";
import { computeReleaseId, registryDomain, signRelease } from "../../../agent/crypto/releaseSignature";
import { freePort } from "../../../scripts/lib/ports";

/** Hardhat node's default accounts (the well-known development mnemonic). */
const MNEMONIC = "test test test test test test test test test test test junk";
const account = (i: number) => HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * A real Hardhat JSON-RPC node on a free 127.0.0.1 port with the registries deployed by account 0
 * (the administrator), a scratch working folder holding deployments/localhost.json, and `run`,
 * which calls the CLI's `main` in-process with that folder as cwd and OTA_* settings as env
 * (never the test process's own environment).
 */
/** `node`: Hardhat's node (default), or Foundry's anvil, which makes real reorganisations (anvil_reorg). */
export async function startCliChain(options: { policies?: boolean; deltas?: boolean; bundles?: boolean; node?: "hardhat" | "anvil" } = {}) {
  const chain: LocalChain = options.node === "anvil" ? await startAnvil({ port: await freePort() }) : await startLocalChain({ port: await freePort() });
  const provider = new JsonRpcProvider(chain.url, Network.from(31337), { staticNetwork: true });
  const admin = new Wallet(account(0).privateKey, provider);
  const outsider = new Wallet(account(1).privateKey, provider);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-cli-"));
  try {
    // ethers reuses an identical request's answer for 250 ms, so back-to-back sends need their nonces counted.
    const deployer = new NonceManager(admin);
    const registry = (await (await new UpdateRegistry__factory(deployer).deploy(3 * 24 * 3600, admin.address)).waitForDeployment()) as UpdateRegistry;
    const fleet = (await (await new FleetRegistry__factory(deployer).deploy(await registry.getAddress())).waitForDeployment()) as FleetRegistry;
    // With `policies`, an UpdatePolicies beside the registry, recorded in the deployment file.
    const policies = options.policies
      ? ((await (await new UpdatePolicies__factory(deployer).deploy(await registry.getAddress())).waitForDeployment()) as UpdatePolicies)
      : undefined;
    // With `deltas`, a ReleaseDeltas beside the registry (ADR 0018), recorded in the deployment file.
    const deltas = options.deltas
      ? ((await (await new ReleaseDeltas__factory(deployer).deploy(await registry.getAddress())).waitForDeployment()) as ReleaseDeltas)
      : undefined;
    // With `bundles`, a ReleaseBundles beside the registry (ADR 0019), recorded in the deployment file.
    const bundles = options.bundles
      ? ((await (await new ReleaseBundles__factory(deployer).deploy(await registry.getAddress())).waitForDeployment()) as ReleaseBundles)
      : undefined;
    const deployment: Deployment = {
      network: "localhost",
      chainId: 31337,
      updateRegistry: await registry.getAddress(),
      fleetRegistry: await fleet.getAddress(),
      ...(policies ? { updatePolicies: await policies.getAddress() } : {}),
      ...(deltas ? { releaseDeltas: await deltas.getAddress() } : {}),
      ...(bundles ? { releaseBundles: await bundles.getAddress() } : {}),
      deployedAtBlock: 1,
    };
    await writeDeployment(deploymentPath(dir, "localhost"), deployment);
    const baseEnv = { OTA_RPC_URL: chain.url, OTA_PRIVATE_KEY: admin.privateKey };

    const run = async (args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> => {
      let stdout = "";
      let stderr = "";
      const merged = Object.fromEntries(Object.entries({ ...baseEnv, ...env }).filter(([, v]) => v !== undefined));
      const code = await main(args, {
        stdout: (s) => (stdout += s),
        stderr: (s) => (stderr += s),
        env: merged,
        cwd: dir,
        isTTY: false,
      });
      return { code, stdout, stderr, json: () => JSON.parse(stdout) };
    };
    /** The chain's block number, asked afresh (not from ethers' short-lived answer cache). */
    const blockNumber = async () => Number(await provider.send("eth_blockNumber", []));
    const stop = async () => {
      provider.destroy();
      await chain.stop();
      await fs.rm(dir, { recursive: true, force: true });
    };
    return { url: chain.url, provider, blockNumber, admin, outsider, registry, fleet, policies, deltas, bundles, deployment, dir, run, stop };
  } catch (err) {
    provider.destroy();
    await chain.stop();
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export type CliChain = Awaited<ReturnType<typeof startCliChain>>;

/** A TCP port nothing listens on (at the time of asking). */
export { freePort };

/**
 * A chain with UpdatePolicies deployed, a provider (1) whose author and signer is the
 * administrator, a hardware class and the component acme.bootloader; `publish` puts a release of
 * it on the ledger directly (no firmware server) and returns its id; `send` sends the
 * administrator's transactions with counted nonces.
 */
export async function policyChain() {
  const c = await startCliChain({ policies: true });
  try {
    // ethers answers an identical request from a short cache, so nonces are counted here; the
    // count is asked afresh each time too (provider.send skips the cache), as the CLI sends from the same account.
    let nonce = 0;
    const send = async (tx: (o: { nonce: number }) => Promise<{ wait(): Promise<unknown> }>) => {
      nonce = Math.max(nonce, Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"])));
      return (await tx({ nonce: nonce++ })).wait();
    };
    const r = c.registry.connect(c.admin);
    await send((o) => r.registerProvider("Acme", o));
    await send((o) => r.addProviderSigner(1, c.admin.address, o));
    await send((o) => r.registerAuthor(c.admin.address, 1, o));
    await send((o) => r.registerHardwareClass("rev-a", o));
    await send((o) => r.registerComponent("acme.bootloader", 1, o));
    const domain = registryDomain(31337, String(c.registry.target));
    const publish = async (version: string): Promise<string> => {
      const record = normalizeRelease({
        provider: 1,
        component: componentId("acme.bootloader"),
        version: encodeVersion(version),
        fileHash: keccak256(toUtf8Bytes(`acme.bootloader ${version}`)),
        fileLink: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        fileName: "image.bin",
        fileSize: 10n,
        merkleRoot: keccak256(toUtf8Bytes(`root ${version}`)),
        hardware: [1],
        dependencies: [],
      });
      await send(async (o) => r.publishRelease(record, c.admin.address, await signRelease(c.admin, domain, record), [], o));
      return computeReleaseId(domain, record).toLowerCase();
    };
    /** Runs with --json and checks the refusal: exit code, error code, message; and that nothing was mined. Returns the error. */
    const refuses = async (args: string[], exit: number, code: string, message: RegExp, env: Record<string, string> = {}) => {
      const before = await c.blockNumber();
      const r = await c.run([...args, "--json"], env);
      expect(r.code, r.stdout + r.stderr).to.equal(exit);
      expect(r.json().error.code).to.equal(code);
      expect(r.json().error.message).to.match(message);
      expect(await c.blockNumber(), "nothing is sent").to.equal(before);
      return r.json().error as { code: string; message: string; details: Record<string, unknown> };
    };
    return { ...c, policies: c.policies!, send, publish, refuses, component: componentId("acme.bootloader") };
  } catch (err) {
    await c.stop();
    throw err;
  }
}
export type PolicyChain = Awaited<ReturnType<typeof policyChain>>;

/**
 * A CLI chain with a firmware server beside it (in-process, on an embedded store in the chain's
 * folder); `setup` runs CLI command lines that must succeed, with OTA_SERVER_URL set to it.
 */
export async function cliChainWithServer(options: { deltas?: boolean; bundles?: boolean } = {}) {
  const c = await startCliChain(options);
  const store = await EmbeddedStore.open({ directory: path.join(c.dir, "server-ipfs") });
  const db = new ServerDatabase(path.join(c.dir, "server.db"));
  const gate = new LedgerGate(c.registry.connect(c.provider), c.fleet.connect(c.provider), registryDomain(31337, String(c.registry.target)));
  // With `deltas`, the server takes and serves deltas, as `server start` does on such a deployment.
  const server = await startFirmwareServer({ gate, store, db, pollMs: 200, ...(c.deltas ? { deltas: c.deltas.connect(c.provider) } : {}) });
  const env: Record<string, string> = { OTA_SERVER_URL: server.url };
  const setup = async (lines: string[][]) => {
    for (const args of lines) {
      const r = await c.run(args, env);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).to.equal(0);
    }
  };
  const stop = async () => {
    await server.close();
    await store.close();
    db.close();
    await c.stop();
  };
  return { c, store, db, server, env, setup, stop };
}
export type CliChainWithServer = Awaited<ReturnType<typeof cliChainWithServer>>;

/**
 * Enrols a device (rev-a, plant-1, eu-west) with the CLI and writes its key and device.json (running
 * acme.bootloader, data in ./data) in `<chain folder>/<folder>`, as an integrator would ship it.
 */
export async function enrolTestDevice(c: Pick<CliChain, "run" | "dir">, label: string, folder: string): Promise<{ deviceConfig: string; deviceId: string }> {
  const key = Wallet.createRandom();
  const dir = path.join(c.dir, folder);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "device.key"), key.privateKey + "\n", { mode: 0o600 });
  const enrol = await c.run([
    "device",
    "enrol",
    "--id",
    label,
    "--public-key",
    key.signingKey.compressedPublicKey,
    "--hardware",
    "rev-a",
    "--network",
    "plant-1",
    "--region",
    "eu-west",
    "--json",
  ]);
  expect(enrol.code, enrol.stderr + enrol.stdout).to.equal(0);
  const deviceConfig = path.join(dir, "device.json");
  await fs.writeFile(
    deviceConfig,
    JSON.stringify({
      keyFile: "device.key",
      credential: { record: enrol.json().device, batchId: 0, proof: [] },
      components: ["acme.bootloader"],
      dataDir: "./data",
      healthCheck: { command: ["true"], timeoutMs: 10_000 },
    }),
  );
  return { deviceConfig, deviceId: enrol.json().device.id };
}
