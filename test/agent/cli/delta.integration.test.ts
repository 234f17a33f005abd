import { expect } from "chai";
import { promises as fs, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cliChainWithServer, enrolTestDevice, type CliChain, type CliChainWithServer } from "./cliHarness";
import type { ServerDatabase } from "../../../agent/server/serverDatabase";

/**
 * Delta updates from the command line (ADR 0018): the author publishes 1.0.0, then 1.1.0 with
 * `--delta-from 1.0.0`; a device run from its device.json takes 1.0.0 whole, then 1.1.0 by the
 * delta; bad bases are refused with exit 2 and nothing sent.
 */
describe("ota-ledger release publish --delta-from, release delta add, device run with deltas (REQ-10e-i)", function () {
  this.timeout(240_000);
  let c: CliChain;
  let db: ServerDatabase;
  let env: Record<string, string>;
  let setup: CliChainWithServer["setup"];
  let stop: CliChainWithServer["stop"] | undefined;
  let deviceConfig: string;
  let deviceId: string;
  const ids: Record<string, string> = {};
  const images: Record<string, string> = {};

  before(async () => {
    ({ c, db, env, setup, stop } = await cliChainWithServer({ deltas: true }));
    const admin = c.admin.address;
    await setup([
      ["provider", "register", "Acme Devices"],
      ["provider", "signer", "add", "1", admin],
      ["provider", "author", "add", admin, "--provider", "1"],
      ["hardware", "register", "rev-a"],
      ["component", "register", "acme.bootloader", "--provider", "1"],
      ["component", "register", "acme.sensor-fw", "--provider", "1"],
    ]);
    ({ deviceConfig, deviceId } = await enrolTestDevice(c, "delta-0001", "device"));
    // Two builds of one image: 1.1.0 is 1.0.0 with 97 bytes inserted early (everything after moves).
    const base = Buffer.alloc(300 * 1024);
    for (let i = 0; i < base.length; i++) base[i] = (i * 2654435761) >>> 24;
    images["1.0.0"] = path.join(c.dir, "boot-1.0.0.bin");
    images["1.1.0"] = path.join(c.dir, "boot-1.1.0.bin");
    images["1.2.0"] = path.join(c.dir, "boot-1.2.0.bin");
    writeFileSync(images["1.0.0"], base);
    writeFileSync(images["1.1.0"], Buffer.concat([base.subarray(0, 5000), Buffer.alloc(97, 0x5a), base.subarray(5000)]));
    writeFileSync(images["1.2.0"], Buffer.concat([base.subarray(0, 9000), Buffer.alloc(33, 0x11), base.subarray(9000)]));
  });
  after(async () => {
    await stop?.();
  });

  const publish = (version: string, extra: string[] = [], component = "acme.bootloader") =>
    c.run(
      [
        "release",
        "publish",
        "--component",
        component,
        "--version",
        version,
        "--file",
        images[version] ?? images["1.0.0"],
        "--hardware",
        "rev-a",
        "--grant",
        "delta-0001",
        ...extra,
        "--json",
      ],
      env,
    );
  const run = () => c.run(["device", "run", "--device-config", deviceConfig, "--once", "--json"], env);
  const downloaded = (releaseId: string, kind: string) =>
    db
      .downloads({ deviceId, releaseId })
      .filter((e) => e.kind === kind)
      .reduce((s, e) => s + e.bytes, 0);
  /** Runs with --json: exit 2, the error's code, and no block mined. */
  async function refused(args: string[], code: string, message: RegExp) {
    const before = await c.blockNumber();
    const r = await c.run([...args, "--json"], env);
    expect(r.code, r.stdout + r.stderr).to.equal(2);
    expect(r.json().error.code, r.stdout).to.equal(code);
    expect(r.json().error.message).to.match(message);
    expect(await c.blockNumber(), "nothing is sent").to.equal(before);
  }

  it("REQ-10e-i PROC-1 CAP-11.3-a: the author publishes 1.0.0, then 1.1.0 with --delta-from 1.0.0; a device run takes 1.0.0 whole, then 1.1.0 by the delta", async () => {
    const first = await publish("1.0.0");
    expect(first.code, first.stderr + first.stdout).to.equal(0);
    ids["1.0.0"] = first.json().release.releaseId.toLowerCase();
    const taken = await run();
    expect(taken.code, taken.stderr + taken.stdout).to.equal(0);
    expect(downloaded(ids["1.0.0"], "artifact")).to.be.above(300 * 1024);

    const second = await publish("1.1.0", ["--delta-from", "1.0.0"]);
    expect(second.code, second.stderr + second.stdout).to.equal(0);
    const out = second.json();
    ids["1.1.0"] = out.release.releaseId.toLowerCase();
    expect(out.deltas).to.have.length(1);
    const d = out.deltas[0];
    expect(d).to.include({ releaseId: out.release.releaseId, fromReleaseId: ids["1.0.0"], fromVersion: "1.0.0" });
    expect(d.transactionHash).to.match(/^0x[0-9a-f]{64}$/);
    expect(d.deltaArtifactBytes).to.be.below(d.fullArtifactBytes / 10);
    // The ledger records it as the output says; the server holds it.
    const recorded = await c.deltas!.connect(c.provider).delta(ids["1.1.0"], ids["1.0.0"]);
    expect(recorded.deltaHash).to.equal(d.deltaHash);
    expect(recorded.merkleRoot).to.equal(d.merkleRoot);
    expect(recorded.link).to.equal(d.link);

    const updated = await run();
    expect(updated.code, updated.stderr + updated.stdout).to.equal(0);
    const installed = JSON.stringify(updated.json());
    expect(installed).to.include(ids["1.1.0"]);
    // The server's download log: the delta's bytes, none of 1.1.0's full artifact.
    expect(downloaded(ids["1.1.0"], "delta"))
      .to.be.above(0)
      .and.below(d.fullArtifactBytes / 10);
    expect(downloaded(ids["1.1.0"], "artifact")).to.equal(0);
    const boot = JSON.parse(await fs.readFile(path.join(c.dir, "device", "data", "slots", "boot-state.json"), "utf8"));
    expect(JSON.stringify(boot).toLowerCase()).to.include(ids["1.1.0"]);
  });

  it("REQ-10e-i: release delta add records a delta for a published release from the author's image files, and --json gives its size against the full artifact", async () => {
    const third = await publish("1.2.0");
    expect(third.code, third.stderr + third.stdout).to.equal(0);
    ids["1.2.0"] = third.json().release.releaseId.toLowerCase();
    const r = await c.run(
      ["release", "delta", "add", ids["1.2.0"], "--from", "1.1.0", "--base-image", images["1.1.0"], "--image", images["1.2.0"], "--json"],
      env,
    );
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    const d = r.json().deltas[0];
    expect(d).to.include({ fromReleaseId: ids["1.1.0"], fromVersion: "1.1.0" });
    expect(d.percentOfFull).to.be.below(10);
    // And from the base's own artifact (decrypted with its content key): by release id.
    const again = await c.run(["release", "delta", "add", ids["1.2.0"], "--from", ids["1.0.0"], "--json"], env);
    expect(again.code, again.stderr + again.stdout).to.equal(0);
    expect((await c.deltas!.connect(c.provider).deltaBases(ids["1.2.0"])).map((x) => x.toLowerCase())).to.have.members([ids["1.1.0"], ids["1.0.0"]]);
  });

  it("REQ-10e-i: a base unknown, of another component, not older, or an image that is not the base's is refused with exit 2, nothing sent", async () => {
    await refused(["release", "delta", "add", ids["1.1.0"], "--from", "0.9.0"], "DELTA_BASE_UNKNOWN", /no release 0\.9\.0 of acme\.bootloader/);
    await refused(["release", "delta", "add", ids["1.1.0"], "--from", "1.2.0"], "DELTA_BASE_NOT_OLDER", /1\.2\.0 is not older than 1\.1\.0/);
    await refused(["release", "delta", "add", ids["1.1.0"], "--from", ids["1.1.0"]], "DELTA_BASE_NOT_OLDER", /the release itself/);
    await refused(
      ["release", "delta", "add", ids["1.2.0"], "--from", "1.0.0", "--base-image", images["1.2.0"]],
      "DELTA_IMAGE_MISMATCH",
      /hashes to 0x[0-9a-f]{64}.*records the file hash/,
    );
    // Recorded already: the author's stored delta is submitted again (a retry), nothing sent to the ledger; without it, refused.
    const before = await c.blockNumber();
    const retry = await c.run(["release", "delta", "add", ids["1.1.0"], "--from", "1.0.0", "--json"], env);
    expect(retry.code, retry.stderr + retry.stdout).to.equal(0);
    expect(retry.json().deltas[0].transactionHash).to.equal(undefined);
    expect(await c.blockNumber()).to.equal(before);
    await refused(
      ["release", "delta", "add", ids["1.1.0"], "--from", `1.0.0=${images["1.0.0"]}`, "--image", images["1.1.0"], "--out", "elsewhere"],
      "DELTA_ALREADY_RECORDED",
      /deltas are immutable/,
    );
    await refused(["release", "delta", "add", ids["1.1.0"], "--from", "one"], "INVALID_INPUT", /a version of acme\.bootloader/);
    // publish: checked before anything is published.
    const sensor = await publish("1.0.0", [], "acme.sensor-fw");
    expect(sensor.code, sensor.stderr + sensor.stdout).to.equal(0);
    await refused(
      [
        "release",
        "publish",
        "--component",
        "acme.bootloader",
        "--version",
        "1.3.0",
        "--file",
        images["1.2.0"],
        "--hardware",
        "rev-a",
        "--delta-from",
        sensor.json().release.releaseId,
      ],
      "DELTA_BASE_OTHER_COMPONENT",
      /another component/,
    );
    await refused(
      ["release", "publish", "--component", "acme.bootloader", "--version", "1.3.0", "--file", images["1.2.0"], "--hardware", "rev-a", "--delta-from", "2.0.0"],
      "DELTA_BASE_UNKNOWN",
      /no release 2\.0\.0/,
    );
  });

  it("REQ-10e-i: device.json `deltas: false` takes the whole image; another value is refused with a clear error", async () => {
    const config = JSON.parse(readFileSync(deviceConfig, "utf8"));
    writeFileSync(deviceConfig, JSON.stringify({ ...config, deltas: "no" }));
    const bad = await run();
    expect(bad.code, bad.stdout + bad.stderr).to.equal(2);
    expect(bad.json().error.code).to.equal("DEVICE_CONFIG");
    expect(bad.json().error.message).to.match(/deltas must be true .* or false/);
    writeFileSync(deviceConfig, JSON.stringify({ ...config, deltas: false }));
    const r = await run();
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(JSON.stringify(r.json())).to.include(ids["1.2.0"]);
    expect(downloaded(ids["1.2.0"], "delta")).to.equal(0);
    expect(downloaded(ids["1.2.0"], "artifact")).to.be.above(300 * 1024);
  });
});
