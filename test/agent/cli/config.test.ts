import { expect } from "chai";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Wallet } from "ethers";
import { loadConfig, redactConfig, requireContracts, requirePrivateKey, type ConfigInputs } from "../../../agent/cli/config";
import { deploymentPath, writeDeployment } from "../../../agent/chain/deployment";

const KEY = "0x" + "ab".repeat(32);
const REGISTRY = Wallet.createRandom().address;
const FLEET = Wallet.createRandom().address;

/** Loads a configuration from a scratch folder; `file` is written there as ota-ledger.json. */
async function load(dir: string, { file, env = {}, ...rest }: { file?: unknown; env?: NodeJS.ProcessEnv } & Partial<ConfigInputs> = {}) {
  if (file !== undefined) await fs.writeFile(path.join(dir, "ota-ledger.json"), typeof file === "string" ? file : JSON.stringify(file));
  return loadConfig({ cwd: dir, env, ...rest });
}

async function loadError(dir: string, options: Parameters<typeof load>[1]): Promise<Error & { code: string }> {
  try {
    await load(dir, options);
  } catch (err) {
    return err as Error & { code: string };
  }
  throw new Error("expected loadConfig to fail");
}

describe("ota-ledger configuration (agent/cli/config)", function () {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-config-"));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("uses safe local defaults when there is no file, no environment and no deployment", async () => {
    const config = await load(dir);
    expect(config).to.deep.include({
      network: "localhost",
      rpcUrl: "http://127.0.0.1:8545",
      serverUrl: "http://127.0.0.1:8600",
      chainId: undefined,
      registry: undefined,
    });
    expect(config.keystoreDir).to.equal(path.join(dir, ".ota-ledger", "keys"));
    expect(config.storage).to.deep.equal({ kind: "embedded", path: path.join(dir, ".ota-ledger", "ipfs") });
    expect(config.server).to.deep.equal({ host: "127.0.0.1", port: 8600, dataDir: path.join(dir, ".ota-ledger", "server") });
    expect(config.sources).to.deep.equal({ configFile: null, deploymentFile: deploymentPath(dir, "localhost") });
  });

  it("takes chainId and the contract addresses from deployments/<network>.json", async () => {
    await writeDeployment(deploymentPath(dir, "testnet"), {
      network: "testnet",
      chainId: 7,
      updateRegistry: REGISTRY,
      fleetRegistry: FLEET,
      deployedAtBlock: 42,
    });
    const config = await load(dir, { env: { OTA_NETWORK: "testnet" } });
    expect(config).to.deep.include({ network: "testnet", chainId: 7, registry: REGISTRY, fleet: FLEET });
    expect(config.sources.deployedAtBlock).to.equal(42);
  });

  it("issue 17: takes a deployed update-check lens from the deployment file, and OTA_LENS over it", async () => {
    const lens = "0x" + "1e".repeat(20);
    const other = "0x" + "2f".repeat(20);
    await writeDeployment(deploymentPath(dir, "testnet"), {
      network: "testnet",
      chainId: 7,
      updateRegistry: REGISTRY,
      fleetRegistry: FLEET,
      updateCheckLens: lens,
      deployedAtBlock: 42,
    });
    expect((await load(dir, { env: { OTA_NETWORK: "testnet" } })).lens?.toLowerCase()).to.equal(lens);
    expect((await load(dir, { env: { OTA_NETWORK: "testnet", OTA_LENS: other } })).lens?.toLowerCase()).to.equal(other);
    await expect(load(dir, { env: { OTA_NETWORK: "testnet", OTA_LENS: "0x12" } })).to.be.rejectedWith(/OTA_LENS/);
  });

  it("overlays the environment on the file, and --rpc on both", async () => {
    const file = { rpcUrl: "http://10.0.0.1:8545", chainId: 5, registry: REGISTRY, fleet: FLEET, server: { port: 9000 } };
    const config = await load(dir, {
      file,
      env: { OTA_CHAIN_ID: "6", OTA_SERVER_PORT: "9100", OTA_FLEET: REGISTRY.toLowerCase() },
    });
    expect(config).to.deep.include({ rpcUrl: "http://10.0.0.1:8545", chainId: 6, registry: REGISTRY, fleet: REGISTRY });
    expect(config.server.port).to.equal(9100);
    expect((await load(dir, { rpcUrl: "http://127.0.0.1:9999" })).rpcUrl).to.equal("http://127.0.0.1:9999");
  });

  it("takes the firmware server's public URL (behind a reverse proxy) from the file or OTA_SERVER_PUBLIC_URL, and refuses one that is not http(s)", async () => {
    const file = { server: { publicUrl: "https://firmware.example.com" } };
    expect((await load(dir, { file })).server.publicUrl).to.equal("https://firmware.example.com");
    expect((await load(dir, { file, env: { OTA_SERVER_PUBLIC_URL: "https://fw.example.org" } })).server.publicUrl).to.equal("https://fw.example.org");
    const err = await loadError(dir, { file: { server: { publicUrl: "ftp://firmware.example.com" } } });
    expect(err.code).to.equal("CONFIG_INVALID");
    expect(err.message).to.match(/server\.publicUrl.*must be an http\(s\) URL/);
  });

  it("issue 17: takes the limits on artifacts of releases not yet published (server.prepared), and refuses a limit that is not a positive whole number", async () => {
    const prepared = { ttlMs: 86_400_000, maxPerProvider: 2, maxBytesPerProvider: 1_073_741_824 };
    expect((await load(dir, { file: { server: { prepared } } })).server.prepared).to.deep.equal(prepared);
    expect((await load(dir, { file: {} })).server.prepared).to.equal(undefined); // PREPARED_DEFAULTS then
    const err = await loadError(dir, { file: { server: { prepared: { maxPerProvider: 0 } } } });
    expect(err.message).to.match(/server\.prepared\.maxPerProvider/);
  });

  it("takes the firmware servers whose download logs the tracker reads (CAP-11.2-b), and refuses a list that is not of http(s) URLs", async () => {
    expect((await load(dir)).tracker.firmwareServers).to.deep.equal([]);
    const config = await load(dir, { file: { tracker: { firmwareServers: ["http://10.0.0.5:8600", "https://fw.example.com"], downloadLogMs: 30000 } } });
    expect(config.tracker).to.deep.include({ firmwareServers: ["http://10.0.0.5:8600", "https://fw.example.com"], downloadLogMs: 30000 });
    const err = await loadError(dir, { file: { tracker: { firmwareServers: ["fw.example.com"] } } });
    expect(err.code).to.equal("CONFIG_INVALID");
    expect(err.message).to.match(/tracker\.firmwareServers/);
  });

  it("resolves the file's relative paths against its folder, the environment's against cwd", async () => {
    const sub = path.join(dir, "etc");
    await fs.mkdir(sub);
    await fs.writeFile(path.join(sub, "key"), KEY + "\n");
    await fs.writeFile(path.join(sub, "ota.json"), JSON.stringify({ keyFile: "key", keystoreDir: "keys", storage: { kind: "embedded", path: "ipfs" } }));
    const config = await load(dir, { configPath: "etc/ota.json", env: { OTA_SERVER_DATA: "data" } });
    expect(config.privateKey).to.equal(KEY);
    expect(config.keystoreDir).to.equal(path.join(sub, "keys"));
    expect(config.storage).to.deep.equal({ kind: "embedded", path: path.join(sub, "ipfs") });
    expect(config.server.dataDir).to.equal(path.join(dir, "data"));
    expect(config.sources.configFile).to.equal(path.join(sub, "ota.json"));
  });

  it("reads a Kubo store from the environment with the default timeout", async () => {
    const config = await load(dir, { env: { OTA_IPFS_URL: "http://127.0.0.1:5001" } });
    expect(config.storage).to.deep.equal({ kind: "kubo", url: "http://127.0.0.1:5001", timeoutMs: 30_000 });
  });

  const failures: { name: string; options: Parameters<typeof load>[1]; code: string; message: RegExp }[] = [
    {
      name: "a malformed registry address in the file",
      options: { file: { registry: "0x1234" } },
      code: "CONFIG_INVALID",
      message: /ota-ledger\.json: registry must be the UpdateRegistry contract's address \(0x followed by 40 hex digits\)$/,
    },
    {
      name: "a malformed address in the environment, naming the variable",
      options: { env: { OTA_FLEET: "fleet" } },
      code: "CONFIG_INVALID",
      message: /^OTA_FLEET must be the FleetRegistry contract's address/,
    },
    {
      name: "a misspelt field",
      options: { file: { rpcURL: "http://x" } },
      code: "CONFIG_INVALID",
      message: /ota-ledger\.json: unknown field "rpcURL": remove it or fix its spelling/,
    },
    {
      name: "a file that is not JSON",
      options: { file: "{ nope" },
      code: "CONFIG_INVALID",
      message: /ota-ledger\.json is not valid JSON .*: fix the file/,
    },
    {
      name: "a --config file that does not exist",
      options: { configPath: "missing.json" },
      code: "CONFIG_MISSING",
      message: /no config file at .*missing\.json \(given with --config\)/,
    },
    {
      name: "a non-numeric chain id",
      options: { env: { OTA_CHAIN_ID: "mainnet" } },
      code: "CONFIG_INVALID",
      message: /^OTA_CHAIN_ID must be a chain id \(a positive integer\)$/,
    },
    {
      name: "an rpcUrl that is not http(s)",
      options: { file: { rpcUrl: "ws://127.0.0.1:8545" } },
      code: "CONFIG_INVALID",
      message: /ota-ledger\.json: rpcUrl must be an http\(s\) URL such as "http:\/\/127\.0\.0\.1:8545"/,
    },
    {
      name: "a bad --rpc",
      options: { rpcUrl: "localhost:8545" },
      code: "CONFIG_INVALID",
      message: /^--rpc "localhost:8545" must be an http\(s\) URL/,
    },
    {
      name: "Kubo storage without a URL",
      options: { env: { OTA_STORAGE: "kubo" } },
      code: "CONFIG_INVALID",
      message: /storage\.url is missing for Kubo storage: set OTA_IPFS_URL/,
    },
    {
      name: "an unknown storage kind",
      options: { file: { storage: { kind: "s3" } } },
      code: "CONFIG_INVALID",
      message: /ota-ledger\.json: storage\.kind must be/,
    },
    {
      name: "a key file that does not exist",
      options: { env: { OTA_KEY_FILE: "nokey" } },
      code: "KEY_FILE_UNREADABLE",
      message: /the key file .*nokey \(OTA_KEY_FILE\) cannot be read \(ENOENT\): fix the path/,
    },
    {
      name: "the same RPC endpoint twice (issue 16)",
      options: { file: { rpcUrls: ["https://rpc.example.org/v3/key-1", "https://rpc.example.org/v3/key-1/"] } },
      code: "CONFIG_INVALID",
      message: /rpcUrls in .* names the endpoint https:\/\/rpc\.example\.org\/… twice \(entries 1 and 2\).*remove one/,
    },
    {
      name: "a quorum larger than the endpoints",
      options: { env: { OTA_RPC_URLS: "http://10.0.0.1:8545,http://10.0.0.2:8545", OTA_RPC_QUORUM: "3" } },
      code: "CONFIG_INVALID",
      message: /OTA_RPC_QUORUM is 3, more than the 2 endpoints of OTA_RPC_URLS: add endpoints or lower the quorum/,
    },
    {
      name: "a quorum of half the endpoints or fewer",
      options: { file: { rpcUrls: ["http://10.0.0.1:8545", "http://10.0.0.2:8545", "http://10.0.0.3:8545", "http://10.0.0.4:8545"], rpcQuorum: 2 } },
      code: "CONFIG_INVALID",
      message: /rpcQuorum in .* is 2 of 4 endpoints: it must be more than half of them \(at least 3\)/,
    },
    {
      name: "an endpoint that is not http(s)",
      options: { env: { OTA_RPC_URLS: "http://10.0.0.1:8545, ws://10.0.0.2:8546" } },
      code: "CONFIG_INVALID",
      message: /OTA_RPC_URLS must be an http\(s\) URL/,
    },
    {
      name: "both rpcUrl and rpcUrls",
      options: { file: { rpcUrl: "http://10.0.0.1:8545", rpcUrls: ["http://10.0.0.2:8545"] } },
      code: "CONFIG_INVALID",
      message: /both rpcUrl and rpcUrls are set in .*: keep one/,
    },
    {
      name: "both OTA_RPC_URL and OTA_RPC_URLS",
      options: { env: { OTA_RPC_URL: "http://10.0.0.1:8545", OTA_RPC_URLS: "http://10.0.0.2:8545" } },
      code: "CONFIG_INVALID",
      message: /both OTA_RPC_URL and OTA_RPC_URLS are set: set one/,
    },
    {
      name: "a --rpc list with an entry that is not a URL",
      options: { rpcUrl: "http://10.0.0.1:8545,nonsense" },
      code: "CONFIG_INVALID",
      message: /--rpc ".*nonsense" must be an http\(s\) URL/,
    },
  ];
  for (const f of failures) {
    it(`refuses ${f.name}, naming the field and the fix`, async () => {
      const err = await loadError(dir, f.options);
      expect(err.code).to.equal(f.code);
      expect(err.message).to.match(f.message);
    });
  }

  it("refuses a malformed private key without repeating it", async () => {
    const secret = "0x" + "cd".repeat(31);
    const fromEnv = await loadError(dir, { env: { OTA_PRIVATE_KEY: secret } });
    expect(fromEnv.message).to.equal("OTA_PRIVATE_KEY must be a private key: 0x followed by 64 hex digits");
    await fs.writeFile(path.join(dir, "key"), secret);
    const fromFile = await loadError(dir, { file: { keyFile: "key" } });
    expect(fromFile.message).to.match(/the key file .*key \(keyFile in .*\) must hold one private key: 0x followed by 64 hex digits/);
    expect(fromFile.message + JSON.stringify(fromFile)).not.to.include(secret.slice(2));
  });

  it("asks for a key only when one is needed, and says where to set it", async () => {
    const config = await load(dir);
    expect(() => requirePrivateKey(config)).to.throw("privateKey is missing: set OTA_PRIVATE_KEY or OTA_KEY_FILE, or privateKey or keyFile in ota-ledger.json");
  });

  it("asks for a deployment when no address is set and no deployment file exists", async () => {
    const config = await load(dir);
    expect(() => requireContracts(config)).to.throw(
      /registry and fleet addresses are not set and there is no deployment file at .*deployments\/localhost\.json: run `npm run deploy:local`.* or set OTA_REGISTRY and OTA_FLEET/,
    );
  });

  it("REQ-10b-i: takes several RPC endpoints (rpcUrls, OTA_RPC_URLS, --rpc a,b,c) with a majority quorum by default, and one endpoint as before (issue 16)", async () => {
    const one = await load(dir);
    expect(one).to.deep.include({ rpcUrl: "http://127.0.0.1:8545", rpcUrls: ["http://127.0.0.1:8545"], rpcQuorum: 1 });
    const file = { rpcUrls: ["http://10.0.0.1:8545", "http://10.0.0.2:8545", "http://10.0.0.3:8545"] };
    expect(await load(dir, { file })).to.deep.include({ rpcUrl: "http://10.0.0.1:8545", rpcUrls: file.rpcUrls, rpcQuorum: 2 });
    expect((await load(dir, { file: { ...file, rpcQuorum: 3 } })).rpcQuorum).to.equal(3);
    const env = { OTA_RPC_URLS: " http://10.0.1.1:8545 , http://10.0.1.2:8545,", OTA_RPC_QUORUM: "2" };
    expect(await load(dir, { file, env })).to.deep.include({ rpcUrls: ["http://10.0.1.1:8545", "http://10.0.1.2:8545"], rpcQuorum: 2 });
    // A layer that names endpoints replaces the list below it; OTA_RPC_URL alone is one endpoint again.
    expect(await load(dir, { file, env: { OTA_RPC_URL: "http://10.0.2.1:8545" } })).to.deep.include({ rpcUrls: ["http://10.0.2.1:8545"], rpcQuorum: 1 });
    expect((await load(dir, { file, rpcUrl: "http://10.0.3.1:8545,http://10.0.3.2:8545,http://10.0.3.3:8545" })).rpcUrls).to.have.length(3);
  });

  it("shows the RPC endpoints by origin only when the configuration is printed (a path may hold an API key)", async () => {
    const config = await load(dir, { file: { rpcUrls: ["https://a.example.org/v2/secret-1", "https://b.example.org/secret-2", "http://10.0.0.1:8545"] } });
    const shown = redactConfig(config);
    expect(shown.rpcUrls).to.deep.equal(["https://a.example.org/…", "https://b.example.org/…", "http://10.0.0.1:8545"]);
    expect(JSON.stringify(shown)).not.to.match(/secret-/);
  });

  it("never shows the private key when the configuration is printed", async () => {
    const config = await load(dir, { env: { OTA_PRIVATE_KEY: KEY } });
    const shown = JSON.stringify(redactConfig(config, new Wallet(KEY).address));
    expect(shown).not.to.include(KEY.slice(2));
    expect(shown).to.include(new Wallet(KEY).address);
  });
});
