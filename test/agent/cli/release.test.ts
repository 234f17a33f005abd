import { expect } from "chai";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "./cliHarness";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { LedgerGate } from "../../../agent/server/ledgerGate";
import { startFirmwareServer, RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { fetchRelease } from "../../../agent/chain/releaseEvents";
import { downloadArtifact, decryptDownloaded, DeviceIdentity } from "../../../agent/consumer/downloadRelease";

describe("ota-ledger release (author's CLI)", function () {
  this.timeout(120_000);
  let c: CliChain;
  let store: EmbeddedStore;
  let db: ServerDatabase;
  let server: RunningFirmwareServer;
  let env: Record<string, string>;
  let device: DeviceIdentity;
  let image: string;

  before(async () => {
    c = await startCliChain();
    store = await EmbeddedStore.open({ directory: path.join(c.dir, "server-ipfs") });
    db = new ServerDatabase(path.join(c.dir, "server.db"));
    const domain = registryDomain(31337, String(c.registry.target));
    server = await startFirmwareServer({ gate: new LedgerGate(c.registry.connect(c.provider), c.fleet.connect(c.provider), domain), store, db, pollMs: 200 });
    env = { OTA_SERVER_URL: server.url };
    const key = new Wallet(keccak256(toUtf8Bytes("cli device key")));
    device = {
      privateKey: key.privateKey,
      credential: { record: { id: keccak256(toUtf8Bytes("cli-device-1")), publicKey: key.signingKey.compressedPublicKey, hardwareClass: 1, network: encodeBytes32String("factory"), region: encodeBytes32String("eu") }, batchId: 0, proof: [] },
    };
    const admin = c.admin.address;
    for (const args of [
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "acme-board-rev-a"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
      ["component", "register", "acme.sensor-fw", "--provider", "1"],
      ["device", "enrol", "--id", "cli-device-1", "--public-key", key.signingKey.compressedPublicKey, "--hardware", "acme-board-rev-a", "--network", "factory", "--region", "eu"],
      ["hardware", "register", "acme-board-rev-b"],
      ["device", "enrol", "--id", "cli-device-rev-b", "--public-key", Wallet.createRandom().signingKey.compressedPublicKey, "--hardware", "acme-board-rev-b", "--network", "factory", "--region", "eu"],
      ["device", "enrol", "--id", "cli-device-stolen", "--public-key", Wallet.createRandom().signingKey.compressedPublicKey, "--hardware", "acme-board-rev-a", "--network", "factory", "--region", "eu"],
      ["device", "suspend", "cli-device-stolen", "--reason", "reported stolen"],
    ]) {
      const r = await c.run(args, env);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).to.equal(0);
    }
    image = path.join(c.dir, "bootloader-1.0.0.bin");
    writeFileSync(image, Buffer.alloc(300 * 1024 + 7, 0x42));
  });
  after(async () => {
    await server?.close();
    await store?.close();
    db?.close();
    await c?.stop();
  });

  it("--dry-run checks everything and sends nothing", async () => {
    const before = await c.blockNumber();
    const r = await c.run(["release", "publish", "--component", "acme.bootloader", "--version", "1.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--dry-run", "--json"], env);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.json().dryRun).to.equal(true);
    expect(r.json().release.cid).to.match(/^baf/);
    expect(await c.blockNumber()).to.equal(before);
    expect(db.artifacts()).to.have.length(0);
  });

  it("PROC-1 REQ-10f-i CAP-11.3-a: the author publishes and submits, grants, and a device fetches, decrypts and checks the ledger's hash", async () => {
    const r = await c.run(["release", "publish", "--component", "acme.bootloader", "--version", "1.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--json"], env);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const out = r.json();
    expect(out.tx.gasUsed).to.be.above(0);
    expect(out.upload.status).to.equal(201);
    const releaseId: string = out.release.releaseId;
    expect(db.artifact(releaseId)?.cid).to.equal(out.release.cid);

    const g = await c.run(["release", "grant", releaseId, "--device", "cli-device-1", "--json"], env);
    expect(g.code, g.stderr + g.stdout).to.equal(0);
    expect(g.json().granted).to.deep.equal([device.credential.record.id]);

    const ledger = (await fetchRelease(c.registry.connect(c.provider), registryDomain(31337, String(c.registry.target)), releaseId))!;
    const artifactFile = path.join(c.dir, "device.otae");
    const imageFile = path.join(c.dir, "device.bin");
    const { wrappedKey } = await downloadArtifact({ serverUrl: server.url, device, installed: [], release: ledger, artifactFile });
    const { fileHash } = await decryptDownloaded({ device, release: ledger, artifactFile, imageFile, wrappedKey });
    expect(fileHash).to.equal(ledger.record.fileHash);
    expect(readFileSync(imageFile)).to.deep.equal(readFileSync(image));
  });

  for (const [label, args, code] of [
    ["a version not greater than the latest", ["--component", "acme.bootloader", "--version", "1.0.0"], "VERSION_NOT_GREATER"],
    ["an unknown component", ["--component", "acme.nothing", "--version", "1.0.0"], "UNKNOWN_COMPONENT"],
    ["an unknown hardware class", ["--component", "acme.sensor-fw", "--version", "1.0.0", "--hardware", "rev-z"], "UNKNOWN_HARDWARE"],
    ["a dependency nothing satisfies", ["--component", "acme.sensor-fw", "--version", "1.0.0", "--depends", "acme.bootloader ^2.0.0"], "DEPENDENCY_UNSATISFIED"],
    ["a malformed dependency", ["--component", "acme.sensor-fw", "--version", "1.0.0", "--depends", "acme.bootloader"], "DEPENDENCY_FORMAT"],
    ["a missing file", ["--component", "acme.sensor-fw", "--version", "1.0.0", "--file", "/nonexistent/image.bin"], "FILE_MISSING"],
  ] as [string, string[], string][]) {
    it(`refuses ${label} with ${code} before sending anything`, async () => {
      const before = await c.blockNumber();
      const base: Record<string, string> = { "--file": image, "--hardware": "acme-board-rev-a" };
      for (let i = 0; i < args.length; i += 2) base[args[i]] = args[i + 1];
      const argv = ["release", "publish", ...Object.entries(base).flat(), "--json"];
      const r = await c.run(argv, env);
      expect(r.code).to.equal(2);
      expect(r.json().error.code, r.stdout).to.equal(code);
      expect(await c.blockNumber()).to.equal(before);
    });
  }

  it("grant --device all-eligible takes every active device the release supports and lists the others with the reason", async () => {
    const releaseId = db.artifacts()[0].releaseId;
    const r = await c.run(["release", "grant", releaseId, "--device", "all-eligible", "--json"], env);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const out = r.json();
    expect(out.granted).to.deep.equal([device.credential.record.id]);
    const reasons = Object.fromEntries(out.skipped.map((x: { deviceId: string; reason: string }) => [x.deviceId, x.reason]));
    expect(reasons[keccak256(toUtf8Bytes("cli-device-rev-b"))]).to.match(/hardware class 2 is not supported/);
    expect(reasons[keccak256(toUtf8Bytes("cli-device-stolen"))]).to.match(/suspended/);
  });

  it("grant refuses a device that is not enrolled, naming it", async () => {
    const releaseId = db.artifacts()[0].releaseId;
    const r = await c.run(["release", "grant", releaseId, "--device", "cli-device-unknown", "--json"], env);
    expect(r.code).to.equal(2);
    expect(r.json().error.code).to.equal("DEVICE_UNKNOWN");
  });

  it("a submission that fails after publishing says so (exit 1), and `release submit` completes it", async () => {
    const down = { OTA_SERVER_URL: "http://127.0.0.1:9" }; // nothing listens there
    const r = await c.run(["release", "publish", "--component", "acme.sensor-fw", "--version", "5.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--json"], down);
    expect(r.code).to.equal(1);
    const error = r.json().error;
    expect(error.code).to.equal("SUBMISSION_FAILED");
    const [, releaseId, artifact] = /release (0x[0-9a-f]{64}) is published.*--artifact (\S+)`/.exec(error.message)!;
    expect(Number(await c.registry.connect(c.provider).releaseStatus(releaseId))).to.equal(1); // on the ledger
    const again = await c.run(["release", "submit", releaseId, "--artifact", artifact, "--json"], env);
    expect(again.code, again.stderr + again.stdout).to.equal(0);
    expect(db.artifact(releaseId)?.state).to.equal("serving");
  });
});
