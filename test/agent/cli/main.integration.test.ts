import { expect } from "chai";
import { spawn } from "node:child_process";
import path from "node:path";
import { Wallet } from "ethers";
import { freePort, startCliChain, type CliChain } from "./cliHarness";

describe("ota-ledger main: usage, configuration and ledger errors", function () {
  this.timeout(120_000);
  let c: CliChain;

  before(async () => {
    c = await startCliChain();
  });
  after(async () => {
    await c?.stop();
  });

  describe("usage", () => {
    it("prints help on stdout and exits 0", async () => {
      const r = await c.run(["--help"]);
      expect(r.code).to.equal(0);
      expect(r.stdout).to.include("Usage: ota-ledger [options] [command]");
      for (const group of ["provider", "hardware", "component", "device", "config"]) expect(r.stdout).to.match(new RegExp(`\\n  ${group} `));
    });

    it("prints a group's help for `help <group>` (exit 0), and for a missing subcommand (exit 2)", async () => {
      const asked = await c.run(["help", "provider"]);
      expect(asked.code).to.equal(0);
      expect(asked.stdout).to.include("Usage: ota-ledger provider [options] [command]");
      const missing = await c.run(["provider"]);
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.include("Usage: ota-ledger provider");
      expect(missing.stderr).to.include("error [USAGE]: a subcommand is missing (see the list above)");
    });

    it("reports an unknown command or a missing argument on one line with a hint, exit 2", async () => {
      const unknown = await c.run(["providr", "show", "1"]);
      expect(unknown.code).to.equal(2);
      expect(unknown.stderr).to.match(/^error \[USAGE\]: unknown command 'providr'\n.*\nhint: see ota-ledger --help/s);
      const missing = await c.run(["provider", "bar", "1"]);
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.include("error [USAGE]: required option '--reason <text>' not specified");
    });

    it("with --json, reports a usage error as a JSON error object on stdout", async () => {
      const r = await c.run(["--json", "provider", "show"]);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal("");
      expect(r.json()).to.deep.equal({
        error: {
          code: "USAGE",
          message: "missing required argument 'providerId'",
          details: { commander: "commander.missingArgument", hint: "see ota-ledger --help, or ota-ledger <command> --help" },
        },
      });
    });
  });

  describe("configuration checked when the chain is opened", () => {
    it("asks for a private key only for commands that send transactions", async () => {
      const r = await c.run(["provider", "register", "Acme"], { OTA_PRIVATE_KEY: undefined });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal(
        "error [PRIVATE_KEY_MISSING]: privateKey is missing: set OTA_PRIVATE_KEY or OTA_KEY_FILE, or privateKey or keyFile in ota-ledger.json\n",
      );
    });

    it("refuses an RPC that serves another chain than the configured one", async () => {
      const r = await c.run(["hardware", "list"], { OTA_CHAIN_ID: "1" });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.equal(`error [WRONG_CHAIN_ID]: wrong chain id: the RPC at ${c.url} is chain 31337, the config says 1; fix chainId or rpcUrl\n`);
    });

    it("asks to deploy when there is no deployment file and no addresses", async () => {
      const r = await c.run(["hardware", "list", "--json"], { OTA_NETWORK: "staging" });
      expect(r.code).to.equal(2);
      expect(r.json().error.code).to.equal("DEPLOYMENT_MISSING");
      expect(r.json().error.message).to.match(/not set and there is no deployment file at .*deployments\/staging\.json: run `npm run deploy:local`/);
    });

    it("refuses a malformed address, naming the variable", async () => {
      const r = await c.run(["hardware", "list"], { OTA_REGISTRY: "0x5FbDB2315678afecb367f032d93F642f64180aa" });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(/^error \[CONFIG_INVALID\]: OTA_REGISTRY must be the UpdateRegistry contract's address/);
    });

    it("refuses an address with no contract (a restarted chain), saying how to fix it", async () => {
      const r = await c.run(["hardware", "list"], { OTA_REGISTRY: Wallet.createRandom().address });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(
        /^error \[NO_CONTRACT\]: no contract at the registry address 0x[0-9a-fA-F]{40} on chain 31337 .*deploy again \(`npm run deploy:local`, or `npm run deploy` for another network\) or fix registry/,
      );
    });

    it("reports an RPC that does not answer as a failed operation (exit 1)", async () => {
      const url = `http://127.0.0.1:${await freePort()}`;
      const r = await c.run(["hardware", "list", "--rpc", url]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(
        `error [RPC_UNREACHABLE]: the RPC at ${url} does not answer (ECONNREFUSED): start the chain (npm run chain) or fix rpcUrl (OTA_RPC_URL or --rpc)\n`,
      );
    });

    it("never shows an RPC URL's path, where providers put the API key, in errors or in config show", async () => {
      const origin = `http://127.0.0.1:${await freePort()}`;
      const r = await c.run(["hardware", "list", "--rpc", `${origin}/v2/secret-api-key`]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(`the RPC at ${origin}/… does not answer`);
      expect(r.stderr).to.not.include("secret-api-key");
      const shown = await c.run(["config", "show", "--json", "--rpc", `${origin}/v2/secret-api-key`]);
      expect(shown.stdout).to.not.include("secret-api-key");
      expect(shown.json().config.rpcUrl).to.equal(`${origin}/…`);
    });
  });

  describe("reverts decoded into their custom error and explained", () => {
    it("explains registering a component for an unknown provider, and the chain does not move", async () => {
      const before = await c.blockNumber();
      const r = await c.run(["component", "register", "acme.bootloader", "--provider", "9"]);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(
        "error [UpdateRegistryUnknownProvider]: the ledger refused: no provider has id 9 [UpdateRegistryUnknownProvider(9)]\n" +
          "hint: check the id (ota-ledger provider show <id>) or register the provider first (ota-ledger provider register <name>)\n",
      );
      expect(await c.blockNumber()).to.equal(before);
    });

    it("explains a key without the administrator role, with the error's arguments in --json", async () => {
      const r = await c.run(["provider", "register", "Acme", "--json"], { OTA_PRIVATE_KEY: c.outsider.privateKey });
      expect(r.code).to.equal(1);
      const { error } = r.json();
      expect(error.code).to.equal("AccessControlUnauthorizedAccount");
      expect(error.message).to.include(`the ledger refused: the account ${c.outsider.address} is not an administrator`);
      expect(error.details.revert).to.equal("AccessControlUnauthorizedAccount");
      expect(error.details.args.account).to.equal(c.outsider.address);
      expect(error.details.hint).to.match(/send with a key that holds the role/);
    });
  });

  it("refuses bad input before sending anything: the block number does not change", async () => {
    const before = await c.blockNumber();
    const cases: [string[], RegExp][] = [
      [["provider", "register", "  "], /provider name: the name is empty: give a name of 1 to 64 bytes/],
      [["hardware", "register", "x".repeat(65)], /hardware class name: the name is 65 bytes, above the limit of 64: shorten it/],
      [["provider", "signer", "add", "1", "0x1234"], /signer address: "0x1234" is not an address: give 0x followed by 40 hex digits/],
      [["provider", "author", "add", "0x0000000000000000000000000000000000000000", "--provider", "1"], /author address: the zero address cannot hold a role/],
      [["provider", "bar", "one", "--reason", "x"], /provider id: "one" is not an id: give a whole number from 1 to 4294967295/],
      [["component", "register", "acme.app", "--provider", "0"], /--provider: "0" is not an id/],
    ];
    for (const [args, message] of cases) {
      const r = await c.run(args);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.stderr, args.join(" ")).to.match(new RegExp(`^error \\[INVALID_INPUT\\]: ${message.source}`));
    }
    expect(await c.blockNumber()).to.equal(before);
  });

  it("never prints the private key, not even in config show", async () => {
    const r = await c.run(["config", "show", "--json"]);
    expect(r.code).to.equal(0);
    expect(r.stdout).not.to.include(c.admin.privateKey.slice(2));
    expect(r.json().config).to.include({
      privateKey: "(set, hidden)",
      account: c.admin.address,
      registry: c.deployment.updateRegistry,
    });
  });

  it("runs as a program through bin/ota-ledger.js, exiting with main's code once done", async () => {
    const bin = path.join(__dirname, "..", "..", "..", "bin", "ota-ledger.js");
    const env = { PATH: process.env.PATH, OTA_RPC_URL: c.url, OTA_PRIVATE_KEY: c.admin.privateKey };
    const [listed, refused] = await Promise.all([
      runProgram(bin, ["hardware", "list", "--json"], env, c.dir),
      runProgram(bin, ["provider", "show", "x"], env, c.dir),
    ]);
    expect(listed.code, listed.output).to.equal(0);
    expect(JSON.parse(listed.output)).to.deep.equal({ hardwareClasses: [] });
    expect(refused.code).to.equal(2);
    expect(refused.output).to.include('error [INVALID_INPUT]: provider id: "x" is not an id');
  });
});

function runProgram(bin: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
}
