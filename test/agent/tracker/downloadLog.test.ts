import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Wallet, keccak256, toUtf8Bytes } from "ethers";
import { FleetStore } from "../../../agent/tracker/store";
import { pullDownloadLog } from "../../../agent/tracker/downloadLog";
import { withSqlite } from "../../helpers/sqliteFile";

/**
 * CAP-11.2-b-i: liveness from a firmware server's download log. The server is not trusted (its log
 * is not signed by the devices): what it says can date a contact only up to now, and a log that
 * does not page as asked cannot keep the tracker reading (issue 16 review, docs/threat-model.md).
 */
describe("agent/tracker/downloadLog: a firmware server's log, untrusted (CAP-11.2-b-i)", () => {
  const NOW = 1_800_000_000_000;
  const deviceId = keccak256(toUtf8Bytes("download log device"));
  const releaseId = keccak256(toUtf8Bytes("download log release"));
  let dir: string;
  let db: FleetStore;
  let server: http.Server | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ota-download-log-"));
    db = new FleetStore(path.join(dir, "fleet.db"));
    db.devices.upsert({ id: deviceId, publicKey: "0x02" + "11".repeat(32), hardwareClass: 1, network: "n", region: "r", standing: "active" });
  });
  afterEach(async () => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
  });
  const entry = (id: number, at: number) => ({ id, at, deviceId, releaseId, kind: "artifact", complete: true });

  it("CAP-11.2-b-i: a contact dated in the future counts as now; a malformed entry is skipped", () => {
    const taken = db.downloads.take(
      "http://server",
      [entry(1, NOW + 365 * 24 * 3600_000), { ...entry(2, NOW), deviceId: "not an id" }, { ...entry(3, NOW), at: Number.NaN }],
      NOW,
    );
    expect(taken).to.equal(1);
    expect(db.devices.get(deviceId)!.lastSeen).to.equal(NOW);
    expect(db.downloads.of(deviceId).map((d) => d.at)).to.deep.equal([NOW]);
  });

  it("a server answering the same full page whatever the cursor is read once, not for ever", async () => {
    let asked = 0;
    server = http.createServer((_req, res) => {
      asked++;
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ downloads: Array.from({ length: 1000 }, (_, i) => entry(i + 1, NOW - 1000 + i)) }));
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await pullDownloadLog(db, url, new Wallet(keccak256(toUtf8Bytes("download log reader"))), () => NOW)).to.equal(1000);
    expect(asked).to.equal(2); // the page, then the same page again: nothing moved, so it stops
    expect(await pullDownloadLog(db, url, new Wallet(keccak256(toUtf8Bytes("download log reader"))), () => NOW)).to.equal(0);
    expect(asked).to.equal(3);
  });

  it("CAP-11.2-b-i review finding: a server that answers fresh entries for ever, pages longer than asked and unknown devices is read within bounds, and only this fleet's devices are kept", async () => {
    let asked = 0;
    let next = 1;
    const stranger = keccak256(toUtf8Bytes("not a device of this fleet"));
    server = http.createServer((_req, res) => {
      asked++;
      // 3,000 entries a page (1,000 asked), every page new, half of them for a device the fleet does not have.
      const page = Array.from({ length: 3000 }, () => {
        const id = next++;
        return { ...entry(id, NOW - 1), deviceId: id % 2 ? deviceId : stranger };
      });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ downloads: page }));
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const taken = await pullDownloadLog(db, url, new Wallet(keccak256(toUtf8Bytes("download log reader"))), () => NOW);
    expect(asked, "pages in one pull").to.equal(100);
    expect(taken, "1,000 entries a page at most, this fleet's device only").to.equal(100 * 500);
    expect(withSqlite(db.file, (raw) => raw.prepare(`SELECT COUNT(*) FROM downloads WHERE device_id = ?`).pluck().get(stranger.toLowerCase()))).to.equal(0);
  });

  it("CAP-11.2-b-i: a log of mostly another fleet's devices is still read forward: the entries passed over move the cursor", async () => {
    const stranger = keccak256(toUtf8Bytes("a device of another fleet"));
    const log = [...Array.from({ length: 1000 }, (_, i) => ({ ...entry(i + 1, NOW - 10), deviceId: stranger })), entry(1001, NOW - 5)];
    const asked: number[] = [];
    server = http.createServer((req, res) => {
      const after = Number(new URL(req.url!, "http://x").searchParams.get("after"));
      asked.push(after);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ downloads: log.filter((e) => e.id > after).slice(0, 1000) }));
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await pullDownloadLog(db, url, new Wallet(keccak256(toUtf8Bytes("download log reader"))), () => NOW)).to.equal(1);
    expect(asked).to.deep.equal([0, 1000]);
    expect(db.devices.get(deviceId)!.lastSeen).to.equal(NOW - 5);
  });
});
