import { expect } from "chai";
import { promises as fs, statSync, writeFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Wallet } from "ethers";
import { cliChainWithServer, type CliChain, type CliChainWithServer } from "./cliHarness";
import { loadBootState } from "../../../agent/consumer/slots/bootState";
import { componentId } from "../../../agent/core/release";
import { encodeVersion } from "../../../agent/core/version";

const BOOT = componentId("acme.bootloader").toLowerCase();

/**
 * The device integrator's commands beside `device run`: a key for a new device, and installing a
 * release by hand (CAP-11.1-b), the way out of safe mode and of a release that failed its trial.
 */
describe("ota-ledger device keygen and device install (CAP-11.1-b)", function () {
  this.timeout(180_000);
  let c: CliChain;
  let env: Record<string, string>;
  let setup: CliChainWithServer["setup"];
  let stop: CliChainWithServer["stop"] | undefined;
  let deviceDir: string;
  let config: string;
  const published: Record<string, { releaseId: string; artifactFile: string }> = {};

  before(async () => {
    ({ c, env, setup, stop } = await cliChainWithServer());
    const admin = c.admin.address;
    await setup([
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "acme-board-rev-a"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
    ]);
    deviceDir = path.join(c.dir, "device");
    config = path.join(deviceDir, "device.json");
  });
  after(async () => {
    await stop?.();
  });

  async function publish(version: string): Promise<void> {
    const image = path.join(c.dir, `bootloader-${version}.bin`);
    writeFileSync(image, Buffer.alloc(70 * 1024 + version.length, version.charCodeAt(2)));
    const r = await c.run(
      ["release", "publish", "--component", "acme.bootloader", "--version", version, "--file", image, "--hardware", "acme-board-rev-a", "--json"],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    published[version] = { releaseId: r.json().release.releaseId, artifactFile: r.json().release.artifactFile };
    const g = await c.run(["release", "grant", published[version].releaseId, "--device", "rev-a-0001"], env);
    expect(g.code, g.stderr + g.stdout).to.equal(0);
  }
  const boot = async () => {
    const loaded = await loadBootState(path.join(deviceDir, "data", "slots"));
    if ("corrupt" in loaded) throw new Error(loaded.corrupt);
    return loaded.state;
  };

  it("device keygen writes a new key (mode 0600) and prints the public key to enrol; it never overwrites a key", async () => {
    const r = await c.run(["device", "keygen", "device/device.key", "--json"]);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const { keyFile, publicKey } = r.json();
    expect(keyFile).to.equal(path.join(deviceDir, "device.key"));
    expect(statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(new Wallet((await fs.readFile(keyFile, "utf8")).trim()).signingKey.compressedPublicKey).to.equal(publicKey);
    const again = await c.run(["device", "keygen", "device/device.key", "--json"]);
    expect(again.code).to.equal(2);
    expect(again.json().error.code).to.equal("KEY_FILE_EXISTS");

    const enrol = await c.run([
      "device",
      "enrol",
      "--id",
      "rev-a-0001",
      "--public-key",
      publicKey,
      "--hardware",
      "acme-board-rev-a",
      "--network",
      "plant-1",
      "--region",
      "eu-west",
      "--json",
    ]);
    expect(enrol.code, enrol.stderr + enrol.stdout).to.equal(0);
    // The health check passes unless a file named "fail" lies beside device.json.
    await fs.writeFile(path.join(deviceDir, "selftest.sh"), "#!/bin/sh\ntest ! -e fail\n", { mode: 0o755 });
    await fs.writeFile(
      config,
      JSON.stringify({
        keyFile: "device.key",
        credential: { record: enrol.json().device, batchId: 0, proof: [] },
        components: ["acme.bootloader"],
        dataDir: "./data",
        policy: { maxLedgerAgeSeconds: 10 * 365 * 24 * 3600 },
        healthCheck: { command: ["./selftest.sh"], timeoutMs: 10_000 },
      }),
    );
  });

  it("CAP-11.1-b: a device in safe mode takes a release by hand from its artifact file, with the floors given, and leaves safe mode", async () => {
    await publish("1.0.0");
    // A garbled boot state: the agent keeps it aside and starts in safe mode.
    await fs.mkdir(path.join(deviceDir, "data", "slots", BOOT, "a"), { recursive: true });
    await fs.writeFile(path.join(deviceDir, "data", "slots", "boot-state.json"), "{ torn");
    const refused = await c.run(["device", "run", "--device-config", config, "--once", "--json"], env);
    expect(refused.code, refused.stderr + refused.stdout).to.equal(0);
    expect(refused.json().devices[0]).to.include({ safeMode: true });

    const r = await c.run(
      [
        "device",
        "install",
        "--device-config",
        config,
        "--release",
        published["1.0.0"].releaseId,
        "--artifact",
        published["1.0.0"].artifactFile,
        "--floor",
        "acme.bootloader=0.9.0",
        "--json",
      ],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.json()).to.deep.include({ outcome: "confirmed", code: "OK", leftSafeMode: true, safeMode: false });
    const state = await boot();
    expect(state.safeMode).to.equal(undefined);
    expect(state.components[BOOT].slots[state.components[BOOT].active]?.releaseId).to.equal(published["1.0.0"].releaseId.toLowerCase());
    expect(state.components[BOOT].floor).to.equal(encodeVersion("1.0.0").toString());
  });

  it("refuses --floor outside safe mode, and an artifact that is not the release's, changing nothing", async () => {
    await publish("1.1.0");
    const before = await boot();
    const floor = await c.run(
      [
        "device",
        "install",
        "--device-config",
        config,
        "--release",
        published["1.1.0"].releaseId,
        "--artifact",
        published["1.1.0"].artifactFile,
        "--floor",
        "acme.bootloader=1.0.0",
        "--json",
      ],
      env,
    );
    expect(floor.code).to.equal(2);
    expect(floor.json().error.message).to.match(/--floor applies only in safe mode/);
    const wrong = await c.run(
      ["device", "install", "--device-config", config, "--release", published["1.1.0"].releaseId, "--artifact", published["1.0.0"].artifactFile, "--json"],
      env,
    );
    expect(wrong.code).to.equal(1);
    expect(wrong.json().error.code).to.equal("CHUNK_MISMATCH");
    const { counter: _c, ...after } = await boot(); // the report counter rises; nothing else moved
    const { counter: _b, ...unchanged } = before;
    expect(after).to.deep.equal(unchanged);
  });

  it("CAP-11.1-a-iii: a release that failed its trial boot is taken again only with --retry-failed (here from the firmware server)", async () => {
    await fs.writeFile(path.join(deviceDir, "fail"), "");
    const failed = await c.run(
      ["device", "install", "--device-config", config, "--release", published["1.1.0"].releaseId, "--artifact", published["1.1.0"].artifactFile, "--json"],
      env,
    );
    expect(failed.code).to.equal(1);
    expect(failed.json().error).to.deep.include({ code: "HEALTH_CHECK_FAILED" });
    expect(failed.json().error.details).to.include({ outcome: "rolled-back" });
    await fs.rm(path.join(deviceDir, "fail"));

    const declined = await c.run(
      ["device", "install", "--device-config", config, "--release", published["1.1.0"].releaseId, "--artifact", published["1.1.0"].artifactFile, "--json"],
      env,
    );
    expect(declined.code).to.equal(1);
    expect(declined.json().error.code).to.equal("PREVIOUSLY_FAILED");
    expect(declined.json().error.message).to.match(/--retry-failed/);

    // Without --artifact the release is downloaded from the firmware server, as an automatic update is.
    const retried = await c.run(["device", "install", "--device-config", config, "--release", published["1.1.0"].releaseId, "--retry-failed", "--json"], env);
    expect(retried.code, retried.stderr + retried.stdout).to.equal(0);
    expect(retried.json()).to.include({ outcome: "confirmed" });
    const state = await boot();
    expect(state.components[BOOT].floor).to.equal(encodeVersion("1.1.0").toString());
    expect(state.failedReleases).to.deep.equal({});
  });

  it("refuses to install while another agent holds the device's data folder (device run), changing nothing", async () => {
    const before = await boot();
    const lockFile = path.join(deviceDir, "data", ".lock");
    writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: os.hostname(), since: "now" })); // as a running `device run` leaves it
    try {
      const r = await c.run(["device", "install", "--device-config", config, "--release", published["1.1.0"].releaseId, "--json"], env);
      expect(r.code).to.equal(1);
      expect(r.json().error.code).to.equal("ALREADY_RUNNING");
      expect(r.json().error.message).to.match(/in use by a device agent \(device run or device install\) in process \d+/);
      expect(await boot()).to.deep.equal(before);
    } finally {
      rmSync(lockFile, { force: true });
    }
  });

  it("REQ-10f-ii: takes device.json's sources in order: a source that does not answer is passed over, and data/sources.json remembers it demoted", async () => {
    await publish("1.2.0");
    const dead = "http://127.0.0.1:9"; // nothing listens there
    const json = JSON.parse(await fs.readFile(config, "utf8"));
    await fs.writeFile(
      config,
      JSON.stringify({
        ...json,
        sources: [
          { kind: "server", url: dead },
          { kind: "server", url: env.OTA_SERVER_URL },
        ],
      }),
    );
    try {
      const r = await c.run(["device", "install", "--device-config", config, "--release", published["1.2.0"].releaseId, "--json"], env);
      expect(r.code, r.stderr + r.stdout).to.equal(0);
      expect(r.json()).to.include({ outcome: "confirmed" });
      expect(r.stderr).to.match(/sources: server http:\/\/127\.0\.0\.1:9 demoted \(SERVER_UNREACHABLE\)/);
      const health = JSON.parse(await fs.readFile(path.join(deviceDir, "data", "sources.json"), "utf8")).sources;
      expect(health.map((h: { url: string; lastCode: string; failures: number }) => [h.url, h.lastCode, h.failures])).to.deep.equal([
        [dead, "SERVER_UNREACHABLE", 1],
        [env.OTA_SERVER_URL, "OK", 0],
      ]);
      expect(health[0].demotedAt).to.be.a("number");
    } finally {
      await fs.writeFile(config, JSON.stringify(json));
    }
  });
});
