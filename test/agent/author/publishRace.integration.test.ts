import { expect } from "chai";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { HDNodeWallet, JsonRpcProvider, Network, NonceManager, Wallet } from "ethers";
import { startAnvil } from "../../../scripts/lib/anvilChain";
import type { LocalChain } from "../../../scripts/lib/localChain";
import { freePort } from "../../../scripts/lib/ports";
import { deploymentPath, writeDeployment } from "../../../agent/chain/deployment";
import { main } from "../../../agent/cli/main";
import { FleetRegistry__factory, UpdateRegistry__factory, type FleetRegistry, type UpdateRegistry } from "../../../typechain-types";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { componentId } from "../../../agent/core/release";
import { ContentKeyStore } from "../../../agent/author/contentKeyStore";
import { prepareRelease, publishPrepared } from "../../../agent/author/publishRelease";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { LedgerGate } from "../../../agent/server/ledgerGate";
import { startFirmwareServer, type RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import { LyingRpc } from "../../helpers/lyingRpc";
import { expectCode } from "../../helpers/expectCode";

const MNEMONIC = "test test test test test test test test test test test junk";
const account = (i: number) => HDNodeWallet.fromPhrase(MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`);
const COMPONENT = "acme.firmware";

/**
 * Two authors of one provider publish the same version of a component at once, on anvil (a real
 * node of another make) with automine off, so that both transactions land in one block: the
 * ledger keeps one, and the other author's tool must say what happened (the version was taken,
 * by which release and whom), exit 1, and remove the content key and artifact it saved for a
 * release that does not exist, never those of one that does.
 */
describe("release publish: two authors race for one version (anvil)", function () {
  this.timeout(120_000);
  let chain: LocalChain;
  let provider: JsonRpcProvider;
  let registry: UpdateRegistry;
  let fleet: FleetRegistry;
  let dir: string;
  let store: EmbeddedStore;
  let db: ServerDatabase;
  let server: RunningFirmwareServer;
  let latestEstimates: LyingRpc;
  const authors = [new Wallet(account(1).privateKey), new Wallet(account(2).privateKey)];
  const rpc = (method: string, params: unknown[] = []) => provider.send(method, params);

  before(async () => {
    chain = await startAnvil({ port: await freePort() });
    provider = new JsonRpcProvider(chain.url, Network.from(31337), { staticNetwork: true, pollingInterval: 100 });
    const admin = new NonceManager(new Wallet(account(0).privateKey, provider));
    registry = (await (await new UpdateRegistry__factory(admin).deploy(3600, account(0).address)).waitForDeployment()) as UpdateRegistry;
    fleet = (await (await new FleetRegistry__factory(admin).deploy(await registry.getAddress())).waitForDeployment()) as FleetRegistry;
    const r = registry.connect(admin);
    await (await r.registerProvider("Acme Devices")).wait();
    for (const a of authors) {
      await (await r.addProviderSigner(1, a.address)).wait();
      await (await r.registerAuthor(a.address, 1)).wait();
    }
    await (await r.registerHardwareClass("acme-board")).wait();
    await (await r.registerComponent(COMPONENT, 1)).wait();
    dir = mkdtempSync(path.join(os.tmpdir(), "ota-publish-race-"));
    await writeDeployment(deploymentPath(dir, "localhost"), {
      network: "localhost",
      chainId: 31337,
      updateRegistry: await registry.getAddress(),
      fleetRegistry: await fleet.getAddress(),
      deployedAtBlock: 1,
    });
    writeFileSync(path.join(dir, "image.bin"), Buffer.alloc(200 * 1024, 7));
    store = await EmbeddedStore.open({ directory: path.join(dir, "server-ipfs") });
    db = new ServerDatabase(path.join(dir, "server.db"));
    const gate = new LedgerGate(registry.connect(provider), fleet.connect(provider), registryDomain(31337, String(registry.target)));
    server = await startFirmwareServer({ gate, store, db, pollMs: 200 });
    // Anvil estimates gas against its pending block, where the other author's transaction already
    // sits; an endpoint estimating against the last block (or two authors' estimates made before
    // either transaction reached the node) lets both be sent, to meet in one block.
    latestEstimates = await LyingRpc.start(chain.url, {
      params: (req) => (req.method === "eth_estimateGas" ? [req.params[0], "latest"] : undefined),
    });
  });

  after(async () => {
    await latestEstimates?.close();
    await server?.close();
    await store?.close();
    db?.close();
    provider?.destroy();
    await chain?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `ota-ledger release publish` in-process as author `i`, with its own key store and artifact folder. */
  const publish = async (i: number, version: string, rpcUrl: string) => {
    let stdout = "";
    let stderr = "";
    const keystore = path.join(dir, `author-${i}`, "keys");
    const code = await main(
      ["release", "publish", "--component", COMPONENT, "--version", version, "--file", path.join(dir, "image.bin"), "--hardware", "acme-board", "--json"],
      {
        stdout: (s) => (stdout += s),
        stderr: (s) => (stderr += s),
        env: { OTA_RPC_URL: rpcUrl, OTA_PRIVATE_KEY: authors[i].privateKey, OTA_KEYSTORE: keystore, OTA_SERVER_URL: server.url },
        cwd: dir,
        isTTY: false,
      },
    );
    return { code, out: JSON.parse(stdout), text: stdout + stderr, keystore, artifactDir: path.join(dir, `author-${i}`, "artifacts") };
  };
  const pending = async () => Number((await rpc("txpool_status")).pending);
  const waitForPending = async (n: number) => {
    for (let i = 0; i < 600 && (await pending()) < n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await pending(), "transactions waiting in the node's pool").to.equal(n);
  };
  const keyFile = (keystore: string, releaseId: string) => path.join(keystore, `${releaseId.toLowerCase()}.key`);
  const nonces = () => Promise.all(authors.map((a) => provider.getTransactionCount(a.address, "latest")));

  it("REQ-10d-i: both transactions in one block: one release published and submitted; the other author gets VERSION_TAKEN (exit 1) naming the release and the author that took it, and its content key and artifact are removed", async () => {
    await rpc("evm_setAutomine", [false]);
    let results;
    try {
      const racing = Promise.all([publish(0, "1.0.0", latestEstimates.url), publish(1, "1.0.0", latestEstimates.url)]);
      await waitForPending(2);
      await rpc("evm_mine");
      await rpc("evm_setAutomine", [true]);
      results = await racing;
    } finally {
      await rpc("evm_setAutomine", [true]);
    }
    const winner = results.find((r) => r.code === 0);
    const loser = results.find((r) => r.code !== 0);
    expect(winner, results.map((r) => r.text).join("\n")).to.not.equal(undefined);
    expect(loser, results.map((r) => r.text).join("\n")).to.not.equal(undefined);
    const winnerAuthor = authors[results.indexOf(winner!)].address;

    // The ledger: one release, the winner's; the loser's transaction mined in the same block, reverted.
    const won = winner!.out;
    expect(won.upload.status).to.equal(201);
    expect(await registry.latestRelease(componentId(COMPONENT), true)).to.equal(won.release.releaseId);
    const error = loser!.out.error;
    expect(loser!.code, loser!.text).to.equal(1);
    expect(error.code).to.equal("VERSION_TAKEN");
    expect(error.details.tx.block, "both in one block").to.equal(won.tx.block);
    expect((await provider.getTransactionReceipt(error.details.tx.hash))!.status).to.equal(0);
    expect(await registry.releaseStatus(error.details.releaseId)).to.equal(0n);
    expect(error.details.takenBy).to.deep.include({
      releaseId: won.release.releaseId,
      provider: 1,
      version: "1.0.0",
      author: winnerAuthor,
      tx: won.tx.hash,
      block: won.tx.block,
      fileLink: won.release.cid,
    });
    expect(error.message).to.include(`version 1.0.0 of ${COMPONENT} was taken first by release ${won.release.releaseId} of provider 1`);
    expect(error.message).to.include(`published by ${winnerAuthor} in block ${won.tx.block}`);
    expect(error.details.hint).to.match(/publish it as a version above 1\.0\.0/);

    // The loser's key and artifact are gone; the winner's are intact (and its key still grants).
    const lost = loser!.out.error.details;
    expect(lost.cleanup.contentKey).to.deep.equal({ file: keyFile(loser!.keystore, lost.releaseId), removed: true });
    expect(lost.cleanup.artifact).to.include({ removed: true });
    expect(existsSync(keyFile(loser!.keystore, lost.releaseId))).to.equal(false);
    expect(existsSync(lost.cleanup.artifact.file)).to.equal(false);
    expect(existsSync(won.release.artifactFile)).to.equal(true);
    expect(await new ContentKeyStore(winner!.keystore).load(won.release.releaseId)).to.have.length(32);
    expect(db.artifact(won.release.releaseId.toLowerCase())?.state ?? "missing").to.equal("serving");
  });

  it("REQ-10d-i: the other author's transaction still pending, the gas estimate is refused: VERSION_TAKEN (exit 1), nothing sent, the key and artifact removed", async () => {
    await rpc("evm_setAutomine", [false]);
    let first;
    let second;
    const before = await nonces();
    try {
      const firstRun = publish(0, "1.1.0", chain.url);
      await waitForPending(1);
      // Straight to anvil: it estimates against the pending block, which holds the first release.
      second = await publish(1, "1.1.0", chain.url);
      await rpc("evm_mine");
      await rpc("evm_setAutomine", [true]);
      first = await firstRun;
    } finally {
      await rpc("evm_setAutomine", [true]);
    }
    expect(first.code, first.text).to.equal(0);
    expect(second.code, second.text).to.equal(1);
    const error = second.out.error;
    expect(error.code).to.equal("VERSION_TAKEN");
    expect(error.message).to.match(/was taken first by release 0x[0-9a-f]{64} of provider 1, in a transaction not yet mined; nothing was sent/);
    expect(error.details.takenBy.releaseId).to.equal(first.out.release.releaseId);
    expect(error.details.tx).to.equal(null);
    expect((await nonces())[1], "the second author sent nothing").to.equal(before[1]);
    expect(existsSync(keyFile(second.keystore, error.details.releaseId))).to.equal(false);
    expect(existsSync(error.details.cleanup.artifact.file)).to.equal(false);
    expect(existsSync(keyFile(first.keystore, first.out.release.releaseId))).to.equal(true);
  });

  it("REQ-10d-i: two authors writing to one artifact folder: the file holding the published release's artifact is kept, and the error says so", async () => {
    const shared = path.join(dir, "shared-artifacts");
    const domain = registryDomain(31337, String(registry.target));
    const request = { component: COMPONENT, version: "1.2.0", file: path.join(dir, "image.bin"), hardware: ["acme-board"], depends: [] };
    const [late, early] = authors.map((a) => a.connect(provider));
    const keys = [new ContentKeyStore(path.join(dir, "shared-0")), new ContentKeyStore(path.join(dir, "shared-1"))];
    // The late author prepares first; the early one's artifact then overwrites the same file and is published first.
    const lateRelease = await prepareRelease({ registry, domain, sender: late, releaseSigner: late }, request, shared);
    const earlyRelease = await prepareRelease({ registry, domain, sender: early, releaseSigner: early }, request, shared);
    expect(lateRelease.artifactFile).to.equal(earlyRelease.artifactFile);
    await publishPrepared({ registry, sender: early, keys: keys[1] }, earlyRelease);
    let refused: { code?: string; message: string; details: Record<string, any> } | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
    await publishPrepared({ registry, sender: late, keys: keys[0] }, lateRelease).catch((err) => (refused = err));
    expect(refused?.code, String(refused)).to.equal("VERSION_TAKEN");
    expect(refused!.details.cleanup.contentKey.removed).to.equal(true);
    expect(refused!.details.cleanup.artifact).to.deep.equal({
      file: lateRelease.artifactFile,
      removed: false,
      why: `it holds the artifact of release ${earlyRelease.releaseId}, which is on the ledger`,
    });
    expect(refused!.message).to.include(`kept the artifact file ${lateRelease.artifactFile}: it holds the artifact of release ${earlyRelease.releaseId}`);
    expect(existsSync(earlyRelease.artifactFile)).to.equal(true);
    expect(await keys[1].load(earlyRelease.releaseId)).to.deep.equal(earlyRelease.contentKey);
    await expectCode(keys[0].load(lateRelease.releaseId), "CONTENT_KEY_MISSING");
  });
});
