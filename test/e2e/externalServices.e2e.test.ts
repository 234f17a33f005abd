import { expect } from "chai";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from "ethers";
import { startIpfsDaemon, type IpfsDaemon } from "../helpers/ipfsDaemon";
import { readDeployment, type Deployment } from "../../agent/chain/deployment";
import { FleetRegistry__factory, UpdateRegistry__factory } from "../../typechain-types";
import { startAnvilEndpoint, startExternalChain, runHardhat, runCli, type ExternalChain, type CliRun } from "./harness/externalChain";
import { CliProcess } from "./harness/cliProcess";
import { DeviceHandle } from "./harness/device";
import { Author } from "./harness/author";
import { freePort } from "../../scripts/lib/ports";
import { waitFor } from "./harness/waitFor";
import { registryDomain } from "../../agent/crypto/releaseSignature";
import { ContentKeyStore } from "../../agent/author/contentKeyStore";
import { prepareRelease } from "../../agent/author/publishRelease";

/** Not Hardhat's 31337: the endpoint stands for a chain the project knows nothing about. */
const CHAIN_ID = 4242;
const COMPONENT = "acme.firmware";
const HARDWARE = "acme-board";
const ADMIN_DELAY = 3600;
const ADMINISTRATOR_ROLE = keccak256(toUtf8Bytes("ADMINISTRATOR_ROLE"));
/** What `npm run deploy` runs (`--no-compile`: the test run has compiled, and other runs may be compiling). */
const DEPLOY = ["run", "--no-compile", "--network", "external", "scripts/deploy.ts"];

/** The two nodes the flow runs on; only anvil reorganises its chain on request (`anvil_reorg`). */
const NODES = [
  { name: "Hardhat's node", start: () => startExternalChain({ chainId: CHAIN_ID }), reorganises: false },
  { name: "anvil", start: () => startAnvilEndpoint({ chainId: CHAIN_ID }), reorganises: true },
];

/**
 * The issue's promise, end to end: the same components run against an external EVM JSON-RPC
 * endpoint and a Kubo node through configuration alone. A Hardhat node with another chain id, and
 * then anvil, stand for the endpoint and the js-ipfs daemon (a real Kubo RPC API server) for Kubo; the
 * administrator deploys with `npm run deploy`'s command and OTA_DEPLOY_* variables (a fresh,
 * funded deploying key and a separate admin account), as docs/guides/administrator.md says; the
 * catalogue is set up and a release published with the CLI; `server start`, `tracker start` and
 * `device run` are the CLI's processes, configured by ota-ledger.json beside the deployment file.
 */
