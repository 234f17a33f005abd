import { expect } from "chai";
import path from "node:path";
import { Wallet } from "ethers";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { ACME_SIGNER, GLOBEX_SIGNER } from "../../helpers/registryFixture";
import { expectCode } from "../../helpers/expectCode";
import { prepareRelease, publishPrepared, type PreparedRelease, type ReleaseRequest } from "../../../agent/author/publishRelease";
import { readyRelease } from "../../../agent/author/readyRelease";
import { uploadArtifact } from "../../../agent/author/uploadArtifact";
import { grantKeys } from "../../../agent/author/grantKeys";
import { downloadArtifact, decryptDownloaded, type DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { computeReleaseId, signRelease } from "../../../agent/crypto/releaseSignature";
import { signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import { EmbeddedStore } from "../../../agent/storage/embeddedStore";
import { startFirmwareServer } from "../../../agent/server/firmwareServer";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

/** Issue 17: the release is ready before it is visible (a submission carrying the signed record of a release not yet published). */
describe("agent/server prepared submissions (issue 17)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let version = 0;

  before(async () => {
    f = await serverFixture();
  });
  after(async () => f?.close());

  /** A release of acme.sensor-fw checked, packaged and signed, not published. */
  async function prepare(o: { author?: Fixture["acmeAuthor"]; signer?: Wallet; component?: string; hardware?: string } = {}): Promise<PreparedRelease> {
    version += 1;
    const author = o.author ?? f.acmeAuthor;
    const req: ReleaseRequest = {
      component: o.component ?? "acme.sensor-fw",
      version: `${version}.0.0`,
      file: writeImage(f.dir, `image-${version}.bin`, 200 * 1024 + version, version),
      hardware: [o.hardware ?? "acme-board-rev-a"],
      depends: [],
    };
    return prepareRelease(
      { registry: f.registry, domain: f.domain, sender: author, releaseSigner: o.signer ?? ACME_SIGNER },
      req,
      path.join(f.dir, "artifacts"),
    );
  }
  const claimOf = (p: PreparedRelease) => ({ record: p.record, signature: p.signature, signer: p.signer });
  const submit = (p: PreparedRelease, claim = claimOf(p), author = f.acmeAuthor, serverUrl = f.server.url, id = p.releaseId) =>
    uploadArtifact({ serverUrl, author }, id, p.artifactFile, undefined, claim);
  const authoring = (serverUrl = f.server.url) => ({
    registry: f.registry,
    fleet: f.fleet,
    domain: f.domain,
    author: f.acmeAuthor,
    keys: f.keys,
    serverUrl,
  });

  async function deviceGet(device: DeviceIdentity, pathname: string) {
    const headers = signDeviceRequest(device.privateKey, device.credential.record.id, encodeDeviceCredential(device.credential), {
      audience: f.server.url,
      method: "GET",
      path: pathname,
      context: encodeInstalled([]),
    });
    const res = await fetch(new URL(pathname, f.server.url), { headers });
    return { status: res.status, code: res.ok ? undefined : ((await res.json()) as { error: { code: string } }).error.code };
  }

  /** Nothing of a refused submission is kept: no row, no pin. */
  function expectNothingStored(p: PreparedRelease) {
    expect(f.db.artifact(p.releaseId)).to.equal(undefined);
    return f.store.isPinned(p.record.fileLink).then((pinned) => expect(pinned).to.equal(false));
  }

  it("CAP-11.3-a REQ-10f-i: accepts the artifact and the keys of a signed release before it is published, serves neither until the ledger has it, then serves both at once", async () => {
    const p = await prepare();
    const ready = await readyRelease(authoring(), p, { grant: { deviceIds: [f.devices.a.credential.record.id] } });
    expect(ready.ready).to.equal(true);
    if (!ready.ready) return;
    expect(ready.upload).to.include({ status: 201, state: "prepared" });
    expect(ready.upload.expiresAt).to.be.a("number");
    expect(ready.grant?.granted).to.deep.equal([f.devices.a.credential.record.id]);
    expect(f.db.artifact(p.releaseId)?.state).to.equal("prepared");
    expect(f.db.wrappedKey(p.releaseId, f.devices.a.credential.record.id)).to.not.equal(undefined);

    // Not served: for a device the release does not exist yet.
    for (const route of ["manifest", "key", "artifact"]) {
      expect(await deviceGet(f.devices.a, `/v1/releases/${p.releaseId}/${route}`)).to.deep.equal({ status: 404, code: "RELEASE_UNKNOWN" });
    }
    // Submitting it again while prepared changes nothing.
    expect(await submit(p)).to.include({ status: 200, state: "prepared" });

    await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, p);
    // Right after the publish block, before or after the server's follower sees it: the device gets everything at once.
    const ledger = { id: p.releaseId, record: p.record };
    const artifactFile = path.join(f.dir, `device-${p.releaseId.slice(2, 10)}.otae`);
    const { wrappedKey } = await downloadArtifact({ serverUrl: f.server.url, device: f.devices.a, installed: [], release: ledger, artifactFile });
    const { fileHash } = await decryptDownloaded({ device: f.devices.a, release: ledger, artifactFile, imageFile: artifactFile + ".bin", wrappedKey });
    expect(fileHash).to.equal(p.record.fileHash);
    // The follower promotes it on the ReleasePublished event.
    await until(() => f.db.artifact(p.releaseId)?.state === "serving");
    expect(f.db.artifact(p.releaseId)?.expiresAt).to.equal(null);
  });

  it("a prepared artifact is promoted by a submission after publication too (the lazy path: an author retrying `release submit`)", async () => {
    const p = await prepare();
    await f.keys.save(p.releaseId, p.contentKey);
    expect(await submit(p)).to.include({ status: 201, state: "prepared" });
    await f.server.follower.stop(); // nobody follows the ledger: only the lazy paths remain
    try {
      await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, p);
      // The keys route takes the published release's record from the ledger now.
      await grantKeys(authoring(), p.releaseId, { deviceIds: [f.devices.a.credential.record.id] });
      expect(await deviceGet(f.devices.a, `/v1/releases/${p.releaseId}/key`)).to.deep.equal({ status: 200, code: undefined });
      expect(await uploadArtifact({ serverUrl: f.server.url, author: f.acmeAuthor }, p.releaseId, p.artifactFile)).to.include({
        status: 200,
        state: "serving",
      });
      expect(f.db.artifact(p.releaseId)?.state).to.equal("serving");
    } finally {
      await f.server.follower.start();
    }
  });

  describe("refused before anything is stored", () => {
    it("a signer the provider has not registered: SIGNER_NOT_REGISTERED", async () => {
      const p = await prepare();
      const stranger = Wallet.createRandom();
      const claim = { record: p.record, signature: await signRelease(stranger, f.domain, p.record), signer: stranger.address };
      await expectCode(submit(p, claim), "SIGNER_NOT_REGISTERED");
      await expectNothingStored(p);
    });

    it("a signature that is not the named signer's (forged): RELEASE_SIGNATURE_INVALID", async () => {
      const p = await prepare();
      const forged = { ...claimOf(p), signature: await signRelease(Wallet.createRandom(), f.domain, p.record) };
      await expectCode(submit(p, forged), "RELEASE_SIGNATURE_INVALID");
      await expectNothingStored(p);
    });

    it("a record that does not hash to the release id in the path: RELEASE_CLAIM_MISMATCH", async () => {
      const p = await prepare();
      const other = await prepare();
      await expectCode(submit(p, claimOf(other)), "RELEASE_CLAIM_MISMATCH");
      await expectNothingStored(p);
      await expectNothingStored(other);
    });

    it("an author of another provider: NOT_AUTHORIZED", async () => {
      const p = await prepare();
      await expectCode(submit(p, claimOf(p), f.globexAuthor), "NOT_AUTHORIZED");
      await expectNothingStored(p);
    });

    it("CAP-11.3-c: a barred provider: PROVIDER_BARRED, for the artifact and for keys", async () => {
      const p = await prepare({ author: f.globexAuthor, signer: GLOBEX_SIGNER, component: "globex.app", hardware: "globex-gateway" });
      expect(await submit(p, claimOf(p), f.globexAuthor)).to.include({ state: "prepared" });
      await f.keys.save(p.releaseId, p.contentKey);
      await f.registry.connect(f.auditor).barProvider(2, "under review");
      try {
        const q = await prepare({ author: f.acmeAuthor }); // a globex record made from it: prepareRelease refuses a barred provider
        const record = { ...q.record, provider: 2 };
        const globex = { record, signature: await signRelease(GLOBEX_SIGNER, f.domain, record), signer: GLOBEX_SIGNER.address };
        await expectCode(submit(q, globex, f.globexAuthor, f.server.url, computeReleaseId(f.domain, record)), "PROVIDER_BARRED");
        expect(f.db.artifact(computeReleaseId(f.domain, record))).to.equal(undefined);
        const grant = grantKeys(
          { ...authoring(), author: f.globexAuthor },
          p.releaseId,
          { deviceIds: [f.devices.gateway.credential.record.id] },
          { record: p.record },
        );
        await expectCode(grant, "PROVIDER_BARRED");
        expect(f.db.wrappedKey(p.releaseId, f.devices.gateway.credential.record.id)).to.equal(undefined);
      } finally {
        await f.registry.connect(f.admin).unbarProvider(2);
      }
    });

    it("keys for a release neither on the ledger nor prepared here: RELEASE_UNKNOWN", async () => {
      const p = await prepare();
      await f.keys.save(p.releaseId, p.contentKey);
      await expectCode(grantKeys(authoring(), p.releaseId, { deviceIds: [f.devices.a.credential.record.id] }, { record: p.record }), "RELEASE_UNKNOWN");
    });
  });

  describe("limits", () => {
    let now = Date.now();
    let s: Awaited<ReturnType<typeof startFirmwareServer>>;
    let db: ServerDatabase;
    let store: EmbeddedStore;

    before(async () => {
      db = new ServerDatabase(path.join(f.dir, "limits", "server.db"));
      store = await EmbeddedStore.open({ directory: path.join(f.dir, "limits", "ipfs") });
      s = await startFirmwareServer({
        gate: f.gate,
        store,
        db,
        pollMs: 100,
        now: () => now,
        authWindowMs: 365 * 24 * 3600 * 1000, // the test's clock moves days ahead of the signatures' wall clock
        prepared: { ttlMs: 3600_000, maxPerProvider: 2 },
      });
    });
    after(async () => {
      await s?.close();
      await store?.close();
      db?.close();
    });

    it("an unpublished artifact expires with its keys; one published in the meantime stays and is served", async () => {
      const lapsed = await prepare();
      const kept = await prepare();
      for (const p of [lapsed, kept]) {
        const ready = await readyRelease(authoring(s.url), p, { grant: { deviceIds: [f.devices.a.credential.record.id] } });
        expect(ready.ready && ready.upload.expiresAt).to.equal(now + 3600_000);
      }
      expect(await s.sweepPrepared()).to.deep.equal([]); // not yet expired
      await s.follower.stop(); // the publication is found by the sweep, not the follower
      await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, kept);
      now += 3600_000;
      expect(await s.sweepPrepared()).to.deep.equal([lapsed.releaseId]);
      expect(db.artifact(lapsed.releaseId)).to.equal(undefined);
      expect(db.wrappedKey(lapsed.releaseId, f.devices.a.credential.record.id)).to.equal(undefined);
      expect(await store.isPinned(lapsed.record.fileLink)).to.equal(false);
      expect(db.artifact(kept.releaseId)?.state).to.equal("serving");
      expect(await store.isPinned(kept.record.fileLink)).to.equal(true);
      await s.follower.start();
    });

    it("a provider holds at most maxPerProvider unpublished artifacts: PREPARED_QUOTA_EXCEEDED, room again once one is published", async () => {
      const [a, b, c] = [await prepare(), await prepare(), await prepare()];
      expect(await submit(a, claimOf(a), f.acmeAuthor, s.url)).to.include({ state: "prepared" });
      expect(await submit(b, claimOf(b), f.acmeAuthor, s.url)).to.include({ state: "prepared" });
      await expectCode(submit(c, claimOf(c), f.acmeAuthor, s.url), "PREPARED_QUOTA_EXCEEDED");
      expect(db.artifact(c.releaseId)).to.equal(undefined);
      await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, a);
      await until(() => db.artifact(a.releaseId)?.state === "serving");
      expect(await submit(c, claimOf(c), f.acmeAuthor, s.url)).to.include({ state: "prepared" });
    });
  });
});

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}
