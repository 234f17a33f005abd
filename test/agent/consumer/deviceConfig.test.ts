import { expect } from "chai";
import { promises as fs, realpathSync } from "node:fs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { deliverySourcesOf, loadDeviceConfig } from "../../../agent/consumer/deviceConfig";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";
import { makeImage, useTempRoot } from "./slots/slotFixture";

/** device.json as `ota-ledger device run` reads it (docs/device.md, docs/guides/device-integrator.md). */
describe("agent/consumer/deviceConfig: device.json", function () {
  const tmp = useTempRoot("ota-device-config-");
  const key = new Wallet(keccak256(toUtf8Bytes("device config test key")));
  const record = {
    id: keccak256(toUtf8Bytes("rev-a-0001")),
    publicKey: key.signingKey.compressedPublicKey,
    hardwareClass: 1,
    network: encodeBytes32String("plant-1"),
    region: encodeBytes32String("eu-west"),
  };

  /** Writes <dir>/device/device.json (and the key beside it) with `extra` merged in; returns its path. */
  async function write(extra: Record<string, unknown> = {}): Promise<string> {
    const dir = path.join(tmp.dir, "device");
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, "device.key"), key.privateKey + "\n", { mode: 0o600 });
    const file = path.join(dir, "device.json");
    await fs.writeFile(
      file,
      JSON.stringify({
        keyFile: "device.key",
        credential: { record, batchId: 0, proof: [] },
        components: ["acme.bootloader"],
        dataDir: "./data",
        healthCheck: "pass",
        ...extra,
      }),
    );
    return file;
  }
  const refusal = (file: string) =>
    loadDeviceConfig(file).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );

  it("runs the health-check command in device.json's folder, so ./selftest.sh is the script beside it", async () => {
    const file = await write({ healthCheck: { command: ["./selftest.sh", "arg"], timeoutMs: 10_000 } });
    const dir = path.dirname(file);
    // The script writes where it ran and what it was given, then passes.
    await fs.writeFile(path.join(dir, "selftest.sh"), '#!/bin/sh\npwd > ran-in.txt\necho "$1 $OTA_IMAGE" >> ran-in.txt\nexit 0\n', { mode: 0o755 });
    const config = await loadDeviceConfig(file);
    const slotDir = path.join(tmp.dir, "slot");
    expect(process.cwd()).to.not.equal(dir); // the agent runs elsewhere
    expect(await config.healthCheck(slotDir, makeImage("1.0.0", 16).image)).to.equal(true);
    const [ranIn, given] = (await fs.readFile(path.join(dir, "ran-in.txt"), "utf8")).trim().split("\n");
    expect(realpathSync(ranIn)).to.equal(realpathSync(dir));
    expect(given).to.equal(`arg ${path.join(slotDir, "image.bin")}`);
  });

  it("refuses a health-check command path that is not an executable file, naming where it looked", async () => {
    const missing = await refusal(await write({ healthCheck: { command: ["./no-such-check.sh"] } }));
    expect(missing?.code).to.equal("DEVICE_CONFIG");
    expect(missing?.message).to.include(`healthCheck.command[0] ${path.join(tmp.dir, "device", "no-such-check.sh")} is not an executable file`);
    const file = await write({ healthCheck: { command: ["./not-executable.sh"] } });
    await fs.writeFile(path.join(path.dirname(file), "not-executable.sh"), "#!/bin/sh\nexit 0\n", { mode: 0o644 });
    expect((await refusal(file))?.message).to.match(/not-executable\.sh is not an executable file/);
    // A bare name is looked up in PATH when the check runs.
    expect((await loadDeviceConfig(await write({ healthCheck: { command: ["sh", "-c", "exit 0"] } }))).healthCheck).to.be.a("function");
  });

  it("CAP-11.1-a-vi: takes pins by component name and version, as well as by id and encoded version", async () => {
    const config = await loadDeviceConfig(
      await write({ policy: { pins: { "acme.bootloader": "1.2.0", [componentId("acme.sensor-fw")]: encodeVersion("2.0.0-rc.1").toString() } } }),
    );
    expect(config.policy.pins).to.deep.equal({
      [componentId("acme.bootloader").toLowerCase()]: encodeVersion("1.2.0").toString(),
      [componentId("acme.sensor-fw").toLowerCase()]: encodeVersion("2.0.0-rc.1").toString(),
    });
    const bad = await refusal(await write({ policy: { pins: { "acme.bootloader": "1.2" } } }));
    expect(bad?.code).to.equal("DEVICE_CONFIG");
    expect(bad?.message).to.match(/policy\.pins\.acme\.bootloader: "1\.2" is not a version/);
  });

  it("refuses a key file it cannot read, and a key that is not the enrolled one, before anything runs", async () => {
    const noKey = await refusal(await write({ keyFile: "missing.key" }));
    expect(noKey?.code).to.equal("DEVICE_CONFIG");
    expect(noKey?.message).to.match(/keyFile .*missing\.key cannot be read \(ENOENT\)/);
    const other = Wallet.createRandom();
    const wrong = await refusal(await write({ keyFile: undefined, privateKey: other.privateKey }));
    expect(wrong?.code).to.equal("DEVICE_CONFIG");
    expect(wrong?.message).to.include(
      `the device key's public key is ${other.signingKey.compressedPublicKey}, but credential.record.publicKey is ${record.publicKey}`,
    );
  });

  it("REQ-10f-ii: lists firmware servers and IPFS gateways in order; serverUrl stays the one source without them, and is added when only gateways are listed", async () => {
    const two = [
      { kind: "server", url: "http://mirror-a.example:8600" },
      { kind: "gateway", url: "https://ipfs.example.org" },
    ];
    const config = await loadDeviceConfig(await write({ sources: two }));
    expect(config.sources).to.deep.equal(two);
    expect(deliverySourcesOf(config, "http://127.0.0.1:8600")).to.deep.equal(two);
    expect(deliverySourcesOf(await loadDeviceConfig(await write()), "http://127.0.0.1:8600")).to.deep.equal([{ kind: "server", url: "http://127.0.0.1:8600" }]);
    const gatewaysOnly = await loadDeviceConfig(await write({ sources: [two[1]] }));
    expect(deliverySourcesOf(gatewaysOnly, "http://127.0.0.1:8600")).to.deep.equal([two[1], { kind: "server", url: "http://127.0.0.1:8600" }]);
    const bad = await refusal(await write({ sources: [{ kind: "mirror", url: "http://x" }] }));
    expect(bad?.code).to.equal("DEVICE_CONFIG");
    expect(bad?.message).to.match(/sources\.0\.kind must be "server" \(a firmware server\) or "gateway"/);
    expect((await refusal(await write({ sources: [{ kind: "server", url: "ftp://x" }] })))?.message).to.match(/sources\.0\.url must be an http\(s\) URL/);
  });

  it("CAP-11.3-b issue 17: startJitterMs bounds the start jitter (0 disables it); negative, fractional or over ten minutes is refused, naming the field", async () => {
    expect((await loadDeviceConfig(await write({ startJitterMs: 500 }))).startJitterMs).to.equal(500);
    expect((await loadDeviceConfig(await write({ startJitterMs: 0 }))).startJitterMs).to.equal(0);
    expect((await loadDeviceConfig(await write())).startJitterMs).to.equal(undefined); // the agent's default, 2 s
    expect((await refusal(await write({ startJitterMs: -1 })))?.message).to.match(/startJitterMs must be 0 \(no delay\) or more/);
    expect((await refusal(await write({ startJitterMs: 600_001 })))?.message).to.match(/startJitterMs must be at most 600000 ms/);
    expect((await refusal(await write({ startJitterMs: 1.5 })))?.code).to.equal("DEVICE_CONFIG");
  });

  it("issue 15: retryMs sets how often what is pending is tried again; out of range is refused, naming the field", async () => {
    expect((await loadDeviceConfig(await write({ retryMs: 2000 }))).retryMs).to.equal(2000);
    expect((await loadDeviceConfig(await write())).retryMs).to.equal(undefined);
    expect((await refusal(await write({ retryMs: 5 })))?.message).to.match(/retryMs must be at least 100/);
    expect((await refusal(await write({ retryMs: "often" })))?.code).to.equal("DEVICE_CONFIG");
  });

  it("issue 16: ledgerProofs is auto unless given; on and off are taken; anything else is refused, naming the choices", async () => {
    expect((await loadDeviceConfig(await write())).ledgerProofs).to.equal("auto");
    expect((await loadDeviceConfig(await write({ ledgerProofs: "on" }))).ledgerProofs).to.equal("on");
    expect((await loadDeviceConfig(await write({ ledgerProofs: "off" }))).ledgerProofs).to.equal("off");
    const bad = await refusal(await write({ ledgerProofs: true }));
    expect(bad?.code).to.equal("DEVICE_CONFIG");
    expect(bad?.message).to.match(/ledgerProofs must be "auto" .*"on" \(required\) or "off"/);
  });

  it("CAP-11.4-a issue 16: pinnedSigners limits the keys releases are taken from (absent: every registered key); a malformed address is refused, naming the field", async () => {
    expect((await loadDeviceConfig(await write())).pinnedSigners).to.equal(undefined);
    const pinned = await loadDeviceConfig(await write({ pinnedSigners: ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"] }));
    expect(pinned.pinnedSigners).to.deep.equal(["0x70997970c51812dc3a010c7d01b50e0d17dc79c8"]);
    const bad = await refusal(await write({ pinnedSigners: ["acme"] }));
    expect(bad?.code).to.equal("DEVICE_CONFIG");
    expect(bad?.message).to.match(/pinnedSigners.*must be an address/);
    expect((await refusal(await write({ pinnedSigners: [] })))?.message).to.match(/at least one signer/);
  });

  it("CAP-11.2-m-a issue 19: tracker.transport is HTTP to tracker.url unless it names an MQTT broker; a wrong kind, URL or topic prefix, or HTTP without a url, is refused naming the field", async () => {
    const moduleId = keccak256(toUtf8Bytes("module"));
    const publicKey = key.signingKey.compressedPublicKey;
    const http = await loadDeviceConfig(await write({ tracker: { moduleId, publicKey, url: "http://127.0.0.1:8700" } }));
    expect(http.tracker).to.deep.equal({ moduleId, publicKey, url: "http://127.0.0.1:8700" });
    const mqtt = await loadDeviceConfig(
      await write({ tracker: { moduleId, publicKey, transport: { kind: "mqtt", url: "mqtts://broker.example:8883", topicPrefix: "plant-1/ota" } } }),
    );
    expect(mqtt.tracker?.transport).to.deep.equal({ kind: "mqtt", url: "mqtts://broker.example:8883", topicPrefix: "plant-1/ota" });
    const cases: [unknown, RegExp][] = [
      [{ kind: "amqp", url: "amqp://x" }, /tracker\.transport.* must be \{"kind": "http"\}/],
      [{ kind: "mqtt", url: "http://127.0.0.1:1883" }, /tracker\.transport\.url must be the MQTT broker's URL/],
      [{ kind: "mqtt", url: "mqtt://127.0.0.1:1883", topicPrefix: "ota/#" }, /tracker\.transport\.topicPrefix must be a topic prefix/],
      [{ kind: "http" }, /tracker\.url is missing: reports go to the tracker's URL over HTTP/],
    ];
    for (const [transport, message] of cases) {
      const bad = await refusal(await write({ tracker: { moduleId, publicKey, transport } }));
      expect(bad?.code, JSON.stringify(transport)).to.equal("DEVICE_CONFIG");
      expect(bad?.message, JSON.stringify(transport)).to.match(message);
    }
  });
});
