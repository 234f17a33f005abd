import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { LedgerWatcher, type LedgerEvent } from "../../../agent/consumer/ledgerWatcher";
import { LedgerGate } from "../../../agent/server/ledgerGate";
import { RevocationFollower } from "../../../agent/server/revocationFollower";
import { ServerDatabase } from "../../../agent/server/serverDatabase";
import type { ContentStore } from "../../../agent/storage/contentStore";
import { BOOTLOADER, trackerChain, type TrackerChain } from "../../helpers/trackerFixture";

/** The server's record of an artifact it serves for `releaseId` (what the follower checks against the ledger). */
const serving = (db: ServerDatabase, releaseId: string, cid: string) =>
  db.saveArtifact(
    { releaseId, cid, merkleRoot: "0x" + "11".repeat(32), artifactSize: 10n, chunkSize: 4096, providerId: 1, acceptedAt: Date.now() },
    ["0x" + "22".repeat(32)],
    [],
  );

const until = async (what: string, ok: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/**
 * Issue 16 on anvil: a reorganisation deeper than the blocks an agent remembers. The device's
 * watcher and the firmware server's revocation follower only hint or re-check (every decision
 * reads the ledger), so they say REORG_TOO_DEEP once, go on from the head and catch up by asking
 * the ledger, instead of retrying forever (REQ-10b-i, CAP-11.3-c).
 */
describe("agent/chain on anvil: the device's and the server's followers after reorganisations (issue 16, REQ-10b-i, CAP-11.3-c)", function () {
  this.timeout(120_000);
  let t: TrackerChain;
  let dir: string;
  before(async () => {
    t = await trackerChain({ node: "anvil" });
    dir = mkdtempSync(path.join(tmpdir(), "ota-deep-reorg-"));
  });
  after(async () => {
    await t?.c.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  /** 8 blocks the agent reads (`caughtUp`), then the last 6 replaced. */
  const deepReorg = async (caughtUp: () => Promise<void>) => {
    await t.c.provider.send("anvil_mine", ["0x8"]);
    await caughtUp();
    await t.c.provider.send("anvil_reorg", [6, []]); // deeper than the 2 blocks remembered below
    await t.recountNonce();
  };

  it("the device's watcher says REORG_TOO_DEEP once, follows again from the head and asks its caller to catch up", async () => {
    const errors: string[] = [];
    const events: LedgerEvent[] = [];
    let resyncs = 0;
    const watcher = new LedgerWatcher(t.c.provider, t.c.registry, path.join(dir, "device-checkpoint.json"), async (e) => void events.push(...e), {
      fromBlock: t.fromBlock,
      pollMs: 100,
      reorgDepth: 2,
      onError: (err) => errors.push(`${(err as { code?: string }).code}: ${(err as Error).message}`),
      onResync: () => void resyncs++,
    });
    await watcher.start();
    try {
      await t.publish(BOOTLOADER, "3.0.0", [1]);
      await deepReorg(() => watcher.poll());
      await until("the resync", () => resyncs === 1);
      const after = await t.publish(BOOTLOADER, "3.1.0", [1]);
      await until("the new release's event", () => events.some((e) => e.kind === "published" && e.releaseId.toLowerCase() === after.id));
      await new Promise((r) => setTimeout(r, 400)); // a few more polls: no error loop
      expect(
        errors.filter((e) => e.startsWith("REORG_TOO_DEEP")),
        errors.join("\n"),
      ).to.have.length(1);
      expect(errors, "nothing retried in a loop").to.have.length(1);
      expect(resyncs).to.equal(1);
    } finally {
      await watcher.stop();
    }
  });

  it("the firmware server's revocation follower goes on from the head after checking every served artifact, and withdraws a release revoked after", async () => {
    const released = await t.publish(BOOTLOADER, "4.0.0", [1]);
    const db = new ServerDatabase(path.join(dir, "server.db"));
    serving(db, released.id, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
    const unpinned: string[] = [];
    const store = { unpin: async (cid: string) => void unpinned.push(cid) } as unknown as ContentStore;
    const errors: string[] = [];
    const gate = new LedgerGate(t.c.registry, t.c.fleet, t.domain, t.fromBlock);
    const follower = new RevocationFollower(gate, db, store, 100, (err) => errors.push((err as Error).message), 2);
    await follower.start();
    try {
      await deepReorg(() => follower.poll());
      await until("the resync", () => errors.some((e) => e.startsWith("REORG_TOO_DEEP")));
      await t.send((o) => t.registry.revokeRelease(released.id, "malicious", o));
      await until("the withdrawal", () => db.artifact(released.id)?.state === "withdrawn");
      expect(unpinned).to.have.length(1);
      expect(errors.filter((e) => e.startsWith("REORG_TOO_DEEP"))).to.have.length(1);
    } finally {
      await follower.stop();
      db.close();
    }
  });

  it("the firmware server withdraws an artifact whose release a reorganisation took off the ledger (within the window)", async () => {
    const db = new ServerDatabase(path.join(dir, "server-dropped.db"));
    const unpinned: string[] = [];
    const store = { unpin: async (cid: string) => void unpinned.push(cid) } as unknown as ContentStore;
    const follower = new RevocationFollower(new LedgerGate(t.c.registry, t.c.fleet, t.domain, t.fromBlock), db, store, 100);
    await follower.start();
    try {
      const dropped = await t.publish(BOOTLOADER, "5.0.0", [1]);
      serving(db, dropped.id, "bafkreidropped");
      await follower.poll();
      expect(db.artifact(dropped.id)?.state).to.equal("serving");
      await t.c.provider.send("anvil_reorg", [1, []]); // the publishing block replaced: the release is on no chain
      await t.recountNonce();
      await follower.poll();
      expect(db.artifact(dropped.id)).to.include({ state: "withdrawn" });
      expect(db.artifact(dropped.id)!.withdrawnReason).to.match(/no longer on the ledger/);
      expect(unpinned).to.deep.equal(["bafkreidropped"]);
    } finally {
      await follower.stop();
      db.close();
    }
  });
});
