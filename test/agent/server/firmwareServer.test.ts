import { expect } from "chai";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { downloadArtifact, decryptDownloaded, DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { artifactSize, storedChunkSpan, decodeHeader } from "../../../agent/crypto/artifactCipher";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signAccountRequest, signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { importEsm } from "../../../agent/storage/esm";
import { rawCidV1 } from "../../helpers/rawCid";
import { expectCode } from "../../helpers/expectCode";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;

describe("agent/server firmware server (X.1368 11.3)", function () {
  this.timeout(120_000);
  let f: Fixture;
  let boot: Awaited<ReturnType<Fixture["release"]>>;
  let attempt = 0;

  before(async () => {
    f = await serverFixture();
    const image = writeImage(f.dir, "bootloader.bin", 700 * 1024 + 3, 1);
    boot = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
      { grant: [f.devices.a] },
    );
  });
  after(async () => f?.close());
  afterEach(() => (f.store.fault = { kind: "none" }));

  const files = () => {
    attempt += 1;
    return { artifactFile: path.join(f.dir, `dl-${attempt}.otae`), imageFile: path.join(f.dir, `img-${attempt}.bin`) };
  };
  const download = (device: DeviceIdentity, artifactFile: string, release = boot) =>
    downloadArtifact({ serverUrl: f.server.url, device, installed: [], release: { id: release.releaseId, record: release.record }, artifactFile });
  const expectedSize = () => Number(artifactSize(boot.record.fileSize, decodeHeader(readFileSync(boot.artifactFile).subarray(0, 24)).chunkSize));

  /** A device request with the signature headers, sent as is. */
  async function deviceGet(device: DeviceIdentity, pathname: string, tweak: (h: Record<string, string>) => Record<string, string> = (h) => h) {
    const headers = signDeviceRequest(device.privateKey, device.credential.record.id, encodeDeviceCredential(device.credential), {
      audience: f.server.url,
      method: "GET",
      path: pathname,
      context: encodeInstalled([]),
    });
    return fetch(new URL(pathname, f.server.url), { headers: tweak(headers) });
  }
  const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  describe("round trip", () => {
    it("REQ-10f-i REQ-10f-iii CAP-11.3-a CAP-11.3-b CAP-11.4-c: a device fetches, verifies every chunk, unwraps its key, decrypts, and the hash is the ledger's", async () => {
      const { artifactFile, imageFile } = files();
      const { wrappedKey } = await download(f.devices.a, artifactFile);
      expect(statSync(artifactFile).size).to.equal(expectedSize());
      const { fileHash } = await decryptDownloaded({
        device: f.devices.a,
        release: { id: boot.releaseId, record: boot.record },
        artifactFile,
        imageFile,
        wrappedKey,
      });
      expect(fileHash).to.equal(boot.ledger.record.fileHash);
      expect(readFileSync(imageFile)).to.deep.equal(readFileSync(path.join(f.dir, "bootloader.bin")));
      expect(await f.store.isPinned(boot.record.fileLink)).to.equal(true);
    });

    it("CAP-11.3-b: resumes an interrupted download from the last verified chunk", async () => {
      const { artifactFile } = files();
      const header = decodeHeader(readFileSync(boot.artifactFile).subarray(0, 24));
      const cut = storedChunkSpan(header, 2).offset + 1000; // the connection drops inside chunk 2
      f.store.fault = { kind: "truncate", keep: cut };
      await expectCode(download(f.devices.a, artifactFile), "ARTIFACT_TRUNCATED");
      expect(statSync(artifactFile).size).to.equal(storedChunkSpan(header, 2).offset); // only verified chunks kept
      f.store.fault = { kind: "none" };
      const { resumedFrom } = await download(f.devices.a, artifactFile);
      expect(resumedFrom).to.equal(2);
      expect(readFileSync(artifactFile)).to.deep.equal(readFileSync(boot.artifactFile));
    });

    it("CAP-11.3-f: logs each download durably and answers queries from administrators only", async () => {
      const admin = f.admin;
      const pathname = `/v1/downloads?device=${f.devices.a.credential.record.id}`;
      const headers = await signAccountRequest(admin, { audience: f.server.url, method: "GET", path: pathname });
      const res = await fetch(new URL(pathname, f.server.url), { headers });
      expect(res.status).to.equal(200);
      const { downloads } = (await res.json()) as { downloads: { kind: string; complete: boolean; releaseId: string }[] };
      expect(downloads.some((d) => d.kind === "artifact" && d.complete && d.releaseId === boot.releaseId.toLowerCase())).to.equal(true);
      expect(downloads.some((d) => d.kind === "key")).to.equal(true);

      const outsiderHeaders = await signAccountRequest(f.outsider, { audience: f.server.url, method: "GET", path: pathname });
      const refused = await fetch(new URL(pathname, f.server.url), { headers: outsiderHeaders });
      expect(refused.status).to.equal(403);
      expect(await errorCode(refused)).to.equal("NOT_AUTHORIZED");
    });
  });

  describe("CAP-11.4-c: a compromised store cannot get altered bytes accepted", () => {
    const attacks: [string, () => import("../../helpers/faultyStore").Fault, string][] = [
      ["flips one byte", () => ({ kind: "flip", at: 30_000 }), "CHUNK_MISMATCH"],
      ["truncates the artifact", () => ({ kind: "truncate", keep: 100_000 }), "ARTIFACT_TRUNCATED"],
      ["appends bytes", () => ({ kind: "append", bytes: 5 }), "ARTIFACT_TOO_LONG"],
      ["sends without end (stopped at the recorded size)", () => ({ kind: "endless" }), "ARTIFACT_TOO_LONG"],
      [
        "swaps two chunks",
        () => {
          const h = decodeHeader(readFileSync(boot.artifactFile).subarray(0, 24));
          return { kind: "swap", a: storedChunkSpan(h, 1), b: storedChunkSpan(h, 2) };
        },
        "CHUNK_MISMATCH",
      ],
    ];
    for (const [label, fault, code] of attacks) {
      it(`the store ${label}: ${code}, and nothing unverified is kept`, async () => {
        f.store.fault = fault();
        const { artifactFile, imageFile } = files();
        await expectCode(download(f.devices.a, artifactFile), code);
        const kept = existsSync(artifactFile) ? readFileSync(artifactFile) : Buffer.alloc(0);
        expect(kept.length).to.be.at.most(expectedSize());
        expect(kept).to.deep.equal(readFileSync(boot.artifactFile).subarray(0, kept.length)); // a verified prefix only
        expect(existsSync(imageFile)).to.equal(false);
      });
    }

    it("the store serves another release's artifact: CHUNK_MISMATCH", async () => {
      const image = writeImage(f.dir, "radio.bin", 300 * 1024, 7);
      const other = await f.release({ component: "acme.radio-fw", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] });
      f.store.fault = { kind: "substitute", cid: other.record.fileLink };
      await expectCode(download(f.devices.a, files().artifactFile), "CHUNK_MISMATCH");
    });
  });

  describe("PROC-4: requests without the right are refused with an error code", () => {
    const manifestPath = () => `/v1/releases/${boot.releaseId.toLowerCase()}/manifest`;

    it("an unsigned request: 401 AUTH_MISSING", async () => {
      const res = await fetch(new URL(manifestPath(), f.server.url));
      expect(res.status).to.equal(401);
      expect(await errorCode(res)).to.equal("AUTH_MISSING");
    });

    it("a replayed request: 409 AUTH_REPLAY", async () => {
      const headers = signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
        audience: f.server.url,
        method: "GET",
        path: manifestPath(),
        context: encodeInstalled([]),
      });
      const first = await fetch(new URL(manifestPath(), f.server.url), { headers });
      expect(first.status).to.equal(200);
      const again = await fetch(new URL(manifestPath(), f.server.url), { headers });
      expect(again.status).to.equal(409);
      expect(await errorCode(again)).to.equal("AUTH_REPLAY");
    });

    it("a request signed long ago, or for another path: AUTH_STALE, AUTH_SIGNATURE", async () => {
      const old = signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
        audience: f.server.url,
        method: "GET",
        path: manifestPath(),
        context: encodeInstalled([]),
        now: Date.now() - 10 * 60_000,
      });
      expect(await errorCode(await fetch(new URL(manifestPath(), f.server.url), { headers: old }))).to.equal("AUTH_STALE");
      const elsewhere = `/v1/releases/${boot.releaseId.toLowerCase()}/key`;
      expect(
        await errorCode(
          await deviceGet(f.devices.a, manifestPath(), (h) => h).then(() =>
            fetch(new URL(elsewhere, f.server.url), {
              headers: signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
                audience: f.server.url,
                method: "GET",
                path: manifestPath(),
              }),
            }),
          ),
        ),
      ).to.equal("AUTH_SIGNATURE");
    });

    it("a request signed for another server is refused here: AUTH_SIGNATURE", async () => {
      const headers = signDeviceRequest(f.devices.a.privateKey, f.devices.a.credential.record.id, encodeDeviceCredential(f.devices.a.credential), {
        audience: "http://127.0.0.1:1",
        method: "GET",
        path: manifestPath(),
        context: encodeInstalled([]),
      });
      expect(await errorCode(await fetch(new URL(manifestPath(), f.server.url), { headers }))).to.equal("AUTH_SIGNATURE");
    });

    it("a device claiming another's record: AUTH_SIGNATURE", async () => {
      const impostor: DeviceIdentity = { privateKey: f.devices.b.privateKey, credential: f.devices.a.credential };
      const res = await deviceGet(impostor, manifestPath());
      expect(await errorCode(res)).to.equal("AUTH_SIGNATURE");
    });

    it("CAP-11.3-d: a device not enrolled, or suspended: DEVICE_NOT_ENROLLED, DEVICE_SUSPENDED", async () => {
      expect(await errorCode(await deviceGet(f.devices.stranger, manifestPath()))).to.equal("DEVICE_NOT_ENROLLED");
      expect(await errorCode(await deviceGet(f.devices.suspended, manifestPath()))).to.equal("DEVICE_SUSPENDED");
    });

    it("a device of unsupported hardware: HARDWARE_NOT_SUPPORTED (the ledger's installable check)", async () => {
      const res = await deviceGet(f.devices.gateway, manifestPath());
      expect(res.status).to.equal(403);
      expect(await errorCode(res)).to.equal("HARDWARE_NOT_SUPPORTED");
    });

    it("an enrolled device without a granted key: KEY_NOT_GRANTED", async () => {
      expect(await errorCode(await deviceGet(f.devices.b, manifestPath()))).to.equal("KEY_NOT_GRANTED");
    });

    it("CAP-11.4-c: a wrapped key taken by another device does not unwrap", async () => {
      const { artifactFile, imageFile } = files();
      const { wrappedKey } = await download(f.devices.a, artifactFile);
      await expectCode(
        decryptDownloaded({ device: f.devices.b, release: { id: boot.releaseId, record: boot.record }, artifactFile, imageFile, wrappedKey }),
        "WRAPPED_KEY_AUTHENTICATION",
      );
      expect(existsSync(imageFile)).to.equal(false);
    });

    it("key grants only from an author of the release's provider, well formed", async () => {
      const pathname = `/v1/releases/${boot.releaseId.toLowerCase()}/keys`;
      const body = JSON.stringify({ keys: [{ deviceId: f.devices.b.credential.record.id, wrappedKey: "0x01" + "00".repeat(93) }] });
      const put = async (signer: typeof f.admin, b: string) =>
        fetch(new URL(pathname, f.server.url), {
          method: "PUT",
          headers: {
            ...(await signAccountRequest(signer, { audience: f.server.url, method: "PUT", path: pathname, body: b })),
            "content-type": "application/json",
          },
          body: b,
        });
      expect(await errorCode(await put(f.globexAuthor, body))).to.equal("NOT_AUTHORIZED");
      expect(await errorCode(await put(f.acmeAuthor, JSON.stringify({ keys: [{ deviceId: f.devices.b.credential.record.id, wrappedKey: "0x02" }] })))).to.equal(
        "KEYS_MALFORMED",
      );
      expect(f.db.wrappedKey(boot.releaseId, f.devices.b.credential.record.id)).to.equal(undefined);
    });
  });

  describe("CAP-11.3-b: the IPFS trustless-gateway formats", () => {
    it("serves an entitled device a raw block and a CAR whose every block hashes to its CID", async () => {
      const raw = await deviceGet(f.devices.a, `/ipfs/${boot.record.fileLink}?format=raw`);
      expect(raw.status).to.equal(200);
      expect(raw.headers.get("content-type")).to.equal("application/vnd.ipld.raw");
      const car = await deviceGet(f.devices.a, `/ipfs/${boot.record.fileLink}?format=car`);
      expect(car.status).to.equal(200);
      const { CarReader } = await importEsm<{
        CarReader: {
          fromBytes(b: Uint8Array): Promise<{
            getRoots(): Promise<{ toString(): string }[]>;
            blocks(): AsyncIterable<{ cid: { toString(): string; code: number }; bytes: Uint8Array }>;
          }>;
        };
      }>("@ipld/car");
      const reader = await CarReader.fromBytes(new Uint8Array(await car.arrayBuffer()));
      expect((await reader.getRoots()).map(String)).to.deep.equal([boot.record.fileLink]);
      let leaves = 0;
      let total = 0;
      for await (const block of reader.blocks()) {
        if (block.cid.code === 0x55) {
          expect(block.cid.toString()).to.equal(rawCidV1(createHash("sha256").update(block.bytes).digest()));
          leaves += 1;
          total += block.bytes.length;
        }
      }
      expect(leaves).to.be.above(0);
      expect(total).to.equal(expectedSize());
    });

    it("refuses a device without the right, and formats that cannot be verified", async () => {
      expect(await errorCode(await deviceGet(f.devices.b, `/ipfs/${boot.record.fileLink}?format=car`))).to.equal("KEY_NOT_GRANTED");
      expect((await deviceGet(f.devices.a, `/ipfs/${boot.record.fileLink}`)).status).to.equal(406);
      expect(await errorCode(await deviceGet(f.devices.a, `/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw`))).to.equal(
        "BLOCK_UNKNOWN",
      );
    });
  });

  describe("CAP-11.3-a: submissions are screened against the ledger", () => {
    async function submit(releaseId: string, bytes: Uint8Array, author = f.acmeAuthor) {
      const res = await fetch(new URL(`/v1/releases/${releaseId}/artifact`, f.server.url), {
        method: "POST",
        headers: { ...(await f.submissionHeaders(releaseId, author)), "content-type": "application/octet-stream" },
        body: bytes,
      });
      return { status: res.status, code: res.ok ? "OK" : await errorCode(res) };
    }
    async function unpublishedOnServer(prepared: { releaseId: string; record: { fileLink: string } }) {
      expect(f.db.artifact(prepared.releaseId)).to.equal(undefined);
      expect(await f.store.isPinned(prepared.record.fileLink)).to.equal(false);
    }

    it("refuses bytes that are not the recorded artifact, pinning nothing", async () => {
      const image = writeImage(f.dir, "sensor.bin", 200 * 1024, 3);
      const r = await f.release({ component: "acme.sensor-fw", version: "1.0.0", file: image, hardware: ["acme-board-rev-a"], depends: [] }, { upload: false });
      const good = readFileSync(r.artifactFile);
      const flipped = Buffer.from(good);
      flipped[good.length - 1] ^= 1;
      expect(await submit(r.releaseId, flipped)).to.deep.equal({ status: 422, code: "SUBMISSION_MERKLE_MISMATCH" });
      expect(await submit(r.releaseId, good.subarray(0, good.length - 10))).to.deep.include({ code: "SUBMISSION_FORMAT" });
      expect(await submit(r.releaseId, Buffer.concat([good, Buffer.alloc(1)]))).to.deep.include({ code: "SUBMISSION_SIZE_MISMATCH" });
      expect(await submit(r.releaseId, readFileSync(boot.artifactFile))).to.deep.include({ code: "SUBMISSION_SIZE_MISMATCH" });
      expect(await submit("0x" + "ab".repeat(32), good)).to.deep.equal({ status: 404, code: "RELEASE_UNKNOWN" });
      await unpublishedOnServer(r);
      expect(await submit(r.releaseId, good)).to.deep.equal({ status: 201, code: "OK" });
    });

    it("refuses an artifact whose CID is not the ledger's file link", async () => {
      // A record whose root and size are the artifact's but whose link names other content.
      const image = writeImage(f.dir, "radio2.bin", 100 * 1024, 11);
      const { prepareRelease, publishPrepared } = await import("../../../agent/author/publishRelease");
      const { ACME_SIGNER } = await import("../../helpers/registryFixture");
      const prepared = await prepareRelease(
        { registry: f.registry, domain: f.domain, sender: f.acmeAuthor, releaseSigner: ACME_SIGNER },
        { component: "acme.radio-fw", version: "1.1.0", file: image, hardware: ["1"], depends: [] },
        path.join(f.dir, "artifacts2"),
      );
      const { signRelease, computeReleaseId } = await import("../../../agent/crypto/releaseSignature");
      const record = { ...prepared.record, fileLink: boot.record.fileLink };
      const forged = { ...prepared, record, releaseId: computeReleaseId(f.domain, record), signature: await signRelease(ACME_SIGNER, f.domain, record) };
      await publishPrepared({ registry: f.registry, sender: f.acmeAuthor, keys: f.keys }, forged);
      expect(await submit(forged.releaseId, readFileSync(prepared.artifactFile))).to.deep.equal({ status: 422, code: "SUBMISSION_CID_MISMATCH" });
      expect(f.db.artifact(forged.releaseId)).to.equal(undefined);
    });

    it("CAP-11.3-c: refuses submissions of a barred provider", async () => {
      const image = writeImage(f.dir, "globex.bin", 50 * 1024, 5);
      const r = await f.release(
        { component: "globex.app", version: "1.0.0", file: image, hardware: ["globex-gateway"], depends: [] },
        { author: f.globexAuthor, upload: false },
      );
      await f.registry.connect(f.auditor).barProvider(2, "malware found");
      expect(await submit(r.releaseId, readFileSync(r.artifactFile), f.globexAuthor)).to.deep.equal({ status: 403, code: "PROVIDER_BARRED" });
      await unpublishedOnServer(r);
    });
  });

  describe("CAP-11.3-c: follows revocations on the ledger", () => {
    it("stops serving a revoked release and unpins it", async () => {
      const image = writeImage(f.dir, "sensor2.bin", 90 * 1024, 9);
      const r = await f.release(
        { component: "acme.sensor-fw", version: "1.1.0", file: image, hardware: ["acme-board-rev-a"], depends: [] },
        { grant: [f.devices.a] },
      );
      await download(f.devices.a, files().artifactFile, r);
      expect(await f.store.isPinned(r.record.fileLink)).to.equal(true);
      await f.registry.connect(f.auditor).revokeRelease(r.releaseId, "signing key leaked");
      await f.server.follower.poll();
      expect(f.db.artifact(r.releaseId)!.state).to.equal("withdrawn");
      expect(await f.store.isPinned(r.record.fileLink)).to.equal(false);
      await expectCode(download(f.devices.a, files().artifactFile, r), "RELEASE_REVOKED");
    });
  });
});

describe("docs/server.md", () => {
  it("PROC-4: documents every refusal code the server can answer with", async () => {
    const { REFUSALS } = await import("../../../agent/server/refusals");
    const doc = readFileSync(path.join(__dirname, "..", "..", "..", "docs", "server.md"), "utf8");
    for (const [code, [status]] of Object.entries(REFUSALS)) expect(doc, code).to.include(`| \`${code}\` | ${status} |`);
  });
});
