import { expect } from "chai";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { serverFixture, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { FirmwareMirror, TrustlessGateway, type MirrorFault } from "../../helpers/deliveryMirrors";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { downloadFromSources, SourceSet, type DeliverySource } from "../../../agent/consumer/deliverySources";
import type { DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { decodeHeader, HEADER_SIZE, storedChunkSpan } from "../../../agent/crypto/artifactCipher";
import { OtaError } from "../../../agent/core/errors";
import { randomBytes } from "node:crypto";
import { keyWrapContext, wrapContentKey } from "../../../agent/crypto/keyWrap";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/**
 * X.1368 REQ-10f-ii (availability of images): a device lists several firmware servers and IPFS
 * trustless gateways; whatever any of them sends is checked against the ledger record, a source
 * that sends wrong bytes or fails is demoted and reported, and delivery goes on from the next one
 * from the last verified chunk. Real firmware servers and a real embedded IPFS store on 127.0.0.1,
 * the Hardhat network, and small real HTTP proxies playing the faulty mirrors.
 */
describe("agent/consumer/deliverySources: more than one source (REQ-10f-ii)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let n = 0;
  let minor = 0;
  const closers: (() => Promise<void>)[] = [];

  before(async () => (f = await serverFixture()));
  after(async () => {
    for (const c of closers.splice(0)) await c().catch(() => {});
    await f?.close();
  });

  /** A release of `size` bytes (three or more 256 KiB chunks by default), granted to device a. */
  const release = (size = 700 * 1024) => {
    minor += 1;
    return f.release(
      {
        component: "acme.bootloader",
        version: `1.${minor}.0`,
        file: writeImage(f.dir, `sources-${minor}.bin`, size, 40 + minor),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [f.devices.a] },
    );
  };
  const span = (r: Awaited<ReturnType<typeof release>>, j: number) => storedChunkSpan(decodeHeader(readFileSync(r.artifactFile).subarray(0, HEADER_SIZE)), j);
  const server = (url: string): DeliverySource => ({ kind: "server", url });
  const gateway = (url: string): DeliverySource => ({ kind: "gateway", url });
  async function mirror(fault: MirrorFault = { kind: "none" }) {
    const m = await FirmwareMirror.start(f, fault);
    closers.push(() => m.close());
    return m;
  }
  const download = (sources: SourceSet | DeliverySource[], r: Awaited<ReturnType<typeof release>>, device: DeviceIdentity = f.devices.a) => {
    n += 1;
    return downloadFromSources(sources, {
      device,
      installed: [],
      release: r.ledger,
      artifactFile: path.join(f.dir, `sources-dl-${n}.otae`),
      timeoutMs: 5000,
    });
  };
  const artifactRequests = (releaseId: string) =>
    f.db.downloads({ deviceId: f.devices.a.credential.record.id, releaseId: releaseId.toLowerCase() }).filter((d) => d.kind === "artifact");

  it("REQ-10f-ii: a mirror that flips a byte is demoted and reported; the device installs from the next source, resuming from the last verified chunk, and tries the mirror last after a restart", async () => {
    const r = await release();
    const flipAt = span(r, 2).offset + 100;
    const bad = await mirror({ kind: "flip", offset: flipAt });
    const dataDir = path.join(f.dir, "device-flip");
    const stateFile = path.join(dataDir, "sources.json");
    const lines: string[] = [];
    const sources = await SourceSet.open([server(bad.url), server(f.server.url)], { stateFile, log: (l) => lines.push(l) });
    const agent = await DeviceAgent.open({ ...deviceAgentOptions(f, f.devices.a, "device-flip"), sources, log: (l) => lines.push(l) });

    expect(await agent.considerRelease(r.releaseId, "new-release")).to.deep.equal({ releaseId: r.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" });
    const c = agent.slots.snapshot().components[r.record.component.toLowerCase()];
    const image = readFileSync(path.join(agent.slots.slotDir(r.record.component.toLowerCase(), c.active), "image.bin"));
    expect("0x" + createHash("sha256").update(image).digest("hex")).to.equal(r.record.fileHash);

    // Reported: the mirror demoted with its code, the server that delivered healthy.
    const health = sources.report();
    expect(health.map((h) => [h.url, h.lastCode, h.failures])).to.deep.equal([
      [f.server.url, "OK", 0],
      [bad.url, "CHUNK_MISMATCH", 1],
    ]);
    expect(health[1].demotedAt).to.be.a("number");
    // The second source went on from the chunk before the flipped one: chunks 0 and 1 came from the mirror.
    expect(artifactRequests(r.releaseId).map((d) => d.rangeStart)).to.deep.equal([0, span(r, 2).offset]);
    expect(lines.join("\n")).to.match(/resumed at chunk 2 from server/);

    // After a restart the demotion is remembered: the next release is fetched from the good server first.
    const reopened = await SourceSet.open([server(bad.url), server(f.server.url)], { stateFile });
    expect(reopened.ordered().map((s) => s.url)).to.deep.equal([f.server.url, bad.url]);
    const before = bad.log.length;
    const r2 = await release();
    const again = await download(reopened, r2);
    expect(again.source.url).to.equal(f.server.url);
    expect(bad.log.length).to.equal(before);
  });

  it("REQ-10f-ii: a device whose first source answers 503 (SERVER_BUSY) installs from the second, and reports the first demoted", async () => {
    const r = await release();
    const busy = await mirror({
      kind: "status",
      status: 503,
      contentType: "application/json",
      body: JSON.stringify({ error: { code: "SERVER_BUSY", message: "too many requests in flight" } }),
    });
    const sources = await SourceSet.open([server(busy.url), server(f.server.url)]);
    const agent = await DeviceAgent.open({ ...deviceAgentOptions(f, f.devices.a, "device-busy"), sources });
    expect(await agent.considerRelease(r.releaseId, "new-release")).to.include({ outcome: "confirmed", code: "OK" });
    expect(busy.log.map((e) => e.status)).to.deep.equal([503]); // asked once, for the chunk list, then passed over
    expect(sources.report().map((h) => [h.url, h.lastCode, h.failures])).to.deep.equal([
      [f.server.url, "OK", 0],
      [busy.url, "SERVER_BUSY", 1],
    ]);
  });

  it("REQ-10f-ii: a proxy's 503 page is HTTP_ERROR and the server's own 503 SERVER_BUSY; both are passed over and the artifact comes from the next source", async () => {
    const r = await release();
    const proxy503 = await mirror({ kind: "status", status: 503, body: "<html><body><h1>503 Service Unavailable</h1></body></html>" });
    const busy = await mirror({
      kind: "status",
      status: 503,
      contentType: "application/json",
      body: JSON.stringify({ error: { code: "SERVER_BUSY", message: "too many requests in flight", hint: "retry later" } }),
    });
    // With no other source, the round fails with the last source's error, naming every source tried.
    const none = await download([server(proxy503.url), server(busy.url)], r).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(none).to.be.instanceOf(OtaError);
    expect((none as OtaError).code).to.equal("SERVER_BUSY");
    expect((none as OtaError).details.sources).to.deep.equal([
      { url: proxy503.url, kind: "server", code: "HTTP_ERROR" },
      { url: busy.url, kind: "server", code: "SERVER_BUSY" },
    ]);
    // With a working server after them, the artifact is delivered and verified.
    const sources = await SourceSet.open([server(proxy503.url), server(busy.url), server(f.server.url)]);
    const delivered = await download(sources, r);
    expect(delivered.source).to.deep.equal(server(f.server.url));
    expect(sources.report().map((h) => [h.url, h.lastCode, h.demotedAt === null])).to.deep.equal([
      [f.server.url, "OK", true],
      [proxy503.url, "HTTP_ERROR", false],
      [busy.url, "SERVER_BUSY", false],
    ]);
  });

  describe("IPFS trustless gateways", () => {
    let gw: TrustlessGateway;
    before(async () => {
      gw = await TrustlessGateway.start(f.store);
      closers.push(() => gw.close());
    });
    afterEach(() => {
      gw.flipBlock = undefined;
      gw.serveBlocks = Infinity;
      gw.plain = false;
    });

    it("REQ-10f-ii CAP-11.4-c: a gateway-only artifact path: every block checked against its CID, every chunk against the ledger's root; only the chunk list and the key from the firmware server", async () => {
      const r = await release(2_600_000); // over 1 MiB: a dag-pb root above raw 1 MiB leaves
      gw.served.length = 0;
      const delivered = await download([gateway(gw.url), server(f.server.url)], r);
      expect(delivered.source).to.deep.equal(gateway(gw.url));
      expect(gw.served[0]).to.equal(r.record.fileLink); // from the ledger's file link down
      expect(gw.served).to.have.length(4); // the root and three leaves
      const kinds = f.db.downloads({ deviceId: f.devices.a.credential.record.id, releaseId: r.releaseId.toLowerCase() }).map((d) => d.kind);
      expect(kinds).to.have.members(["manifest", "key"]); // no artifact bytes from the server
      expect(readFileSync(path.join(f.dir, `sources-dl-${n}.otae`))).to.deep.equal(readFileSync(r.artifactFile));
      // An artifact under 1 MiB is one raw block, its CID the file link itself (bafkrei...).
      const small = await release(300 * 1024);
      gw.served.length = 0;
      expect((await download([gateway(gw.url), server(f.server.url)], small)).source).to.deep.equal(gateway(gw.url));
      expect(gw.served).to.deep.equal([small.record.fileLink]);
      expect(readFileSync(path.join(f.dir, `sources-dl-${n}.otae`))).to.deep.equal(readFileSync(small.artifactFile));
    });

    it("REQ-10f-ii: a gateway that alters a block is caught at that block (CHUNK_MISMATCH), demoted, and the server goes on from the last verified chunk", async () => {
      const r = await release(2_600_000);
      gw.served.length = 0;
      // Learn the DAG's second leaf by a clean fetch, then flip a byte in it.
      await download([gateway(gw.url), server(f.server.url)], r);
      gw.flipBlock = gw.served[2];
      const sources = await SourceSet.open([gateway(gw.url), server(f.server.url)]);
      const delivered = await download(sources, r);
      expect(delivered.source.kind).to.equal("server");
      const leafOne = 1024 * 1024; // the first leaf's bytes verified: header and three whole chunks
      const chunksInLeafOne = 1 + Math.floor((leafOne - HEADER_SIZE) / span(r, 1).size);
      expect(delivered.resumedFrom).to.equal(chunksInLeafOne);
      expect(artifactRequests(r.releaseId).map((d) => d.rangeStart)).to.deep.equal([span(r, chunksInLeafOne).offset]);
      expect(sources.report().find((h) => h.kind === "gateway")).to.include({ lastCode: "CHUNK_MISMATCH", failures: 1 });
      expect(readFileSync(path.join(f.dir, `sources-dl-${n}.otae`))).to.deep.equal(readFileSync(r.artifactFile));
    });

    it("REQ-10f-ii: a gateway goes on from where a byte-flipping mirror was caught, skipping the blocks wholly before the last verified chunk", async () => {
      const r = await release(2_600_000);
      const bad = await mirror({ kind: "flip", offset: span(r, 5).offset + 10 });
      gw.served.length = 0;
      const sources = await SourceSet.open([server(bad.url), gateway(gw.url), server(f.server.url)]);
      const delivered = await download(sources, r);
      expect(delivered).to.deep.include({ source: gateway(gw.url), resumedFrom: 5 });
      // Chunk 5 starts inside the second 1 MiB leaf: the root, then the second and third leaves only.
      expect(gw.served).to.have.length(3);
      expect(gw.served[0]).to.equal(r.record.fileLink);
      expect(sources.report().map((h) => [h.kind, h.lastCode])).to.deep.equal([
        ["gateway", "OK"],
        ["server", "OK"], // its key
        ["server", "CHUNK_MISMATCH"],
      ]);
      expect(readFileSync(path.join(f.dir, `sources-dl-${n}.otae`))).to.deep.equal(readFileSync(r.artifactFile));
    });

    it("REQ-10f-ii: a key not granted yet is no source's fault: KEY_NOT_GRANTED, naming the servers asked, and nothing demoted", async () => {
      const r = await release(); // granted to device a only
      const sources = await SourceSet.open([gateway(gw.url), server(f.server.url)]);
      const err = await download(sources, r, f.devices.b).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(OtaError);
      expect((err as OtaError).code).to.equal("KEY_NOT_GRANTED");
      expect((err as OtaError).details.sources).to.deep.include({ url: f.server.url, kind: "server", code: "KEY_NOT_GRANTED" });
      expect(sources.report().every((h) => h.demotedAt === null && h.failures === 0)).to.equal(true);
    });

    it("REQ-10f-ii: a gateway that stops after one block (503) and one that is not trustless (plain bytes) are passed over", async () => {
      const r = await release(2_600_000);
      gw.served.length = 0;
      gw.serveBlocks = 2; // the root and the first leaf
      const sources = await SourceSet.open([gateway(gw.url), server(f.server.url)]);
      const delivered = await download(sources, r);
      expect(delivered).to.include({ resumedFrom: 4 });
      expect(sources.report().find((h) => h.kind === "gateway")).to.include({ lastCode: "HTTP_ERROR" });

      gw.serveBlocks = Infinity;
      gw.plain = true;
      const failed = await download([gateway(gw.url)], r).catch((e: unknown) => e);
      expect((failed as OtaError).code).to.equal("DEVICE_CONFIG"); // a gateway alone has no keys
      const plain = await SourceSet.open([gateway(gw.url), server(f.server.url)]);
      expect((await download(plain, r)).source.kind).to.equal("server");
      expect(plain.report().find((h) => h.kind === "gateway")).to.include({ lastCode: "ANSWER_MALFORMED" });
    });
  });

  it("REQ-10f-ii: a server whose wrapped key does not open with the device's key (another device's) is demoted; the key comes from the next server", async () => {
    const r = await release();
    // A well-formed key wrap that device a cannot open (another device's, or made up).
    const other = await mirror({ kind: "key", answer: JSON.stringify({ wrappedKey: "0x" + "ab".repeat(94) }) });
    // Alone, it is refused for its key, naming it.
    const alone = await download([server(other.url)], r).catch((e: unknown) => e);
    expect((alone as OtaError).code).to.equal("KEY_UNWRAP_FAILED");
    expect((alone as OtaError).details.sources).to.deep.equal([{ url: other.url, kind: "server", code: "KEY_UNWRAP_FAILED" }]);
    const sources = await SourceSet.open([server(other.url), server(f.server.url)]);
    const delivered = await download(sources, r);
    expect(delivered.source.url).to.equal(other.url); // the artifact, verified, came from it
    expect(sources.report().map((h) => [h.url, h.lastCode, h.failures])).to.deep.equal([
      [f.server.url, "OK", 0],
      [other.url, "KEY_UNWRAP_FAILED", 1],
    ]);
  });

  it("review (issue 15): a server that wraps a content key of its own (it opens, but is not the release's) is demoted as KEY_MISMATCH; the device installs with the next server's key", async () => {
    const r = await release();
    const me = f.devices.a.credential.record;
    // A compromised mirror serves the author's (verified) bytes but wraps a made-up content key for the device.
    const made = wrapContentKey(randomBytes(32), Buffer.from(me.publicKey.slice(2), "hex"), keyWrapContext(r.releaseId.toLowerCase(), me.id));
    const liar = await mirror({ kind: "key", answer: JSON.stringify({ wrappedKey: "0x" + made.toString("hex") }) });
    const sources = await SourceSet.open([server(liar.url), server(f.server.url)]);
    const agent = await DeviceAgent.open({ ...deviceAgentOptions(f, f.devices.a, "device-made-up-key"), sources });
    // Before: blocked (KEY_MISMATCH) at every round for as long as the liar stays first, as its artifact verified and its key "opened".
    expect(await agent.considerRelease(r.releaseId, "new-release")).to.deep.equal({ releaseId: r.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" });
    expect(sources.report().map((h) => [h.url, h.lastCode])).to.deep.equal([
      [f.server.url, "OK"],
      [liar.url, "KEY_MISMATCH"],
    ]);
  });

  it("review (issue 15): a download interrupted once, then only a path that ignores Range (200, the whole artifact): the device skips the verified prefix and installs instead of RANGE_IGNORED for good", async () => {
    const r = await release();
    const noRanges = await mirror({ kind: "no-ranges" });
    const options = deviceAgentOptions(f, f.devices.a, "device-no-ranges", { sources: [server(noRanges.url)] });
    // What an interrupted download left: the verified header and first chunk of the artifact.
    mkdirSync(path.join(options.dataDir, "downloads"), { recursive: true });
    writeFileSync(path.join(options.dataDir, "downloads", `${r.releaseId.toLowerCase()}.otae`), readFileSync(r.artifactFile).subarray(0, span(r, 2).offset));
    const agent = await DeviceAgent.open(options);
    // Before: blocked (RANGE_IGNORED) at every round, for as long as the kept prefix and the path last.
    expect(await agent.considerRelease(r.releaseId, "new-release")).to.deep.equal({ releaseId: r.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" });
    expect(noRanges.log.filter((e) => /\/artifact$/.test(e.path)).map((e) => [e.range, e.status])).to.deep.equal([[`bytes=${span(r, 2).offset}-`, 200]]);
  });

  it("review (issue 15): a mirror that trickles the artifact (never silent as long as the timeout) is passed over for the next source, not waited on for hours", async function () {
    this.timeout(40_000);
    const r = await release();
    const slow = await mirror({ kind: "trickle", pieceBytes: 64, delayMs: 200 }); // 320 B/s: 700 KiB in about 40 minutes
    const sources = await SourceSet.open([server(slow.url), server(f.server.url)]);
    const agent = await DeviceAgent.open({
      ...deviceAgentOptions(f, f.devices.a, "device-trickle"),
      sources,
      download: { startJitterMs: 0, timeoutMs: 2000, attempts: 1 },
    });
    expect(await agent.considerRelease(r.releaseId, "new-release")).to.deep.equal({ releaseId: r.releaseId.toLowerCase(), outcome: "confirmed", code: "OK" });
    expect(sources.report().map((h) => [h.url, h.lastCode])).to.deep.equal([
      [f.server.url, "OK"],
      [slow.url, "DOWNLOAD_STALLED"],
    ]);
  });
});
