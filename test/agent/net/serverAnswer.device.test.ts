import { expect } from "chai";
import path from "node:path";
import http from "node:http";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { answeringServer } from "../../helpers/deliveryMirrors";
import { downloadArtifact } from "../../../agent/consumer/downloadRelease";
import { expectCode } from "../../helpers/expectCode";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

const BODY_BYTES = 200 * 1024 * 1024;

/**
 * Every answer a device reads from a firmware server is bounded: an error body to a few KiB, the
 * chunk list and the key to what the ledger record implies, the artifact to its recorded size.
 */
describe("agent/net/serverAnswer on the device: the device reads bounded answers only (REQ-10f-ii)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let r: Awaited<ReturnType<Fixture["release"]>>;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    f = await serverFixture();
    r = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: writeImage(f.dir, "bounded.bin", 64 * 1024, 9), hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
  });
  after(async () => {
    for (const c of closers.splice(0)) await c().catch(() => {});
    await f?.close();
  });

  /** A server answering every request 403 with a JSON-looking body of BODY_BYTES; counts what it got out. */
  async function hugeRefusal(o: { declareLength: boolean }) {
    const sent = { bytes: 0 };
    const l = await answeringServer(async (_req, res) => {
      const head = Buffer.from('{"error":{"code":"DEVICE_SUSPENDED","message":"');
      res.writeHead(403, { "content-type": "application/json", ...(o.declareLength ? { "content-length": String(BODY_BYTES) } : {}) });
      const piece = Buffer.alloc(64 * 1024, 0x61);
      const write = (b: Buffer) =>
        new Promise<boolean>((resolve) => {
          if (res.destroyed) return resolve(false);
          const ok = res.write(b, (err) => {
            if (!err) sent.bytes += b.length;
          });
          if (ok) return resolve(true);
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve(!res.destroyed);
          };
          res.on("drain", done);
          res.on("close", done);
        });
      await write(head);
      for (let at = head.length; at < BODY_BYTES; at += piece.length) if (!(await write(piece.subarray(0, Math.min(piece.length, BODY_BYTES - at))))) return;
      res.end();
    });
    closers.push(() => l.close());
    return { url: l.url, sent };
  }

  const fetchFrom = (url: string) =>
    downloadArtifact({
      serverUrl: url,
      device: f.devices.a,
      installed: [],
      release: r.ledger,
      artifactFile: path.join(f.dir, "bounded.otae"),
      timeoutMs: 10_000,
    });

  const rss = () => {
    (global as { gc?: () => void }).gc?.();
    return process.memoryUsage().rss;
  };

  it("ISSUE-15 the device reads the server's error bodies with no bound (a 403 with 200 MiB grew its RSS by 215 MiB): it stops at 4 KiB (ANSWER_TOO_LARGE) and its memory does not grow with the body", async () => {
    const huge = await hugeRefusal({ declareLength: false });
    const before = rss();
    await expectCode(fetchFrom(huge.url), "ANSWER_TOO_LARGE");
    const grew = rss() - before;
    await new Promise((resolve) => setTimeout(resolve, 200)); // what was in flight when the device hung up
    console.log(
      `      (a 403 of ${BODY_BYTES / 2 ** 20} MiB: the server got ${(huge.sent.bytes / 2 ** 20).toFixed(2)} MiB out before the device hung up; RSS grew ${(grew / 2 ** 20).toFixed(1)} MiB)`,
    );
    // Socket buffers on the loopback take a few MiB; the body is 200.
    expect(huge.sent.bytes).to.be.below(32 * 1024 * 1024);
    expect(grew).to.be.below(64 * 1024 * 1024);
  });

  it("ISSUE-15 the device reads the server's error bodies with no bound: an error that declares 200 MiB is refused before a byte of it is read", async () => {
    const huge = await hugeRefusal({ declareLength: true });
    await expectCode(fetchFrom(huge.url), "ANSWER_TOO_LARGE");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(huge.sent.bytes).to.be.below(32 * 1024 * 1024);
  });

  it("ISSUE-15 a proxy's 502 page without a firmware server's error is HTTP_ERROR (a delivery fault), never a code that reads as the release's; the server's own refusals keep their code", async () => {
    const proxy = await answeringServer((_req, res: http.ServerResponse) => {
      res.writeHead(502, { "content-type": "text/html" }).end("<html><body>502 Bad Gateway</body></html>");
    });
    closers.push(() => proxy.close());
    const err = (await fetchFrom(proxy.url).catch((e: unknown) => e)) as { code: string; details: Record<string, unknown> };
    expect(err).to.include({ code: "HTTP_ERROR" });
    expect(err.details).to.include({ status: 502 });
    const busy = await answeringServer((_req, res: http.ServerResponse) => {
      res
        .writeHead(503, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { code: "SERVER_BUSY", message: "too many requests in flight" } }));
    });
    closers.push(() => busy.close());
    await expectCode(fetchFrom(busy.url), "SERVER_BUSY");
  });
});
