import { expect } from "chai";
import path from "node:path";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { serverFixture, writeImage, deviceAgentOptions } from "../../helpers/serverFixture";
import { FirmwareMirror, answeringServer } from "../../helpers/deliveryMirrors";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { downloadFromSources, SourceSet, type DeliverySource } from "../../../agent/consumer/deliverySources";
import { OtaError } from "../../../agent/core/errors";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/**
 * A device whose clock is off: the firmware server refuses its signed requests as stale
 * (AUTH_STALE, a 60 s window). The device takes that server's time from its Date header and signs
 * again at once; per server, bounded, logged.
 */
describe("agent/consumer/serverClock: a device's clock corrected per firmware server (REQ-10f-ii: a clock is a delivery fault, not a failure)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let minor = 0;
  const closers: (() => Promise<void>)[] = [];
  before(async () => (f = await serverFixture()));
  after(async () => {
    for (const c of closers.splice(0)) await c().catch(() => {});
    await f?.close();
  });
  const release = () => {
    minor += 1;
    return f.release(
      {
        component: "acme.bootloader",
        version: `1.${minor}.0`,
        file: writeImage(f.dir, `clock-${minor}.bin`, 300 * 1024, 70 + minor),
        hardware: ["acme-board-rev-a"],
        depends: [],
      },
      { grant: [f.devices.a] },
    );
  };
  const server = (url: string): DeliverySource => ({ kind: "server", url });
  /** A server that refuses every request as stale and dates its answer `offsetMs` from now. */
  async function staleClaimer(offsetMs: number) {
    const l = await answeringServer((_req, res) => {
      res.writeHead(401, { "content-type": "application/json", date: new Date(Date.now() + offsetMs).toUTCString() });
      res.end(JSON.stringify({ error: { code: "AUTH_STALE", message: "the request was signed outside the accepted window" } }));
    });
    closers.push(() => l.close());
    return l;
  }

  it("ISSUE-15 AUTH_STALE (a device clock 60 s off fails authentication forever): a device 90 s slow corrects its request time from the server's Date header, retries at once and installs", async () => {
    const r = await release();
    const ahead = await FirmwareMirror.start(f, { kind: "none" }, { clockOffsetMs: 90_000 });
    closers.push(() => ahead.close());
    const lines: string[] = [];
    const sources = await SourceSet.open([server(ahead.url)], { log: (l) => lines.push(l) });
    const agent = await DeviceAgent.open({ ...deviceAgentOptions(f, f.devices.a, "device-clock"), sources, log: (l) => lines.push(l) });
    expect(await agent.considerRelease(r.releaseId, "new-release")).to.include({ outcome: "confirmed", code: "OK" });
    const c = agent.slots.snapshot().components[r.record.component.toLowerCase()];
    const image = readFileSync(path.join(agent.slots.slotDir(r.record.component.toLowerCase(), c.active), "image.bin"));
    expect("0x" + createHash("sha256").update(image).digest("hex")).to.equal(r.record.fileHash);
    // Corrected once, logged, to within the Date header's second of the server's clock.
    const offset = sources.clock(ahead.url).offsetMs;
    expect(offset).to.be.within(88_000, 92_000);
    expect(lines.filter((l) => l.startsWith("clock: "))).to.have.length(1);
    // Each refused request was signed again at once: one stale refusal in all, then only answers.
    expect(ahead.log.filter((e) => e.status === 401)).to.have.length(1);
  });

  it("ISSUE-15 AUTH_STALE: the correction is per server: a server lying about the time moves only the clock of requests to itself", async () => {
    const r = await release();
    const liar = await staleClaimer(3600_000);
    const sources = await SourceSet.open([server(liar.url), server(f.server.url)]);
    const delivered = await downloadFromSources(sources, {
      device: f.devices.a,
      installed: [],
      release: r.ledger,
      artifactFile: path.join(f.dir, "clock-per-server.otae"),
    });
    expect(delivered.source.url).to.equal(f.server.url);
    expect(sources.clock(liar.url).offsetMs).to.be.within(3598_000, 3602_000);
    expect(sources.clock(f.server.url).offsetMs).to.equal(0);
    expect(sources.report().find((h) => h.url === liar.url)).to.include({ lastCode: "AUTH_STALE", failures: 1 });
  });

  it("ISSUE-15 AUTH_STALE: a correction beyond the bound (a day by default) is not taken, and is logged; the refusal names the source", async () => {
    const r = await release();
    const far = await staleClaimer(3 * 24 * 3600_000);
    const lines: string[] = [];
    const sources = await SourceSet.open([server(far.url)], { log: (l) => lines.push(l) });
    const err = await downloadFromSources(sources, {
      device: f.devices.a,
      installed: [],
      release: r.ledger,
      artifactFile: path.join(f.dir, "clock-far.otae"),
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OtaError);
    expect((err as OtaError).code).to.equal("AUTH_STALE");
    expect((err as OtaError).details.sources).to.deep.equal([{ url: far.url, kind: "server", code: "AUTH_STALE" }]);
    expect(sources.clock(far.url).offsetMs).to.equal(0);
    expect(lines.join("\n")).to.match(/more than the \+86400\.0 s bound: not corrected/);
  });
});
