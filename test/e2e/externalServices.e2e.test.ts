import { expect } from "chai";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { startIpfsDaemon, type IpfsDaemon } from "../helpers/ipfsDaemon";
import { readDeployment, type Deployment } from "../../agent/chain/deployment";
import { FleetRegistry__factory, UpdateRegistry__factory } from "../../typechain-types";
import { startExternalChain, runHardhat, runCli, type ExternalChain, type CliRun } from "./harness/externalChain";
import { CliProcess } from "./harness/cliProcess";
import { DeviceHandle } from "./harness/device";
import { Author } from "./harness/author";
import { freePort } from "../../scripts/lib/ports";
import { waitFor } from "./harness/waitFor";

/** Not Hardhat's 31337: the endpoint stands for a chain the project knows nothing about. */
const CHAIN_ID = 4242;
const COMPONENT = "acme.firmware";
const HARDWARE = "acme-board";
const ADMIN_DELAY = 3600;
const ADMINISTRATOR_ROLE = keccak256(toUtf8Bytes("ADMINISTRATOR_ROLE"));
/** What `npm run deploy` runs (`--no-compile`: the test run has compiled, and other runs may be compiling). */
const DEPLOY = ["run", "--no-compile", "--network", "external", "scripts/deploy.ts"];

/**
 * The issue's promise, end to end: the same components run against an external EVM JSON-RPC
 * endpoint and a Kubo node through configuration alone. A Hardhat node with another chain id
 * stands for the endpoint and the js-ipfs daemon (a real Kubo RPC API server) for Kubo; the
 * administrator deploys with `npm run deploy`'s command and OTA_DEPLOY_* variables (a fresh,
 * funded deploying key and a separate admin account), as docs/guides/administrator.md says; the
 * catalogue is set up and a release published with the CLI; `server start`, `tracker start` and
 * `device run` are the CLI's processes, configured by ota-ledger.json beside the deployment file.
 */
