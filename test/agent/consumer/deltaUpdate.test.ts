import { expect } from "chai";
import { ethers } from "hardhat";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DeviceAgent } from "../../../agent/consumer/deviceAgent";
import { componentId } from "../../../agent/core/release";
import { ContentKeyStore } from "../../../agent/author/contentKeyStore";
import { packageDelta, publishDelta } from "../../../agent/author/releaseDelta";
import { startFirmwareServer, type RunningFirmwareServer } from "../../../agent/server/firmwareServer";
import type { ReleaseDeltas } from "../../../typechain-types";
import { deviceAgentOptions, serverFixture, writeImage } from "../../helpers/serverFixture";

type Fixture = Awaited<ReturnType<typeof serverFixture>>;
const BOOT = componentId("acme.bootloader");

describe("delta updates (ADR 0018): a device takes a release's delta from the image it runs", function () {
  this.timeout(120_000);
  let f: Fixture;
  let deltas: ReleaseDeltas;
  let server: RunningFirmwareServer;
  let n = 0;

  before(async () => {
    f = await serverFixture();
    deltas = (await ethers.deployContract("ReleaseDeltas", [await f.registry.getAddress()])) as unknown as ReleaseDeltas;
    // A server that also takes and serves deltas, over the fixture's store and database.
    server = await startFirmwareServer({ gate: f.gate, store: f.store, db: f.db, pollMs: 100, deltas });
  });
  after(async () => {
    await server?.close();
    await f?.close();
  });

  /** Versions `a` and `b` of the bootloader, b being a with 97 bytes inserted early (code moved), and the delta from a to b recorded and submitted. */
  async function pair(a: string, b: string, seed: number) {
    const fileA = writeImage(f.dir, `boot-${a}.bin`, 400 * 1024, seed);
    const bytesA = readFileSync(fileA);
    const fileB = path.join(f.dir, `boot-${b}.bin`);
    writeFileSync(fileB, Buffer.concat([bytesA.subarray(0, 5000), Buffer.alloc(97, 0x5a), bytesA.subarray(5000)]));
    const grant = [f.devices.a];
    const ra = await f.release({ component: "acme.bootloader", version: a, file: fileA, hardware: ["acme-board-rev-a"], depends: [] }, { grant });
    const rb = await f.release({ component: "acme.bootloader", version: b, file: fileB, hardware: ["acme-board-rev-a"], depends: [] }, { grant });
    const keys = new ContentKeyStore(path.join(f.dir, "keys"));
    const packaged = await packageDelta(
      { contentKey: await keys.load(rb.releaseId), releaseId: rb.releaseId, fromReleaseId: ra.releaseId, baseFile: fileA, targetFile: fileB },
      path.join(f.dir, "deltas"),
    );
    const { cid } = await publishDelta({ deltas, author: f.acmeAuthor, serverUrl: server.url }, packaged);
    return { ra, rb, packaged, cid: cid!, imageB: readFileSync(fileB) };
  }

  async function deviceOn(releaseId: string) {
    n += 1;
    const agent = await DeviceAgent.open(
      deviceAgentOptions(f, f.devices.a, `delta-device-${n}`, {
        serverUrl: server.url,
        chain: { provider: ethers.provider, registry: f.registry, fleet: f.fleet, domain: f.domain, fromBlock: 0, deltas },
      }),
    );
    expect((await agent.manualInstall(releaseId, { file: path.join(f.dir, "artifacts", `acme.bootloader-${versionOf[releaseId]}.otae`) })).outcome).to.equal(
      "confirmed",
    );
    return agent;
  }
  const versionOf: Record<string, string> = {};

  const downloaded = (releaseId: string, kind: string) =>
    f.db
      .downloads({ deviceId: f.devices.a.credential.record.id, releaseId })
      .filter((e) => e.kind === kind)
      .reduce((s, e) => s + e.bytes, 0);

  it("REQ-10e-i: a device running the base fetches the delta, far fewer bytes than the image, and installs the release", async function () {
    const { ra, rb, packaged, imageB } = await pair("1.0.0", "1.1.0", 1);
    versionOf[ra.releaseId] = "1.0.0";
    const agent = await deviceOn(ra.releaseId);
    const [result] = await agent.catchUp();
    expect(result, JSON.stringify(result)).to.include({ releaseId: rb.releaseId, outcome: "confirmed" });
    expect(agent.deltaStats).to.include({ installed: 1, fellBack: 0 });
    const c = agent.slots.snapshot().components[BOOT];
    expect(c.slots[c.active]?.releaseId.toLowerCase()).to.equal(rb.releaseId.toLowerCase());
    expect(readFileSync(path.join(agent.slots.slotDir(BOOT, c.active), "image.bin")).equals(imageB)).to.equal(true);
    // The server's download log: the delta's bytes, and none of the release's full artifact.
    expect(downloaded(rb.releaseId, "delta")).to.equal(agent.deltaStats.deltaBytes);
    expect(downloaded(rb.releaseId, "artifact")).to.equal(0);
    expect(agent.deltaStats.deltaBytes).to.be.below(Number(rb.ledger.record.fileSize) / 10);
    expect(Number(packaged.size)).to.be.below(Number(rb.ledger.record.fileSize) / 10);
    await agent.close();
  });

  it("REQ-10f-ii CAP-11.4-a: a server that tampers with the delta makes the device fall back to the whole image, installed and confirmed, never failed", async function () {
    const { ra, rb, cid, imageB } = await pair("2.0.0", "2.1.0", 2);
    versionOf[ra.releaseId] = "2.0.0";
    const agent = await deviceOn(ra.releaseId);
    const cat = f.store.cat.bind(f.store);
    f.store.cat = async function* (c, o) {
      let at = o?.offset ?? 0;
      for await (const piece of cat(c, o)) {
        const out = Buffer.from(piece);
        if (c === cid && at <= 100 && 100 < at + out.length) out[100 - at] ^= 0xff;
        at += out.length;
        yield out;
      }
    };
    try {
      const [result] = await agent.catchUp();
      expect(result).to.include({ releaseId: rb.releaseId, outcome: "confirmed" });
    } finally {
      f.store.cat = cat;
    }
    expect(agent.deltaStats).to.include({ installed: 0, fellBack: 1 });
    const c = agent.slots.snapshot().components[BOOT];
    expect(readFileSync(path.join(agent.slots.slotDir(BOOT, c.active), "image.bin")).equals(imageB)).to.equal(true);
    expect(downloaded(rb.releaseId, "artifact")).to.be.greaterThan(Number(rb.ledger.record.fileSize));
    await agent.close();
  });
});
