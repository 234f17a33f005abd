import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { cliChainWithServer, type CliChain, type CliChainWithServer } from "./cliHarness";

describe("ota-ledger fleet simulate and device run (simulated devices on one machine; DEP-8.1-a)", function () {
  this.timeout(180_000);
  let c: CliChain;
  let env: Record<string, string>;
  let setup: CliChainWithServer["setup"];
  let stop: CliChainWithServer["stop"] | undefined;

  before(async () => {
    ({ c, env, setup, stop } = await cliChainWithServer());
    const admin = c.admin.address;
    await setup([
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "rev-a"],
      ["hardware", "register", "rev-b"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
    ]);
  });
  after(async () => {
    await stop?.();
  });

  it("PROC-3 PROC-5: enrols N devices, and each installs the release it is granted, in its own slots", async () => {
    const sim = ["fleet", "simulate", "--devices", "4", "--hardware", "rev-a,rev-b", "--components", "acme.bootloader", "--once", "--json"];
    const first = await c.run([...sim, "--enrol"], env);
    expect(first.code, first.stderr + first.stdout).to.equal(0);
    expect(first.json().devices).to.have.length(4);
    expect(first.json().devices.every((d: { installed: unknown[] }) => d.installed.length === 0)).to.equal(true);

    const image = path.join(c.dir, "boot.bin");
    writeFileSync(image, Buffer.alloc(64 * 1024, 7));
    const pub = await c.run(
      ["release", "publish", "--component", "acme.bootloader", "--version", "1.0.0", "--file", image, "--hardware", "rev-a", "--json"],
      env,
    );
    expect(pub.code, pub.stderr + pub.stdout).to.equal(0);
    const releaseId = pub.json().release.releaseId;
    const grant = await c.run(["release", "grant", releaseId, "--device", "all-eligible", "--json"], env);
    expect(grant.json().granted).to.have.length(2); // the rev-a half of the fleet

    const second = await c.run(sim, env);
    expect(second.code, second.stderr + second.stdout).to.equal(0);
    const devices = second.json().devices as { installed: { releaseId: string }[]; lastResult: { code: string } | null }[];
    expect(devices.filter((d) => d.installed.some((i) => i.releaseId === releaseId.toLowerCase()))).to.have.length(2);
    expect(devices.filter((d) => d.lastResult?.code === "HARDWARE_NOT_SUPPORTED")).to.have.length(2);
  });

  it("device run refuses a device configuration it cannot use, saying what is wrong", async () => {
    const file = path.join(c.dir, "device.json");
    writeFileSync(file, JSON.stringify({ components: ["acme.bootloader"], dataDir: "d", healthCheck: "pass", credential: {} }));
    const r = await c.run(["device", "run", "--device-config", file, "--once", "--json"], env);
    expect(r.code).to.equal(2);
    expect(r.json().error.code).to.equal("DEVICE_CONFIG");
  });
});
