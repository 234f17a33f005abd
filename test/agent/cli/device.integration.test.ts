import { expect } from "chai";
import { promises as fs } from "node:fs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "./cliHarness";

const deviceKey = () => Wallet.createRandom().signingKey.compressedPublicKey;

describe("ota-ledger device commands", function () {
  this.timeout(120_000);
  let c: CliChain;
  const sensor = keccak256(toUtf8Bytes("sensor-0001"));
  const sensorKey = deviceKey();

  before(async () => {
    c = await startCliChain();
    for (const args of [
      ["hardware", "register", "acme-board-rev-a"],
      ["hardware", "register", "acme-board-rev-b"],
    ]) {
      expect((await c.run(args)).code).to.equal(0);
    }
  });
  after(async () => {
    await c?.stop();
  });

  it("enrols one device, hashing a label id and resolving the hardware class by name", async () => {
    const r = await c.run([
      "device",
      "enrol",
      "--id",
      "sensor-0001",
      "--public-key",
      sensorKey,
      "--hardware",
      "acme-board-rev-b",
      "--network",
      "lab",
      "--region",
      "eu-west",
    ]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(
      new RegExp(`^enrolled device ${sensor}\\n  hardware class 2, network lab, region eu-west\\ntx 0x[0-9a-f]{64} in block \\d+, gas used \\d+\\n$`),
    );
  });

  it("reports a singly enrolled device as active and not suspended, from its enrolment event", async () => {
    const out = (await c.run(["device", "status", "sensor-0001", "--json"], { OTA_PRIVATE_KEY: undefined })).json();
    expect(out.device).to.deep.include({ id: sensor, standing: "active", suspended: false, enrolment: "single", batchId: null });
    expect(out.device.record).to.deep.equal({
      publicKey: sensorKey,
      hardwareClass: 2,
      network: encodeBytes32String("lab"),
      region: encodeBytes32String("eu-west"),
    });
  });

  it("suspends a device with a reason and reinstates it", async () => {
    const suspended = await c.run(["device", "suspend", sensor, "--reason", "tampering detected", "--json"]);
    expect(suspended.json()).to.include({ device: sensor, suspended: true, reason: "tampering detected" });
    const status = await c.run(["device", "status", sensor]);
    expect(status.stdout).to.include("standing   suspended (enrolled singly)");
    expect(status.stdout).to.include("suspended  yes");
    expect((await c.run(["device", "reinstate", "sensor-0001"])).stdout).to.include(`device ${sensor} is reinstated`);
    expect(await c.fleet.isDeviceSuspended(sensor)).to.equal(false);
  });

  it("reports a device never enrolled as unknown", async () => {
    const out = (await c.run(["device", "status", "nobody", "--json"])).json();
    expect(out.device).to.include({ standing: "unknown", enrolment: "none", record: null });
  });

  it("explains enrolling the same device twice as the fleet registry's refusal", async () => {
    const r = await c.run([
      "device",
      "enrol",
      "--id",
      "sensor-0001",
      "--public-key",
      deviceKey(),
      "--hardware",
      "1",
      "--network",
      "lab",
      "--region",
      "eu-west",
    ]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include(`error [FleetRegistryDeviceAlreadyEnrolled]: the ledger refused: device ${sensor} is already enrolled`);
  });

  it("enrols a batch from a JSON file, writes each device's proof beside it, and the proofs show standing", async () => {
    const records = ["gw-1", "gw-2", "gw-3"].map((id, i) => ({
      id,
      publicKey: deviceKey(),
      hardware: i === 0 ? 1 : "acme-board-rev-b",
      network: "field",
      region: "us-east",
    }));
    const file = path.join(c.dir, "gateways.json");
    await fs.writeFile(file, JSON.stringify(records));
    const r = await c.run([
      "device",
      "enrol",
      "--batch",
      "gateways.json",
      "--records-link",
      "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
      "--json",
    ]);
    expect(r.code, r.stdout).to.equal(0);
    const proofsFile = path.join(c.dir, "gateways.proofs.json");
    expect(r.json().batch).to.deep.include({ id: 1, count: 3, proofsFile });
    const proofs = JSON.parse(await fs.readFile(proofsFile, "utf8"));
    expect(proofs).to.include({ batchId: 1, chainId: "31337", root: r.json().batch.root });
    expect(proofs.devices.map((d: { id: string }) => d.id)).to.deep.equal(["gw-1", "gw-2", "gw-3"].map((l) => keccak256(toUtf8Bytes(l))));
    expect(proofs.devices[1].hardwareClass).to.equal(2);
    expect((await c.fleet.deviceBatch(1)).count).to.equal(3n);

    const status = (await c.run(["device", "status", "gw-2", "--proofs", "gateways.proofs.json", "--json"])).json();
    expect(status.device).to.include({ standing: "active", enrolment: "batch", batchId: 1 });
  });

  it("refuses a batch with an unknown hardware class before sending anything", async () => {
    await fs.writeFile(
      path.join(c.dir, "bad.json"),
      JSON.stringify([{ id: "x-1", publicKey: deviceKey(), hardware: "no-such-board", network: "n", region: "r" }]),
    );
    const before = await c.blockNumber();
    const r = await c.run(["device", "enrol", "--batch", "bad.json"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(
      'record 0 hardware: "no-such-board" is not a registered hardware class (registered: acme-board-rev-a (1), acme-board-rev-b (2))',
    );
    expect(await c.blockNumber()).to.equal(before);
  });

  it("refuses malformed device input with a message that says how to fix it, sending nothing", async () => {
    const before = await c.blockNumber();
    const base = ["device", "enrol", "--id", "d-9", "--public-key", deviceKey(), "--hardware", "1", "--network", "lab", "--region", "eu"];
    const withValue = (flag: string, value: string) => base.map((a, i) => (base[i - 1] === flag ? value : a));
    const cases: [string[], RegExp][] = [
      [withValue("--public-key", "0x04" + "11".repeat(32)), /--public-key: .* is not a compressed public key: give the 33-byte compressed secp256k1 key/],
      [withValue("--hardware", "rev-z"), /--hardware: "rev-z" is not a registered hardware class/],
      [withValue("--hardware", "7"), /--hardware: "7" is not a registered hardware class/],
      [withValue("--id", "0x1234"), /--id: "0x1234" looks like hex but is not 32 bytes/],
      [withValue("--region", "a-region-label-longer-than-31-bytes"), /--region: .* is longer than 31 bytes: shorten it/],
      [base.slice(0, 4), /device enrol needs --public-key, --hardware, --network, --region/],
      [["device", "enrol", "--batch", "gateways.json", "--id", "x"], /use either --batch <file> or the single-device options/],
      [["device", "enrol", "--batch", "missing.json"], /--batch .*missing\.json cannot be read as JSON \(ENOENT\)/],
      [["device", "suspend", "d-9", "--reason", " "], /--reason: the reason is empty/],
    ];
    for (const [args, message] of cases) {
      const r = await c.run(args);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.stderr, args.join(" ")).to.match(message);
    }
    expect(await c.blockNumber()).to.equal(before);
  });
});
