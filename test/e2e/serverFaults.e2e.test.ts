import { expect } from "chai";
import { World } from "./harness/world";
import type { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import { deviceOutcome, expectRunning, expectUntouched, shipInstalled } from "./harness/outcome";

const BOOT = "acme.bootloader";

/**
 * The firmware server process killed while devices follow the ledger: a release published in the
 * meantime is refused for a reason that passes (SERVER_UNREACHABLE), kept as needed, and taken
 * once the server is back (REQ-10c, PROC-4), with its store and keys kept on disk.
 */
describe("e2e: the firmware server down while devices poll", function () {
  this.timeout(120_000);
  let world: World;
  let d: DeviceHandle;
  let device: CliProcess;
  let running: Published;

  before(async () => {
    world = await World.start();
    [d] = await Promise.all([world.device("server-down-1"), world.startServer()]);
    d.writeConfig({ components: [BOOT] });
    device = await world.startDevice(d);
    running = await shipInstalled(world, device, BOOT, "1.0.0", [d.id]);
  });
  after(async () => {
    await world?.stop();
  });

  it("REQ-10c-ii PROC-4 CAP-11.3-b: a release published while the server is down is retried, not failed, and installed once the server is back", async () => {
    // The artifact and key are on the server; then it is killed (SIGKILL, no clean shutdown).
    const r = await world.author.publish(BOOT, "1.1.0");
    const held = world.firmwareProxy.hold(new RegExp(`/v1/releases/${r.releaseId}/manifest`));
    await world.author.submit(world.serverUrl, r);
    await world.author.grant(world.serverUrl, r, [d.id]);
    await held.reached;
    await world.serverProcess!.kill();
    held.release(); // that answer is lost with the server: the device sees the connection fail
    const first = await deviceOutcome(world, device, r.releaseId);
    expect(first, device.output()).to.deep.equal({ outcome: "blocked", code: "SERVER_UNREACHABLE" });
    await expectUntouched(d, BOOT, running);
    expect(device.running).to.equal(true);
    // The server restarts on the same data (store, database, keys); the device retries on its own.
    const from = device.lines.length;
    await world.startServer();
    await device.waitForLine(new RegExp(`release ${r.releaseId}: confirmed \\(OK\\)`), { from, timeoutMs: 40_000, context: world.context });
    // Until then, every try was refused only because the server was not there.
    const tries = device.lines.slice(from).filter((l) => l.includes(`release ${r.releaseId}: blocked`));
    for (const t of tries) expect(t).to.match(/\(SERVER_UNREACHABLE\)$/);
    await expectRunning(d, BOOT, r);
  });
});
