import { expect } from "chai";
import { readFileSync } from "node:fs";
import { World } from "./harness/world";
import type { CliProcess } from "./harness/cliProcess";
import type { DeviceHandle } from "./harness/device";
import type { Published } from "./harness/author";
import type { ArtifactFault } from "./harness/firmwareProxy";
import { expectOutcome, expectRunning, expectUntouched, shipInstalled } from "./harness/outcome";
import { decodeHeader, storedChunkSpan, HEADER_SIZE } from "../../agent/crypto/artifactCipher";

const BOOT = "acme.bootloader";

/**
 * The firmware server is not trusted (CAP-11.4-c): between it and a device, the bytes of an
 * artifact are altered, cut short, lengthened, reordered, replaced by another release's, sent
 * without end or trickled. The real server, a real device agent (`device run`), and an HTTP proxy
 * playing the network. Each refused update leaves the running image, its floor and the slots as
 * they were, and once the fault is gone the device takes the next release.
 */
describe("e2e: tampered artifacts between the firmware server and a device", function () {
  this.timeout(120_000);
  let world: World;
  let d: DeviceHandle;
  let device: CliProcess;
  let running: Published;
  let minor = 0;
  const next = () => `1.${++minor}.0`;

  before(async () => {
    world = await World.start();
    [d] = await Promise.all([world.device("tamper-1"), world.startServer()]);
    d.writeConfig({ components: [BOOT] });
    device = await world.startDevice(d);
    running = await shipInstalled(world, device, BOOT, "1.0.0", [d.id]);
  });
  after(async () => {
    await world?.stop();
  });
  afterEach(() => world.firmwareProxy.clearFaults());

  /**
   * Ships a release while `fault` is on, expects the refusal (a blocked delivery: the source lied,
   * not the release, issue 15), checks nothing moved, then converges on a clean release.
   */
  async function refusedThenConverges(fault: (r: Published) => ArtifactFault | void, code: string): Promise<Published> {
    const bad = await world.author.publish(BOOT, next());
    const f = fault(bad);
    if (f) world.firmwareProxy.setFault(bad.releaseId, f);
    await world.author.submit(world.serverUrl, bad);
    await world.author.grant(world.serverUrl, bad, [d.id]);
    await expectOutcome(world, device, bad.releaseId, { outcome: "blocked", code });
    await expectUntouched(d, BOOT, running, bad, { blocked: true });
    world.firmwareProxy.clearFaults();
    const good = await shipInstalled(world, device, BOOT, next(), [d.id]);
    await expectRunning(d, BOOT, good);
    running = good;
    return bad;
  }

  /**
   * Ships a release while `fault` is on, for a fault the device's own checks make harmless: what
   * does not verify is never written, the next round goes on from the last verified chunk (and
   * needs nothing more once every chunk is verified), the release installs, and the source is
   * logged demoted with `code` (REQ-10f-ii: a delivery fault is not a failed release).
   */
  async function caughtThenInstalled(fault: (r: Published) => ArtifactFault, code: string): Promise<Published> {
    const r = await world.author.publish(BOOT, next());
    world.firmwareProxy.setFault(r.releaseId, fault(r));
    const from = device.lines.length;
    await world.author.submit(world.serverUrl, r);
    await world.author.grant(world.serverUrl, r, [d.id]);
    await expectOutcome(world, device, r.releaseId, { outcome: "confirmed", code: "OK" });
    await expectRunning(d, BOOT, r);
    expect(
      device.lines.slice(from).filter((l) => l.includes(`demoted (${code})`)),
      device.output(),
    ).to.have.length(1);
    running = r;
    return r;
  }

  /** Where stored chunk j sits in an artifact. */
  const span = (r: Published, j: number) => storedChunkSpan(decodeHeader(readFileSync(r.artifactFile).subarray(0, HEADER_SIZE)), j);

  it("CAP-11.1-a-v REQ-10d-ii CAP-11.4-a: refuses an artifact with one byte altered (CHUNK_MISMATCH), the running image untouched", async () => {
    await refusedThenConverges((r) => ({ kind: "alter", offset: span(r, 2).offset + 100 }), "CHUNK_MISMATCH");
  });

  it("CAP-11.1-a-v CAP-11.4-a: refuses an artifact cut short on the server (ARTIFACT_TRUNCATED) after asking for the rest", async () => {
    const bad = await refusedThenConverges((r) => ({ kind: "truncate", at: span(r, 2).offset + 1000 }), "ARTIFACT_TRUNCATED");
    // It asked for the missing part from its last verified chunk before giving up.
    const ranged = world.firmwareProxy.requests(new RegExp(`/v1/releases/${bad.releaseId}/artifact`)).filter((e) => e.range !== undefined);
    expect(ranged.map((e) => e.range)).to.include(`bytes=${span(bad, 2).offset}-`);
  });

  it("CAP-11.1-a-v CAP-11.4-a REQ-10f-ii: bytes added at the end are refused (ARTIFACT_TOO_LONG) and never written; the artifact verified to its recorded size installs without asking again", async () => {
    const r = await caughtThenInstalled(() => ({ kind: "extend", bytes: 4096 }), "ARTIFACT_TOO_LONG");
    expect(world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`))).to.have.length(1);
  });

  it("CAP-11.1-a-v CAP-11.4-a REQ-10f-ii: two chunks swapped are caught at the first (CHUNK_MISMATCH); the next round goes on from the last verified chunk and installs", async () => {
    const r = await caughtThenInstalled((x) => ({ kind: "swap", a: span(x, 1).offset, b: span(x, 2).offset, size: span(x, 1).size }), "CHUNK_MISMATCH");
    // The proxy swaps whole answers only: the Range request from chunk 1 gets the honest bytes.
    const fetches = world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`));
    expect(fetches.map((e) => e.range ?? null)).to.deep.equal([null, `bytes=${span(r, 1).offset}-`]);
  });

  it("CAP-11.1-a-v REQ-10f-ii: stops reading a server that sends data without end, at the size the ledger implies (ARTIFACT_TOO_LONG), and installs what verified", async () => {
    await caughtThenInstalled(() => ({ kind: "endless" }), "ARTIFACT_TOO_LONG");
    expect(device.running, "the device agent is still running").to.equal(true);
  });

  it("APP-II-1 CAP-11.1-a-v: mix-and-match: refuses another release's artifact served for this one (CHUNK_MISMATCH)", async () => {
    const other = running;
    await refusedThenConverges(() => ({ kind: "replace", bytes: readFileSync(other.artifactFile) }), "CHUNK_MISMATCH");
  });

  it("APP-II-1 CAP-11.1-a-v: mix-and-match: refuses another release's chunk list served for this one (MANIFEST_ROOT_MISMATCH)", async () => {
    const other = running;
    const manifest = world.firmwareProxy.captured.manifest.get(other.releaseId)!;
    expect(manifest, "the proxy saw the running release's manifest").to.be.a("string");
    await refusedThenConverges((bad) => void world.firmwareProxy.manifestOverride.set(bad.releaseId, manifest), "MANIFEST_ROOT_MISMATCH");
  });

  it("REQ-10f-i CAP-11.4-b: mix-and-match: refuses another release's wrapped key (KEY_UNWRAP_FAILED), nothing decrypted into a slot", async () => {
    const other = running;
    const key = world.firmwareProxy.captured.key.get(other.releaseId)!;
    expect(key, "the proxy saw the running release's wrapped key").to.be.a("string");
    await refusedThenConverges((bad) => void world.firmwareProxy.keyOverride.set(bad.releaseId, key), "KEY_UNWRAP_FAILED");
  });

  it("REQ-10c-ii: a trickling server: only verified chunks are ever kept on disk, and the slow download completes", async () => {
    const r = await world.author.publish(BOOT, next());
    world.firmwareProxy.setFault(r.releaseId, { kind: "trickle", pieceBytes: 4096, delayMs: 8 });
    await world.author.submit(world.serverUrl, r);
    const boundaries = new Set([0, 1, 2, 3, 4].map((j) => (j === 0 ? 0 : span(r, j - 1).offset + span(r, j - 1).size)));
    const seen = new Set<number>();
    // A size between two boundaries may be a verified chunk caught while the kernel copies it in
    // (one write, page by page); then it is at a boundary a moment later, while the rest of an
    // unverified chunk would still be trickling in (the proxy sends a chunk over about half a second).
    const between: Promise<[number, number]>[] = [];
    const sampler = setInterval(
      () =>
        void d.partialDownload(r.releaseId).then((n) => {
          seen.add(n);
          if (!boundaries.has(n))
            between.push(new Promise((resolve) => setTimeout(() => void d.partialDownload(r.releaseId).then((m) => resolve([n, m])), 100)));
        }),
      5,
    );
    try {
      await world.author.grant(world.serverUrl, r, [d.id]);
      await expectOutcome(world, device, r.releaseId, { outcome: "confirmed", code: "OK" });
    } finally {
      clearInterval(sampler);
    }
    for (const [n, m] of await Promise.all(between))
      expect(boundaries, `a partial download of ${n} bytes (${m} bytes 100 ms later) is not a whole number of verified chunks being written`).to.include(m);
    expect([...seen].filter((n) => n > 0).length, "the download was seen in progress").to.be.at.least(2);
    await expectRunning(d, BOOT, r);
    running = r;
  });

  it("REQ-10c-ii CAP-11.1-a-iii: a connection broken mid-download resumes from the last verified chunk (Range), nothing fetched twice", async () => {
    const r = await world.author.publish(BOOT, next());
    world.firmwareProxy.setFault(r.releaseId, { kind: "cut", afterBytes: span(r, 2).offset + 5000 }, 1);
    await world.author.submit(world.serverUrl, r);
    await world.author.grant(world.serverUrl, r, [d.id]);
    await expectOutcome(world, device, r.releaseId, { outcome: "confirmed", code: "OK" });
    const fetches = world.firmwareProxy.requests(new RegExp(`/v1/releases/${r.releaseId}/artifact`));
    expect(fetches.map((e) => e.range ?? null)).to.deep.equal([null, `bytes=${span(r, 2).offset}-`]);
    await expectRunning(d, BOOT, r);
    running = r;
  });
});
