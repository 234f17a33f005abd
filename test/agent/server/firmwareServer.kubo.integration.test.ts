import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { startIpfsDaemon } from "../../helpers/ipfsDaemon";
import { KuboStore } from "../../../agent/storage/kuboStore";
import { downloadArtifact, decryptDownloaded } from "../../../agent/consumer/downloadRelease";

describe("agent/server firmware server on a real IPFS node (Kubo RPC, js-ipfs daemon)", function () {
  this.timeout(120_000);
  let daemon: Awaited<ReturnType<typeof startIpfsDaemon>>;
  let f: Awaited<ReturnType<typeof serverFixture>>;

  before(async () => {
    daemon = await startIpfsDaemon();
    f = await serverFixture(() => KuboStore.open({ url: daemon.apiUrl, timeoutMs: 10_000 }));
  });
  after(async () => {
    await f?.close();
    await daemon?.stop();
  });

  it("CAP-11.3-a CAP-11.3-b: accepts and pins a submission on the node, and a device fetches and decrypts it", async () => {
    const image = writeImage(f.dir, "fw.bin", 2 * 1024 * 1024 + 123, 21); // several 1 MiB blocks
    const r = await f.release(
      { component: "acme.sensor-fw", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
    expect(await f.store.isPinned(r.record.fileLink)).to.equal(true);
    const artifactFile = path.join(f.dir, "kubo.otae");
    const imageFile = path.join(f.dir, "kubo.bin");
    const { wrappedKey } = await downloadArtifact({
      serverUrl: f.server.url,
      device: f.devices.a,
      installed: [],
      release: { id: r.releaseId, record: r.record },
      artifactFile,
    });
    const { fileHash } = await decryptDownloaded({ device: f.devices.a, release: { id: r.releaseId, record: r.record }, artifactFile, imageFile, wrappedKey });
    expect(fileHash).to.equal(r.ledger.record.fileHash);
    expect(readFileSync(imageFile)).to.deep.equal(readFileSync(image));
  });
});