for (const node of NODES) {
  describe(`e2e (${node.name}): against an external JSON-RPC endpoint and a Kubo node, by configuration alone`, function () {
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
    let agent: CliProcess | undefined;
    let moved: string | undefined; // the release the device moved to on the canonical branch (anvil)
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
      chain = await node.start();
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

    it("PROC-1 CAP-11.3-a CAP-11.3-b PROC-3 PROC-4 PROC-5 DEP-8.2.2 REQ-10f-ii: the CLI's server (Kubo store), tracker and device run from ota-ledger.json; a published release is pinned in the Kubo node, installed by the device and listed by the tracker", async function () {
      if (!catalogued) this.skip();
      const moduleId = keccak256(toUtf8Bytes("tracker-external")).toLowerCase();
      device.writeConfig({
        components: [COMPONENT],
        tracker: { moduleId, publicKey: keys.tracker.signingKey.compressedPublicKey, url: trackerUrl, heartbeatMs: 500 },
      });
      const server = start("firmware server", ["server", "start"]);
      const tracker = start("tracker", ["tracker", "start"], as("operator"));
      agent = start("device external-1", ["device", "run", "--device-config", device.configFile]);
      await Promise.all([
        server.waitForLine(/firmware server on http:\/\/127\.0\.0\.1:\d+ \(store: kubo(, deltas served)?\)/, { timeoutMs: 90_000, context }),
        tracker.waitForLine(/tracker module 0x[0-9a-f]+ .* on http:\/\/127\.0\.0\.1:/, { timeoutMs: 90_000, context }),
        agent!.waitForLine(/running 1 device agent/, { timeoutMs: 90_000, context }),
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
      await agent!.waitForLine(new RegExp(`release ${release.releaseId}: confirmed \\(OK\\)`), { timeoutMs: 60_000, context });
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

    // Real reorganisations: anvil makes them (anvil_reorg); Hardhat's node cannot.
    if (node.reorganises) {
      /** The chain's head, asked afresh (not from ethers' short-lived cache). */
      const head = async () => Number(await chain.provider.send("eth_blockNumber", []));
      /** Replaces the chain from block `from` on with as many new blocks, `txs` (signed) in the first: a real reorganisation. */
      const reorganiseFrom = async (from: number, txs: string[] = []) => {
        const depth = (await head()) - from + 1;
        await chain.provider.send("anvil_reorg", [depth, txs.map((tx) => [tx, 0])]);
        return depth;
      };
      const trackerReleases = async () =>
        (((await (await fetch(`${trackerUrl}/v1/releases`)).json()) as { releases: { id: string }[] }).releases ?? []).map((r) => r.id.toLowerCase());
      const vulnerable = async () =>
        ((await ota(["fleet", "vulnerable", "--json"])).json() as { devices: { id: string }[] }).devices.some((d) => d.id === device.id);

      it("REQ-10d-ii PROC-3 (anvil_reorg): a published release whose block is reorganised away, replaced by a branch that publishes the same version with other bytes, is never installed and leaves the tracker's view; the device and the tracker take the replacement", async function () {
        if (!release) this.skip();
        const author = new Wallet(keys.author.privateKey, chain.provider);
        const registry = UpdateRegistry__factory.connect(deployment.updateRegistry, author);
        const imageFile = (seed: number) => {
          const file = path.join(dir, `firmware-1.1.0-${seed}.bin`);
          writeFileSync(file, Author.image(300 * 1024, seed));
          return file;
        };
        // The other branch's release, prepared while 1.1.0 is free, and its transaction signed now with
        // the nonce the dropped publication will have used; its key where the CLI's grant looks.
        const replacement = await prepareRelease(
          { registry, domain: registryDomain(CHAIN_ID, deployment.updateRegistry), sender: author, releaseSigner: author },
          { component: COMPONENT, version: "1.1.0", file: imageFile(12), hardware: [HARDWARE], depends: [] },
          path.join(dir, "other-branch"),
        );
        await new ContentKeyStore(path.join(dir, ".ota-ledger", "keys")).save(replacement.releaseId, replacement.contentKey);
        const replacementTx = await author.signTransaction(
          await author.populateTransaction(
            await registry.publishRelease.populateTransaction(replacement.record, replacement.signer, replacement.signature, replacement.witnesses),
          ),
        );
        const from = agent!.lines.length;
        const gone = (
          await ota(
            ["release", "publish", "--component", COMPONENT, "--version", "1.1.0", "--file", imageFile(13), "--hardware", HARDWARE, "--json"],
            as("author"),
          )
        ).json();
        const goneId = gone.release.releaseId.toLowerCase();
        // Not granted: the device sees it but cannot take it. The tracker mirrors it.
        await waitFor("the tracker to mirror release 1.1.0", async () => (await trackerReleases()).includes(goneId), { timeoutMs: 30_000, context });

        const depth = await reorganiseFrom(gone.tx.block, [replacementTx]);
        const ledger = UpdateRegistry__factory.connect(deployment.updateRegistry, chain.provider);
        expect(await ledger.releaseStatus(goneId), "the release left the chain").to.equal(0n);
        expect(await ledger.releaseStatus(replacement.releaseId), "the other branch's release is on it").to.equal(1n);
        await ota(["release", "submit", replacement.releaseId, "--artifact", replacement.artifactFile], as("author"));
        await ota(["release", "grant", replacement.releaseId, "--device", device.id], as("author"));

        const id = replacement.releaseId.toLowerCase();
        await agent!.waitForLine(new RegExp(`release ${id}: confirmed \\(OK\\)`), { timeoutMs: 60_000, context, from });
        expect((await device.active(COMPONENT))?.releaseId).to.equal(id);
        expect(
          agent!.lines.filter((l) => l.includes(goneId) && /confirmed/.test(l)),
          "the reorganised release is never installed",
        ).to.deep.equal([]);
        await waitFor(
          `the tracker to drop the reorganised release (depth ${depth}) and list the replacement`,
          async () => {
            const ids = await trackerReleases();
            return !ids.includes(goneId) && ids.includes(id);
          },
          { timeoutMs: 30_000, context },
        );
        await waitFor(
          "the tracker to list the device up to date on the replacement",
          async () => {
            const { devices } = (await ota(["fleet", "list", "--status", "up-to-date", "--json"])).json() as {
              devices: { id: string; installed: { version: string }[] }[];
            };
            return devices.some((d) => d.id === device.id && d.installed.some((i) => i.version === "1.1.0"));
          },
          { timeoutMs: 30_000, context },
        );
        moved = id;
      });

      it("CAP-11.3-c REQ-10b-ii (anvil_reorg): a revocation whose block is reorganised away is undone in the tracker's view; sent again and mined again, it is seen again", async function () {
        if (!moved) this.skip();
        const admin = new Wallet(keys.admin.privateKey, chain.provider);
        const registry = UpdateRegistry__factory.connect(deployment.updateRegistry, admin);
        // Signed once: the very transaction the reorganisation drops is the one sent again.
        const revocation = await admin.signTransaction(
          await admin.populateTransaction(await registry.revokeRelease.populateTransaction(moved, "e2e: reorganised")),
        );
        const send = async () => {
          const hash = (await chain.provider.send("eth_sendRawTransaction", [revocation])) as string;
          return (await chain.provider.waitForTransaction(hash, 1, 30_000))!;
        };
        const first = await send();
        expect(first.status).to.equal(1);
        await waitFor("the tracker to list the device vulnerable", vulnerable, { timeoutMs: 30_000, context });

        await reorganiseFrom(first.blockNumber);
        expect(await registry.releaseStatus(moved), "the revocation left the chain").to.equal(1n);
        await waitFor("the tracker to list the device no longer vulnerable", async () => !(await vulnerable()), { timeoutMs: 30_000, context });

        const again = await send();
        expect(again.status).to.equal(1);
        expect(again.hash).to.equal(first.hash);
        expect(await registry.releaseStatus(moved)).to.equal(3n); // Revoked
        await waitFor("the tracker to list the device vulnerable again", vulnerable, { timeoutMs: 30_000, context });
      });

      it("CAP-11.2-a (anvil_reorg): an enrolment whose block is reorganised away leaves the tracker's fleet; sent again and mined again, the device is back", async function () {
        if (!catalogued) this.skip();
        const admin = new Wallet(keys.admin.privateKey, chain.provider);
        const fleet = FleetRegistry__factory.connect(deployment.fleetRegistry, admin);
        const second = new DeviceHandle("external-2", 1, path.join(dir, "devices"));
        const enrolment = await admin.signTransaction(await admin.populateTransaction(await fleet.enrolDevice.populateTransaction(second.record)));
        const send = async () => {
          const hash = (await chain.provider.send("eth_sendRawTransaction", [enrolment])) as string;
          return (await chain.provider.waitForTransaction(hash, 1, 30_000))!;
        };
        const known = async () => (await fetch(`${trackerUrl}/v1/fleet/devices/${second.id}`)).status === 200;
        const first = await send();
        expect(first.status).to.equal(1);
        await waitFor("the tracker to list the enrolled device", known, { timeoutMs: 30_000, context });

        await reorganiseFrom(first.blockNumber);
        expect(await fleet.deviceStanding(second.record, 0, []), "the enrolment left the chain").to.equal(0n);
        await waitFor("the tracker to drop the device whose enrolment left the chain", async () => !(await known()), { timeoutMs: 30_000, context });

        expect((await send()).hash).to.equal(first.hash);
        await waitFor("the tracker to list the device enrolled again", known, { timeoutMs: 30_000, context });
      });
    }
  });
}

/** A Kubo RPC API call (always POST), with a timeout: a missing CID on an offline node never answers. */
function kubo(ipfs: IpfsDaemon, command: string, cid: string, extra = ""): Promise<Response> {
  return fetch(`${ipfs.apiUrl}/api/v0/${command}?arg=${encodeURIComponent(cid)}${extra}`, { method: "POST", signal: AbortSignal.timeout(10_000) });
}
