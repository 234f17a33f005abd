import { expect } from "chai";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "../cli/cliHarness";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { LedgerGate } from "../../../agent/server/ledgerGate";
import { startFirmwareServer, RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { ContentKeyStore } from "../../../agent/author/contentKeyStore";
import { prepareRelease, publishPrepared } from "../../../agent/author/publishRelease";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { grantKeys } from "../../../agent/author/grantKeys";
import { componentId } from "../../../agent/core/release";
import { FaultyStore } from "../../helpers/faultyStore";
import { loadBootState } from "../../../agent/consumer/slots/bootState";

function runChild(
  settingsFile: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(__dirname, "agentCrashChild.ts")], {
      env: { ...process.env, OTA_AGENT_JSON: settingsFile, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe("agent/consumer/deviceAgent killed mid-download (REQ-10c-ii)", function () {
  this.timeout(180_000);
  let c: CliChain;
  let dir: string;
  let store: FaultyStore;
  let db: ServerDatabase;
  let server: RunningFirmwareServer;

  before(async () => {
    c = await startCliChain();
    dir = mkdtempSync(path.join(tmpdir(), "ota-agent-crash-"));
    store = new FaultyStore(await EmbeddedStore.open({ directory: path.join(dir, "ipfs") }));
    db = new ServerDatabase(path.join(dir, "server.db"));
    const domain = registryDomain(31337, String(c.registry.target));
    server = await startFirmwareServer({ gate: new LedgerGate(c.registry.connect(c.provider), c.fleet.connect(c.provider), domain), store, db });
  });
  after(async () => {
    await server?.close();
    await store?.close();
    db?.close();
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("REQ-10c-ii CAP-11.1-a-iii: after a SIGKILL while downloading, nothing was installed, and the next run resumes and confirms", async () => {
    const admin = c.registry.connect(c.admin);
    let nonce = Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"]));
    for (const tx of [
      () => admin.registerProvider("Acme", { nonce: nonce++ }),
      () => admin.addProviderSigner(1, c.admin.address, { nonce: nonce++ }),
      () => admin.registerAuthor(c.admin.address, 1, { nonce: nonce++ }),
      () => admin.registerHardwareClass("rev-a", { nonce: nonce++ }),
      () => admin.registerComponent("acme.bootloader", 1, { nonce: nonce++ }),
    ])
      await (await tx()).wait();
    const deviceKey = Wallet.createRandom();
    const record = {
      id: keccak256(toUtf8Bytes("crash device")),
      publicKey: deviceKey.signingKey.compressedPublicKey,
      hardwareClass: 1,
      network: encodeBytes32String("n"),
      region: encodeBytes32String("r"),
    };
    await (await c.fleet.connect(c.admin).enrolDevice(record, { nonce: nonce++ })).wait();

    const image = path.join(dir, "image.bin");
    writeFileSync(image, Buffer.alloc(8 * 1024 * 1024, 3));
    const domain = registryDomain(31337, String(c.registry.target));
    const keys = new ContentKeyStore(path.join(dir, "keys"));
    const registry = c.registry.connect(c.admin);
    const prepared = await prepareRelease(
      { registry, domain, sender: c.admin, releaseSigner: c.admin },
      { component: "acme.bootloader", version: "1.0.0", file: image, hardware: ["rev-a"], depends: [] },
      dir,
    );
    await publishPrepared({ registry, sender: c.admin, keys }, prepared);
    await uploadArtifact({ serverUrl: server.url, author: c.admin }, prepared.releaseId, prepared.artifactFile);
    await grantKeys({ registry, fleet: c.fleet.connect(c.admin), domain, author: c.admin, keys, serverUrl: server.url }, prepared.releaseId, {
      deviceIds: [record.id],
    });

    const settings = path.join(dir, "agent.json");
    const dataDir = path.join(dir, "device");
    writeFileSync(
      settings,
      JSON.stringify({
        rpcUrl: c.url,
        chainId: 31337,
        registry: String(c.registry.target),
        fleet: String(c.fleet.target),
        serverUrl: server.url,
        device: { privateKey: deviceKey.privateKey, credential: { record, batchId: 0, proof: [] } },
        dataDir,
        component: componentId("acme.bootloader"),
        releaseId: prepared.releaseId,
      }),
    );

    store.fault = { kind: "trickle", pieceBytes: 64 * 1024, delayMs: 5 }; // slow enough to be caught mid-way
    const killed = await runChild(settings, { OTA_KILL_AFTER_BYTES: String(1024 * 1024) });
    expect(killed.signal, killed.stderr).to.equal("SIGKILL");
    const partial = statSync(path.join(dataDir, "downloads", `${prepared.releaseId.toLowerCase()}.otae`)).size;
    expect(partial)
      .to.be.above(1024 * 1024)
      .and.below(statSync(prepared.artifactFile).size);
    const afterKill = await loadBootState(path.join(dataDir, "slots"));
    expect("state" in afterKill && afterKill.state.components[componentId("acme.bootloader")]).to.equal(undefined); // nothing installed

    store.fault = { kind: "none" };
    const done = await runChild(settings);
    expect(done.code, done.stderr).to.equal(0);
    const { outcome, boot } = JSON.parse(done.stdout.trim().split("\n").pop()!);
    expect(outcome).to.include({ outcome: "confirmed", code: "OK" });
    const comp = boot.components[componentId("acme.bootloader")];
    expect(comp.slots[comp.active].releaseId).to.equal(prepared.releaseId.toLowerCase());
    // The second run asked only for the rest: a Range request from the verified prefix.
    const ranged = db.downloads({ releaseId: prepared.releaseId }).filter((d) => d.kind === "artifact" && (d.rangeStart ?? 0) > 0);
    expect(ranged.length).to.be.at.least(1);
    expect(ranged[0].rangeStart).to.be.at.most(partial);
  });
});
