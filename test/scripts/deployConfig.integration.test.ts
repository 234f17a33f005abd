import { expect } from "chai";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import hre, { ethers } from "hardhat";
import { Wallet } from "ethers";
import { externalNetworkFromEnv } from "../../scripts/lib/externalNetwork";
import { deployRegistry, deploySettingsFromEnv, deploymentBlock, networkOfFile } from "../../scripts/lib/deployRegistry";
import { readDeployment, writeDeployment } from "../../agent/chain/deployment";
import { InputError } from "../../agent/core/errors";
import { runHardhat } from "../e2e/harness/externalChain";
import { freePort } from "../../scripts/lib/ports";

const KEY = Wallet.createRandom().privateKey;
/** One hex digit short: refused, and never repeated in a message. */
const ALMOST_A_KEY = KEY.slice(0, -1);

describe("deploying to any EVM JSON-RPC endpoint (the `external` network of hardhat.config.ts, scripts/deploy.ts)", function () {
  this.timeout(120_000);
  let dir: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "ota-deploy-config-"));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  describe("the external network from OTA_DEPLOY_RPC_URL, OTA_DEPLOY_CHAIN_ID and OTA_DEPLOY_KEY(_FILE)", () => {
    it("with nothing set, still makes a network (the config loads) and names each variable to set", () => {
      const n = externalNetworkFromEnv({});
      expect(n.url).to.match(/\.invalid$/);
      expect(n.accounts).to.deep.equal([]);
      expect(n.chainId).to.equal(undefined);
      expect(n.problems).to.have.length(3);
      expect(n.problems[0]).to.match(/^OTA_DEPLOY_RPC_URL is not set/);
      expect(n.problems[1]).to.match(/^OTA_DEPLOY_CHAIN_ID is not set/);
      expect(n.problems[2]).to.match(/OTA_DEPLOY_KEY_FILE .* or OTA_DEPLOY_KEY/);
      // Hardhat loaded this project's configuration with the network in it.
      expect(hre.config.networks).to.have.property("external");
    });

    it("takes a complete setting: URL, chain id and key (blank values count as unset)", () => {
      const n = externalNetworkFromEnv({
        OTA_DEPLOY_RPC_URL: " https://rpc.example.org/v2/abc ",
        OTA_DEPLOY_CHAIN_ID: "11155111",
        OTA_DEPLOY_KEY: KEY,
        OTA_DEPLOY_KEY_FILE: " ",
      });
      expect(n).to.deep.equal({ url: "https://rpc.example.org/v2/abc", chainId: 11155111, accounts: [KEY], problems: [] });
    });

    it("reads the key from OTA_DEPLOY_KEY_FILE, relative to the working folder", async () => {
      await fs.writeFile(path.join(dir, "deployer.key"), `${KEY}\n`, { mode: 0o600 });
      const n = externalNetworkFromEnv({ OTA_DEPLOY_RPC_URL: "http://127.0.0.1:8545", OTA_DEPLOY_CHAIN_ID: "1", OTA_DEPLOY_KEY_FILE: "deployer.key" }, dir);
      expect(n.accounts).to.deep.equal([KEY]);
      expect(n.problems).to.deep.equal([]);
    });

    it("refuses malformed values, saying which variable and what it must be, and never repeats a key", async () => {
      await fs.writeFile(path.join(dir, "bad.key"), ALMOST_A_KEY);
      const cases: [NodeJS.ProcessEnv, RegExp][] = [
        [{ OTA_DEPLOY_RPC_URL: "ftp://rpc.example.org" }, /^OTA_DEPLOY_RPC_URL must be an http\(s\) URL/],
        [{ OTA_DEPLOY_RPC_URL: "rpc.example.org" }, /^OTA_DEPLOY_RPC_URL must be an http\(s\) URL/],
        [{ OTA_DEPLOY_CHAIN_ID: "0" }, /^OTA_DEPLOY_CHAIN_ID must be a chain id \(a positive integer\), not "0"/],
        [{ OTA_DEPLOY_CHAIN_ID: "0x1" }, /^OTA_DEPLOY_CHAIN_ID must be a chain id/],
        [{ OTA_DEPLOY_KEY: ALMOST_A_KEY }, /^OTA_DEPLOY_KEY must be one private key: 0x followed by 64 hex digits$/],
        [{ OTA_DEPLOY_KEY: `0x${"0".repeat(64)}` }, /^OTA_DEPLOY_KEY must be one private key/],
        [{ OTA_DEPLOY_KEY: KEY, OTA_DEPLOY_KEY_FILE: "deployer.key" }, /^OTA_DEPLOY_KEY and OTA_DEPLOY_KEY_FILE are both set: set only one$/],
        [{ OTA_DEPLOY_KEY_FILE: "bad.key" }, /^OTA_DEPLOY_KEY_FILE: .*bad\.key must hold one private key/],
        [{ OTA_DEPLOY_KEY_FILE: "missing.key" }, /^OTA_DEPLOY_KEY_FILE: .*missing\.key cannot be read \(ENOENT\): fix the path$/],
      ];
      for (const [env, expected] of cases) {
        const n = externalNetworkFromEnv(env, dir);
        const text = n.problems.join("\n");
        expect(
          n.problems.some((p) => expected.test(p)),
          `${JSON.stringify(Object.keys(env))}: ${text}`,
        ).to.equal(true);
        expect(text).not.to.include(KEY.slice(2, -1));
        expect(n.accounts).to.deep.equal([]);
      }
    });
  });

  describe("the deployment settings (OTA_DEPLOY_ADMIN, _ADMIN_DELAY, _PARAMETERS, _ID, OTA_DEPLOYMENT_FILE, OTA_DEPLOY_CONFIRMATIONS)", () => {
    const ADMIN = Wallet.createRandom().address;
    const OTHER = Wallet.createRandom().address;

    it("none set: the module's defaults, Ignition's journal chain-<id>, deployments/<network>.json", async () => {
      expect(await deploySettingsFromEnv({}, dir)).to.deep.equal({ parameters: {} });
    });

    it("takes the admin (any case), the delay, the journal id, the file (relative to the working folder) and the confirmations", async () => {
      const s = await deploySettingsFromEnv(
        {
          OTA_DEPLOY_ADMIN: ADMIN.toLowerCase(),
          OTA_DEPLOY_ADMIN_DELAY: "0",
          OTA_DEPLOY_ID: "prod-2",
          OTA_DEPLOYMENT_FILE: "ops/deployments/prod.json",
          OTA_DEPLOY_CONFIRMATIONS: "3",
        },
        dir,
      );
      expect(s).to.deep.equal({
        parameters: { admin: ADMIN, adminTransferDelay: 0 },
        deploymentId: "prod-2",
        file: path.join(dir, "ops", "deployments", "prod.json"),
        requiredConfirmations: 3,
      });
    });

    it("reads an Ignition parameters file (JSON5, with comments), the environment winning over it", async () => {
      const file = path.join(dir, "registry.json5");
      await fs.writeFile(
        file,
        `// the registry\n{ $global: { registry: "0x01" }, UpdateRegistry: { admin: "${ADMIN}", adminTransferDelay: 172800, }, Other: {} }\n`,
      );
      expect(await deploySettingsFromEnv({ OTA_DEPLOY_PARAMETERS: "registry.json5" }, dir)).to.deep.equal({
        parameters: { admin: ADMIN, adminTransferDelay: 172800 },
        parametersFile: file,
      });
      const over = await deploySettingsFromEnv({ OTA_DEPLOY_PARAMETERS: file, OTA_DEPLOY_ADMIN: OTHER, OTA_DEPLOY_ADMIN_DELAY: "60" }, dir);
      expect(over.parameters).to.deep.equal({ admin: OTHER, adminTransferDelay: 60 });
    });

    it("the shipped example parameters file is a valid one", async () => {
      const s = await deploySettingsFromEnv({ OTA_DEPLOY_PARAMETERS: path.join(hre.config.paths.root, "ignition", "parameters", "registry.example.json5") });
      expect(s.parameters.adminTransferDelay).to.equal(172800);
      expect(s.parameters.admin).to.match(/^0x[0-9a-fA-F]{40}$/);
    });

    it("refuses what cannot be deployed, listing every problem at once with the variable to fix", async () => {
      const refused = async (env: NodeJS.ProcessEnv): Promise<string> => {
        try {
          await deploySettingsFromEnv(env, dir);
        } catch (err) {
          expect(err).to.be.instanceOf(InputError);
          expect((err as InputError).code).to.equal("DEPLOY_CONFIG_INVALID");
          return (err as Error).message;
        }
        throw new Error(`${JSON.stringify(env)} was accepted`);
      };
      const all = await refused({
        OTA_DEPLOY_ADMIN: "0x1234",
        OTA_DEPLOY_ADMIN_DELAY: "2d",
        OTA_DEPLOY_ID: "1st",
        OTA_DEPLOYMENT_FILE: "deployments/prod.txt",
        OTA_DEPLOY_CONFIRMATIONS: "0",
      });
      expect(all).to.match(/OTA_DEPLOY_ADMIN must be an account or contract address/);
      expect(all).to.match(/OTA_DEPLOY_ADMIN_DELAY must be a number of seconds from 0 to 281474976710655/);
      expect(all).to.match(/OTA_DEPLOY_ID must start with a letter .* not "1st"/);
      expect(all).to.match(/OTA_DEPLOYMENT_FILE must name a file <network>\.json.* not "prod\.txt"/);
      expect(all).to.match(/OTA_DEPLOY_CONFIRMATIONS must be a whole number of blocks from 1 to 1000, not "0"/);
      expect(await refused({ OTA_DEPLOY_ADMIN: "0x0000000000000000000000000000000000000000" })).to.match(/must not be the zero address/);
      expect(await refused({ OTA_DEPLOY_ADMIN_DELAY: String(2 ** 48) })).to.match(/OTA_DEPLOY_ADMIN_DELAY must be/);
      expect(await refused({ OTA_DEPLOY_PARAMETERS: "nowhere.json5" })).to.match(/OTA_DEPLOY_PARAMETERS \(.*nowhere\.json5\) does not exist: fix the path/);

      const write = async (name: string, text: string) => {
        await fs.writeFile(path.join(dir, name), text);
        return name;
      };
      expect(await refused({ OTA_DEPLOY_PARAMETERS: await write("broken.json5", "{ UpdateRegistry: ") })).to.match(/is not valid JSON5 \(.+\): fix the file/);
      expect(await refused({ OTA_DEPLOY_PARAMETERS: await write("other.json5", "{ PilotFleetPolicy: {} }") })).to.match(/has no "UpdateRegistry" section/);
      expect(await refused({ OTA_DEPLOY_PARAMETERS: await write("list.json5", "{ UpdateRegistry: [] }") })).to.match(/"UpdateRegistry" must be an object/);
      const typo = await refused({ OTA_DEPLOY_PARAMETERS: await write("typo.json5", `{ UpdateRegistry: { admn: "${ADMIN}", adminTransferDelay: -1 } }`) });
      expect(typo).to.match(/unknown parameter "UpdateRegistry\.admn"/);
      expect(typo).to.match(/UpdateRegistry\.adminTransferDelay in .*typo\.json5 must be a number of seconds/);
    });

    it("names the agents' network after the deployment file", () => {
      expect(networkOfFile("/etc/ota-ledger/deployments/sepolia.json")).to.equal("sepolia");
      expect(() => networkOfFile("deployments/prod.json5")).to.throw(InputError, /<network>\.json/);
      expect(() => networkOfFile("deployments/a b.json")).to.throw(InputError);
    });
  });

  describe("the deployment block", () => {
    /** A node that keeps the state of recent blocks only (as most full nodes do): older ones throw. */
    const prunedNode = (deployedAt: number, head: number, keptFrom: number) => {
      const asked: number[] = [];
      return {
        asked,
        getBlockNumber: async () => head,
        getCode: async (_address: string, block?: number) => {
          const at = block ?? head;
          asked.push(at);
          if (at < keptFrom) throw new Error("missing trie node");
          return at >= deployedAt ? "0x6080" : "0x";
        },
      };
    };

    it("asks a pruned node only about blocks since the run began", async () => {
      const node = prunedNode(20_000_107, 20_000_120, 20_000_000);
      expect(await deploymentBlock(node, Wallet.createRandom().address, 1, 20_000_100, path.join(dir, "none.json"))).to.equal(20_000_107);
      expect(Math.min(...node.asked)).to.equal(20_000_100);
    });

    it("keeps the block of the file it rewrites when the registry is the same (a resumed deployment)", async () => {
      const file = path.join(dir, "deployments", "resumed.json");
      const registry = Wallet.createRandom().address;
      await writeDeployment(file, { network: "resumed", chainId: 5, updateRegistry: registry, fleetRegistry: registry, deployedAtBlock: 42 });
      // A node that no longer keeps block 42's state: the file, written when it did, is trusted.
      const pruned = prunedNode(42, 20_000_120, 20_000_000);
      expect(await deploymentBlock(pruned, registry, 5, 20_000_100, file)).to.equal(42);
      expect(pruned.asked).to.deep.equal([42]);
      // One that does: the block is checked (code there, none just before).
      const archive = prunedNode(42, 20_000_120, 0);
      expect(await deploymentBlock(archive, registry, 5, 20_000_100, file)).to.equal(42);
      expect(archive.asked).to.deep.equal([42, 41]);
    });

    it("does not keep a stale block: a development chain started afresh gave the same address at another block", async () => {
      const file = path.join(dir, "deployments", "dev.json");
      const registry = Wallet.createRandom().address;
      await writeDeployment(file, { network: "dev", chainId: 31337, updateRegistry: registry, fleetRegistry: registry, deployedAtBlock: 7 });
      expect(await deploymentBlock(prunedNode(2, 9, 0), registry, 31337, 1, file)).to.equal(2);
    });

    it("a registry deployed before the run without its file: searched from the genesis, or a clear error on a pruned node", async () => {
      const none = path.join(dir, "deployments", "none.json");
      expect(await deploymentBlock(prunedNode(30, 120, 0), Wallet.createRandom().address, 1, 100, none)).to.equal(30);
      try {
        await deploymentBlock(prunedNode(30, 120, 90), Wallet.createRandom().address, 1, 100, none);
        expect.fail("a pruned node cannot answer");
      } catch (err) {
        expect((err as InputError).code).to.equal("DEPLOYMENT_BLOCK_UNKNOWN");
        expect((err as Error).message).to.match(/missing trie node.*archive node/);
      }
    });
  });

  it("deploys with the admin, delay and file given, and names the file's network after it (in-process)", async () => {
    const [, admin] = await ethers.getSigners();
    const file = path.join(dir, "deployments", "pilot.json");
    const { deployment } = await deployRegistry(hre, { parameters: { admin: admin.address, adminTransferDelay: 600 }, file, requiredConfirmations: 1 });
    expect(await readDeployment(file)).to.deep.equal(deployment);
    expect(deployment.network).to.equal("pilot");
    const registry = await ethers.getContractAt("UpdateRegistry", deployment.updateRegistry);
    expect(await registry.defaultAdmin()).to.equal(admin.address);
    expect(await registry.defaultAdminDelay()).to.equal(600n);
    expect(await ethers.provider.getCode(deployment.updateRegistry, deployment.deployedAtBlock)).not.to.equal("0x");
    expect(await ethers.provider.getCode(deployment.updateRegistry, deployment.deployedAtBlock - 1)).to.equal("0x");
  });

  describe("npm run deploy (hardhat run --network external scripts/deploy.ts), as a process", () => {
    const DEPLOY = ["run", "--no-compile", "--network", "external", "scripts/deploy.ts"];

    it("stops before anything with the list of variables to set, and never prints a key given", async () => {
      const { code, output } = await runHardhat(DEPLOY, { OTA_DEPLOY_KEY: ALMOST_A_KEY });
      expect(code, output).not.to.equal(0);
      expect(output).to.include('the "external" network is not configured');
      expect(output).to.include("OTA_DEPLOY_RPC_URL is not set");
      expect(output).to.include("OTA_DEPLOY_CHAIN_ID is not set");
      expect(output).to.include("OTA_DEPLOY_KEY must be one private key");
      expect(output).to.include("See docs/guides/administrator.md");
      expect(output).not.to.include(ALMOST_A_KEY.slice(2));
    });

    it("an endpoint that does not answer: says which, by its origin only (a URL's path may hold an API key), exit 1", async () => {
      const port = await freePort();
      const { code, output } = await runHardhat(DEPLOY, {
        OTA_DEPLOY_RPC_URL: `http://127.0.0.1:${port}/v2/secret-api-key`,
        OTA_DEPLOY_CHAIN_ID: "11155111",
        OTA_DEPLOY_KEY: KEY,
      });
      expect(code, output).to.equal(1);
      expect(output).to.include(`error: cannot reach the JSON-RPC endpoint at http://127.0.0.1:${port} (ECONNREFUSED): check OTA_DEPLOY_RPC_URL`);
      expect(output).not.to.include("secret-api-key");
      expect(output.toLowerCase()).not.to.include(KEY.slice(2).toLowerCase());
    });

    it("wrong deployment settings: exit 2, nothing sent", async () => {
      const { code, output } = await runHardhat(DEPLOY, {
        OTA_DEPLOY_RPC_URL: "http://127.0.0.1:1",
        OTA_DEPLOY_CHAIN_ID: "1",
        OTA_DEPLOY_KEY: KEY,
        OTA_DEPLOY_ADMIN: "nobody",
      });
      expect(code, output).to.equal(2);
      expect(output).to.include("error: the deployment settings are not usable:\n  - OTA_DEPLOY_ADMIN must be an account or contract address");
    });
  });
});
