import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { downloadArtifact } from "../../../agent/consumer/downloadRelease";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { ServerDatabase } from "../../../agent/server/serverDatabase";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

const MiB = 1024 * 1024;

/** Issue 17: the server streams artifacts from the store's files with backpressure, to many devices at once. */
describe("agent/server firmware server under a fleet's downloads (issue 17)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let rel: Awaited<ReturnType<Fixture["release"]>>;
  let artifact: Buffer;

  before(async () => {
    f = await serverFixture();
    // Over 2 MiB: three 1 MiB leaves in the store, so ranges cross leaf files.
    const image = writeImage(f.dir, "fleet.bin", 2 * MiB + 300 * 1024 + 7, 9);
    rel = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a, f.devices.b] },
    );
    artifact = readFileSync(rel.artifactFile);
  });
  after(async () => f?.close());

  const artifactPath = () => `/v1/releases/${rel.releaseId.toLowerCase()}/artifact`;
  const ranged = (range: string) => {
    const headers = signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
      audience: f.server.url,
      method: "GET",
      path: artifactPath(),
      context: encodeInstalled([]),
    });
    return fetch(new URL(artifactPath(), f.server.url), { headers: { ...headers, range } });
  };

  it("CAP-11.3-b: 60 devices' downloads at once all complete, every chunk verified, the bytes the author's", async () => {
    const n = 60;
    const files = Array.from({ length: n }, (_, i) => path.join(f.dir, `fleet-${i}.otae`));
    const results = await Promise.allSettled(
      files.map((artifactFile, i) =>
        downloadArtifact({
          serverUrl: f.server.url,
          device: i % 2 === 0 ? f.devices.a : f.devices.b,
          installed: [],
          release: { id: rel.releaseId, record: rel.record },
          artifactFile,
          timeoutMs: 30_000,
        }),
      ),
    );
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${i}: ${(r.reason as Error).message}`] : []));
    expect(failed, "downloads that did not complete").to.deep.equal([]);
    for (const file of files) expect(readFileSync(file).equals(artifact), file).to.equal(true);
    const logged = f.db.downloads({ releaseId: rel.releaseId.toLowerCase(), limit: 1000 }).filter((d) => d.kind === "artifact" && d.complete);
    expect(logged.length).to.be.at.least(n);
  });

  it("CAP-11.3-b: ranges inside a leaf, across leaf files and to the end are the artifact's bytes, streamed from the store's files", async () => {
    const size = artifact.length;
    for (const [start, end] of [
      [0, 99],
      [MiB - 10, MiB + 10],
      [MiB - 1, 2 * MiB + 1],
      [2 * MiB + 5, size - 1],
    ]) {
      const res = await ranged(`bytes=${start}-${end}`);
      expect(res.status, `bytes=${start}-${end}`).to.equal(206);
      expect(res.headers.get("content-range")).to.equal(`bytes ${start}-${end}/${size}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(artifact.subarray(start, end + 1)), `bytes=${start}-${end}`).to.equal(true);
    }
    const tail = await ranged(`bytes=${size - 3}-`);
    expect(Buffer.from(await tail.arrayBuffer()).equals(artifact.subarray(size - 3))).to.equal(true);
  });

  it("CAP-11.3-f: the download log, written in groups, reads back every entry at once and keeps them across a close", () => {
    const file = path.join(f.dir, "grouped-log.db");
    const db = new ServerDatabase(file);
    const entry = (i: number) => ({
      at: 1_000 + i,
      deviceId: f.devices.a.credential.record.id,
      releaseId: rel.releaseId,
      kind: "artifact" as const,
      rangeStart: 0,
      rangeEnd: i,
      bytes: i + 1,
      complete: i % 2 === 0,
    });
    for (let i = 0; i < 700; i++) db.logDownload(entry(i)); // past one group (512): part written at once, the rest pending
    const read = db.downloads({ limit: 10_000 });
    expect(read.map((d) => d.rangeEnd)).to.deep.equal(Array.from({ length: 700 }, (_, i) => i));
    db.logDownload(entry(700)); // pending when the database closes
    db.close();
    const again = new ServerDatabase(file);
    try {
      const kept = again.downloads({ limit: 10_000 });
      expect(kept).to.have.length(701);
      expect(kept[700]).to.deep.include({ at: 1_700, bytes: 701, complete: true, kind: "artifact" });
    } finally {
      again.close();
    }
  });

  it("keeps a device's connection alive for its next request, with the 10 s keep-alive timeout as a hint", async () => {
    const res = await ranged("bytes=0-0");
    await res.arrayBuffer();
    expect(res.headers.get("connection")).to.equal("keep-alive");
    expect(res.headers.get("keep-alive")).to.match(/timeout=10\b/);
  });
});
