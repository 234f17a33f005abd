// First: Node 20 lacks Promise.withResolvers, which Helia calls (every test, in this process and in --parallel workers).
import "./agent/runtime/node20";
import { HardhatUserConfig, extendEnvironment, subtask, task, types } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import { HardhatPluginError } from "hardhat/plugins";
import "@nomicfoundation/hardhat-toolbox";
import { EXTERNAL_NETWORK, externalNetworkFromEnv } from "./scripts/lib/externalNetwork";

// The one solc version this project compiles with. It must equal the version of the npm
// `solc` package (package.json pins both): the machines that build this project have no
// internet, so Hardhat's compiler download is replaced by the solc-js build from node_modules.
const SOLC_VERSION = "0.8.28";

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require("solc") as { version(): string };
  const npmVersion = solc.version().split("+")[0];
  if (args.solcVersion !== npmVersion) {
    throw new Error(
      `hardhat.config.ts asks for solc ${args.solcVersion} but the npm package "solc" is ${npmVersion}. ` +
        `Compiling offline works only with the npm build: pin "solc": "${args.solcVersion}" in package.json ` +
        `(npm install --save-exact solc@${args.solcVersion}) or set SOLC_VERSION to ${npmVersion}.`,
    );
  }
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: solc.version().replace(/\.Emscripten\.clang$/, ""),
  };
});

const external = externalNetworkFromEnv(process.env);

// Only a task run with --network external needs these settings; the others never see them.
extendEnvironment((hre) => {
  if (hre.network.name !== EXTERNAL_NETWORK || external.problems.length === 0) return;
  throw new HardhatPluginError(
    "ota-ledger",
    `the "${EXTERNAL_NETWORK}" network is not configured:\n  - ${external.problems.join("\n  - ")}\n` + "See docs/guides/administrator.md.",
  );
});

// A development chain's clock, for rules that wait (a soak time, a wave's start, a maintenance
// window): `npx hardhat advance-time 86400 --network localhost` (docs/writing-a-policy.md).
task("advance-time", "moves a development chain's clock forward and mines a block at the new time (Hardhat or anvil node only)")
  .addPositionalParam("seconds", "how far forward", undefined, types.int)
  .setAction(async ({ seconds }: { seconds: number }, hre) => {
    if (hre.network.name === EXTERNAL_NETWORK) throw new HardhatPluginError("ota-ledger", "advance-time is for a development chain, not the external network");
    if (!Number.isSafeInteger(seconds) || seconds < 1) throw new HardhatPluginError("ota-ledger", `seconds must be a whole number above 0, not ${seconds}`);
    await hre.network.provider.send("evm_increaseTime", [seconds]);
    await hre.network.provider.send("evm_mine", []);
    const block = (await hre.network.provider.send("eth_getBlockByNumber", ["latest", false])) as { number: string; timestamp: string };
    console.log(`block ${Number(block.number)} at ${new Date(Number(block.timestamp) * 1000).toISOString()}`);
  });

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      // OpenZeppelin 5.5+ uses mcopy; Hardhat 2 would default to "paris" for this solc.
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      // storageLayout: the slots the device proves facts in (agent/chain/provenFacts.ts) are checked
      // against it by a test, so a contract change that moves a field fails a test, not a fleet.
      // Hardhat adds the outputs it needs itself; the bytecode does not depend on this.
      outputSelection: { "*": { "*": ["storageLayout"] } },
    },
  },
  networks: {
    hardhat: {
      hardfork: "cancun",
    },
    localhost: {
      url: process.env.OTA_RPC_URL ?? "http://127.0.0.1:8545",
    },
    // Any EVM JSON-RPC endpoint: OTA_DEPLOY_RPC_URL, OTA_DEPLOY_CHAIN_ID, OTA_DEPLOY_KEY(_FILE).
    [EXTERNAL_NETWORK]: {
      url: external.url,
      ...(external.chainId !== undefined ? { chainId: external.chainId } : {}),
      accounts: external.accounts,
    },
  },
  mocha: {
    timeout: 120_000,
    // Used by --parallel only (npm run test:unit): one worker per core of the 2-core machines.
    jobs: 2,
    reporter: "./test/helpers/summaryReporter.js",
  },
  gasReporter: {
    enabled: process.env.REPORT_GAS === "1",
    offline: true,
  },
  typechain: {
    outDir: "typechain-types",
    target: "ethers-v6",
  },
};

export default config;
