import { expect } from "chai";
import path from "node:path";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { downloadArtifact } from "../../../agent/consumer/downloadRelease";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { startFirmwareServer, RunningFirmwareServer } from "../../../agent/server/firmwareServer";

describe("agent/server firmware server: stopped and started again", function () {
  this.timeout(120_000);
  let f: Awaited<ReturnType<typeof serverFixture>>;
  let store: EmbeddedStore | undefined;
  let db: ServerDatabase | undefined;
  let server: RunningFirmwareServer | undefined;

  before(async () => (f = await serverFixture()));
  after(async () => {
    await server?.close();
    await store?.close();
    db?.close();
    await f?.close();
  });

  it("CAP-11.3-f CAP-11.3-c PROC-4: keeps its artifacts, keys and download log, catches up with revocations made while down; finding: its nonces survive the restart (a request taken before it is a replay after it, one signed just before it is not stale)", async () => {
    const image = writeImage(f.dir, "a.bin", 200 * 1024, 41);
    const keep = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
    const doomed = await f.release(
      { component: "acme.radio-fw", version: "1.0.0", file: writeImage(f.dir, "b.bin", 100 * 1024, 43), hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
    await downloadArtifact({
      serverUrl: f.server.url,
      device: f.devices.a,
      installed: [],
      release: { id: keep.releaseId, record: keep.record },
      artifactFile: path.join(f.dir, "before.otae"),
    });
    const port = new URL(f.server.url).port;
    const manifestPath = `/v1/releases/${keep.releaseId.toLowerCase()}/manifest`;
    const sign = () =>
      signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
        audience: f.server.url,
        method: "GET",
        path: manifestPath,
        context: encodeInstalled([]),
      });
    const takenBefore = sign();
    expect((await fetch(new URL(manifestPath, f.server.url), { headers: takenBefore })).status).to.equal(200);
    const signedBefore = sign(); // signed, then the server goes down before it is sent

    // Down: the whole server, its database and its store. Meanwhile a release is revoked.
    await f.server.close();
    f.db.close();
    await f.store.close();
    await f.registry.connect(f.auditor).revokeRelease(doomed.releaseId, "backdoor");

    store = await EmbeddedStore.open({ directory: path.join(f.dir, "ipfs") });
    db = new ServerDatabase(path.join(f.dir, "server.db"));
    server = await startFirmwareServer({ gate: f.gate, store, db, port: Number(port) });

    expect(db.downloads({ deviceId: f.devices.a.credential.record.id }).some((d) => d.kind === "artifact" && d.complete)).to.equal(true);
    expect(db.artifact(doomed.releaseId)!.state).to.equal("withdrawn");
    expect(await store.isPinned(doomed.record.fileLink)).to.equal(false);
    expect(await store.isPinned(keep.record.fileLink)).to.equal(true);

    // Before issue 15 the nonces were in memory: the server refused everything signed before its
    // start (AUTH_STALE), honest requests included.
    const replay = await fetch(new URL(manifestPath, server.url), { headers: takenBefore });
    expect(replay.status).to.equal(409);
    expect(((await replay.json()) as { error: { code: string } }).error.code).to.equal("AUTH_REPLAY");
    expect((await fetch(new URL(manifestPath, server.url), { headers: signedBefore })).status).to.equal(200);

    const { wrappedKey } = await downloadArtifact({
      serverUrl: server.url,
      device: f.devices.a,
      installed: [],
      release: { id: keep.releaseId, record: keep.record },
      artifactFile: path.join(f.dir, "after.otae"),
    });
    expect(wrappedKey).to.have.length(94);
  });
});
