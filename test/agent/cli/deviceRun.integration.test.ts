import { expect } from "chai";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { Wallet, encodeBytes32String, keccak256, toUtf8Bytes } from "ethers";
import { startCliChain, type CliChain } from "./cliHarness";
import { CliProcess } from "../../e2e/harness/cliProcess";

/** `ota-ledger device run` as a process, the way a device's service manager starts it. */
describe("ota-ledger device run (the process)", function () {
  this.timeout(120_000);
  let c: CliChain;
  let p: CliProcess | undefined;

  before(async () => (c = await startCliChain()));
  afterEach(async () => p?.kill());
  after(async () => c?.stop());

  it("DEP-8.1-b: with followLedger false (a client module only) it keeps running on its heartbeat until SIGTERM, then prints its summary", async () => {
    const key = new Wallet(keccak256(toUtf8Bytes("device run process test")));
    const tracker = new Wallet(keccak256(toUtf8Bytes("device run process tracker")));
    const file = path.join(c.dir, "device.json");
    writeFileSync(
      file,
      JSON.stringify({
        privateKey: key.privateKey,
        credential: {
          record: {
            id: keccak256(toUtf8Bytes("rev-a-0009")),
            publicKey: key.signingKey.compressedPublicKey,
            hardwareClass: 1,
            network: encodeBytes32String("plant-1"),
            region: encodeBytes32String("eu"),
          },
          batchId: 0,
          proof: [],
        },
        components: ["acme.bootloader"],
        dataDir: "./device-data",
        healthCheck: "pass",
        // Nothing listens there: every report fails and is logged, and the agent carries on.
        tracker: {
          moduleId: keccak256(toUtf8Bytes("tracker-hq")),
          publicKey: tracker.signingKey.compressedPublicKey,
          url: "http://127.0.0.1:9",
          heartbeatMs: 300,
        },
        followLedger: false,
      }),
    );
    p = new CliProcess("device run", ["device", "run", "--device-config", file], { cwd: c.dir, env: { OTA_RPC_URL: c.url } });
    await p.waitForLine(/running 1 device agent/, { timeoutMs: 60_000 });
    const from = p.lines.length;
    // Several heartbeats later it still runs (it used to exit at once: its only timers did not hold the process).
    await p.waitForLine(/report: no tracker answers at http:\/\/127\.0\.0\.1:9/, { timeoutMs: 10_000, from });
    await new Promise((r) => setTimeout(r, 2_000));
    expect(p.running, p.output()).to.equal(true);
    const exit = await p.stop();
    expect(exit.code, p.output()).to.equal(0);
    expect(
      p.lines.some((l) => /^out: 0x[0-9a-f]{8}….*nothing installed/.test(l)),
      p.output(),
    ).to.equal(true);
  });
});
