import { expect } from "chai";
import { randomBytes } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { readFileSync } from "node:fs";
import { JsonRpcProvider } from "ethers";
import { serverFixture, writeImage } from "../../helpers/serverFixture";
import { downloadArtifact, DeviceIdentity } from "../../../agent/consumer/downloadRelease";
import { encodeHeader } from "../../../agent/crypto/artifactCipher";
import { encodeDeviceCredential } from "../../../agent/crypto/deviceCredential";
import { signAccountRequest, signDeviceRequest } from "../../../agent/crypto/requestSignature";
import { encodeInstalled } from "../../../agent/core/installedContext";
import { computeCid } from "../../../agent/storage/cid";
import type { ContentStore } from "../../../agent/storage/contentStore";

/**
 * The firmware server and the device download as an attacker probes them: each test asserts the
 * behaviour that closes a weakness found in review (or confirms that a suspected one is not).
 */

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
type Release = Awaited<ReturnType<Fixture["release"]>>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("agent/server firmware server: adversarial review", function () {
  this.timeout(120_000);
  let f: Fixture;
  let main: Release; // served, key granted to device a
  let unsubmitted: Release[]; // published on the ledger, never submitted to this server
  let attempt = 0;

  before(async () => {
    f = await serverFixture();
    const hw = ["acme-board-rev-a"];
    main = await f.release(
      { component: "acme.bootloader", version: "1.0.0", file: writeImage(f.dir, "boot.bin", 700 * 1024 + 3, 1), hardware: hw, depends: [] },
      { grant: [f.devices.a] },
    );
    unsubmitted = [
      await f.release(
        { component: "acme.sensor-fw", version: "1.0.0", file: writeImage(f.dir, "sensor.bin", 64 * 1024, 2), hardware: hw, depends: [] },
        { upload: false },
      ),
      await f.release(
        { component: "acme.radio-fw", version: "1.0.0", file: writeImage(f.dir, "radio.bin", 200 * 1024, 3), hardware: hw, depends: [] },
        { upload: false },
      ),
    ];
  });
  after(async () => f?.close());

  const idOf = (r: Release) => r.releaseId.toLowerCase();
  const artifactPath = () => `/v1/releases/${idOf(main)}/artifact`;
  const signDevice = (device: DeviceIdentity, method: string, pathname: string, installed = encodeInstalled([])) =>
    signDeviceRequest(device.privateKey, device.credential.record.id, encodeDeviceCredential(device.credential), {
      audience: f.server.url,
      method,
      path: pathname,
      context: installed,
    });
  const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
  const servedSize = () => Number(f.db.artifact(main.releaseId)!.artifactSize);

  /** Replaces the store's cat for the duration of `body` (the fixture's FaultyStore, own property). */
  async function withCat(cat: ContentStore["cat"], body: () => Promise<void>): Promise<void> {
    const store = f.store as unknown as { cat: ContentStore["cat"] };
    store.cat = cat;
    try {
      await body();
    } finally {
      delete (store as { cat?: unknown }).cat; // back to FaultyStore.prototype.cat
    }
  }
  const innerCat = (cid: string, o?: { offset?: number; length?: number }) => f.store.inner.cat(cid, o);

  describe("submissions", () => {
    it("CAP-11.3-a: a header declaring 1-byte chunks is refused as soon as it is read, not after 17x the image and one leaf per byte", async () => {
      // Anyone may submit. The header's chunk size is the submitter's choice and nothing checks it
      // before the end, so the server commits to read 24 + 17 * fileSize bytes and to keep one
      // 66-char leaf string per plaintext byte (~117 bytes of heap each) before the Merkle check.
      const r = unsubmitted[0];
      const forged = encodeHeader({ chunkSize: 1, plaintextSize: r.record.fileSize, noncePrefix: randomBytes(7) });
      const url = new URL(`/v1/releases/${idOf(r)}/artifact`, f.server.url);
      const req = http.request(url, {
        method: "POST",
        headers: { ...(await f.submissionHeaders(r.releaseId)), "content-type": "application/octet-stream", "transfer-encoding": "chunked" },
      });
      req.on("error", () => {});
      const answered = new Promise<number | "no answer">((resolve) => {
        req.on("response", (res) => (res.resume(), resolve(res.statusCode!)));
        setTimeout(() => resolve("no answer"), 5_000);
      });
      req.write(forged); // and nothing more: the header alone is enough to refuse
      const status = await answered;
      req.destroy();
      expect(status, "the server waits for the 1,114,136 bytes a 1-byte chunk size implies").to.equal(422);
    });

    it("CAP-11.3-a: a refused submission leaves none of its blocks in the store", async () => {
      const r = unsubmitted[1];
      const junk = Buffer.from(readFileSync(r.artifactFile));
      junk[junk.length - 1] ^= 1; // right header and size, wrong bytes: any stranger can send this
      const res = await fetch(new URL(`/v1/releases/${idOf(r)}/artifact`, f.server.url), {
        method: "POST",
        headers: { ...(await f.submissionHeaders(r.releaseId)), "content-type": "application/octet-stream" },
        body: junk,
      });
      expect(res.status).to.equal(422);
      expect(await errorCode(res)).to.equal("SUBMISSION_MERKLE_MISMATCH");
      expect(f.db.artifact(r.releaseId)).to.equal(undefined);
      const junkCid = await computeCid([junk]);
      expect(await f.store.isPinned(junkCid)).to.equal(false); // not pinned (what the code promises) ...
      expect(await f.store.has(junkCid), "the refused bytes stay on disk for good").to.equal(false); // ... but kept
    });
  });

  describe("information leaks", () => {
    it("a ledger outage does not hand the RPC URL (and its API key) to an anonymous caller", async () => {
      const rpc = http.createServer((_req, res) => (res.writeHead(502), res.end("bad gateway"))).listen(0, "127.0.0.1");
      await new Promise((r) => rpc.once("listening", r));
      const { chainId } = await f.ethers.provider.getNetwork();
      const provider = new JsonRpcProvider(`http://127.0.0.1:${(rpc.address() as { port: number }).port}/v3/SECRET-API-KEY`, chainId, { staticNetwork: true });
      const gate = f.gate as unknown as { registry: unknown };
      const real = gate.registry;
      gate.registry = f.registry.connect(provider);
      try {
        const res = await fetch(new URL("/v1/health", f.server.url)); // no authentication at all
        const text = await res.text();
        expect(res.status).to.equal(503);
        expect(JSON.parse(text).error.code).to.equal("LEDGER_UNAVAILABLE");
        expect(text).not.to.include("SECRET-API-KEY");
      } finally {
        gate.registry = real;
        provider.destroy();
        rpc.close();
      }
    });
  });

  describe("key grants", () => {
    it("a grant of 4,000 keys is accepted (grantKeys sends batches under the body limit)", async () => {
      const pathname = `/v1/releases/${idOf(main)}/keys`;
      const keys = Array.from({ length: 4000 }, () => ({
        deviceId: "0x" + randomBytes(32).toString("hex"),
        wrappedKey: "0x01" + randomBytes(93).toString("hex"),
      }));
      const body = JSON.stringify({ keys });
      const headers = await signAccountRequest(f.acmeAuthor, { audience: f.server.url, method: "PUT", path: pathname, body });
      const res = await fetch(new URL(pathname, f.server.url), { method: "PUT", headers: { ...headers, "content-type": "application/json" }, body });
      const answer = await res.json();
      expect(res.status, `${body.length}-byte body: ${JSON.stringify(answer)}`).to.equal(200);
      expect(answer).to.deep.include({ granted: 4000 });
    });
  });

  describe("the download log (CAP-11.3-f)", () => {
    it("CAP-11.3-f: a HEAD request reads and logs nothing", async () => {
      const since = Date.now();
      const res = await fetch(new URL(artifactPath(), f.server.url), { method: "HEAD", headers: signDevice(f.devices.a, "HEAD", artifactPath()) });
      expect(res.status).to.equal(200);
      expect((await res.arrayBuffer()).byteLength).to.equal(0);
      await sleep(500);
      const logged = f.db.downloads({ deviceId: f.devices.a.credential.record.id, releaseId: main.releaseId, since }).filter((d) => d.kind === "artifact");
      expect(logged, JSON.stringify(logged)).to.have.length(0);
      expect(res.headers.get("content-length")).to.equal(String(servedSize()));
    });

    it("a device that hangs up mid-artifact closes the store's stream and is logged as incomplete", async () => {
      let pulled = 0;
      let closed = false;
      await withCat(
        async function* (cid, o) {
          try {
            for await (const piece of innerCat(cid, o)) {
              for (let i = 0; i < piece.length; i += 16 * 1024) {
                await sleep(50);
                pulled += 1;
                yield piece.subarray(i, i + 16 * 1024);
              }
            }
          } finally {
            closed = true;
          }
        },
        async () => {
          const since = Date.now();
          const abort = new AbortController();
          const res = await fetch(new URL(artifactPath(), f.server.url), { headers: signDevice(f.devices.a, "GET", artifactPath()), signal: abort.signal });
          const reader = res.body!.getReader();
          await reader.read();
          abort.abort();
          for (let i = 0; i < 50 && !closed; i++) await sleep(100);
          expect(closed, "the store's cat generator is returned").to.equal(true);
          expect(pulled).to.be.below(Math.ceil(servedSize() / (16 * 1024)));
          const [entry] = f.db.downloads({ deviceId: f.devices.a.credential.record.id, releaseId: main.releaseId, since }).filter((d) => d.kind === "artifact");
          expect(entry).to.deep.include({ complete: false, rangeStart: 0, rangeEnd: servedSize() - 1 });
          expect(entry.bytes).to.be.below(servedSize());
        },
      );
    });
  });

  describe("signed requests", () => {
    it("the signature binds the query and x-ota-context; header case, a re-encoded timestamp or identity do not dodge the nonce", async () => {
      const manifest = `/v1/releases/${idOf(main)}/manifest`;
      const get = (pathname: string, headers: Record<string, string>) => fetch(new URL(pathname, f.server.url), { headers });

      // a query the device did not sign
      expect(await errorCode(await get(manifest + "?x=1", signDevice(f.devices.a, "GET", manifest)))).to.equal("AUTH_SIGNATURE");
      // installed components swapped after signing (e.g. to pass the version check)
      const signed = signDevice(f.devices.a, "GET", manifest);
      const otherContext = encodeInstalled([{ component: "0x" + "11".repeat(32), version: 1n }]);
      expect(await errorCode(await get(manifest, { ...signed, "x-ota-context": otherContext }))).to.equal("AUTH_SIGNATURE");
      // a context header dropped after signing
      const { ["x-ota-context"]: _dropped, ...withoutContext } = signDevice(f.devices.a, "GET", manifest);
      expect(await errorCode(await get(manifest, withoutContext))).to.equal("AUTH_SIGNATURE");

      // header names in upper case are the same headers
      const upper = Object.fromEntries(Object.entries(signDevice(f.devices.a, "GET", manifest)).map(([k, v]) => [k.toUpperCase(), v]));
      const first = await get(manifest, upper);
      expect(first.status).to.equal(200);
      // replays: the timestamp as hex (Number() parses it), the device id in upper case (the message lower-cases it)
      const hexTime = { ...upper, "X-OTA-TIMESTAMP": "0x" + Number(upper["X-OTA-TIMESTAMP"]).toString(16) };
      expect(await errorCode(await get(manifest, hexTime))).to.equal("AUTH_REPLAY");
      const cred = f.devices.a.credential;
      const shouted = encodeDeviceCredential({ ...cred, record: { ...cred.record, id: "0x" + cred.record.id.slice(2).toUpperCase() } });
      expect(await errorCode(await get(manifest, { ...upper, "X-OTA-DEVICE": shouted }))).to.equal("AUTH_REPLAY");

      // accounts: the address in another case is the same identity
      const logPath = "/v1/downloads?limit=1";
      const adminHeaders = await signAccountRequest(f.admin, { audience: f.server.url, method: "GET", path: logPath });
      expect((await get(logPath, adminHeaders)).status).to.equal(200);
      const recased = { ...adminHeaders, "x-ota-account": "0x" + f.admin.address.slice(2).toUpperCase() };
      expect(await errorCode(await get(logPath, recased))).to.equal("AUTH_REPLAY");
    });
  });

  describe("Range (RFC 9110 14)", () => {
    it("CAP-11.3-b: bytes=0-0, a suffix longer than the artifact, a start past its end, and ranges to ignore", async () => {
      const size = servedSize();
      const ranged = (range: string) => fetch(new URL(artifactPath(), f.server.url), { headers: { ...signDevice(f.devices.a, "GET", artifactPath()), range } });

      const one = await ranged("bytes=0-0");
      expect(one.status).to.equal(206);
      expect(one.headers.get("content-range")).to.equal(`bytes 0-0/${size}`);
      expect(Buffer.from(await one.arrayBuffer())).to.deep.equal(readFileSync(main.artifactFile).subarray(0, 1));

      const suffix = await ranged(`bytes=-${size + 1000}`);
      expect(suffix.status).to.equal(206);
      expect(suffix.headers.get("content-range")).to.equal(`bytes 0-${size - 1}/${size}`);
      expect((await suffix.arrayBuffer()).byteLength).to.equal(size);

      const tail = await ranged(`bytes=${size - 10}-${size + 10}`);
      expect(tail.status).to.equal(206);
      expect((await tail.arrayBuffer()).byteLength).to.equal(10);

      for (const unsatisfiable of [`bytes=${size}-`, "bytes=-0"]) {
        const res = await ranged(unsatisfiable);
        expect(res.status, unsatisfiable).to.equal(416);
        expect(res.headers.get("content-range")).to.equal(`bytes */${size}`);
        expect(await errorCode(res)).to.equal("RANGE_NOT_SATISFIABLE");
      }
      // Not one valid range: ignored (RFC 9110 14.2), the whole artifact is served.
      for (const ignored of ["bytes=5-3", "bytes=0-1,4-5", "items=0-1"]) {
        const res = await ranged(ignored);
        expect(res.status, ignored).to.equal(200);
        expect((await res.arrayBuffer()).byteLength).to.equal(size);
      }
    });
  });

  describe("the device's download (agent/consumer/downloadRelease.ts)", () => {
    it("timeoutMs bounds silence, not the whole transfer: a slow link that keeps delivering completes", async () => {
      attempt += 1;
      const artifactFile = path.join(f.dir, `slow-${attempt}.otae`);
      await withCat(
        async function* (cid, o) {
          for await (const piece of innerCat(cid, o)) {
            for (let i = 0; i < piece.length; i += 32 * 1024) {
              await sleep(40); // a steady trickle: never silent for more than 40 ms
              yield piece.subarray(i, i + 32 * 1024);
            }
          }
        },
        async () => {
          // ~22 pieces x 40 ms: about 0.9 s for the whole artifact, with a 500 ms timeout
          const got = await downloadArtifact({
            serverUrl: f.server.url,
            device: f.devices.a,
            installed: [],
            release: { id: main.releaseId, record: main.record },
            artifactFile,
            timeoutMs: 500,
          }).catch((err: Error) => err);
          expect(got, String(got)).not.to.be.instanceOf(Error);
          expect(readFileSync(artifactFile)).to.deep.equal(readFileSync(main.artifactFile));
        },
      );
    });
  });
});