describe("e2e: against an external JSON-RPC endpoint and a Kubo node, by configuration alone", function () {
  this.timeout(240_000);
  const ignitionId = `e2e-external-${process.pid}-${Date.now()}`;
  const ignitionDir = path.join(__dirname, "..", "..", "ignition", "deployments", ignitionId);
  const processes: CliProcess[] = [];
  let dir: string;
  let chain: ExternalChain;
  let ipfsStarting: Promise<IpfsDaemon> | undefined;
  let ipfs: IpfsDaemon;
  const keys = {
    deployer: Wallet.createRandom(),
    admin: Wallet.createRandom(),
    author: Wallet.createRandom(),
    operator: Wallet.createRandom(),
    tracker: Wallet.createRandom(),
  };
  const keyFile = (who: keyof typeof keys) => path.join(dir, "keys", `${who}.key`);
  const as = (who: keyof typeof keys) => ({ OTA_KEY_FILE: keyFile(who) });
  let refused: { code: number | null; output: string };
  let nonceAfterRefusal: number;
  let deployed: { code: number | null; output: string };
  let deployment: Deployment;
  let trackerUrl: string;
  let serverUrl: string;
  let device: DeviceHandle;
  let catalogued = false;
  let release: { releaseId: string; cid: string; artifactFile: string } | undefined;
  const image = Author.image(700 * 1024, 11);

  /** `ota-ledger <args>` in the installation's folder; fails the test with its output unless it exits 0. */
  const ota = async (args: string[], env: Record<string, string> = {}): Promise<CliRun> => {
    const r = await runCli(dir, args, env);
    expect(r.code, `ota-ledger ${args.join(" ")}\n${r.stdout}${r.stderr}`).to.equal(0);
    return r;
  };
  const context = () => processes.map((p) => p.output(40)).join("\n");
  const start = (name: string, args: string[], env: Record<string, string> = {}) => {
    const p = new CliProcess(name, args, { cwd: dir, env });
    processes.push(p);
    return p;
  };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-e2e-external-"));
    mkdirSync(path.join(dir, "keys"));
    for (const who of Object.keys(keys) as (keyof typeof keys)[]) {
      writeFileSync(keyFile(who), keys[who].privateKey + "\n");
      chmodSync(keyFile(who), 0o600);
    }
    // The Kubo node starts beside the chain and the deployment.
    ipfsStarting = startIpfsDaemon();
    ipfsStarting.catch(() => undefined);
    chain = await startExternalChain({ chainId: CHAIN_ID });
    await chain.fund([keys.deployer, keys.admin, keys.author, keys.operator].map((k) => k.address));

    // The administrator's deployment, as the guide has it: the endpoint, its chain id, the key and the admin.
    const deployEnv = {
      OTA_DEPLOY_RPC_URL: chain.url,
      OTA_DEPLOY_CHAIN_ID: String(CHAIN_ID),
      OTA_DEPLOY_KEY_FILE: keyFile("deployer"),
      OTA_DEPLOY_ADMIN: keys.admin.address,
      OTA_DEPLOY_ADMIN_DELAY: String(ADMIN_DELAY),
      // Ignition's journal and the deployment file kept apart from the checkout's own.
      OTA_DEPLOY_ID: ignitionId,
      OTA_DEPLOYMENT_FILE: path.join(dir, "deployments", "external.json"),
    };
    refused = await runHardhat(DEPLOY, { ...deployEnv, OTA_DEPLOY_CHAIN_ID: "1" });
    nonceAfterRefusal = await chain.provider.getTransactionCount(keys.deployer.address);
    deployed = await runHardhat(DEPLOY, deployEnv);
    ipfs = await ipfsStarting;

    const [serverPort, trackerPort] = [await freePort(), await freePort()];
    serverUrl = `http://127.0.0.1:${serverPort}`;
    trackerUrl = `http://127.0.0.1:${trackerPort}`;
    // The agents' whole configuration: no address, only the network whose deployment file lies beside it.
    writeFileSync(
      path.join(dir, "ota-ledger.json"),
      JSON.stringify(
        {
          network: "external",
          rpcUrl: chain.url,
          chainId: CHAIN_ID,
          serverUrl,
          storage: { kind: "kubo", url: ipfs.apiUrl },
          server: { host: "127.0.0.1", port: serverPort, dataDir: "./server-data" },
          tracker: {
            moduleId: "tracker-external",
            keyFile: "keys/tracker.key",
            host: "127.0.0.1",
            port: trackerPort,
            dataDir: "./tracker-data",
            pollMs: 200,
            adoptionSampleMs: 3_600_000,
          },
        },
        null,
        2,
      ),
    );
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    await ipfsStarting?.then(
      (d) => d.stop(),
      () => undefined,
    );
    await chain?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(ignitionDir, { recursive: true, force: true });
  });

  it("APP-II-1 CAP-11.3-d: the administrator deploys to the endpoint with OTA_DEPLOY_* alone (a fresh key, a separate admin; a wrong chain id refused first, the key never printed) and sets up the catalogue with the CLI", async () => {
    expect(refused.code, refused.output).to.equal(2);
    expect(refused.output).to.match(/serves chain 4242, but OTA_DEPLOY_CHAIN_ID is 1: nothing was sent/);
    expect(nonceAfterRefusal, "nothing was sent on a chain id mismatch").to.equal(0);
    expect(deployed.code, deployed.output).to.equal(0);
    for (const run of [refused, deployed]) {
      expect(run.output.toLowerCase(), "the deploying key is never printed").not.to.include(keys.deployer.privateKey.slice(2).toLowerCase());
    }
    expect(deployed.output).to.include(`deploying account ${keys.deployer.address}`);
    expect(deployed.output).to.match(
      new RegExp(`on the ledger: default admin ${keys.admin.address}, administrator yes, admin transfer delay ${ADMIN_DELAY} s`),
    );

    // The deployment file the agents read, beside their ota-ledger.json.
    deployment = await readDeployment(path.join(dir, "deployments", "external.json"));
    expect(deployment.network).to.equal("external");
    expect(deployment.chainId).to.equal(CHAIN_ID);
    const registry = UpdateRegistry__factory.connect(deployment.updateRegistry, chain.provider);
    const fleet = FleetRegistry__factory.connect(deployment.fleetRegistry, chain.provider);
    expect(await fleet.updateRegistry()).to.equal(deployment.updateRegistry);
    for (const address of [deployment.updatePolicies!, deployment.statusAnchors!]) expect(await chain.provider.getCode(address)).not.to.equal("0x");
    expect(await chain.provider.getCode(deployment.updateRegistry, deployment.deployedAtBlock)).not.to.equal("0x");
    expect(await chain.provider.getCode(deployment.updateRegistry, deployment.deployedAtBlock - 1)).to.equal("0x");
    // The admin, not the deploying account, holds the registry.
    expect(await registry.defaultAdmin()).to.equal(keys.admin.address);
    expect(await registry.defaultAdminDelay()).to.equal(BigInt(ADMIN_DELAY));
    expect(await registry.hasRole(ADMINISTRATOR_ROLE, keys.admin.address)).to.equal(true);
    expect(await registry.hasRole(ADMINISTRATOR_ROLE, keys.deployer.address)).to.equal(false);
    expect(await registry.hasRole(ZeroHash, keys.deployer.address)).to.equal(false);

    // The CLI finds everything from ota-ledger.json and the deployment file.
    const shown = (await ota(["config", "show", "--json"], as("admin"))).json().config;
    expect(shown).to.include({
      network: "external",
      rpcUrl: chain.url,
      chainId: CHAIN_ID,
      registry: deployment.updateRegistry,
      fleet: deployment.fleetRegistry,
      privateKey: "(set, hidden)",
      account: keys.admin.address,
    });
    expect(shown.storage).to.deep.equal({ kind: "kubo", url: ipfs.apiUrl, timeoutMs: 30_000 });

    // The administrator's catalogue, the author and the tracker operator, with the CLI.
    const provider = (await ota(["provider", "register", "Acme Devices", "--json"], as("admin"))).json().provider.id;
    await ota(["provider", "signer", "add", String(provider), keys.author.address], as("admin"));
    await ota(["provider", "author", "add", keys.author.address, "--provider", String(provider)], as("admin"));
    await ota(["hardware", "register", HARDWARE], as("admin"));
    await ota(["component", "register", COMPONENT, "--provider", String(provider)], as("admin"));
    await ota(["tracker", "grant", keys.operator.address], as("admin"));
    await ota(["tracker", "register"], as("operator"));
    device = new DeviceHandle("external-1", 1, path.join(dir, "devices"));
    const r = device.record;
    await ota(
      ["device", "enrol", "--id", r.id, "--public-key", r.publicKey, "--hardware", HARDWARE, "--network", "plant-1", "--region", "eu-west"],
      as("admin"),
    );
    expect(await fleet.deviceStanding(r, 0, [])).to.equal(1n); // Active
    catalogued = true;
  });

  it("PROC-1 CAP-11.3-a CAP-11.3-b PROC-3 PROC-4 PROC-5 DEP-8.2.2: the CLI's server (Kubo store), tracker and device run from ota-ledger.json; a published release is pinned in the Kubo node, installed by the device and listed by the tracker", async function () {
    if (!catalogued) this.skip();
    const moduleId = keccak256(toUtf8Bytes("tracker-external")).toLowerCase();
    device.writeConfig({
      components: [COMPONENT],
      tracker: { moduleId, publicKey: keys.tracker.signingKey.compressedPublicKey, url: trackerUrl, heartbeatMs: 500 },
    });
    const server = start("firmware server", ["server", "start"]);
    const tracker = start("tracker", ["tracker", "start"], as("operator"));
    const agent = start("device external-1", ["device", "run", "--device-config", device.configFile]);
    await Promise.all([
      server.waitForLine(/firmware server on http:\/\/127\.0\.0\.1:\d+ \(store: kubo\)/, { timeoutMs: 90_000, context }),
      tracker.waitForLine(/tracker module 0x[0-9a-f]+ .* on http:\/\/127\.0\.0\.1:/, { timeoutMs: 90_000, context }),
      agent.waitForLine(/running 1 device agent/, { timeoutMs: 90_000, context }),
    ]);
    const health = (await (await fetch(`${serverUrl}/v1/health`)).json()) as { store: string; registry: string };
    expect(health).to.include({ store: "kubo", registry: deployment.updateRegistry });

    // PROC-1, CAP-11.3-a: the author publishes with the CLI, which submits to the server, which stores in Kubo.
    const imageFile = path.join(dir, "firmware-1.0.0.bin");
    writeFileSync(imageFile, image);
    const published = (
      await ota(["release", "publish", "--component", COMPONENT, "--version", "1.0.0", "--file", imageFile, "--hardware", HARDWARE, "--json"], as("author"))
    ).json();
    expect(published.upload.status).to.equal(201);
    release = { releaseId: published.release.releaseId.toLowerCase(), cid: published.release.cid, artifactFile: published.release.artifactFile };
    await ota(["release", "grant", release.releaseId, "--device", device.id], as("author"));

    // The artifact is in the Kubo node, pinned, byte for byte what the author's tool wrote.
    const pins = await kubo(ipfs, "pin/ls", release.cid, "&type=recursive");
    expect(pins.status, await pins.clone().text()).to.equal(200);
    expect(Object.values(((await pins.json()) as { Keys: Record<string, { Type: string }> }).Keys)).to.deep.equal([{ Type: "recursive" }]);
    const stored = Buffer.from(await (await kubo(ipfs, "cat", release.cid)).arrayBuffer());
    expect(stored.equals(readFileSync(release.artifactFile)), "Kubo holds the encrypted artifact").to.equal(true);

    // PROC-3..5: the device takes it from the server (which reads Kubo), verifies and installs it, and reports.
    await agent.waitForLine(new RegExp(`release ${release.releaseId}: confirmed \\(OK\\)`), { timeoutMs: 60_000, context });
    const active = await device.active(COMPONENT);
    expect(active?.releaseId).to.equal(release.releaseId);
    expect(active!.bytes.equals(image), "the active slot holds the image byte for byte").to.equal(true);
    const listed = await waitFor(
      "the tracker to list the device up to date on 1.0.0",
      async () => {
        const { devices } = (await ota(["fleet", "list", "--status", "up-to-date", "--json"])).json() as {
          devices: { id: string; installed: { version: string }[] }[];
        };
        return devices.find((d) => d.id === device.id && d.installed.some((i) => i.version === "1.0.0"));
      },
      { timeoutMs: 30_000, context },
    );
    expect(listed.installed).to.have.length(1);
  });

  it("CAP-11.3-c REQ-10b-ii: a release revoked on the external chain is withdrawn by the firmware server and unpinned from the Kubo node; the tracker lists the device running it", async function () {
    if (!release) this.skip();
    const r = release;
    const registry = UpdateRegistry__factory.connect(deployment.updateRegistry, new Wallet(keys.admin.privateKey, chain.provider));
    await (await registry.revokeRelease(r.releaseId, "e2e: malware found")).wait();
    await waitFor(
      "the Kubo node to have unpinned the artifact",
      async () => {
        const res = await kubo(ipfs, "pin/ls", r.cid, "&type=recursive");
        return !res.ok && /not pinned/i.test(await res.text());
      },
      { timeoutMs: 30_000, context },
    );
    const held = (await (await fetch(`${serverUrl}/v1/releases`)).json()) as { releaseId: string; state: string }[];
    expect(held.find((h) => h.releaseId.toLowerCase() === r.releaseId)?.state).to.equal("withdrawn");
    await waitFor(
      "the tracker to list the device vulnerable",
      async () => ((await ota(["fleet", "vulnerable", "--json"])).json() as { devices: { id: string }[] }).devices.some((d) => d.id === device.id),
      { timeoutMs: 30_000, context },
    );
  });
});

/** A Kubo RPC API call (always POST), with a timeout: a missing CID on an offline node never answers. */
function kubo(ipfs: IpfsDaemon, command: string, cid: string, extra = ""): Promise<Response> {
  return fetch(`${ipfs.apiUrl}/api/v0/${command}?arg=${encodeURIComponent(cid)}${extra}`, { method: "POST", signal: AbortSignal.timeout(10_000) });
}
