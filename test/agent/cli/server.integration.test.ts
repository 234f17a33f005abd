import { expect } from "chai";
import { main } from "../../../agent/cli/main";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { makeDevice } from "../../helpers/serverFixture";
import { freePort, startCliChain, type CliChain } from "./cliHarness";

/**
 * `server start` behind a reverse proxy (TLS, another host name): devices sign each request for
 * the origin they reach, so the server must check signatures against its public URL
 * (server.publicUrl, OTA_SERVER_PUBLIC_URL), not the address it listens on (PROC-4).
 */
describe("ota-ledger server start behind a reverse proxy (server.publicUrl, PROC-4)", function () {
  this.timeout(120_000);
  let c: CliChain;
  const device = makeDevice("proxied-device", 1);

  before(async () => {
    c = await startCliChain();
    // Nonces counted here: ethers answers an identical nonce request from a short cache.
    const nonce = Number(await c.provider.send("eth_getTransactionCount", [c.admin.address, "pending"]));
    await (await c.registry.connect(c.admin).registerHardwareClass("rev-a", { nonce })).wait();
    await (await c.fleet.connect(c.admin).enrolDevice(device.credential.record, { nonce: nonce + 1 })).wait();
  });
  after(async () => {
    await c?.stop();
  });

  /** `server start` in-process until the returned stop() is called. */
  async function startServer(env: Record<string, string>) {
    let stdout = "";
    let stderr = "";
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    let ended: number | undefined;
    const done = main(["server", "start", "--json"], {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      env: { OTA_RPC_URL: c.url, OTA_SERVER_DATA: "server", OTA_STORAGE: "embedded", ...env },
      cwd: c.dir,
      isTTY: false,
      untilStopped: () => stopped,
    }).then((code) => (ended = code));
    while (stdout === "" && ended === undefined) await new Promise((r) => setTimeout(r, 25));
    expect(ended, stderr).to.equal(undefined);
    return { started: JSON.parse(stdout) as { url: string; publicOrigin?: string }, stderr: () => stderr, stop: async () => (stop(), await done) };
  }

  /** A device's manifest request for an unknown release, signed for `audience`: the answer's code. */
  async function ask(url: string, audience: string): Promise<[number, string]> {
    const pathname = `/v1/releases/0x${"ab".repeat(32)}/manifest`;
    const headers = signDeviceRequest(device.privateKey, device.credential.record.id, encodeDeviceCredential(device.credential), {
      audience,
      method: "GET",
      path: pathname,
    });
    const res = await fetch(new URL(pathname, url), { headers });
    return [res.status, ((await res.json()) as { error: { code: string } }).error.code];
  }

  it("checks device signatures against server.publicUrl's origin, and refuses those made for the listening address", async () => {
    const s = await startServer({ OTA_SERVER_PORT: String(await freePort()), OTA_SERVER_PUBLIC_URL: "https://firmware.example.com/ota" });
    try {
      expect(s.started.publicOrigin).to.equal("https://firmware.example.com");
      // Signed for the public origin: authenticated, then refused for what it asks (no such release).
      const [status, code] = await ask(s.started.url, "https://firmware.example.com");
      expect(code).to.not.equal("AUTH_SIGNATURE");
      expect(status).to.be.oneOf([403, 404]);
      expect(await ask(s.started.url, s.started.url)).to.deep.equal([401, "AUTH_SIGNATURE"]);
    } finally {
      await s.stop();
    }
  });

  it("without a public URL it answers for its listening origin, and warns when it listens beyond loopback", async () => {
    const s = await startServer({ OTA_SERVER_PORT: String(await freePort()), OTA_SERVER_HOST: "0.0.0.0" });
    try {
      expect(s.started.publicOrigin).to.equal(undefined);
      expect(s.stderr()).to.match(/warning: devices sign their requests for .*set server\.publicUrl \(OTA_SERVER_PUBLIC_URL\)/);
      const [, code] = await ask(s.started.url, new URL(s.started.url).origin);
      expect(code).to.not.equal("AUTH_SIGNATURE");
    } finally {
      await s.stop();
    }
  });
});
