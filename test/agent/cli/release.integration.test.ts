import { expect } from "chai";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { cliChainWithServer, type CliChain, type CliChainWithServer } from "./cliHarness";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import type { RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import { registryDomain } from "../../../agent/crypto/releaseSignature";
import { fetchRelease } from "../../../agent/chain/releaseEvents";
import { verifyLedgerRelease } from "../../../agent/chain/verifyLedgerRelease";
import { ERC1271SignerMock__factory } from "../../../typechain-types";
import { downloadArtifact, decryptDownloaded, DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { prepareRelease, publishPrepared } from "../../../agent/author/publishRelease";
import { ContentKeyStore } from "../../../agent/author/contentKeyStore";

describe("ota-ledger release (author's CLI)", function () {
  this.timeout(120_000);
  let c: CliChain;
  let db: ServerDatabase;
  let server: RunningFirmwareServer;
  let env: Record<string, string>;
  let setup: CliChainWithServer["setup"];
  let stop: CliChainWithServer["stop"] | undefined;
  let device: DeviceIdentity;
  let image: string;

  before(async () => {
    ({ c, db, server, env, setup, stop } = await cliChainWithServer());
    const key = new Wallet(keccak256(toUtf8Bytes("cli device key")));
    device = {
      privateKey: key.privateKey,
      credential: {
        record: {
          id: keccak256(toUtf8Bytes("cli-device-1")),
          publicKey: key.signingKey.compressedPublicKey,
          hardwareClass: 1,
          network: encodeBytes32String("factory"),
          region: encodeBytes32String("eu"),
        },
        batchId: 0,
        proof: [],
      },
    };
    const admin = c.admin.address;
    await setup([
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "acme-board-rev-a"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
      ["component", "register", "acme.sensor-fw", "--provider", "1"],
      [
        "device",
        "enrol",
        "--id",
        "cli-device-1",
        "--public-key",
        key.signingKey.compressedPublicKey,
        "--hardware",
        "acme-board-rev-a",
        "--network",
        "factory",
        "--region",
        "eu",
      ],
      ["hardware", "register", "acme-board-rev-b"],
      [
        "device",
        "enrol",
        "--id",
        "cli-device-rev-b",
        "--public-key",
        Wallet.createRandom().signingKey.compressedPublicKey,
        "--hardware",
        "acme-board-rev-b",
        "--network",
        "factory",
        "--region",
        "eu",
      ],
      [
        "device",
        "enrol",
        "--id",
        "cli-device-stolen",
        "--public-key",
        Wallet.createRandom().signingKey.compressedPublicKey,
        "--hardware",
        "acme-board-rev-a",
        "--network",
        "factory",
        "--region",
        "eu",
      ],
      ["device", "suspend", "cli-device-stolen", "--reason", "reported stolen"],
    ]);
    image = path.join(c.dir, "bootloader-1.0.0.bin");
    writeFileSync(image, Buffer.alloc(300 * 1024 + 7, 0x42));
  });
  after(async () => {
    await stop?.();
  });

  it("--dry-run checks everything and sends nothing", async () => {
    const before = await c.blockNumber();
    const r = await c.run(
      ["release", "publish", "--component", "acme.bootloader", "--version", "1.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--dry-run", "--json"],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.json().dryRun).to.equal(true);
    expect(r.json().release.cid).to.match(/^baf/);
    expect(await c.blockNumber()).to.equal(before);
    expect(db.artifacts()).to.have.length(0);
  });

  it("PROC-1 REQ-10f-i CAP-11.3-a: the author publishes and submits, grants, and a device fetches, decrypts and checks the ledger's hash", async () => {
    const r = await c.run(
      ["release", "publish", "--component", "acme.bootloader", "--version", "1.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--json"],
      env,
    );
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
    [
      "a dependency nothing satisfies",
      ["--component", "acme.sensor-fw", "--version", "1.0.0", "--depends", "acme.bootloader ^2.0.0"],
      "DEPENDENCY_UNSATISFIED",
    ],
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

  it("refuses a release-signing key its provider has not registered with SIGNER_NOT_REGISTERED, before packaging the image", async () => {
    const keyFile = path.join(c.dir, "unregistered-signer.key");
    const stranger = Wallet.createRandom();
    writeFileSync(keyFile, stranger.privateKey + "\n");
    const before = await c.blockNumber();
    const r = await c.run(
      [
        "release",
        "publish",
        "--component",
        "acme.sensor-fw",
        "--version",
        "9.0.0",
        "--file",
        image,
        "--hardware",
        "acme-board-rev-a",
        "--signer-key-file",
        keyFile,
        "--json",
      ],
      env,
    );
    expect(r.code, r.stdout + r.stderr).to.equal(2);
    expect(r.json().error.code).to.equal("SIGNER_NOT_REGISTERED");
    expect(r.json().error.message).to.include(`ota-ledger provider signer add 1 ${stranger.address}`);
    expect(existsSync(path.join(c.dir, ".ota-ledger", "artifacts", "acme.sensor-fw-9.0.0.otae")), "no artifact written").to.equal(false);
    expect(await c.blockNumber()).to.equal(before);
  });

  it("CAP-11.3-c: refuses to publish for a barred provider with PROVIDER_BARRED, before packaging the image", async () => {
    expect((await c.run(["provider", "bar", "1", "--reason", "under review"], env)).code).to.equal(0);
    try {
      const before = await c.blockNumber();
      const r = await c.run(
        ["release", "publish", "--component", "acme.sensor-fw", "--version", "9.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--json"],
        env,
      );
      expect(r.code, r.stdout + r.stderr).to.equal(2);
      expect(r.json().error.code).to.equal("PROVIDER_BARRED");
      expect(r.json().error.message).to.include("ota-ledger provider unbar 1");
      expect(existsSync(path.join(c.dir, ".ota-ledger", "artifacts", "acme.sensor-fw-9.0.0.otae")), "no artifact written").to.equal(false);
      expect(await c.blockNumber()).to.equal(before);
    } finally {
      expect((await c.run(["provider", "unbar", "1"], env)).code).to.equal(0);
    }
  });

  it("REQ-10d-ii: publishes with an ERC-1271 contract signer (--signer), whose owner key signs; refuses a key the contract does not vouch for", async () => {
    const owner = Wallet.createRandom();
    const contract = await (await new ERC1271SignerMock__factory(c.admin).deploy(owner.address)).waitForDeployment();
    const address = await contract.getAddress();
    expect((await c.run(["provider", "signer", "add", "1", address], env)).code).to.equal(0);
    const ownerKey = path.join(c.dir, "contract-owner.key");
    writeFileSync(ownerKey, owner.privateKey + "\n");
    const strangerKey = path.join(c.dir, "contract-stranger.key");
    writeFileSync(strangerKey, Wallet.createRandom().privateKey + "\n");
    const args = [
      "release",
      "publish",
      "--component",
      "acme.sensor-fw",
      "--version",
      "4.0.0",
      "--file",
      image,
      "--hardware",
      "acme-board-rev-a",
      "--signer",
      address,
      "--json",
    ];

    const refused = await c.run([...args, "--signer-key-file", strangerKey], env);
    expect(refused.code, refused.stdout + refused.stderr).to.equal(2);
    expect(refused.json().error.code).to.equal("SIGNATURE_REFUSED");
    expect(refused.json().error.message).to.include(`the contract signer ${address} does not vouch for this signature`);

    const r = await c.run([...args, "--signer-key-file", ownerKey], env);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.json().release.signer).to.equal(address);
    const ledger = (await fetchRelease(c.registry.connect(c.provider), registryDomain(31337, String(c.registry.target)), r.json().release.releaseId))!;
    expect(ledger.signer).to.equal(address);
    await verifyLedgerRelease({ registry: c.registry.connect(c.provider), domain: registryDomain(31337, String(c.registry.target)) }, ledger); // as a device checks it: the contract is asked
  });

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

  it("issue 17: a firmware server that does not answer stops the publication: nothing is published (exit 1, SUBMISSION_FAILED)", async () => {
    const down = { OTA_SERVER_URL: "http://127.0.0.1:9" }; // nothing listens there
    const before = await c.blockNumber();
    const r = await c.run(
      ["release", "publish", "--component", "acme.sensor-fw", "--version", "5.0.0", "--file", image, "--hardware", "acme-board-rev-a", "--json"],
      down,
    );
    expect(r.code).to.equal(1);
    const error = r.json().error;
    expect(error.code).to.equal("SUBMISSION_FAILED");
    expect(error.message).to.match(/^nothing was published: release 0x[0-9a-f]{64} was not made ready on http:\/\/127\.0\.0\.1:9/);
    expect(await c.blockNumber()).to.equal(before);
  });

  it("issue 17 REQ-10f-i: publish --grant submits and grants before the transaction: a device asking right after the publish block gets its key at once", async () => {
    const r = await c.run(
      [
        "release",
        "publish",
        "--component",
        "acme.sensor-fw",
        "--version",
        "5.0.0",
        "--file",
        image,
        "--hardware",
        "acme-board-rev-a",
        "--grant",
        "all-eligible",
        "--json",
      ],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const out = r.json();
    expect(out.upload).to.include({ status: 201, state: "prepared" });
    expect(out.grant.granted).to.deep.equal([device.credential.record.id]);
    expect(out.grant.skipped.map((x: { reason: string }) => x.reason).join()).to.match(/suspended/);
    const releaseId: string = out.release.releaseId;
    // The server held the artifact before the block that published it.
    const block = await c.provider.getBlock(out.tx.block);
    expect(db.artifact(releaseId)!.acceptedAt).to.be.at.most(block!.timestamp * 1000 + 999);
    // At once, before the server's follower has seen the block or not: no KEY_NOT_GRANTED, no ARTIFACT_NOT_AVAILABLE.
    const ledger = (await fetchRelease(c.registry.connect(c.provider), registryDomain(31337, String(c.registry.target)), releaseId))!;
    const artifactFile = path.join(c.dir, "device-5.otae");
    const { wrappedKey } = await downloadArtifact({ serverUrl: server.url, device, installed: [], release: ledger, artifactFile });
    expect(wrappedKey).to.have.length.above(0);
  });

  it("`release submit` completes the submission of a release published without one (the path before issue 17), and says so when the server already holds it", async () => {
    const registry = c.registry.connect(c.admin);
    const domain = registryDomain(31337, String(c.registry.target));
    const prepared = await prepareRelease(
      { registry, domain, sender: c.admin, releaseSigner: c.admin },
      { component: "acme.sensor-fw", version: "6.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
      path.join(c.dir, "sdk-artifacts"),
    );
    await publishPrepared({ registry, sender: c.admin, keys: new ContentKeyStore(path.join(c.dir, "sdk-keys")) }, prepared);
    const { releaseId, artifactFile: artifact } = prepared;
    const again = await c.run(["release", "submit", releaseId, "--artifact", artifact, "--json"], env);
    expect(again.code, again.stderr + again.stdout).to.equal(0);
    expect(db.artifact(releaseId)?.state).to.equal("serving");
    expect(again.json()).to.include({ status: 201, alreadyHeld: false });
    // Once the server holds it, submitting again (whatever the file) says so instead of "submitted".
    const third = await c.run(["release", "submit", releaseId, "--artifact", artifact], env);
    expect(third.code, third.stderr + third.stdout).to.equal(0);
    expect(third.stdout).to.include(`already holds release ${releaseId}`);
  });
});
